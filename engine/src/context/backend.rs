//! The seam between the contexts handed to handlers and what makes their operations durable.
//!
//! The context types ([`Context`](super::Context) and the others) are typed, serde-speaking
//! fronts over a [`Backend`]: an object-safe, byte-level trait with one method per durable
//! operation. The embedded engine's journal is one backend; a deployment served to a Restate
//! cluster (the `zeroapp-restate` crate) is another. A handler body written against the
//! contexts runs unchanged on either.
//!
//! Values cross the seam as JSON bytes. Typing (encoding inputs, decoding results) happens on
//! the context side, once, so every backend sees the same bytes.
//!
//! A backend is not something handler code uses: it is what a new execution engine implements,
//! and then hands to [`Definition::invoke`](crate::Definition::invoke) with the input of an
//! invocation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{HandlerError, TerminalError};
use crate::ids::Target;
use crate::retry::RetryPolicy;

/// A boxed, sendable future: what the backend's asynchronous operations return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The result of a durable operation: its JSON bytes, or the terminal error it ended with.
pub type Outcome = Result<Vec<u8>, TerminalError>;

/// A `run` step's action with its value already encoded as JSON. The backend calls it once per
/// attempt; a retryable error is retried under the step's policy.
pub type RunAction = Box<dyn FnMut() -> BoxFuture<Result<Vec<u8>, HandlerError>> + Send>;

/// An operation whose result arrives later (a timer, an awakeable, a promise), as its backend
/// tracks it.
#[derive(Debug, Clone)]
pub struct Handle {
    /// The backend's own reference to the operation (the embedded engine: its journal index).
    pub token: u64,
    /// Its result, if the backend already knows it (replayed with one).
    pub ready: Option<Outcome>,
}

impl Handle {
    /// An operation whose result is still to come.
    pub fn pending(token: u64) -> Self {
        Self { token, ready: None }
    }
}

/// What executes a handler's durable operations: one value per invocation attempt.
///
/// Every method maps one context operation. Methods that consume `self: Arc<Self>` return
/// futures that own what they need, so that the contexts' futures are `Send + 'static`.
///
/// A backend that cannot do what an operation asks answers with a [`TerminalError`] that says
/// so; it never silently does something else.
pub trait Backend: Send + Sync + 'static {
    /// The invocation's id, in the backend's own format.
    fn invocation_id(&self) -> String;

    /// The key of the object or workflow the handler runs on; `None` for a service.
    fn key(&self) -> Option<&str>;

    /// Whether the handler is replaying recorded operations.
    fn is_replaying(&self) -> bool;

    /// Runs `action` once and journals its result; on replay returns the recorded result.
    fn run(
        self: Arc<Self>,
        name: String,
        policy: RetryPolicy,
        action: RunAction,
    ) -> BoxFuture<Outcome>;

    /// The state value under `key`, as this invocation sees it (its own writes included).
    fn get_state(self: Arc<Self>, key: String)
    -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>>;

    /// The state keys, sorted.
    fn state_keys(self: Arc<Self>) -> BoxFuture<Result<Vec<String>, TerminalError>>;

    /// Writes (`Some`) or clears (`None`) the state under `key`.
    fn set_state(&self, key: &str, value: Option<Vec<u8>>);

    /// Clears every state key.
    fn clear_all_state(&self);

    /// Calls a handler and waits for its result.
    fn call(self: Arc<Self>, target: Target, input: Vec<u8>) -> BoxFuture<Outcome>;

    /// Sends a one-way request, started after `delay` if one is given; returns the id of the
    /// invocation it created, in the backend's format.
    fn send(
        self: Arc<Self>,
        target: Target,
        input: Vec<u8>,
        delay: Option<Duration>,
    ) -> BoxFuture<Result<String, TerminalError>>;

    /// A durable timer that completes after `duration`.
    fn sleep(self: Arc<Self>, duration: Duration) -> Handle;

    /// A durable timer that completes at `deadline` (at once if it has passed).
    fn sleep_until(self: Arc<Self>, deadline: SystemTime) -> Handle;

    /// A new awakeable: its id and its handle.
    fn awakeable(self: Arc<Self>) -> (String, Handle);

    /// Completes an awakeable, with a value or a failure.
    fn complete_awakeable(
        self: Arc<Self>,
        id: String,
        outcome: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>>;

    /// The workflow promise `name`, to await.
    fn promise(self: Arc<Self>, name: String) -> Handle;

    /// The workflow promise's value if it is completed, `None` if not yet.
    fn peek_promise(
        self: Arc<Self>,
        name: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>>;

    /// Completes the workflow promise; a second completion fails with a terminal error with
    /// code 409 ([`TerminalError::CONFLICT`]).
    fn complete_promise(
        self: Arc<Self>,
        name: String,
        outcome: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>>;

    /// Waits for the result of the operation behind a pending handle.
    fn await_handle(self: Arc<Self>, token: u64) -> BoxFuture<Outcome>;

    /// Waits for the first of `handles` (token, result already known) to complete and returns
    /// its position; the winner is journaled, so a replay picks the same one.
    fn select(
        self: Arc<Self>,
        handles: Vec<(u64, bool)>,
    ) -> BoxFuture<Result<usize, TerminalError>>;

    /// A random number, recorded so that replay sees the same one.
    fn rand_u64(self: Arc<Self>) -> BoxFuture<Result<u64, TerminalError>>;

    /// A random UUID (v4), recorded.
    fn uuid(self: Arc<Self>) -> BoxFuture<Result<uuid::Uuid, TerminalError>>;

    /// The current time, recorded (millisecond precision).
    fn now(self: Arc<Self>) -> BoxFuture<Result<SystemTime, TerminalError>>;

    /// A version marker: true if the invocation reaches `name` for the first time with this
    /// code (the marker is recorded), or reached it so before (recorded); false if its journal
    /// shows that it went past this point with code that did not have the marker.
    fn patched(self: Arc<Self>, name: String) -> BoxFuture<Result<bool, TerminalError>>;
}
