//! The invocation behind a context, the embedded engine's `Backend`: the async driver of the
//! attempt's [`Machine`](crate::journal::machine::Machine). It asks the machine for each
//! operation's index (replay or execute), performs what the machine cannot (appends through
//! the writer, reads of committed state, `run` closures, sleeps on the clock), and waits for
//! completions. `state.rs` has the state operations, `waits.rs` calls, sends, timers,
//! awakeables and promises.
//!
//! When something goes wrong that the handler must not observe (the journal does not match the
//! code, the store failed), the operation reports it to the invoker and never returns; the
//! invoker then drops the handler's future.

mod state;
mod waits;

pub(crate) use waits::replayed_handle;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{millis, sleep_for, to_system_time};
use crate::context::backend::{Backend, BoxFuture, Handle, Outcome, RunAction};
use crate::error::TerminalError;
use crate::ids::{InvocationId, Target};
use crate::journal::machine::Wake;
use crate::journal::{Completion, Entry, Op, Patch, Step};
use crate::retry::RetryPolicy;
use crate::runtime::Runtime;
use crate::runtime::invoker::{Fatal, Live};
use crate::store::command::{Action, Command, Rejected};

/// One execution (attempt) of an invocation.
#[doc(hidden)]
pub struct InvocationCore {
    pub(crate) engine: Arc<Runtime>,
    pub(crate) id: u64,
    pub(crate) target: Target,
    pub(crate) attempt: u32,
    /// The attempt's machine (replay, the state overlay, completions, waits) and its wake-ups.
    pub(crate) live: Arc<Live>,
}

impl InvocationCore {
    pub(crate) fn new(
        engine: Arc<Runtime>,
        id: u64,
        target: Target,
        attempt: u32,
        live: Arc<Live>,
        journal: Vec<(u32, Entry)>,
    ) -> Self {
        live.machine().load(journal);
        Self {
            engine,
            id,
            target,
            attempt,
            live,
        }
    }

    pub(crate) fn is_replaying(&self) -> bool {
        self.live.machine().is_replaying()
    }

    /// Hands `op` the next index; a mismatch is recorded as the attempt's fatal failure.
    fn issue(&self, op: &Op) -> Step {
        self.live.machine().issue(op)
    }

    fn instance(&self) -> String {
        self.target.instance().unwrap_or_default()
    }

    fn entry(&self, op: Op, completion: Option<Completion>) -> Entry {
        Entry {
            op,
            at_ms: self.engine.clock.now_ms(),
            attempt: self.attempt,
            completion,
        }
    }

    /// Reports a failure to the invoker and waits to be dropped.
    async fn fail<T>(&self, fatal: Fatal) -> T {
        self.live.fail(fatal);
        std::future::pending().await
    }

    /// After a [`Step::Mismatch`] (which the machine recorded): stops the handler.
    async fn fail_mismatch<T>(&self, step: Step) -> T {
        self.report_mismatch(step);
        std::future::pending().await
    }

    /// Wakes the invoker to stop the handler after a [`Step::Mismatch`], for an operation that
    /// returns without awaiting.
    fn report_mismatch(&self, step: Step) {
        if let Step::Mismatch {
            index,
            recorded,
            issued,
        } = step
        {
            self.live.fail(Fatal::mismatch(index, &recorded, &issued));
        }
    }

    /// Submits a command of this invocation and waits for its commit; then acts on what the
    /// commit changed. A refusal or a store failure abandons the attempt.
    async fn commit(&self, command: Command) -> Committed {
        match self
            .engine
            .store
            .submit_as(self.live.generation, command)
            .await
        {
            Ok(Ok(effects)) => Committed {
                journaled: effects.journaled,
                cancel_delivered: effects.cancel_delivered,
            },
            Ok(Err(Rejected::AlreadyFinished(_))) => self.fail(Fatal::Killed).await,
            Ok(Err(rejected)) => self.fail(Fatal::Store(rejected.to_string())).await,
            Err(error) => self.fail(Fatal::Store(error.to_string())).await,
        }
    }

    /// Appends an entry and waits for its commit.
    async fn append(&self, index: u32, entry: Entry, actions: Vec<Action>) {
        let command = Command::Append {
            inv: self.id,
            index,
            entry,
            actions,
        };
        self.commit(command).await;
    }

    /// Appends without waiting: a later command of this invocation commits after it.
    fn append_detached(&self, index: u32, entry: Entry, actions: Vec<Action>) {
        let answer = self.engine.store.enqueue_as(
            self.live.generation,
            Command::Append {
                inv: self.id,
                index,
                entry,
                actions,
            },
        );
        let live = self.live.clone();
        live.detached_started();
        tokio::spawn(async move {
            match answer.await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(Rejected::AlreadyFinished(_)))) => live.fail(Fatal::Killed),
                Ok(Ok(Err(rejected))) => live.fail(Fatal::Store(rejected.to_string())),
                Ok(Err(error)) => live.fail(Fatal::Store(error.to_string())),
                Err(_) => live.fail(Fatal::Store("the engine is shut down".into())),
            }
            live.detached_done();
        });
    }

    /// Takes the delivered completion of `index` (the machine is locked for this step only).
    fn take_completion(&self, index: u32) -> Option<Completion> {
        self.live.machine().take_completion(index)
    }

    /// Waits for the completion of the entry at `index`.
    pub(crate) async fn completion(&self, index: u32) -> Completion {
        match self.wait_any(&[index], index, None).await {
            Waited::Ready(_) => match self.take_completion(index) {
                Some(completion) => completion,
                None => {
                    self.fail(Fatal::Store(format!("completion {index} vanished")))
                        .await
                }
            },
            Waited::Journaled(completion) => completion,
        }
    }

    /// Waits until one of the entries at `indices` has a delivered completion, or until a
    /// cancellation is journaled as the result of the await at `at` (`absent` is the entry to
    /// write there if the index is still empty, as for a select). Suspension is requested after
    /// the inactivity timeout.
    async fn wait_any(&self, indices: &[u32], at: u32, absent: Option<&Entry>) -> Waited {
        let _waiting = self.live.wait_for(indices);
        let inactivity = self.engine.config.inactivity_timeout;
        loop {
            let notified = self.live.completed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake = self.live.machine().poll_wait(indices);
            if let Wake::Ready(position) = wake {
                return Waited::Ready(position);
            }
            if wake == Wake::DeliverCancel {
                let command = Command::DeliverCancel {
                    inv: self.id,
                    index: at,
                    entry: absent.cloned(),
                    at_ms: self.engine.clock.now_ms(),
                };
                let committed = self.commit(command).await;
                if committed.cancel_delivered || committed.journaled.is_none() {
                    // Delivered now, or no longer pending (delivered by a concurrent await).
                    self.live.machine().cancel_delivered();
                }
                if let Some(completion) = committed.journaled {
                    return Waited::Journaled(completion);
                }
                continue;
            }
            tokio::select! {
                () = &mut notified => {}
                () = sleep_for(&*self.engine.clock, inactivity) => self.live.request_suspension(),
            }
        }
    }

    /// Executes or replays an operation whose result is known at once (not a completion).
    async fn immediate(
        &self,
        op: Op,
        execute: impl FnOnce(u32) -> Result<Completion, Fatal>,
    ) -> Completion {
        match self.issue(&op) {
            Step::Replayed(_, entry) => match entry.completion {
                Some(completion) => completion,
                None => {
                    self.fail(Fatal::Store(format!("{} has no result", op.describe())))
                        .await
                }
            },
            Step::Live(index) => {
                let _active = self.live.begin_operation();
                let completion = match execute(index) {
                    Ok(completion) => completion,
                    Err(fatal) => return self.fail(fatal).await,
                };
                self.append(index, self.entry(op, Some(completion.clone())), vec![])
                    .await;
                completion
            }
            step @ Step::Mismatch { .. } => self.fail_mismatch(step).await,
        }
    }

    async fn run(
        self: Arc<Self>,
        name: String,
        policy: RetryPolicy,
        mut action: RunAction,
    ) -> Outcome {
        let op = Op::Run { name: name.clone() };
        let index = match self.issue(&op) {
            Step::Replayed(_, entry) => return outcome(entry.completion, &format!("run {name:?}")),
            Step::Live(index) => index,
            step @ Step::Mismatch { .. } => return self.fail_mismatch(step).await,
        };
        let _active = self.live.begin_operation();
        // The closure's effects reach the world: everything the handler did before it must be
        // durable first (an awakeable id it publishes, a state write it relies on).
        self.live.detached_committed().await;
        let clock = &*self.engine.clock;
        let started_ms = clock.now_ms();
        let mut failures = 0;
        let result = loop {
            match action().await {
                Ok(value) => break Ok(value),
                Err(error) => match error.into_terminal() {
                    Ok(terminal) => break Err(terminal),
                    Err(retryable) => {
                        failures += 1;
                        let elapsed =
                            Duration::from_millis(clock.now_ms().saturating_sub(started_ms));
                        match policy.next_delay(failures, elapsed) {
                            Some(delay) => {
                                tracing::debug!(step = %name, %retryable, ?delay, "run failed, retrying");
                                let _sleeping = self.live.sleep_on_clock();
                                sleep_for(clock, delay).await;
                            }
                            None => {
                                break Err(TerminalError::new(format!(
                                    "run {name:?} gave up after {failures} attempts: {retryable}"
                                )));
                            }
                        }
                    }
                },
            }
        };
        let completion = match &result {
            Ok(bytes) => Completion::Value(bytes.clone()),
            Err(terminal) => Completion::Failure(terminal.clone()),
        };
        self.append(index, self.entry(op, Some(completion)), vec![])
            .await;
        result
    }

    /// A random number for the operation at `index`: from the OS, or with a seed (tests) a
    /// function of (seed, invocation, index), so that a run from scratch draws the same numbers.
    /// The engine's one source of randomness; what it draws is journaled before a handler sees
    /// it.
    fn random_u64(&self, index: u32) -> u64 {
        match self.engine.random_seed {
            #[allow(clippy::disallowed_methods)] // the journaled source
            None => rand::random(),
            Some(seed) => splitmix64(seed ^ splitmix64(self.id ^ (u64::from(index) << 40))),
        }
    }

    fn random_u128(&self, index: u32) -> u128 {
        u128::from(self.random_u64(index)) << 64 | u128::from(self.random_u64(index | 0x8000_0000))
    }

    async fn rand_u64(self: Arc<Self>) -> Result<u64, TerminalError> {
        let completion = self
            .immediate(Op::Rand, |index| json(&self.random_u64(index)))
            .await;
        decode_value(outcome(Some(completion), "rand"), "rand")
    }

    async fn uuid(self: Arc<Self>) -> Result<uuid::Uuid, TerminalError> {
        let completion = self
            .immediate(Op::Uuid, |index| {
                let bytes = self.random_u128(index).to_be_bytes();
                json(&uuid::Builder::from_random_bytes(bytes).into_uuid())
            })
            .await;
        decode_value(outcome(Some(completion), "uuid"), "uuid")
    }

    async fn now(self: Arc<Self>) -> Result<SystemTime, TerminalError> {
        let now = self.engine.clock.now_ms();
        let completion = self.immediate(Op::Now, |_| json(&now)).await;
        decode_value::<u64>(outcome(Some(completion), "now"), "now").map(to_system_time)
    }
    /// A version marker: recorded where it is reached first, false where the journal shows the
    /// invocation went on without it.
    async fn patched(self: Arc<Self>, name: String) -> Result<bool, TerminalError> {
        let op = Op::Patch { name };
        let decision = self.live.machine().issue_patch(&op);
        match decision {
            Patch::Replayed(_) => Ok(true),
            Patch::Absent => Ok(false),
            Patch::Live(index) => {
                self.append_detached(index, self.entry(op, Some(Completion::Empty)), vec![]);
                Ok(true)
            }
        }
    }

    /// Waits for the first of several durable futures; the winner is journaled, so replay picks
    /// the same one.
    async fn select(self: Arc<Self>, candidates: Vec<(u64, bool)>) -> Result<usize, TerminalError> {
        let Some(of) = candidates
            .iter()
            .map(|&(token, _)| u32::try_from(token).ok().filter(|&i| i != u32::MAX))
            .collect::<Option<Vec<u32>>>()
        else {
            // A candidate hit a journal mismatch, already reported: wait to be dropped.
            return std::future::pending().await;
        };
        let op = Op::Select { of: of.clone() };
        let index = match self.issue(&op) {
            Step::Replayed(_, entry) => {
                return decode_value(
                    outcome(entry.completion, "the winner of a select"),
                    "the winner of a select",
                );
            }
            Step::Live(index) => index,
            step @ Step::Mismatch { .. } => return self.fail_mismatch(step).await,
        };
        let entry = self.entry(op, None);
        let winner = match candidates.iter().position(|&(_, done)| done) {
            Some(position) => position,
            None => match self.wait_any(&of, index, Some(&entry)).await {
                Waited::Ready(position) => position,
                Waited::Journaled(completion) => {
                    return decode_value(
                        outcome(Some(completion), "the winner of a select"),
                        "the winner of a select",
                    );
                }
            },
        };
        let completion = json(&winner);
        let completion = match completion {
            Ok(completion) => completion,
            Err(fatal) => return self.fail(fatal).await,
        };
        let mut entry = entry;
        entry.completion = Some(completion);
        self.append(index, entry, vec![]).await;
        Ok(winner)
    }
}

/// How a wait ended.
pub(crate) enum Waited {
    /// The candidate at this position has a delivered completion.
    Ready(usize),
    /// The awaited entry records this: a cancellation, or a completion it already had.
    Journaled(Completion),
}

/// What a commit of this invocation's own command recorded.
struct Committed {
    journaled: Option<Completion>,
    cancel_delivered: bool,
}

fn json<T: Serialize>(value: &T) -> Result<Completion, Fatal> {
    serde_json::to_vec(value)
        .map(Completion::Value)
        .map_err(|e| Fatal::Store(e.to_string()))
}

/// A journaled completion as the seam's outcome: a value's bytes (`null` for an empty one), or
/// its failure.
pub(crate) fn outcome(completion: Option<Completion>, what: &str) -> Outcome {
    match completion {
        Some(Completion::Value(bytes)) => Ok(bytes),
        Some(Completion::Empty) => Ok(b"null".to_vec()),
        Some(Completion::Failure(terminal)) => Err(terminal),
        None => Err(TerminalError::new(format!("{what} has no result"))),
    }
}

/// Decodes a value the engine journaled itself (state keys, random numbers, time, a winner).
fn decode_value<T: DeserializeOwned>(outcome: Outcome, what: &str) -> Result<T, TerminalError> {
    crate::context::decode_value(outcome, what)
}

/// The token of a durable future whose operation did not match the journal.
const BROKEN: u64 = u32::MAX as u64;

impl Backend for InvocationCore {
    fn invocation_id(&self) -> String {
        InvocationId(self.id).to_string()
    }

    fn key(&self) -> Option<&str> {
        self.target.key.as_deref()
    }

    fn is_replaying(&self) -> bool {
        InvocationCore::is_replaying(self)
    }

    fn run(
        self: Arc<Self>,
        name: String,
        policy: RetryPolicy,
        action: RunAction,
    ) -> BoxFuture<Outcome> {
        Box::pin(InvocationCore::run(self, name, policy, action))
    }

    fn get_state(
        self: Arc<Self>,
        key: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>> {
        Box::pin(InvocationCore::get_state(self, key))
    }

    fn state_keys(self: Arc<Self>) -> BoxFuture<Result<Vec<String>, TerminalError>> {
        Box::pin(InvocationCore::state_keys(self))
    }

    fn set_state(&self, key: &str, value: Option<Vec<u8>>) {
        InvocationCore::set_state(self, key, value);
    }

    fn clear_all_state(&self) {
        InvocationCore::clear_all_state(self);
    }

    fn call(self: Arc<Self>, target: Target, input: Vec<u8>) -> BoxFuture<Outcome> {
        Box::pin(InvocationCore::call(self, target, input))
    }

    fn send(
        self: Arc<Self>,
        target: Target,
        input: Vec<u8>,
        delay: Option<Duration>,
    ) -> BoxFuture<Result<String, TerminalError>> {
        Box::pin(InvocationCore::send(self, target, input, delay))
    }

    fn sleep(self: Arc<Self>, duration: Duration) -> Handle {
        let now = self.engine.clock.now_ms();
        self.sleep_until_ms(now.saturating_add(millis(duration)))
    }

    fn sleep_until(self: Arc<Self>, deadline: SystemTime) -> Handle {
        let at = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.sleep_until_ms(millis(at))
    }

    fn awakeable(self: Arc<Self>) -> (String, Handle) {
        self.new_awakeable()
    }

    fn complete_awakeable(
        self: Arc<Self>,
        id: String,
        outcome: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>> {
        Box::pin(InvocationCore::complete_awakeable(
            self,
            id,
            completion(outcome),
        ))
    }

    fn promise(self: Arc<Self>, name: String) -> Handle {
        self.new_promise(&name)
    }

    fn peek_promise(
        self: Arc<Self>,
        name: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>> {
        Box::pin(InvocationCore::peek_promise(self, name))
    }

    fn complete_promise(
        self: Arc<Self>,
        name: String,
        outcome: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>> {
        Box::pin(InvocationCore::complete_promise(
            self,
            name,
            completion(outcome),
        ))
    }

    fn await_handle(self: Arc<Self>, token: u64) -> BoxFuture<Outcome> {
        Box::pin(InvocationCore::await_handle(self, token))
    }

    fn select(
        self: Arc<Self>,
        handles: Vec<(u64, bool)>,
    ) -> BoxFuture<Result<usize, TerminalError>> {
        Box::pin(InvocationCore::select(self, handles))
    }

    fn rand_u64(self: Arc<Self>) -> BoxFuture<Result<u64, TerminalError>> {
        Box::pin(InvocationCore::rand_u64(self))
    }

    fn uuid(self: Arc<Self>) -> BoxFuture<Result<uuid::Uuid, TerminalError>> {
        Box::pin(InvocationCore::uuid(self))
    }

    fn now(self: Arc<Self>) -> BoxFuture<Result<SystemTime, TerminalError>> {
        Box::pin(InvocationCore::now(self))
    }

    fn patched(self: Arc<Self>, name: String) -> BoxFuture<Result<bool, TerminalError>> {
        Box::pin(InvocationCore::patched(self, name))
    }
}

/// A completion from outside the journal: a value, or a failure.
fn completion(outcome: Outcome) -> Completion {
    match outcome {
        Ok(bytes) => Completion::Value(bytes),
        Err(terminal) => Completion::Failure(terminal),
    }
}

/// One step of SplitMix64: a well-mixed 64-bit function of its input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
