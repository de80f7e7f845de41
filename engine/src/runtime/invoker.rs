//! The invoker runs invocations: it loads one's journal, runs its handler against a replaying
//! context, and records how the attempt ended — completed, failed, backing off to retry, or
//! suspended until a completion arrives.
//!
//! It never decides *whether* an invocation may run (that is the writer's object queue) and
//! never touches redb itself.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::invocation::InvocationCore;
use crate::clock::sleep_for;
use crate::context::backend::Backend;
use crate::error::TerminalError;
use crate::journal::Completion;
pub(crate) use crate::journal::machine::Fatal;
use crate::journal::machine::Machine;
use crate::runtime::Runtime;
use crate::store::command::{Command, Rejected};
use crate::store::records::{Cancel, InvocationRecord, Outcome, Status};

/// The in-memory side of a running attempt: its [`Machine`] behind a lock, shared by its context
/// (the driver of the handler's operations), the invoker, and the runtime delivering
/// completions; and the notifications that wake whoever waits on it.
#[derive(Debug, Default)]
pub(crate) struct Live {
    machine: Mutex<Machine>,
    /// Woken when a completion or a cancellation is delivered.
    pub(crate) completed: Notify,
    /// Woken when the invoker should look at a fatal failure or a suspension.
    signal: Notify,
    /// Woken when every detached append is acknowledged.
    drained: Notify,
    /// The store's generation when the attempt started: its commands are refused once the
    /// store has been reopened after a failed commit (see `Store::submit_as`).
    pub(crate) generation: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Live {
    /// The live state of an attempt starting while the store is at `generation`.
    pub(crate) fn new(generation: u64) -> Self {
        Self {
            generation,
            ..Self::default()
        }
    }

    /// The attempt's machine, locked: hold it only for a step, never across an await.
    pub(crate) fn machine(&self) -> MutexGuard<'_, Machine> {
        lock(&self.machine)
    }

    pub(crate) fn deliver(&self, index: u32, completion: Completion) {
        self.machine().deliver(index, completion);
        self.completed.notify_waiters();
    }

    /// Counts an append queued without waiting; call [`Live::detached_done`] once it is answered.
    pub(crate) fn detached_started(&self) {
        self.machine().detached_started();
    }

    pub(crate) fn detached_done(&self) {
        if self.machine().detached_done() {
            self.drained.notify_waiters();
        }
    }

    /// Waits until every append queued without waiting is committed (or has failed the attempt).
    pub(crate) async fn detached_committed(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.machine().detached_committed() {
                return;
            }
            drained.await;
        }
    }

    /// Makes the next await fail with "cancelled".
    pub(crate) fn request_cancel(&self) {
        self.machine().request_cancel();
        self.completed.notify_waiters();
    }

    pub(crate) fn fail(&self, fatal: Fatal) {
        self.machine().fail(fatal);
        self.signal.notify_one();
    }

    /// The inactivity timeout elapsed: the invoker suspends the attempt if it still can.
    pub(crate) fn request_suspension(&self) {
        self.machine().inactivity_elapsed();
        self.signal.notify_one();
    }

    /// Marks `indices` as awaited until the guard drops.
    pub(crate) fn wait_for(self: &Arc<Self>, indices: &[u32]) -> WaitGuard {
        self.machine().wait_for(indices);
        WaitGuard {
            live: self.clone(),
            indices: indices.to_vec(),
        }
    }

    /// Counts an executing operation until the guard drops; no suspension meanwhile.
    pub(crate) fn begin_operation(self: &Arc<Self>) -> ActiveGuard {
        self.machine().begin_operation();
        ActiveGuard { live: self.clone() }
    }

    /// Counts a wait on the clock until the guard drops: the attempt waits for time.
    pub(crate) fn sleep_on_clock(self: &Arc<Self>) -> ClockGuard {
        self.machine().begin_clock_sleep();
        ClockGuard { live: self.clone() }
    }

    /// Whether the attempt is doing (or about to do) work: what `TestEngine` waits out before
    /// it moves time.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))] // TestEngine's
    pub(crate) fn is_busy(&self) -> bool {
        self.machine().is_busy()
    }
}

pub(crate) struct WaitGuard {
    live: Arc<Live>,
    indices: Vec<u32>,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.live.machine().stop_waiting(&self.indices);
    }
}

pub(crate) struct ActiveGuard {
    live: Arc<Live>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.live.machine().end_operation();
    }
}

pub(crate) struct ClockGuard {
    live: Arc<Live>,
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        self.live.machine().end_clock_sleep();
    }
}

/// Aborts the handler's task when the attempt ends, however it ends.
pub(crate) struct AbortOnDrop(
    pub(crate) tokio::task::JoinHandle<Result<Vec<u8>, crate::HandlerError>>,
);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How one attempt ended.
enum AttemptEnd {
    /// Finished, suspended, or handed over: nothing more to do here.
    Done,
    /// Run again after this delay.
    RetryAfter(Duration),
}

/// Runs invocation `id` until it finishes or suspends, retrying with backoff.
pub(crate) async fn drive(engine: Arc<Runtime>, id: u64) {
    let cancelled = engine.cancel.clone();
    loop {
        let end = tokio::select! {
            end = attempt(&engine, id) => end,
            () = cancelled.cancelled() => return,
        };
        match end {
            AttemptEnd::Done => return,
            AttemptEnd::RetryAfter(delay) => {
                let _sleeping = engine.sleeping_on_clock();
                tokio::select! {
                    () = sleep_for(&*engine.clock, delay) => {}
                    () = cancelled.cancelled() => return,
                }
            }
        }
    }
}

async fn attempt(engine: &Arc<Runtime>, id: u64) -> AttemptEnd {
    let live = engine.register_live(id);
    let end = attempt_with(engine, id, &live).await;
    engine.unregister_live(id, &live);
    end
}

async fn attempt_with(engine: &Arc<Runtime>, id: u64, live: &Arc<Live>) -> AttemptEnd {
    let (record, journal) = match engine.store.load(id) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => {
            tracing::warn!(
                invocation = id,
                "asked to run an invocation that does not exist"
            );
            return AttemptEnd::Done;
        }
        Err(error) => {
            tracing::error!(invocation = id, %error, "cannot load invocation");
            return AttemptEnd::RetryAfter(Duration::from_secs(1));
        }
    };
    if record.status.is_finished() || matches!(record.status, Status::Scheduled { .. }) {
        return AttemptEnd::Done;
    }
    if record.cancel == Cancel::Requested {
        live.request_cancel();
    }
    if let Status::BackingOff { retry_at_ms } = record.status {
        let _sleeping = live.sleep_on_clock();
        engine.clock.sleep_until(retry_at_ms).await;
    }
    let handler = match engine.registry.handler(&record.target) {
        Ok(handler) => handler,
        Err(error) => {
            let outcome = Err(TerminalError::with_code(404, error.to_string()));
            return finish(engine, live, id, outcome).await;
        }
    };
    let attempt_number = record.attempt + 1;
    let core: Arc<dyn Backend> = Arc::new(InvocationCore::new(
        engine.clone(),
        id,
        record.target.clone(),
        attempt_number,
        live.clone(),
        journal,
    ));
    let mut task = AbortOnDrop(tokio::spawn(handler(core, record.input.clone())));
    let joined = loop {
        tokio::select! {
            joined = &mut task.0 => break joined,
            () = live.signal.notified() => {
                let fatal = live.machine().take_fatal();
                if let Some(fatal) = fatal {
                    drop(task);
                    return abandon(engine, live, id, &record, fatal).await;
                }
                let suspension = live.machine().take_suspension();
                if let Some(awaiting) = suspension {
                    let command = Command::Suspend { inv: id, awaiting, at_ms: engine.clock.now_ms() };
                    if let Ok(Ok(effects)) = engine.store.submit_as(live.generation, command).await {
                        if effects.suspended {
                            tracing::debug!(invocation = id, "suspended");
                            return AttemptEnd::Done;
                        }
                    }
                }
            }
        }
    };
    // A journal mismatch found by a state write (which returns at once) surfaces here. After a
    // state write fails to commit, the writer refuses this attempt's later commands (see
    // `Store::submit_as`), so the outcome cannot commit without it.
    let fatal = live.machine().take_fatal();
    if let Some(fatal) = fatal {
        return abandon(engine, live, id, &record, fatal).await;
    }
    match joined {
        Ok(Ok(output)) => finish(engine, live, id, Ok(output)).await,
        Ok(Err(error)) => match error.into_terminal() {
            Ok(terminal) => finish(engine, live, id, Err(terminal)).await,
            Err(retryable) => {
                back_off(
                    engine,
                    live,
                    id,
                    record.attempt,
                    record.created_ms,
                    retryable.to_string(),
                )
                .await
            }
        },
        Err(join_error) => {
            let message = match join_error.try_into_panic() {
                Ok(payload) => panic_message(payload.as_ref()),
                Err(other) => other.to_string(),
            };
            back_off(engine, live, id, record.attempt, record.created_ms, message).await
        }
    }
}

/// Ends an attempt the handler must not see end: a journal mismatch fails the invocation, a
/// store failure retries it.
async fn abandon(
    engine: &Arc<Runtime>,
    live: &Live,
    id: u64,
    record: &InvocationRecord,
    fatal: Fatal,
) -> AttemptEnd {
    match fatal {
        Fatal::Mismatch(message) => {
            tracing::error!(invocation = id, %message, "non-determinism");
            let error = TerminalError::with_code(TerminalError::JOURNAL_MISMATCH, message);
            finish(engine, live, id, Err(error)).await
        }
        Fatal::Store(message) => {
            back_off(engine, live, id, record.attempt, record.created_ms, message).await
        }
        Fatal::Killed => {
            tracing::info!(invocation = id, "killed");
            AttemptEnd::Done
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    format!(
        "the handler panicked: {}",
        crate::error::panic_message(payload)
    )
}

async fn finish(engine: &Arc<Runtime>, live: &Live, id: u64, outcome: Outcome) -> AttemptEnd {
    let command = Command::Finish {
        inv: id,
        outcome,
        at_ms: engine.clock.now_ms(),
    };
    match engine.store.submit_as(live.generation, command).await {
        Ok(Ok(_)) => AttemptEnd::Done,
        Ok(Err(Rejected::AlreadyFinished(_) | Rejected::UnknownInvocation(_))) => AttemptEnd::Done,
        Ok(Err(other)) => {
            tracing::error!(invocation = id, %other, "finish refused");
            AttemptEnd::Done
        }
        Err(error) => {
            tracing::error!(invocation = id, %error, "cannot record the outcome; retrying");
            AttemptEnd::RetryAfter(Duration::from_secs(1))
        }
    }
}

async fn back_off(
    engine: &Arc<Runtime>,
    live: &Live,
    id: u64,
    failed_before: u32,
    created_ms: u64,
    error: String,
) -> AttemptEnd {
    let failed = failed_before + 1;
    let now = engine.clock.now_ms();
    let elapsed = Duration::from_millis(now.saturating_sub(created_ms));
    let Some(delay) = engine.config.retry_policy.next_delay(failed, elapsed) else {
        let message = format!("gave up after {failed} attempts: {error}");
        return finish(engine, live, id, Err(TerminalError::new(message))).await;
    };
    tracing::warn!(invocation = id, attempt = failed, %error, ?delay, "attempt failed; retrying");
    let command = Command::BackOff {
        inv: id,
        failed_attempts: failed,
        retry_at_ms: now + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        error,
        at_ms: now,
    };
    match engine.store.submit_as(live.generation, command).await {
        Ok(Ok(_)) => AttemptEnd::RetryAfter(delay),
        Ok(Err(_)) => AttemptEnd::Done,
        Err(_) => AttemptEnd::RetryAfter(delay.max(Duration::from_secs(1))),
    }
}
