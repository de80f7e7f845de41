//! The invocation behind a context: hands out journal indices, replays recorded entries,
//! executes and journals live ones, and waits for completions.
//!
//! When something goes wrong that the handler must not observe (the journal does not match the
//! code, the store failed), the operation reports it to the invoker and never returns; the
//! invoker then drops the handler's future.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::to_system_time;
use crate::context::future::{DurableFuture, FutureState};
use crate::engine::EngineInner;
use crate::error::{HandlerError, TerminalError};
use crate::ids::{InvocationId, Target, awakeable_id, parse_awakeable_id};
use crate::invoker::{Fatal, Live};
use crate::journal::{Completion, Entry, Op, Replay, Step};
use crate::retry::RetryPolicy;
use crate::store::writer::{Action, Command, Completable, NewInvocation, Rejected, StateOp};

/// One execution (attempt) of an invocation.
#[doc(hidden)]
pub struct InvocationCore {
    pub(crate) engine: Arc<EngineInner>,
    pub(crate) id: u64,
    pub(crate) target: Target,
    pub(crate) attempt: u32,
    pub(crate) live: Arc<Live>,
    replay: Mutex<Replay>,
    /// This execution's own state writes, which reads must see before they are committed.
    written: Mutex<StateOverlay>,
}

/// State writes not yet known to be committed, layered over the committed state.
#[derive(Debug, Default)]
struct StateOverlay {
    cleared_all: bool,
    values: BTreeMap<String, Option<Vec<u8>>>,
}

impl InvocationCore {
    pub(crate) fn new(
        engine: Arc<EngineInner>,
        id: u64,
        target: Target,
        attempt: u32,
        live: Arc<Live>,
        journal: Vec<(u32, Entry)>,
    ) -> Self {
        Self {
            engine,
            id,
            target,
            attempt,
            live,
            replay: Mutex::new(Replay::new(journal)),
            written: Mutex::new(StateOverlay::default()),
        }
    }

    fn replay(&self) -> MutexGuard<'_, Replay> {
        // A poisoned lock means a panic while issuing an index; the journal view is still whole.
        self.replay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn is_replaying(&self) -> bool {
        self.replay().is_replaying()
    }

    fn issue(&self, op: &Op) -> Step {
        self.replay().issue(op)
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

    async fn fail_mismatch<T>(&self, step: Step) -> T {
        let message = match step {
            Step::Mismatch {
                index,
                recorded,
                issued,
            } => format!(
                "journal mismatch at index {index}: the handler issued {issued} but the journal \
                 holds {recorded}; the handler's code changed while this invocation was in flight"
            ),
            other => format!("unexpected replay step {other:?}"),
        };
        self.fail(Fatal::Mismatch(message)).await
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
            Ok(Ok(mut effects)) => {
                let committed = Committed {
                    journaled: effects.journaled.take(),
                    cancel_delivered: effects.cancel_delivered,
                };
                self.engine.apply_effects(effects);
                committed
            }
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
        let engine = self.engine.clone();
        live.detached_started();
        tokio::spawn(async move {
            match answer.await {
                Ok(Ok(Ok(effects))) => engine.apply_effects(effects),
                Ok(Ok(Err(Rejected::AlreadyFinished(_)))) => live.fail(Fatal::Killed),
                Ok(Ok(Err(rejected))) => live.fail(Fatal::Store(rejected.to_string())),
                Ok(Err(error)) => live.fail(Fatal::Store(error.to_string())),
                Err(_) => live.fail(Fatal::Store("the engine is shut down".into())),
            }
            live.detached_done();
        });
    }

    /// Waits for the completion of the entry at `index`.
    pub(crate) async fn completion(&self, index: u32) -> Completion {
        match self.wait_any(&[index], index, None).await {
            Waited::Ready(_) => match self.live.take_completion(index) {
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
        let _waiting: Vec<_> = indices.iter().map(|&i| self.live.wait_for(i)).collect();
        let inactivity = self.engine.config.inactivity_timeout;
        loop {
            let notified = self.live.completed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(position) = indices.iter().position(|&i| self.live.has_completion(i)) {
                return Waited::Ready(position);
            }
            if self.live.cancel_requested() {
                let command = Command::DeliverCancel {
                    inv: self.id,
                    index: at,
                    entry: absent.cloned(),
                    at_ms: self.engine.clock.now_ms(),
                };
                let committed = self.commit(command).await;
                if committed.cancel_delivered || committed.journaled.is_none() {
                    // Delivered now, or no longer pending (delivered by a concurrent await).
                    self.live.cancel_delivered();
                }
                if let Some(completion) = committed.journaled {
                    return Waited::Journaled(completion);
                }
                continue;
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(inactivity) => self.live.request_suspension(),
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

    pub(crate) async fn run<T, F, Fut>(
        self: Arc<Self>,
        name: String,
        policy: RetryPolicy,
        mut action: F,
    ) -> Result<T, TerminalError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, HandlerError>> + Send,
    {
        let op = Op::Run { name: name.clone() };
        let index = match self.issue(&op) {
            Step::Replayed(_, entry) => {
                return decode_value(entry.completion, &format!("run {name:?}"));
            }
            Step::Live(index) => index,
            step @ Step::Mismatch { .. } => return self.fail_mismatch(step).await,
        };
        let _active = self.live.begin_operation();
        // The closure's effects reach the world: everything the handler did before it must be
        // durable first (an awakeable id it publishes, a state write it relies on).
        self.live.detached_committed().await;
        let started = Instant::now();
        let mut failures = 0;
        let result = loop {
            match action().await {
                Ok(value) => break Ok(value),
                Err(error) => match error.into_terminal() {
                    Ok(terminal) => break Err(terminal),
                    Err(retryable) => {
                        failures += 1;
                        match policy.next_delay(failures, started.elapsed()) {
                            Some(delay) => {
                                tracing::debug!(step = %name, %retryable, ?delay, "run failed, retrying");
                                tokio::time::sleep(delay).await;
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
        // A value that cannot be encoded is journaled, and returned, as a terminal failure.
        let (completion, result) = match result {
            Ok(value) => match serde_json::to_vec(&value) {
                Ok(bytes) => (Completion::Value(bytes), Ok(value)),
                Err(e) => {
                    let terminal = TerminalError::new(format!(
                        "the result of run {name:?} cannot be encoded: {e}"
                    ));
                    (Completion::Failure(terminal.clone()), Err(terminal))
                }
            },
            Err(terminal) => (Completion::Failure(terminal.clone()), Err(terminal)),
        };
        self.append(index, self.entry(op, Some(completion)), vec![])
            .await;
        result
    }

    pub(crate) async fn get_state<T: DeserializeOwned>(
        self: Arc<Self>,
        key: String,
    ) -> Result<Option<T>, TerminalError> {
        let instance = self.instance();
        let store = &self.engine.store;
        let completion = self
            .immediate(Op::GetState { key: key.clone() }, |_| {
                let value = {
                    let written = self.written();
                    match written.values.get(&key) {
                        Some(value) => Ok(value.clone()),
                        None if written.cleared_all => Ok(None),
                        None => store.state_get(&instance, &key),
                    }
                };
                match value {
                    Ok(Some(bytes)) => Ok(Completion::Value(bytes)),
                    Ok(None) => Ok(Completion::Empty),
                    Err(e) => Err(Fatal::Store(e.to_string())),
                }
            })
            .await;
        match completion {
            Completion::Empty => Ok(None),
            other => decode_value(Some(other), &format!("state {key:?}")).map(Some),
        }
    }

    pub(crate) async fn state_keys(self: Arc<Self>) -> Result<Vec<String>, TerminalError> {
        let instance = self.instance();
        let store = &self.engine.store;
        let completion = self
            .immediate(Op::GetStateKeys, |_| {
                match self.committed_keys(store, &instance) {
                    Ok(mut keys) => {
                        for (key, value) in &self.written().values {
                            if value.is_some() {
                                keys.insert(key.clone());
                            } else {
                                keys.remove(key);
                            }
                        }
                        let keys: Vec<String> = keys.into_iter().collect();
                        serde_json::to_vec(&keys)
                            .map(Completion::Value)
                            .map_err(|e| Fatal::Store(e.to_string()))
                    }
                    Err(e) => Err(Fatal::Store(e.to_string())),
                }
            })
            .await;
        decode_value(Some(completion), "state keys")
    }

    fn written(&self) -> MutexGuard<'_, StateOverlay> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn committed_keys(
        &self,
        store: &crate::store::Store,
        instance: &str,
    ) -> Result<std::collections::BTreeSet<String>, crate::error::StoreError> {
        if self.written().cleared_all {
            return Ok(std::collections::BTreeSet::new());
        }
        Ok(store
            .state_all(instance)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    pub(crate) fn set_state(&self, key: &str, value: Option<Vec<u8>>) {
        self.written().values.insert(key.to_owned(), value.clone());
        let instance = self.instance();
        let (op, state) = match value {
            Some(value) => (
                Op::SetState {
                    key: key.to_owned(),
                },
                StateOp::Set {
                    instance,
                    key: key.to_owned(),
                    value,
                },
            ),
            None => (
                Op::ClearState {
                    key: key.to_owned(),
                },
                StateOp::Clear {
                    instance,
                    key: key.to_owned(),
                },
            ),
        };
        self.write_state(op, state);
    }

    pub(crate) fn clear_all_state(&self) {
        {
            let mut written = self.written();
            written.cleared_all = true;
            written.values.clear();
        }
        let instance = self.instance();
        self.write_state(Op::ClearAllState, StateOp::ClearAll { instance });
    }

    fn write_state(&self, op: Op, state: StateOp) {
        match self.issue(&op) {
            Step::Replayed(..) => {}
            Step::Live(index) => {
                self.append_detached(
                    index,
                    self.entry(op, Some(Completion::Empty)),
                    vec![Action::State(state)],
                );
            }
            step @ Step::Mismatch { .. } => {
                // The handler cannot be stopped from a synchronous call: report, and the invoker
                // drops the handler at its next await.
                if let Step::Mismatch {
                    index,
                    recorded,
                    issued,
                } = step
                {
                    self.live.fail(Fatal::Mismatch(format!(
                        "journal mismatch at index {index}: the handler issued {issued} but the \
                         journal holds {recorded}"
                    )));
                }
            }
        }
    }

    /// Issues a call or send: creates the callee atomically with the journal entry.
    async fn spawn_callee(
        &self,
        target: Target,
        input: Result<Vec<u8>, serde_json::Error>,
        wait: bool,
        delay: Option<Duration>,
    ) -> Result<(u32, u64, Option<Completion>), TerminalError> {
        let input = input.map_err(|e| {
            TerminalError::with_code(
                400,
                format!("the input for {target} cannot be encoded: {e}"),
            )
        })?;
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

    pub(crate) async fn call<O: DeserializeOwned>(
        self: Arc<Self>,
        target: Target,
        input: Result<Vec<u8>, serde_json::Error>,
    ) -> Result<O, TerminalError> {
        let what = format!("the result of {target}");
        let (index, _, recorded) = self.spawn_callee(target, input, true, None).await?;
        let completion = match recorded {
            Some(completion) => completion,
            None => self.completion(index).await,
        };
        decode_value(Some(completion), &what)
    }

    pub(crate) async fn send(
        self: Arc<Self>,
        target: Target,
        input: Result<Vec<u8>, serde_json::Error>,
        delay: Option<Duration>,
    ) -> Result<InvocationId, TerminalError> {
        let (_, callee, _) = self.spawn_callee(target, input, false, delay).await?;
        Ok(InvocationId(callee))
    }

    /// A random number for the operation at `index`: from the OS, or with a seed (tests) a
    /// function of (seed, invocation, index), so that a run from scratch draws the same numbers.
    fn random_u64(&self, index: u32) -> u64 {
        match self.engine.random_seed {
            None => rand::random(),
            Some(seed) => splitmix64(seed ^ splitmix64(self.id ^ (u64::from(index) << 40))),
        }
    }

    fn random_u128(&self, index: u32) -> u128 {
        match self.engine.random_seed {
            None => rand::random(),
            Some(_) => {
                u128::from(self.random_u64(index)) << 64
                    | u128::from(self.random_u64(index | 0x8000_0000))
            }
        }
    }

    pub(crate) async fn rand_u64(self: Arc<Self>) -> Result<u64, TerminalError> {
        let completion = self
            .immediate(Op::Rand, |index| json(&self.random_u64(index)))
            .await;
        decode_value(Some(completion), "rand")
    }

    pub(crate) async fn uuid(self: Arc<Self>) -> Result<uuid::Uuid, TerminalError> {
        let completion = self
            .immediate(Op::Uuid, |index| {
                let bytes = self.random_u128(index).to_be_bytes();
                json(&uuid::Builder::from_random_bytes(bytes).into_uuid())
            })
            .await;
        decode_value(Some(completion), "uuid")
    }

    pub(crate) async fn now(self: Arc<Self>) -> Result<SystemTime, TerminalError> {
        let now = self.engine.clock.now_ms();
        let completion = self.immediate(Op::Now, |_| json(&now)).await;
        decode_value::<u64>(Some(completion), "now").map(to_system_time)
    }
    /// Reports a journal mismatch found by an operation that returns without awaiting.
    fn report_mismatch(&self, step: Step) {
        if let Step::Mismatch {
            index,
            recorded,
            issued,
        } = step
        {
            self.live.fail(Fatal::Mismatch(format!(
                "journal mismatch at index {index}: the handler issued {issued} but the journal \
                 holds {recorded}"
            )));
        }
    }

    /// Issues an operation whose completion arrives later; a live one is appended (without
    /// waiting) with `actions`.
    fn issue_durable<T>(
        self: &Arc<Self>,
        op: Op,
        actions: impl FnOnce() -> Vec<Action>,
    ) -> (Option<Entry>, DurableFuture<T>) {
        match self.issue(&op) {
            Step::Replayed(index, entry) => {
                let state = match &entry.completion {
                    Some(completion) => FutureState::Recorded(completion.clone()),
                    None => FutureState::Waiting,
                };
                (Some(entry), DurableFuture::new(self.clone(), index, state))
            }
            Step::Live(index) => {
                let entry = self.entry(op, None);
                self.append_detached(index, entry.clone(), actions());
                (
                    Some(entry),
                    DurableFuture::new(self.clone(), index, FutureState::Waiting),
                )
            }
            step @ Step::Mismatch { .. } => {
                self.report_mismatch(step);
                (
                    None,
                    DurableFuture::new(self.clone(), u32::MAX, FutureState::Broken),
                )
            }
        }
    }

    pub(crate) fn sleep_until(self: &Arc<Self>, wake_at_ms: u64) -> DurableFuture<()> {
        self.issue_durable(Op::Sleep { wake_at_ms }, || {
            vec![Action::Timer { due_ms: wake_at_ms }]
        })
        .1
    }

    pub(crate) fn awakeable<T>(self: &Arc<Self>) -> (String, DurableFuture<T>) {
        let secret = match self.engine.random_seed {
            None => rand::random(),
            Some(_) => self.random_u128(self.replay().next_index()),
        };
        let (entry, future) = self.issue_durable(Op::Awakeable { secret }, Vec::new);
        let secret = match entry.map(|e| e.op) {
            Some(Op::Awakeable { secret }) => secret,
            _ => secret,
        };
        (awakeable_id(self.id, future.index, secret), future)
    }

    pub(crate) fn promise<T>(self: &Arc<Self>, name: &str) -> DurableFuture<T> {
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

    pub(crate) async fn peek_promise<T: DeserializeOwned>(
        self: Arc<Self>,
        name: String,
    ) -> Result<Option<T>, TerminalError> {
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
            other => decode_value(Some(other), &format!("promise {name:?}")).map(Some),
        }
    }

    /// Completes an awakeable or a promise from this handler; the outcome is journaled.
    pub(crate) async fn complete(
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

    pub(crate) async fn complete_awakeable(
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

    pub(crate) async fn complete_promise(
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

    /// Waits for the first of several durable futures; the winner is journaled, so replay picks
    /// the same one.
    pub(crate) async fn select(
        self: Arc<Self>,
        candidates: Vec<(u32, bool)>,
    ) -> Result<usize, TerminalError> {
        if candidates.iter().any(|&(index, _)| index == u32::MAX) {
            // A candidate hit a journal mismatch, already reported: wait to be dropped.
            return std::future::pending().await;
        }
        let of: Vec<u32> = candidates.iter().map(|&(index, _)| index).collect();
        let op = Op::Select { of: of.clone() };
        let index = match self.issue(&op) {
            Step::Replayed(_, entry) => {
                return decode_value(entry.completion, "the winner of a select");
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
                    return decode_value(Some(completion), "the winner of a select");
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

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn json<T: Serialize>(value: &T) -> Result<Completion, Fatal> {
    serde_json::to_vec(value)
        .map(Completion::Value)
        .map_err(|e| Fatal::Store(e.to_string()))
}

/// Turns a journaled completion into the value the handler expects.
pub(crate) fn decode_value<T: DeserializeOwned>(
    completion: Option<Completion>,
    what: &str,
) -> Result<T, TerminalError> {
    match completion {
        Some(Completion::Value(bytes)) => serde_json::from_slice(&bytes).map_err(|e| {
            TerminalError::new(format!("{what} does not decode as the expected type: {e}"))
        }),
        Some(Completion::Empty) => serde_json::from_slice(b"null").map_err(|e| {
            TerminalError::new(format!("{what} is empty, the handler expects a value: {e}"))
        }),
        Some(Completion::Failure(terminal)) => Err(terminal),
        None => Err(TerminalError::new(format!("{what} has no result"))),
    }
}

/// One step of SplitMix64: a well-mixed 64-bit function of its input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
