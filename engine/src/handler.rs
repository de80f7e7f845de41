//! Typed handler references: a handler's service, name, input and output types, declared once as
//! a `const` next to the handler, and used to register it and to call, send to and attach to it.
//! The compiler then checks every call's input and output types against the handler's, and no
//! handler name is written twice.
//!
//! ```
//! use zeroapp_engine::prelude::*;
//!
//! /// The counter's handlers, as its callers see them.
//! pub const ADD: ObjectHandler<i64, i64> = ObjectHandler::new("Counter", "add");
//! pub const TOTAL: ObjectHandler<(), i64> = ObjectHandler::new("Counter", "total");
//!
//! async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
//!     let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
//!     ctx.set("total", &total)?;
//!     Ok(total)
//! }
//!
//! async fn total(ctx: SharedObjectContext, (): ()) -> Result<i64, HandlerError> {
//!     Ok(ctx.get::<i64>("total").await?.unwrap_or(0))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::builder()
//!     // Registering `add` under TOTAL would not compile: the types differ.
//!     .register(VirtualObject::new("Counter").exclusive(ADD, add).shared(TOTAL, total))
//!     .open(dir.path())
//!     .await?;
//! let client = engine.client();
//! let total = client.call(ADD.key("apples"), &3).await?; // an i64, checked
//! assert_eq!(total, 3);
//! assert_eq!(client.call(TOTAL.key("apples"), &()).await?, 3);
//! # engine.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::marker::PhantomData;

use crate::ids::Target;

/// The kinds of handler a reference can name (type-level markers).
pub mod kind {
    /// A service's handler: no key.
    #[derive(Debug)]
    pub enum OfService {}
    /// A virtual object's handler: called on a key.
    #[derive(Debug)]
    pub enum OfObject {}
    /// A workflow's handler (`run` or shared): called on a key.
    #[derive(Debug)]
    pub enum OfWorkflow {}
}

/// A typed reference to a handler: see the [module docs](self). Use the aliases
/// [`ServiceHandler`], [`ObjectHandler`] and [`WorkflowHandler`].
pub struct Handler<K, I, O> {
    service: &'static str,
    name: &'static str,
    types: PhantomData<fn(K, I) -> O>,
}

/// A typed reference to a service's handler taking `I` and answering `O`.
pub type ServiceHandler<I, O> = Handler<kind::OfService, I, O>;
/// A typed reference to a virtual object's handler taking `I` and answering `O`.
pub type ObjectHandler<I, O> = Handler<kind::OfObject, I, O>;
/// A typed reference to a workflow's handler taking `I` and answering `O`.
pub type WorkflowHandler<I, O> = Handler<kind::OfWorkflow, I, O>;

impl<K, I, O> Handler<K, I, O> {
    /// The handler `name` of `service`.
    pub const fn new(service: &'static str, name: &'static str) -> Self {
        Self {
            service,
            name,
            types: PhantomData,
        }
    }

    /// The service, object or workflow it belongs to.
    pub const fn service(&self) -> &'static str {
        self.service
    }

    /// The handler's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<I, O> WorkflowHandler<I, O> {
    /// The `run` handler of `workflow`.
    pub const fn run(workflow: &'static str) -> Self {
        Self::new(workflow, crate::Workflow::RUN)
    }
}

impl<I, O> ServiceHandler<I, O> {
    /// What a call or send goes to.
    pub fn target(&self) -> Call<I, O> {
        Call::new(Target::service(self.service, self.name))
    }
}

impl<I, O> ObjectHandler<I, O> {
    /// The handler on the object `key`.
    pub fn key(&self, key: &str) -> Call<I, O> {
        Call::new(Target::object(self.service, key, self.name))
    }
}

impl<I, O> WorkflowHandler<I, O> {
    /// The handler on the workflow `key`.
    pub fn key(&self, key: &str) -> Call<I, O> {
        Call::new(Target::workflow(self.service, key, self.name))
    }
}

// Manual impls: derives would require `K: Clone`, `I: Clone`… of the markers and payloads.
impl<K, I, O> Clone for Handler<K, I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, I, O> Copy for Handler<K, I, O> {}

impl<K, I, O> fmt::Debug for Handler<K, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.name)
    }
}

/// A call's target with the handler's input and output types: what
/// [`ObjectHandler::key`] and [`ServiceHandler::target`] give.
pub struct Call<I: ?Sized, O> {
    target: Target,
    types: PhantomData<fn(&I) -> O>,
}

impl<I: ?Sized, O> Call<I, O> {
    fn new(target: Target) -> Self {
        Self {
            target,
            types: PhantomData,
        }
    }

    /// The untyped target.
    pub fn target(&self) -> &Target {
        &self.target
    }
}

impl<I: ?Sized, O> Clone for Call<I, O> {
    fn clone(&self) -> Self {
        Self::new(self.target.clone())
    }
}

impl<I: ?Sized, O> fmt::Debug for Call<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)
    }
}

/// What can be called or sent to with an `I`: a typed reference ([`ServiceHandler`], or an
/// object's or workflow's [`key`](ObjectHandler::key)), or an untyped [`Target`], which takes
/// whatever the caller sends (the engine checks it against the handler when the call is made).
pub trait Callee<I: ?Sized> {
    /// The target it names.
    fn into_target(self) -> Target;
}

/// What answers an `O` when called: a typed reference answers its handler's output type, an
/// untyped [`Target`] whatever the caller reads it as.
pub trait Answers<O> {}

impl<I: ?Sized> Callee<I> for Target {
    fn into_target(self) -> Target {
        self
    }
}

impl<O> Answers<O> for Target {}

impl<I: ?Sized, O> Callee<I> for Call<I, O> {
    fn into_target(self) -> Target {
        self.target
    }
}

impl<I: ?Sized, O> Answers<O> for Call<I, O> {}

impl<I, O> Callee<I> for ServiceHandler<I, O> {
    fn into_target(self) -> Target {
        Target::service(self.service, self.name)
    }
}

impl<I, O> Answers<O> for ServiceHandler<I, O> {}

/// The name a handler is registered under: a string, or a typed reference of the same kind
/// whose input and output types are the handler's (a mismatch does not compile).
pub trait HandlerName<K, I, O> {
    /// The handler's name.
    fn handler_name(&self) -> &str;
    /// The service the reference belongs to, checked at registration (`None` for a string).
    fn service_name(&self) -> Option<&str>;
}

impl<K, I, O> HandlerName<K, I, O> for &str {
    fn handler_name(&self) -> &str {
        self
    }

    fn service_name(&self) -> Option<&str> {
        None
    }
}

impl<K, I, O> HandlerName<K, I, O> for Handler<K, I, O> {
    fn handler_name(&self) -> &str {
        self.name
    }

    fn service_name(&self) -> Option<&str> {
        Some(self.service)
    }
}

/// Gives a handler a shared dependency: `f` takes the dependency first and gets its own clone
/// of `state` with each invocation, so a handler written as `async fn pay(app: App, ctx:
/// Context, order: String)` is registered as `.handler(PAY, with_state(app, pay))`, with no
/// clone in a closure of its own.
pub fn with_state<S, C, I, F, Fut>(state: S, f: F) -> impl Fn(C, I) -> Fut + Send + Sync + 'static
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, C, I) -> Fut + Send + Sync + 'static,
{
    move |ctx, input| f(state.clone(), ctx, input)
}
