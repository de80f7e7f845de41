//! Operations whose result comes from elsewhere: calls and sends (the callee created in the
//! entry's commit), durable timers, awakeables and promises, and completing them from a handler.

use std::sync::Arc;
use std::time::Duration;

use super::{BROKEN, InvocationCore, outcome};
use crate::clock::millis;
use crate::context::backend::{Handle, Outcome};
use crate::error::TerminalError;
use crate::ids::{InvocationId, Target, awakeable_id, parse_awakeable_id};
use crate::journal::{Completion, Entry, Op, Step};
use crate::runtime::invoker::Fatal;
use crate::store::command::{Action, Command, Completable, NewInvocation};

impl InvocationCore {
    /// Issues a call or send: creates the callee atomically with the journal entry.
    pub(super) async fn spawn_callee(
        &self,
        target: Target,
        input: Vec<u8>,
        wait: bool,
        delay: Option<Duration>,
    ) -> Result<(u32, u64, Option<Completion>), TerminalError> {
        let kind = self
            .engine
            .registry
            .resolve(&target)
            .map_err(|e| TerminalError::with_code(404, e.to_string()))?;
        let issued = if wait {
            Op::Call {
                target: target.clone(),
                callee: 0,
            }
        } else {
            Op::Send {
                target: target.clone(),
                callee: 0,
            }
        };
        match self.issue(&issued) {
            Step::Replayed(index, entry) => match entry.op {
                Op::Call { callee, .. } | Op::Send { callee, .. } => {
                    Ok((index, callee, entry.completion))
                }
                other => Err(TerminalError::new(format!(
                    "journal entry {index} is {} where a call or send was recorded",
                    other.describe()
                ))),
            },
            Step::Live(index) => {
                let callee = self.engine.allocate_id();
                let now_ms = self.engine.clock.now_ms();
                let op = if wait {
                    Op::Call {
                        target: target.clone(),
                        callee,
                    }
                } else {
                    Op::Send {
                        target: target.clone(),
                        callee,
                    }
                };
                let new = NewInvocation {
                    id: callee,
                    target,
                    kind,
                    input,
                    waiter: wait.then_some((self.id, index)),
                    created_ms: now_ms,
                    idempotency_key: None,
                    start_at_ms: delay.map(|d| now_ms.saturating_add(millis(d))),
                };
                {
                    let _active = self.live.begin_operation();
                    self.append(index, self.entry(op, None), vec![Action::Spawn(new)])
                        .await;
                }
                Ok((index, callee, None))
            }
            step @ Step::Mismatch { .. } => self.fail_mismatch(step).await,
        }
    }

    pub(super) async fn call(self: Arc<Self>, target: Target, input: Vec<u8>) -> Outcome {
        let what = format!("the result of {target}");
        let (index, _, recorded) = self.spawn_callee(target, input, true, None).await?;
        let completion = match recorded {
            Some(completion) => completion,
            None => self.completion(index).await,
        };
        outcome(Some(completion), &what)
    }

    pub(super) async fn send(
        self: Arc<Self>,
        target: Target,
        input: Vec<u8>,
        delay: Option<Duration>,
    ) -> Result<String, TerminalError> {
        let (_, callee, _) = self.spawn_callee(target, input, false, delay).await?;
        Ok(InvocationId(callee).to_string())
    }

    /// Issues an operation whose completion arrives later; a live one is appended (without
    /// waiting) with `actions`. Returns the entry at its index, and its handle.
    pub(super) fn issue_durable(
        self: &Arc<Self>,
        op: Op,
        actions: impl FnOnce() -> Vec<Action>,
    ) -> (Option<Entry>, Handle) {
        match self.issue(&op) {
            Step::Replayed(index, entry) => {
                let handle = replayed_handle(index, &entry);
                (Some(entry), handle)
            }
            Step::Live(index) => {
                let entry = self.entry(op, None);
                self.append_detached(index, entry.clone(), actions());
                (Some(entry), Handle::pending(u64::from(index)))
            }
            step @ Step::Mismatch { .. } => {
                self.report_mismatch(step);
                (None, Handle::pending(BROKEN))
            }
        }
    }

    pub(super) fn sleep_until_ms(self: &Arc<Self>, wake_at_ms: u64) -> Handle {
        self.issue_durable(Op::Sleep { wake_at_ms }, || {
            vec![Action::Timer { due_ms: wake_at_ms }]
        })
        .1
    }

    pub(super) fn new_awakeable(self: &Arc<Self>) -> (String, Handle) {
        let secret = self.random_u128(self.live.machine().next_index());
        let (entry, handle) = self.issue_durable(Op::Awakeable { secret }, Vec::new);
        let secret = match entry.map(|e| e.op) {
            Some(Op::Awakeable { secret }) => secret,
            _ => secret,
        };
        let index = u32::try_from(handle.token).unwrap_or(u32::MAX);
        (awakeable_id(self.id, index, secret), handle)
    }

    pub(super) fn new_promise(self: &Arc<Self>, name: &str) -> Handle {
        let instance = self.instance();
        let op = Op::GetPromise {
            name: name.to_owned(),
        };
        self.issue_durable(op, || {
            vec![Action::AwaitPromise {
                instance,
                name: name.to_owned(),
            }]
        })
        .1
    }

    /// Waits for the completion of a pending durable future.
    pub(super) async fn await_handle(self: Arc<Self>, token: u64) -> Outcome {
        let Some(index) = u32::try_from(token).ok().filter(|&i| i != u32::MAX) else {
            // Replay found another operation here (already reported): wait to be dropped.
            return std::future::pending().await;
        };
        outcome(
            Some(self.completion(index).await),
            "a durable future's result",
        )
    }

    pub(super) async fn peek_promise(
        self: Arc<Self>,
        name: String,
    ) -> Result<Option<Vec<u8>>, TerminalError> {
        let instance = self.instance();
        let store = &self.engine.store;
        let completion = self
            .immediate(Op::PeekPromise { name: name.clone() }, |_| {
                match store.promise(&instance, &name) {
                    Ok(Some(completion)) => Ok(completion),
                    Ok(None) => Ok(Completion::Empty),
                    Err(e) => Err(Fatal::Store(e.to_string())),
                }
            })
            .await;
        match completion {
            Completion::Empty => Ok(None),
            other => outcome(Some(other), &format!("promise {name:?}")).map(Some),
        }
    }

    /// Completes an awakeable or a promise from this handler; the outcome is journaled.
    pub(super) async fn complete(
        self: Arc<Self>,
        op: Op,
        what: Completable,
        completion: Completion,
    ) -> Result<(), TerminalError> {
        let recorded = match self.issue(&op) {
            Step::Replayed(_, entry) => entry.completion,
            Step::Live(index) => {
                let _active = self.live.begin_operation();
                let command = Command::Complete {
                    what,
                    completion,
                    by: Some((self.id, index, self.entry(op, None))),
                    at_ms: self.engine.clock.now_ms(),
                };
                self.commit(command).await.journaled
            }
            step @ Step::Mismatch { .. } => return self.fail_mismatch(step).await,
        };
        match recorded {
            Some(Completion::Failure(e)) => Err(e),
            Some(_) => Ok(()),
            None => Err(TerminalError::new("the completion has no recorded result")),
        }
    }

    pub(super) async fn complete_awakeable(
        self: Arc<Self>,
        id: String,
        completion: Completion,
    ) -> Result<(), TerminalError> {
        let Some((inv, index, secret)) = parse_awakeable_id(&id) else {
            return Err(TerminalError::with_code(
                400,
                format!("{id:?} is not an awakeable id"),
            ));
        };
        let what = Completable::Awakeable { inv, index, secret };
        self.complete(Op::CompleteAwakeable { id }, what, completion)
            .await
    }

    pub(super) async fn complete_promise(
        self: Arc<Self>,
        name: String,
        completion: Completion,
    ) -> Result<(), TerminalError> {
        let what = Completable::Promise {
            instance: self.instance(),
            name: name.clone(),
        };
        self.complete(Op::CompletePromise { name }, what, completion)
            .await
    }
}

/// The handle of a durable future replayed from the journal: ready if its result was recorded.
pub(crate) fn replayed_handle(index: u32, entry: &Entry) -> Handle {
    let ready = entry
        .completion
        .clone()
        .map(|completion| outcome(Some(completion), "a durable future's result"));
    Handle {
        token: u64::from(index),
        ready,
    }
}
