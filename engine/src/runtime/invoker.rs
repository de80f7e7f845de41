//! The invoker runs invocations: it loads one's journal, runs its handler against a replaying
//! context, and records how the attempt ended — completed, failed, backing off to retry, or
//! suspended until a completion arrives.
//!
//! It never decides *whether* an invocation may run (that is the writer's object queue) and
//! never touches redb itself.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::invocation::InvocationCore;
use crate::clock::sleep_for;
use crate::context::backend::Backend;
use crate::counted::Counted;
use crate::error::TerminalError;
use crate::journal::Completion;
use crate::runtime::Runtime;
use crate::store::command::{Command, Rejected};
use crate::store::records::{Cancel, InvocationRecord, Outcome, Status};

/// A failure the handler must not observe: the attempt is abandoned.
#[derive(Debug, Clone)]
pub(crate) enum Fatal {
    /// Replay found another operation in the journal: fail the invocation.
    Mismatch(String),
    /// The store failed or refused a write: retry the attempt.
    Store(String),
    /// The invocation was killed (and is already recorded as failed): stop, write nothing.
    Killed,
}

/// The in-memory side of a running invocation, shared by its context and the invoker.
#[derive(Debug, Default)]
pub(crate) struct Live {
    completions: Mutex<HashMap<u32, Completion>>,
    /// Woken when a completion is delivered.
    pub(crate) completed: Notify,
    /// Woken when the invoker should look at `fatal` or `suspend`.
    signal: Notify,
    fatal: Mutex<Option<Fatal>>,
    /// Indices the handler is waiting for.
    waiting: Mutex<HashSet<u32>>,
    /// A waiting operation passed the inactivity timeout.
    suspend: Mutex<bool>,
    /// Operations executing right now (run closures, appends in flight).
    active: AtomicUsize,
    /// A cancellation waits to fail the next await.
    cancel: AtomicBool,
    /// Appends queued without waiting whose commit is not confirmed yet.
    detached: AtomicUsize,
    /// Woken when `detached` drops to zero.
    drained: Notify,
    /// Waits on the clock in progress (a `run` step's retry backoff, the attempt's own): the
    /// invocation waits for time, not for work.
    clock_sleeps: Arc<AtomicUsize>,
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

    pub(crate) fn deliver(&self, index: u32, completion: Completion) {
        lock(&self.completions).insert(index, completion);
        self.completed.notify_waiters();
    }

    pub(crate) fn take_completion(&self, index: u32) -> Option<Completion> {
        lock(&self.completions).remove(&index)
    }

    /// Whether a completion for `index` was delivered (and not taken yet).
    pub(crate) fn has_completion(&self, index: u32) -> bool {
        lock(&self.completions).contains_key(&index)
    }

    /// Counts an append queued without waiting; call [`Live::detached_done`] once it is answered.
    pub(crate) fn detached_started(&self) {
        self.detached.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn detached_done(&self) {
        if self.detached.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.drained.notify_waiters();
        }
    }

    /// Waits until every append queued without waiting is committed (or has failed the attempt).
    pub(crate) async fn detached_committed(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.detached.load(Ordering::SeqCst) == 0 {
                return;
            }
            drained.await;
        }
    }

    /// Makes the next await fail with "cancelled".
    pub(crate) fn request_cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.completed.notify_waiters();
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The cancellation was delivered to an await (or turned out to be delivered already).
    pub(crate) fn cancel_delivered(&self) {
        self.cancel.store(false, Ordering::SeqCst);
    }

    pub(crate) fn fail(&self, fatal: Fatal) {
        lock(&self.fatal).get_or_insert(fatal);
        self.signal.notify_one();
    }

    pub(crate) fn request_suspension(&self) {
        *lock(&self.suspend) = true;
        self.signal.notify_one();
    }

    /// Marks `index` as awaited until the guard drops.
    pub(crate) fn wait_for(self: &Arc<Self>, index: u32) -> WaitGuard {
        lock(&self.waiting).insert(index);
        WaitGuard {
            live: self.clone(),
            index,
        }
    }

    /// Counts a wait on the clock until the guard drops.
    pub(crate) fn sleep_on_clock(&self) -> Counted {
        Counted::new(&self.clock_sleeps)
    }

    /// Whether the attempt is doing (or about to do) work, rather than only waiting for a
    /// completion or for the clock: what `TestEngine` waits out before it moves time.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))] // TestEngine's
    pub(crate) fn is_busy(&self) -> bool {
        if lock(&self.fatal).is_some()
            || *lock(&self.suspend)
            || self.cancel_requested()
            || self.detached.load(Ordering::SeqCst) > 0
        {
            return true;
        }
        let sleeping = self.clock_sleeps.load(Ordering::SeqCst);
        if self.active.load(Ordering::SeqCst) > sleeping {
            // An operation executes (a `run` closure, an append awaiting its commit).
            return true;
        }
        let waiting: Vec<u32> = lock(&self.waiting).iter().copied().collect();
        if waiting.is_empty() {
            return sleeping == 0;
        }
        let completions = lock(&self.completions);
        waiting.iter().any(|index| completions.contains_key(index))
    }

    /// Counts an executing operation until the guard drops; no suspension meanwhile.
    pub(crate) fn begin_operation(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard { live: self.clone() }
    }

    /// What to suspend on, if the invocation can suspend now.
    fn suspendable(&self) -> Option<Vec<u32>> {
        let mut requested = lock(&self.suspend);
        if !*requested {
            return None;
        }
        *requested = false;
        let waiting: Vec<u32> = lock(&self.waiting).iter().copied().collect();
        let idle = self.active.load(Ordering::SeqCst) == 0;
        let ready = {
            let completions = lock(&self.completions);
            waiting.iter().any(|index| completions.contains_key(index))
        };
        (idle && !waiting.is_empty() && !ready && !self.cancel_requested()).then_some(waiting)
    }
}

pub(crate) struct WaitGuard {
    live: Arc<Live>,
    index: u32,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        lock(&self.live.waiting).remove(&self.index);
    }
}

pub(crate) struct ActiveGuard {
    live: Arc<Live>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.live.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Aborts the handler's task when the attempt ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<Result<Vec<u8>, crate::HandlerError>>);

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
                let fatal = lock(&live.fatal).take();
                if let Some(fatal) = fatal {
                    drop(task);
                    return abandon(engine, live, id, &record, fatal).await;
                }
                if let Some(awaiting) = live.suspendable() {
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
    let fatal = lock(&live.fatal).take();
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
