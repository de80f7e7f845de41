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

mod core;
mod future;
mod saga;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use self::core::InvocationCore;
pub(crate) use self::core::millis;
pub use self::future::{DurableFuture, Selectable};
pub use self::saga::Saga;
use crate::error::{HandlerError, TerminalError};
use crate::ids::{InvocationId, Target};
use crate::journal::Completion;
use crate::retry::RetryPolicy;

pub(crate) mod sealed {
    /// Gives the capability traits access to the invocation behind a context.
    pub trait Sealed {
        fn core(&self) -> &std::sync::Arc<super::InvocationCore>;
    }
}

macro_rules! context_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            core: std::sync::Arc<InvocationCore>,
        }

        impl $name {
            pub(crate) fn new(core: std::sync::Arc<InvocationCore>) -> Self {
                Self { core }
            }
        }

        impl sealed::Sealed for $name {
            fn core(&self) -> &std::sync::Arc<InvocationCore> {
                &self.core
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

impl ContextReadState for ObjectContext {}
impl ContextReadState for SharedObjectContext {}
impl ContextReadState for WorkflowContext {}
impl ContextReadState for SharedWorkflowContext {}
impl ContextWriteState for ObjectContext {}
impl ContextWriteState for WorkflowContext {}
impl ContextPromises for WorkflowContext {}
impl ContextPromises for SharedWorkflowContext {}

/// Operations every context offers.
pub trait ContextBase: sealed::Sealed {
    /// This invocation's id.
    fn invocation_id(&self) -> InvocationId {
        InvocationId(self.core().id)
    }

    /// The key of the object or workflow this handler runs on (`None` for services).
    fn key(&self) -> Option<&str> {
        self.core().target.key.as_deref()
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
        Fut: Future<Output = Result<T, HandlerError>> + Send,
    {
        self.core()
            .clone()
            .run(name.to_owned(), RetryPolicy::default(), action)
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
        Fut: Future<Output = Result<T, HandlerError>> + Send,
    {
        self.core().clone().run(name.to_owned(), policy, action)
    }

    /// Calls a handler and waits for its result. The callee's invocation is created atomically
    /// with this journal entry, exactly once; its result is delivered into this journal.
    fn call<I: Serialize, O: DeserializeOwned + Send + 'static>(
        &self,
        target: Target,
        input: &I,
    ) -> impl Future<Output = Result<O, TerminalError>> + Send {
        self.core().clone().call(target, serde_json::to_vec(input))
    }

    /// Sends a one-way request to a handler; returns the id of the invocation it created.
    fn send<I: Serialize>(
        &self,
        target: Target,
        input: &I,
    ) -> impl Future<Output = Result<InvocationId, TerminalError>> + Send {
        self.core()
            .clone()
            .send(target, serde_json::to_vec(input), None)
    }

    /// Sends a one-way request that starts after `delay`: a durable timer, so it survives
    /// restarts and never starts early.
    fn send_after<I: Serialize>(
        &self,
        target: Target,
        input: &I,
        delay: Duration,
    ) -> impl Future<Output = Result<InvocationId, TerminalError>> + Send {
        self.core()
            .clone()
            .send(target, serde_json::to_vec(input), Some(delay))
    }

    /// A durable timer that completes after `duration`. The deadline is journaled; after a
    /// restart an overdue timer fires at once, and it never fires early.
    fn sleep(&self, duration: Duration) -> DurableFuture<()> {
        let now = self.core().engine.clock.now_ms();
        self.core()
            .sleep_until(now.saturating_add(millis(duration)))
    }

    /// A durable timer that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: SystemTime) -> DurableFuture<()> {
        let at = deadline
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.core().sleep_until(millis(at))
    }

    /// An awakeable: an id to hand to the outside world, and a future that completes when
    /// someone resolves or rejects that id (with [`Client::resolve_awakeable`] or from another
    /// handler). A completion that arrives before the await is kept.
    ///
    /// [`Client::resolve_awakeable`]: crate::Client::resolve_awakeable
    fn awakeable<T>(&self) -> (String, DurableFuture<T>) {
        self.core().awakeable()
    }

    /// Resolves another invocation's awakeable with `value`. Fails with a terminal error (code
    /// 409) if it was already completed or does not exist; the outcome is journaled.
    fn resolve_awakeable<T: Serialize>(
        &self,
        id: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send {
        let core = self.core().clone();
        let id = id.to_owned();
        let value = serde_json::to_vec(value);
        async move {
            let value = value.map_err(|e| TerminalError::with_code(400, e.to_string()))?;
            core.complete_awakeable(id, Completion::Value(value)).await
        }
    }

    /// Rejects another invocation's awakeable: its await fails with a terminal error.
    fn reject_awakeable(
        &self,
        id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send {
        let failure = Completion::Failure(TerminalError::new(reason));
        self.core()
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
        Box::pin(self.core().clone().select(candidates))
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
        self.core().clone().rand_u64()
    }

    /// A random UUID (v4), recorded in the journal.
    fn uuid(&self) -> impl Future<Output = Result<uuid::Uuid, TerminalError>> + Send {
        self.core().clone().uuid()
    }

    /// The current time, recorded in the journal (millisecond precision).
    fn now(&self) -> impl Future<Output = Result<SystemTime, TerminalError>> + Send {
        self.core().clone().now()
    }

    /// Whether the handler is replaying recorded operations (for example, to quiet logs).
    fn is_replaying(&self) -> bool {
        self.core().is_replaying()
    }
}

/// Reading the state of an object or workflow.
pub trait ContextReadState: ContextBase {
    /// The value stored under `key`, or `None`.
    fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>, TerminalError>> + Send {
        self.core().clone().get_state(key.to_owned())
    }

    /// The state keys, sorted.
    fn state_keys(&self) -> impl Future<Output = Result<Vec<String>, TerminalError>> + Send {
        self.core().clone().state_keys()
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
        self.core().promise(name)
    }

    /// The promise's value if it was resolved, `None` if it is not completed yet; its error if
    /// it was rejected.
    fn peek_promise<T: DeserializeOwned + Send + 'static>(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<T>, TerminalError>> + Send {
        self.core().clone().peek_promise(name.to_owned())
    }

    /// Resolves the promise. The first completion wins: completing it again fails with a
    /// terminal error (code 409) and leaves the value unchanged.
    fn resolve_promise<T: Serialize>(
        &self,
        name: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send {
        let core = self.core().clone();
        let name = name.to_owned();
        let value = serde_json::to_vec(value);
        async move {
            let value = value.map_err(|e| TerminalError::with_code(400, e.to_string()))?;
            core.complete_promise(name, Completion::Value(value)).await
        }
    }

    /// Rejects the promise: awaiting it fails with a terminal error carrying `reason`.
    fn reject_promise(
        &self,
        name: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send {
        let failure = Completion::Failure(TerminalError::new(reason));
        self.core()
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
        self.core().set_state(key, Some(value));
        Ok(())
    }

    /// Removes `key`.
    fn clear(&self, key: &str) {
        self.core().set_state(key, None);
    }

    /// Removes every key.
    fn clear_all(&self) {
        self.core().clear_all_state();
    }
}
