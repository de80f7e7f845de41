//! The engine's [`Backend`] on a Restate invocation: each context operation becomes the
//! matching operation of restate-sdk's `ContextInternal`, so the journal lives in the Restate
//! cluster and Restate replays the handler after a failure.
//!
//! restate-sdk serializes access to an invocation's context and panics if two of its futures
//! are polled at the same time; a handler drives its context from one task, as it does on the
//! embedded engine, and races futures only through `select`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use restate_sdk::context::macro_support::SealedDurableFuture;
use restate_sdk::context::{DurableFuture, RequestTarget, RunFuture, RunRetryPolicy};
use restate_sdk::endpoint::{ContextInternal, InputMetadata};
use restate_sdk::errors as sdk;
use zeroapp_engine::context::backend::{Backend, BoxFuture, Handle, Outcome, RunAction};
use zeroapp_engine::{Clock, HandlerError, RetryPolicy, SystemClock, Target, TerminalError};

/// A durable future of restate-sdk, its value as bytes.
type Pending<'ctx> =
    Pin<Box<dyn DurableFuture<Output = Result<Bytes, sdk::TerminalError>> + Send + 'ctx>>;

/// The pending durable futures of one invocation, by token.
type PendingByToken<'ctx> = HashMap<u64, Pending<'ctx>>;

/// What the durable futures of an invocation borrow: its context, and the names of the
/// promises they await (restate-sdk's futures borrow both).
struct Borrowed {
    ctx: ContextInternal,
    names: typed_arena::Arena<String>,
}

self_cell::self_cell!(
    /// An invocation's context together with the durable futures created from it, so both can
    /// live in the backend.
    struct Futures {
        owner: Borrowed,
        #[covariant]
        dependent: PendingByToken,
    }
);

/// One attempt of an invocation, executed by Restate.
pub(crate) struct RestateBackend {
    ctx: ContextInternal,
    futures: Mutex<Futures>,
    next_token: AtomicU64,
    invocation_id: String,
    key: Option<String>,
    /// The state of the journaled random sequence: Restate's seed for this invocation, advanced
    /// once per draw, so a replay draws the same numbers in the same order.
    random: Mutex<u64>,
    /// This attempt's state writes, by key: `true` set, `false` cleared.
    written: Mutex<BTreeMap<String, bool>>,
}

impl RestateBackend {
    pub(crate) fn new(ctx: ContextInternal, input: &InputMetadata) -> Self {
        let borrowed = Borrowed {
            ctx: ctx.clone(),
            names: typed_arena::Arena::new(),
        };
        let futures = Futures::new(borrowed, |_| HashMap::new());
        Self {
            ctx,
            futures: Mutex::new(futures),
            next_token: AtomicU64::new(0),
            invocation_id: input.invocation_id.clone(),
            key: (!input.key.is_empty()).then(|| input.key.clone()),
            random: Mutex::new(input.random_seed),
            written: Mutex::new(BTreeMap::new()),
        }
    }

    fn futures(&self) -> MutexGuard<'_, Futures> {
        self.futures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a durable future made from the context under a new token.
    fn keep(&self, make: impl for<'ctx> FnOnce(&'ctx Borrowed) -> Pending<'ctx>) -> Handle {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.futures()
            .with_dependent_mut(|ctx, pending| pending.insert(token, make(ctx)));
        Handle::pending(token)
    }

    fn written(&self) -> MutexGuard<'_, BTreeMap<String, bool>> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_random(&self) -> u64 {
        let mut state = self.random.lock().unwrap_or_else(PoisonError::into_inner);
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix64(*state)
    }
}

/// The SDK's terminal error as the engine's: same code, same message.
pub(crate) fn from_sdk(error: sdk::TerminalError) -> TerminalError {
    TerminalError::with_code(error.code(), error.message())
}

fn to_sdk(error: &TerminalError) -> sdk::TerminalError {
    sdk::TerminalError::new_with_code(error.code(), error.message())
}

/// The engine's handler error as the SDK's: terminal stays terminal with its code, anything
/// else is retried by Restate.
pub(crate) fn handler_error_to_sdk(error: HandlerError) -> sdk::HandlerError {
    match error.as_terminal() {
        Some(terminal) => to_sdk(terminal).into(),
        None => sdk::HandlerError::from(error.to_string()),
    }
}

/// The engine's retry policy for a `run` step, as the SDK's. Every limit is set explicitly:
/// `RunRetryPolicy::default()` would add a 50 s limit the engine does not have.
fn run_policy(policy: &RetryPolicy) -> RunRetryPolicy {
    // The SDK's factor is an f32; a policy's factor is a small number (at least 1).
    #[allow(clippy::cast_possible_truncation)]
    let factor = policy.factor.max(1.0) as f32;
    let mut run = RunRetryPolicy::new()
        .initial_delay(policy.initial_delay)
        .exponentiation_factor(factor)
        .max_delay(policy.max_delay);
    if let Some(attempts) = policy.max_attempts {
        run = run.max_attempts(attempts);
    }
    if let Some(duration) = policy.max_duration {
        run = run.max_duration(duration);
    }
    run
}

fn request_target(target: Target) -> RequestTarget {
    match target.key {
        None => RequestTarget::service(target.service, target.handler),
        Some(key) => RequestTarget::object(target.service, key, target.handler),
    }
}

fn outcome(result: Result<Bytes, sdk::TerminalError>) -> Outcome {
    result.map(Vec::from).map_err(from_sdk)
}

fn conflict(what: String) -> TerminalError {
    TerminalError::with_code(TerminalError::CONFLICT, what)
}

impl Backend for RestateBackend {
    fn invocation_id(&self) -> String {
        self.invocation_id.clone()
    }

    fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn is_replaying(&self) -> bool {
        // restate-sdk 0.13 does not expose it (it only marks its tracing span).
        false
    }

    fn run(
        self: Arc<Self>,
        name: String,
        policy: RetryPolicy,
        mut action: RunAction,
    ) -> BoxFuture<Outcome> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let step = ctx
                .run(move || {
                    let attempt = action();
                    async move { attempt.await.map(Bytes::from).map_err(handler_error_to_sdk) }
                })
                .name(name)
                .retry_policy(run_policy(&policy));
            outcome(step.await)
        })
    }

    fn get_state(
        self: Arc<Self>,
        key: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let value = ctx.get::<Bytes>(&key).await.map_err(from_sdk)?;
            Ok(value.map(Vec::from))
        })
    }

    fn state_keys(self: Arc<Self>) -> BoxFuture<Result<Vec<String>, TerminalError>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let listed = ctx.get_keys().await.map_err(from_sdk)?;
            // restate-sdk 0.13 answers from its cache of the state, which still lists a key
            // cleared earlier in the same invocation: this attempt's own writes correct it (the
            // same on replay, where the writes are issued again in the same order).
            let mut keys: BTreeSet<String> = listed.into_iter().collect();
            for (key, present) in self.written().iter() {
                if *present {
                    keys.insert(key.clone());
                } else {
                    keys.remove(key);
                }
            }
            Ok(keys.into_iter().collect())
        })
    }

    fn set_state(&self, key: &str, value: Option<Vec<u8>>) {
        self.written().insert(key.to_owned(), value.is_some());
        match value {
            Some(value) => self.ctx.set(key, Bytes::from(value)),
            None => self.ctx.clear(key),
        }
    }

    fn clear_all_state(&self) {
        self.written().clear();
        self.ctx.clear_all();
    }

    fn call(self: Arc<Self>, target: Target, input: Vec<u8>) -> BoxFuture<Outcome> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let call = ctx.call::<Bytes, Bytes>(
                request_target(target),
                None,
                None,
                None,
                Vec::new(),
                Bytes::from(input),
            );
            outcome(call.await)
        })
    }

    fn send(
        self: Arc<Self>,
        target: Target,
        input: Vec<u8>,
        delay: Option<Duration>,
    ) -> BoxFuture<Result<String, TerminalError>> {
        let sent = self.ctx.send(
            request_target(target),
            None,
            None,
            None,
            Vec::new(),
            Bytes::from(input),
            delay,
        );
        Box::pin(async move {
            let handle = sent.await.map_err(from_sdk)?;
            Ok(restate_sdk::context::InvocationHandle::invocation_id(&handle).to_owned())
        })
    }

    fn sleep(self: Arc<Self>, duration: Duration) -> Handle {
        self.keep(|borrowed| {
            Box::pin(
                borrowed
                    .ctx
                    .sleep(duration)
                    .map(|slept| slept.map(|()| Bytes::from_static(b"null"))),
            )
        })
    }

    fn sleep_until(self: Arc<Self>, deadline: SystemTime) -> Handle {
        // The SDK journals the wake-up time it computes from this duration.
        let now = UNIX_EPOCH + Duration::from_millis(SystemClock.now_ms());
        let duration = deadline.duration_since(now).unwrap_or(Duration::ZERO);
        self.sleep(duration)
    }

    fn awakeable(self: Arc<Self>) -> (String, Handle) {
        let mut id = String::new();
        let handle = self.keep(|borrowed| {
            let (awakeable, future) = borrowed.ctx.awakeable::<Bytes>();
            id = awakeable;
            Box::pin(future)
        });
        (id, handle)
    }

    fn complete_awakeable(
        self: Arc<Self>,
        id: String,
        outcome: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>> {
        // Journaled by Restate; unlike the embedded engine, restate-sdk does not report a
        // second completion or an unknown id to the completer (docs/scale-out.md).
        match outcome {
            Ok(value) => self.ctx.resolve_awakeable(&id, Bytes::from(value)),
            Err(failure) => self.ctx.reject_awakeable(&id, to_sdk(&failure)),
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn promise(self: Arc<Self>, name: String) -> Handle {
        self.keep(|borrowed| {
            let name = borrowed.names.alloc(name);
            Box::pin(borrowed.ctx.promise::<Bytes>(name))
        })
    }

    fn peek_promise(
        self: Arc<Self>,
        name: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let value = ctx.peek_promise::<Bytes>(&name).await.map_err(from_sdk)?;
            Ok(value.map(Vec::from))
        })
    }

    fn complete_promise(
        self: Arc<Self>,
        name: String,
        outcome: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            // restate-sdk drops the server's answer to a completion (409 when the promise was
            // completed before); peeking first gives the handler the embedded engine's
            // conflict, except against a completion racing this one.
            let completed = match ctx.peek_promise::<Bytes>(&name).await {
                Ok(value) => value.is_some(),
                Err(_rejected) => true,
            };
            if completed {
                return Err(conflict(format!("promise {name:?} was already completed")));
            }
            match outcome {
                Ok(value) => ctx.resolve_promise(&name, Bytes::from(value)),
                Err(failure) => ctx.reject_promise(&name, to_sdk(&failure)),
            }
            Ok(())
        })
    }

    fn await_handle(self: Arc<Self>, token: u64) -> BoxFuture<Outcome> {
        Box::pin(async move {
            let result = poll_fn(|cx| {
                self.futures()
                    .with_dependent_mut(|_, pending| match pending.get_mut(&token) {
                        Some(future) => future.as_mut().poll(cx).map(Some),
                        None => Poll::Ready(None),
                    })
            })
            .await;
            self.futures()
                .with_dependent_mut(|_, pending| pending.remove(&token));
            match result {
                Some(result) => outcome(result),
                None => Err(TerminalError::new(
                    "a durable future was awaited after it completed",
                )),
            }
        })
    }

    fn select(
        self: Arc<Self>,
        handles: Vec<(u64, bool)>,
    ) -> BoxFuture<Result<usize, TerminalError>> {
        let notifications = self.futures().with_dependent(|_, pending| {
            handles
                .iter()
                .map(|(token, _)| pending.get(token).map(|future| future.handle()))
                .collect::<Option<Vec<_>>>()
        });
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let Some(notifications) = notifications else {
                return Err(TerminalError::new(
                    "select over a durable future that already completed",
                ));
            };
            ctx.select(notifications).await.map_err(from_sdk)
        })
    }

    fn rand_u64(self: Arc<Self>) -> BoxFuture<Result<u64, TerminalError>> {
        Box::pin(std::future::ready(Ok(self.next_random())))
    }

    fn uuid(self: Arc<Self>) -> BoxFuture<Result<uuid::Uuid, TerminalError>> {
        let high = u128::from(self.next_random()) << 64;
        let bytes = (high | u128::from(self.next_random())).to_be_bytes();
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        Box::pin(std::future::ready(Ok(uuid)))
    }

    fn now(self: Arc<Self>) -> BoxFuture<Result<SystemTime, TerminalError>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            // Restate has no journaled clock of its own: the time is a `run` step.
            let step = ctx.run(|| async { Ok(Bytes::from(SystemClock.now_ms().to_string())) });
            let bytes = step.name("now").await.map_err(from_sdk)?;
            let millis: u64 = serde_json::from_slice(&bytes).map_err(|e| {
                TerminalError::new(format!("the journaled time is not a number: {e}"))
            })?;
            Ok(UNIX_EPOCH + Duration::from_millis(millis))
        })
    }

    fn patched(self: Arc<Self>, _name: String) -> BoxFuture<Result<bool, TerminalError>> {
        // Restate pins every invocation to the deployment it started on: an invocation that
        // runs this code started on it, so it takes the patched path.
        Box::pin(std::future::ready(Ok(true)))
    }
}

/// One step of SplitMix64: a well-mixed 64-bit function of its input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
