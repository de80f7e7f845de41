//! The contexts handed to handlers, typed by capability.
//!
//! | context                   | handler                        | state        |
//! |---------------------------|--------------------------------|--------------|
//! | [`Context`]               | service handler                | none         |
//! | [`ObjectContext`]         | virtual object, exclusive      | read + write |
//! | [`SharedObjectContext`]   | virtual object, shared         | read         |
//! | [`WorkflowContext`]       | workflow `run`                 | read + write |
//! | [`SharedWorkflowContext`] | workflow, shared               | read         |
//!
//! The operations live in capability traits: [`ContextBase`] (every context), [`ContextReadState`]
//! and [`ContextWriteState`]. A shared handler has no `set`, so writing state from it does not
//! compile. Bring the traits into scope with `use zeroapp_engine::prelude::*`.
//!
//! An exclusive handler may write state:
//!
//! ```
//! use zeroapp_engine::prelude::*;
//!
//! async fn touch(ctx: ObjectContext, (): ()) -> Result<(), HandlerError> {
//!     ctx.set("touched", &true)?;
//!     Ok(())
//! }
//! ```
//!
//! The same body in a shared handler is rejected by the compiler (`set` does not exist there):
//!
//! ```compile_fail
//! use zeroapp_engine::prelude::*;
//!
//! async fn touch(ctx: SharedObjectContext, (): ()) -> Result<(), HandlerError> {
//!     ctx.set("touched", &true)?;
//!     Ok(())
//! }
//! ```
//!
//! Every operation is journaled: the first time it runs, its result is committed to the journal
//! before the handler sees it; on replay, the recorded result is returned and nothing runs again.

pub mod backend;
mod future;
mod saga;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::backend::{Backend, RunAction};
pub use self::future::{DurableFuture, Selectable};
pub use self::saga::Saga;
use crate::error::{HandlerError, TerminalError};
use crate::handler::{Answers, Callee};
use crate::payload::{Decode, Encode};
use crate::retry::RetryPolicy;

pub(crate) mod sealed {
    /// Gives the capability traits access to the backend behind a context.
    pub trait Sealed {
        fn backend(&self) -> &std::sync::Arc<dyn super::Backend>;
    }
}

macro_rules! context_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            backend: Arc<dyn Backend>,
        }

        impl $name {
            /// A context whose operations go to `backend`: for execution engines that run
            /// handlers ([`Definition::invoke`](crate::Definition::invoke)), not for handler
            /// code.
            pub fn from_backend(backend: Arc<dyn Backend>) -> Self {
                Self { backend }
            }
        }

        impl sealed::Sealed for $name {
            fn backend(&self) -> &Arc<dyn Backend> {
                &self.backend
            }
        }

        impl ContextBase for $name {}
    };
}

context_type!(
    /// The context of a service handler: journaled side effects, calls, sends, randomness, time.
    Context
);
context_type!(
    /// The context of a virtual object's exclusive handler: reads and writes the key's state.
    ObjectContext
);
context_type!(
    /// The context of a virtual object's shared handler: reads the key's committed state.
    SharedObjectContext
);
context_type!(
    /// The context of a workflow's `run` handler: reads and writes the workflow's state.
    WorkflowContext
);
context_type!(
    /// The context of a workflow's shared handler: reads the workflow's committed state.
    SharedWorkflowContext
);

/// The key of a keyed context, without the `Option` of [`ContextBase::key`]: an object's or
/// workflow's handler always runs on a key.
macro_rules! keyed_context {
    ($($name:ident),*) => {$(
        impl $name {
            /// The key of the object or workflow this handler runs on.
            pub fn key(&self) -> &str {
                self.backend.key().unwrap_or_default()
            }
        }
    )*};
}

keyed_context!(
    ObjectContext,
    SharedObjectContext,
    WorkflowContext,
    SharedWorkflowContext
);

impl ContextReadState for ObjectContext {}
impl ContextReadState for SharedObjectContext {}
impl ContextReadState for WorkflowContext {}
impl ContextReadState for SharedWorkflowContext {}
impl ContextWriteState for ObjectContext {}
impl ContextWriteState for WorkflowContext {}
impl ContextPromises for WorkflowContext {}
impl ContextPromises for SharedWorkflowContext {}

/// Encodes a value for the backend; a value that cannot be encoded is a terminal error (400).
fn encode<T: Encode + ?Sized>(
    value: &T,
    what: impl FnOnce() -> String,
) -> Result<Vec<u8>, TerminalError> {
    value
        .encode()
        .map_err(|e| TerminalError::with_code(400, format!("{} cannot be encoded: {e}", what())))
}

/// Turns a `run` action returning `T` into one returning its JSON bytes.
fn erase_action<T, F, Fut>(name: &str, mut action: F) -> RunAction
where
    T: Serialize + Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, HandlerError>> + Send + 'static,
{
    let name = name.to_owned();
    Box::new(move || {
        let step = action();
        let name = name.clone();
        Box::pin(async move {
            let value = step.await?;
            serde_json::to_vec(&value).map_err(|e| {
                TerminalError::new(format!("the result of run {name:?} cannot be encoded: {e}"))
                    .into()
            })
        })
    })
}

/// Operations every context offers.
pub trait ContextBase: sealed::Sealed {
    /// This invocation's id, in the format of the engine running it (`inv_` and 16 hex digits
    /// on the embedded engine).
    fn invocation_id(&self) -> String {
        self.backend().invocation_id()
    }

    /// The key of the object or workflow this handler runs on (`None` for services).
    fn key(&self) -> Option<&str> {
        self.backend().key()
    }

    /// Runs a side effect once and journals its result: on replay the closure does not run, the
    /// recorded result is returned. Retryable errors are retried with the default policy
    /// (forever, backing off to 10 s); a [`TerminalError`] is journaled and returned.
    fn run<T, F, Fut>(
        &self,
        name: &str,
        action: F,
    ) -> impl Future<Output = Result<T, TerminalError>> + Send
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, HandlerError>> + Send + 'static,
    {
        self.run_with(name, RetryPolicy::default(), action)
    }

    /// [`run`](ContextBase::run) with an explicit retry policy. When the policy gives up, the
    /// last error is journaled as a terminal error and returned.
    fn run_with<T, F, Fut>(
        &self,
        name: &str,
        policy: RetryPolicy,
        action: F,
    ) -> impl Future<Output = Result<T, TerminalError>> + Send
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, HandlerError>> + Send + 'static,
    {
        let what = format!("run {name:?}");
        let step = self
            .backend()
            .clone()
            .run(name.to_owned(), policy, erase_action(name, action));
        async move { decode_value(step.await, &what) }
    }

    /// Calls a handler and waits for its result. The callee's invocation is created atomically
    /// with this journal entry, exactly once; its result is delivered into this journal.
    ///
    /// `target` is a typed reference (`ADD.key("apples")`, checked against the handler's input
    /// and output types by the compiler) or an untyped [`Target`](crate::Target).
    fn call<I: Encode + ?Sized, O: Decode + Send + 'static>(
        &self,
        target: impl Callee<I> + Answers<O>,
        input: &I,
    ) -> impl Future<Output = Result<O, TerminalError>> + Send {
        let target = target.into_target();
        let what = format!("the result of {target}");
        let call = encode(input, || format!("the input for {target}"))
            .map(|input| self.backend().clone().call(target, input));
        async move { decode_value(call?.await, &what) }
    }

    /// Sends a one-way request to a handler; returns the id of the invocation it created.
    fn send<I: Encode + ?Sized>(
        &self,
        target: impl Callee<I>,
        input: &I,
    ) -> impl Future<Output = Result<String, TerminalError>> + Send {
        let target = target.into_target();
        let send = encode(input, || format!("the input for {target}"))
            .map(|input| self.backend().clone().send(target, input, None));
        async move { send?.await }
    }

    /// Sends a one-way request that starts after `delay`: a durable timer, so it survives
    /// restarts and never starts early.
    fn send_after<I: Encode + ?Sized>(
        &self,
        target: impl Callee<I>,
        input: &I,
        delay: Duration,
    ) -> impl Future<Output = Result<String, TerminalError>> + Send {
        let target = target.into_target();
        let send = encode(input, || format!("the input for {target}"))
            .map(|input| self.backend().clone().send(target, input, Some(delay)));
        async move { send?.await }
    }

    /// A version marker for changing code with invocations in flight: `true` where the
    /// invocation reaches this point for the first time with code that has the marker (the
    /// marker is journaled) or reached it so before; `false` where the invocation already went
    /// past this point with the code before the change (its journal goes on without the
    /// marker). Branch on it to ship a change while older invocations finish the old way:
    ///
    /// ```
    /// # use zeroapp_engine::prelude::*;
    /// # async fn charge(ctx: WorkflowContext, order: String) -> Result<u32, HandlerError> {
    /// let cents: u32 = if ctx.patched("charge-v2").await? {
    ///     ctx.run("charge with tax", || async { Ok(120) }).await?
    /// } else {
    ///     ctx.run("charge", || async { Ok(100) }).await?
    /// };
    /// # Ok(cents) }
    /// ```
    ///
    /// Once no invocation from before the change is in flight, remove the old branch and keep
    /// the marker (or, later still, the marker too). On a Restate cluster it is always `true`:
    /// Restate runs each invocation on the deployment it started on.
    fn patched(&self, name: &str) -> impl Future<Output = Result<bool, TerminalError>> + Send {
        self.backend().clone().patched(name.to_owned())
    }

    /// A durable timer that completes after `duration`. The deadline is journaled; after a
    /// restart an overdue timer fires at once, and it never fires early.
    fn sleep(&self, duration: Duration) -> DurableFuture<()> {
        let handle = self.backend().clone().sleep(duration);
        DurableFuture::new(self.backend().clone(), handle)
    }

    /// A durable timer that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: SystemTime) -> DurableFuture<()> {
        let handle = self.backend().clone().sleep_until(deadline);
        DurableFuture::new(self.backend().clone(), handle)
    }

    /// An awakeable: an id to hand to the outside world, and a future that completes when
    /// someone resolves or rejects that id (with [`Client::resolve_awakeable`] or from another
    /// handler). A completion that arrives before the await is kept.
    ///
    /// [`Client::resolve_awakeable`]: crate::Client::resolve_awakeable
    fn awakeable<T>(&self) -> (String, DurableFuture<T>) {
        let (id, handle) = self.backend().clone().awakeable();
        (id, DurableFuture::new(self.backend().clone(), handle))
    }

    /// Resolves another invocation's awakeable with `value`. Fails with a terminal error (code
    /// 409) if it was already completed or does not exist; the outcome is journaled.
    fn resolve_awakeable<T: Serialize>(
        &self,
        id: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send {
        let complete = encode(value, || format!("the value for awakeable {id}")).map(|value| {
            self.backend()
                .clone()
                .complete_awakeable(id.to_owned(), Ok(value))
        });
        async move { complete?.await }
    }

    /// Rejects another invocation's awakeable: its await fails with a terminal error.
    fn reject_awakeable(
        &self,
        id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send {
        let failure = Err(TerminalError::new(reason));
        self.backend()
            .clone()
            .complete_awakeable(id.to_owned(), failure)
    }

    /// Waits for the first of several durable futures to complete and returns its position.
    /// Which one won is journaled, so a replay picks the same one. Then await the winner for
    /// its value (it is ready); the others can still be awaited or dropped.
    ///
    /// ```
    /// # use zeroapp_engine::prelude::*;
    /// # use std::time::Duration;
    /// async fn approve(ctx: WorkflowContext, (): ()) -> Result<bool, HandlerError> {
    ///     let approval = ctx.promise::<bool>("approval");
    ///     let deadline = ctx.sleep(Duration::from_secs(3600));
    ///     match ctx.select(&[&approval, &deadline]).await? {
    ///         0 => Ok(approval.await?),
    ///         _ => Ok(false),
    ///     }
    /// }
    /// ```
    fn select(
        &self,
        futures: &[&dyn Selectable],
    ) -> Pin<Box<dyn Future<Output = Result<usize, TerminalError>> + Send + 'static>> {
        let candidates = futures.iter().map(|f| f.candidate()).collect();
        self.backend().clone().select(candidates)
    }

    /// Waits for every future, in order, and returns their values; the first failure (by
    /// position) is returned instead.
    fn all<T: DeserializeOwned + Send + 'static>(
        &self,
        futures: Vec<DurableFuture<T>>,
    ) -> impl Future<Output = Result<Vec<T>, TerminalError>> + Send {
        async move {
            let mut values = Vec::with_capacity(futures.len());
            for future in futures {
                values.push(future.await?);
            }
            Ok(values)
        }
    }

    /// Awaits `future`, or fails with a terminal error (code 408) if it has not completed
    /// after `timeout`: a durable timer raced against it.
    fn timeout<T: DeserializeOwned + Send + 'static>(
        &self,
        future: DurableFuture<T>,
        timeout: Duration,
    ) -> impl Future<Output = Result<T, TerminalError>> + Send {
        let timer = self.sleep(timeout);
        let race = self.select(&[&future, &timer]);
        async move {
            match race.await? {
                0 => future.await,
                _ => Err(TerminalError::with_code(
                    TerminalError::TIMED_OUT,
                    format!("timed out after {timeout:?}"),
                )),
            }
        }
    }

    /// A random number, recorded in the journal so that replay sees the same one.
    fn rand_u64(&self) -> impl Future<Output = Result<u64, TerminalError>> + Send {
        self.backend().clone().rand_u64()
    }

    /// A random UUID (v4), recorded in the journal.
    fn uuid(&self) -> impl Future<Output = Result<uuid::Uuid, TerminalError>> + Send {
        self.backend().clone().uuid()
    }

    /// The current time, recorded in the journal (millisecond precision).
    fn now(&self) -> impl Future<Output = Result<SystemTime, TerminalError>> + Send {
        self.backend().clone().now()
    }

    /// Whether the handler is replaying recorded operations (for example, to quiet logs).
    fn is_replaying(&self) -> bool {
        self.backend().is_replaying()
    }
}

/// Reading the state of an object or workflow.
pub trait ContextReadState: ContextBase {
    /// The value stored under `key`, or `None`.
    fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>, TerminalError>> + Send {
        let what = format!("state {key:?}");
        let read = self.backend().clone().get_state(key.to_owned());
        async move { decode_optional(read.await?, &what) }
    }

    /// The state keys, sorted.
    fn state_keys(&self) -> impl Future<Output = Result<Vec<String>, TerminalError>> + Send {
        self.backend().clone().state_keys()
    }
}

/// A workflow's durable promises: named values completed at most once — from `run`, from the
/// workflow's shared handlers, or from outside with [`Client::resolve_promise`] — and awaited or
/// peeked from any of them.
///
/// [`Client::resolve_promise`]: crate::Client::resolve_promise
pub trait ContextPromises: ContextBase {
    /// A future of the promise's value; completes when the promise is resolved (at once if it
    /// already is) and fails if it is rejected.
    fn promise<T>(&self, name: &str) -> DurableFuture<T> {
        let handle = self.backend().clone().promise(name.to_owned());
        DurableFuture::new(self.backend().clone(), handle)
    }

    /// The promise's value if it was resolved, `None` if it is not completed yet; its error if
    /// it was rejected.
    fn peek_promise<T: DeserializeOwned + Send + 'static>(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<T>, TerminalError>> + Send {
        let what = format!("promise {name:?}");
        let peek = self.backend().clone().peek_promise(name.to_owned());
        async move { decode_optional(peek.await?, &what) }
    }

    /// Resolves the promise. The first completion wins: completing it again fails with a
    /// terminal error (code 409) and leaves the value unchanged.
    fn resolve_promise<T: Serialize>(
        &self,
        name: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send {
        let complete = encode(value, || format!("the value for promise {name:?}")).map(|value| {
            self.backend()
                .clone()
                .complete_promise(name.to_owned(), Ok(value))
        });
        async move { complete?.await }
    }

    /// Rejects the promise: awaiting it fails with a terminal error carrying `reason`.
    fn reject_promise(
        &self,
        name: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send {
        let failure = Err(TerminalError::new(reason));
        self.backend()
            .clone()
            .complete_promise(name.to_owned(), failure)
    }
}

/// Writing the state of an object or workflow (exclusive handlers and workflow `run` only).
///
/// Writes are journaled and committed in order with everything the handler does after them;
/// they do not wait for their own commit, so a handler can issue several in a row cheaply.
pub trait ContextWriteState: ContextReadState {
    /// Stores `value` under `key`.
    fn set<T: Serialize>(&self, key: &str, value: &T) -> Result<(), TerminalError> {
        let value = serde_json::to_vec(value)
            .map_err(|e| TerminalError::new(format!("state {key:?} cannot be encoded: {e}")))?;
        self.backend().set_state(key, Some(value));
        Ok(())
    }

    /// Removes `key`.
    fn clear(&self, key: &str) {
        self.backend().set_state(key, None);
    }

    /// Removes every key.
    fn clear_all(&self) {
        self.backend().clear_all_state();
    }
}

/// Turns an operation's outcome into the value the handler expects.
pub(crate) fn decode_value<T: Decode>(
    outcome: Result<Vec<u8>, TerminalError>,
    what: &str,
) -> Result<T, TerminalError> {
    T::decode(&outcome?).map_err(|e| {
        TerminalError::new(format!("{what} does not decode as the expected type: {e}"))
    })
}

/// Decodes a value that may be absent.
fn decode_optional<T: DeserializeOwned>(
    bytes: Option<Vec<u8>>,
    what: &str,
) -> Result<Option<T>, TerminalError> {
    bytes.map(|bytes| decode_value(Ok(bytes), what)).transpose()
}
