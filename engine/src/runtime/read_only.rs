//! Read-only calls. A shared handler of an object or workflow, called from outside (the
//! in-process [`Client`](crate::Client) or the HTTP ingress) without an idempotency key, first
//! runs without becoming a durable invocation: while it only reads committed state and
//! workflow promises, nothing is written — no invocation record, no journal entry, no commit
//! on the caller's path. Nothing needs replaying either: if the process dies, the caller's
//! answer dies with it, and nothing had been accepted.
//!
//! The first operation that would journal something (a `run`, a call or send, a timer, an
//! awakeable, a completion, a random number, the time, a version marker) ends the attempt
//! *before* that operation does anything, and the call becomes an ordinary durable invocation,
//! run from its start. That is safe because the attempt had no effect. The handler is then
//! remembered as not read-only, so that its later calls go durable at once. A wait for a
//! promise that outlasts the inactivity timeout also turns the call durable (so that waiting
//! costs disk, not memory), as does a retryable failure or a panic (so that the retry policy
//! applies).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::{Runtime, lock};
use crate::clock::sleep_for;
use crate::context::backend::{Backend, BoxFuture, Handle, Outcome, RunAction};
use crate::error::{StoreError, TerminalError};
use crate::ids::{HandlerKind, Target};
use crate::retry::RetryPolicy;
use crate::runtime::invocation::outcome;

/// What the runtime knows of read-only calls: the handlers that turned out to write (their calls
/// go durable at once), and how many calls were answered read-only or handed over.
#[derive(Default)]
pub(crate) struct ReadOnlyCalls {
    writers: Mutex<HashSet<(String, String)>>,
    answered: AtomicU64,
    handed_over: AtomicU64,
}

impl ReadOnlyCalls {
    /// Calls answered read-only, and calls handed over to a durable invocation, so far.
    #[cfg(feature = "http")]
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.answered.load(Ordering::Relaxed),
            self.handed_over.load(Ordering::Relaxed),
        )
    }
}

/// A workflow promise: (instance, name).
type Promise = (String, String);

/// Read-only calls waiting for a workflow promise: the promise → whom to wake when it is
/// completed.
#[derive(Default)]
pub(crate) struct PromiseWatchers(Mutex<HashMap<Promise, Vec<Arc<Notify>>>>);

impl PromiseWatchers {
    /// Wakes every read-only call waiting for one of `completed`.
    pub(crate) fn completed(&self, completed: Vec<Promise>) {
        let mut map = lock(&self.0);
        for promise in completed {
            for waiter in map.remove(&promise).unwrap_or_default() {
                waiter.notify_one();
            }
        }
    }

    fn watch(&self, promise: Promise, waiter: Arc<Notify>) {
        lock(&self.0).entry(promise).or_default().push(waiter);
    }

    fn unwatch(&self, promise: &Promise, waiter: &Arc<Notify>) {
        let mut map = lock(&self.0);
        if let Some(list) = map.get_mut(promise) {
            list.retain(|w| !Arc::ptr_eq(w, waiter));
            if list.is_empty() {
                map.remove(promise);
            }
        }
    }
}

/// Why a read-only attempt ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum End {
    /// Still going.
    Running = 0,
    /// The handler asked for an operation that is journaled.
    Writes = 1,
    /// It waited longer than the inactivity timeout, failed in a retryable way, or panicked.
    Durable = 2,
}

/// The `Backend` of a read-only attempt.
struct ReadOnlyCall {
    engine: Arc<Runtime>,
    target: Target,
    instance: String,
    end: AtomicU8,
    ended: Notify,
    /// The promises awaited but not completed when asked for, by handle (see [`PROMISE_TOKEN`]).
    awaited: Mutex<Vec<String>>,
}

impl ReadOnlyCall {
    fn end(&self, why: End) {
        if self
            .end
            .compare_exchange(
                End::Running as u8,
                why as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        {
            self.ended.notify_one();
        }
    }

    fn why(&self) -> End {
        match self.end.load(Ordering::SeqCst) {
            0 => End::Running,
            1 => End::Writes,
            _ => End::Durable,
        }
    }

    /// Ends the attempt for an operation that would journal something; the future never
    /// resolves (the driver drops it).
    fn writes<T: Send + 'static>(&self) -> BoxFuture<T> {
        self.end(End::Writes);
        Box::pin(std::future::pending())
    }

    /// A store failure while reading: the durable invocation will meet it, or not.
    fn store_failed<T: Send + 'static>(&self, _: StoreError) -> BoxFuture<T> {
        self.end(End::Durable);
        Box::pin(std::future::pending())
    }

    /// Waits for the promise `name` of this instance, up to the inactivity timeout.
    async fn await_promise(self: Arc<Self>, name: String) -> Outcome {
        let promise = (self.instance.clone(), name);
        let waiter = Arc::new(Notify::new());
        // Watch first, then read: a completion committed after the read still wakes us.
        self.engine.promises.watch(promise.clone(), waiter.clone());
        let engine = self.engine.clone();
        let _unwatch = Unwatch(&engine, &promise, &waiter);
        let clock = engine.clock.clone();
        let mut timeout = std::pin::pin!(sleep_for(&*clock, engine.config.inactivity_timeout));
        loop {
            match engine.store.promise(&promise.0, &promise.1) {
                Ok(Some(completion)) => return outcome(Some(completion), "a promise"),
                Ok(None) => {}
                Err(error) => return self.store_failed(error).await,
            }
            tokio::select! {
                () = waiter.notified() => {}
                () = &mut timeout => {
                    self.end(End::Durable);
                    return std::future::pending().await;
                }
            }
        }
    }
}

struct Unwatch<'a>(&'a Runtime, &'a Promise, &'a Arc<Notify>);

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.0.promises.unwatch(self.1, self.2);
    }
}

/// The token of a completed promise's handle; the `n`-th promise awaited before it was
/// completed gets `PROMISE_TOKEN - n`.
const PROMISE_TOKEN: u64 = u64::MAX - 1;

impl Backend for ReadOnlyCall {
    fn invocation_id(&self) -> String {
        // Only a durable invocation has an id.
        self.end(End::Writes);
        String::new()
    }

    fn key(&self) -> Option<&str> {
        self.target.key.as_deref()
    }

    fn is_replaying(&self) -> bool {
        false
    }

    fn run(self: Arc<Self>, _: String, _: RetryPolicy, _: RunAction) -> BoxFuture<Outcome> {
        self.writes()
    }

    fn get_state(
        self: Arc<Self>,
        key: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>> {
        match self.engine.store.state_get(&self.instance, &key) {
            Ok(value) => Box::pin(std::future::ready(Ok(value))),
            Err(error) => self.store_failed(error),
        }
    }

    fn state_keys(self: Arc<Self>) -> BoxFuture<Result<Vec<String>, TerminalError>> {
        match self.engine.store.state_all(&self.instance) {
            Ok(all) => Box::pin(std::future::ready(Ok(all
                .into_iter()
                .map(|(k, _)| k)
                .collect()))),
            Err(error) => self.store_failed(error),
        }
    }

    fn set_state(&self, _: &str, _: Option<Vec<u8>>) {
        self.end(End::Writes);
    }

    fn clear_all_state(&self) {
        self.end(End::Writes);
    }

    fn call(self: Arc<Self>, _: Target, _: Vec<u8>) -> BoxFuture<Outcome> {
        self.writes()
    }

    fn send(
        self: Arc<Self>,
        _: Target,
        _: Vec<u8>,
        _: Option<Duration>,
    ) -> BoxFuture<Result<String, TerminalError>> {
        self.writes()
    }

    fn sleep(self: Arc<Self>, _: Duration) -> Handle {
        self.end(End::Writes);
        Handle::pending(u64::MAX)
    }

    fn sleep_until(self: Arc<Self>, _: SystemTime) -> Handle {
        self.end(End::Writes);
        Handle::pending(u64::MAX)
    }

    fn awakeable(self: Arc<Self>) -> (String, Handle) {
        self.end(End::Writes);
        (String::new(), Handle::pending(u64::MAX))
    }

    fn complete_awakeable(
        self: Arc<Self>,
        _: String,
        _: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>> {
        self.writes()
    }

    fn promise(self: Arc<Self>, name: String) -> Handle {
        match self.engine.store.promise(&self.instance, &name) {
            Ok(Some(completion)) => Handle {
                token: PROMISE_TOKEN,
                ready: Some(outcome(Some(completion), "a promise")),
            },
            Ok(None) => {
                let mut awaited = lock(&self.awaited);
                awaited.push(name);
                Handle::pending(PROMISE_TOKEN - awaited.len() as u64)
            }
            Err(_) => {
                self.end(End::Durable);
                Handle::pending(u64::MAX)
            }
        }
    }

    fn peek_promise(
        self: Arc<Self>,
        name: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>> {
        match self.engine.store.promise(&self.instance, &name) {
            Ok(None) => Box::pin(std::future::ready(Ok(None))),
            Ok(Some(completion)) => Box::pin(std::future::ready(
                outcome(Some(completion), "a promise").map(Some),
            )),
            Err(error) => self.store_failed(error),
        }
    }

    fn complete_promise(
        self: Arc<Self>,
        _: String,
        _: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>> {
        self.writes()
    }

    fn await_handle(self: Arc<Self>, token: u64) -> BoxFuture<Outcome> {
        let name = PROMISE_TOKEN
            .checked_sub(token)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| lock(&self.awaited).get(n).cloned());
        match name {
            Some(name) => Box::pin(self.await_promise(name)),
            // A handle the attempt ended on (a timer, an awakeable): wait to be dropped.
            None => Box::pin(std::future::pending()),
        }
    }

    fn select(self: Arc<Self>, _: Vec<(u64, bool)>) -> BoxFuture<Result<usize, TerminalError>> {
        // The winner is journaled.
        self.writes()
    }

    fn rand_u64(self: Arc<Self>) -> BoxFuture<Result<u64, TerminalError>> {
        self.writes()
    }

    fn uuid(self: Arc<Self>) -> BoxFuture<Result<uuid::Uuid, TerminalError>> {
        self.writes()
    }

    fn now(self: Arc<Self>) -> BoxFuture<Result<SystemTime, TerminalError>> {
        self.writes()
    }

    fn patched(self: Arc<Self>, _: String) -> BoxFuture<Result<bool, TerminalError>> {
        self.writes()
    }
}

impl Runtime {
    /// Runs a call to `target` as a read-only call if it may be one: a shared handler of an
    /// object or workflow (`kind`) not known to write. `Ok(Some(outcome))` is its answer;
    /// `Ok(None)` means the call must run as a durable invocation (not eligible, or the attempt
    /// ended without an answer).
    pub(crate) async fn call_read_only(
        self: &Arc<Self>,
        target: &Target,
        kind: HandlerKind,
        input: &[u8],
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(instance) = target.instance() else {
            return Ok(None);
        };
        let name = (target.service.clone(), target.handler.clone());
        let calls = &self.read_only_calls;
        if kind != HandlerKind::Shared || lock(&calls.writers).contains(&name) {
            return Ok(None);
        }
        let Ok(handler) = self.registry.handler(target) else {
            return Ok(None);
        };
        let call = Arc::new(ReadOnlyCall {
            engine: self.clone(),
            target: target.clone(),
            instance,
            end: AtomicU8::new(End::Running as u8),
            ended: Notify::new(),
            awaited: Mutex::default(),
        });
        let mut task =
            super::invoker::AbortOnDrop(tokio::spawn(handler(call.clone(), input.to_vec())));
        let joined = tokio::select! {
            joined = &mut task.0 => Some(joined),
            () = call.ended.notified() => None,
            () = self.cancel.cancelled() => return Err(StoreError::ShutDown),
        };
        let answer = match (call.why(), joined) {
            (End::Running, Some(Ok(Ok(bytes)))) => Some(Ok(bytes)),
            (End::Running, Some(Ok(Err(error)))) => error.into_terminal().ok().map(Err),
            _ => None,
        };
        if call.why() == End::Writes {
            lock(&calls.writers).insert(name);
        }
        let counter = match answer {
            Some(_) => &calls.answered,
            None => &calls.handed_over,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(answer)
    }
}
