//! Defining services, virtual objects and workflows, and the registry that resolves call targets.
//!
//! Handlers are plain async functions: `async fn name(ctx: SomeContext, input: I) ->
//! Result<O, HandlerError>` where `I` and `O` are serde types (JSON on the wire and in the
//! journal) or [`Binary`](crate::Binary) (the bytes themselves). The context type is fixed by how the handler is registered, which is how the type
//! system keeps shared handlers from writing state.

use std::any::TypeId;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::context::backend::Backend;
use crate::context::{
    Context, ObjectContext, SharedObjectContext, SharedWorkflowContext, WorkflowContext,
};
use crate::error::{CallError, HandlerError, TerminalError};
use crate::handler::HandlerName;
use crate::handler::kind::{OfObject, OfService, OfWorkflow};
use crate::ids::{HandlerKind, ServiceKind, Target};
use crate::payload::{Decode, Encode, Format};

/// A running handler: its output's bytes (as its [`Format`] says), or its error.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, HandlerError>> + Send>>;
pub(crate) type ErasedHandler =
    Arc<dyn Fn(Arc<dyn Backend>, Vec<u8>) -> HandlerFuture + Send + Sync>;

struct HandlerDef {
    kind: HandlerKind,
    /// Refused by the HTTP ingress; callable from handlers and the in-process `Client`.
    ingress_private: bool,
    run: ErasedHandler,
    /// Whether an input decodes into the handler's input type.
    check_input: fn(&[u8]) -> Result<(), String>,
    /// How the input and the output travel.
    formats: Formats,
}

/// How a handler's input and output travel: JSON, or bytes as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Formats {
    /// The input's format.
    pub input: Format,
    /// The output's format.
    pub output: Format,
}

/// Decodes `input` as an `I` and drops it: the check made before an invocation is created.
fn check_input<I: Decode>(input: &[u8]) -> Result<(), String> {
    I::decode(input).map(drop)
}

/// A named set of handlers of one kind, ready to register with the engine.
pub struct Definition {
    name: String,
    kind: ServiceKind,
    handlers: HashMap<String, HandlerDef>,
    /// Set by `ingress_private`: handlers added afterwards are private too.
    private_added_later: bool,
}

impl Definition {
    fn new(name: impl Into<String>, kind: ServiceKind) -> Self {
        let name = name.into();
        assert!(
            !name.is_empty() && !name.contains('/'),
            "service name {name:?} must be non-empty and contain no '/'"
        );
        Self {
            name,
            kind,
            handlers: HashMap::new(),
            private_added_later: false,
        }
    }

    fn add<C, I, O, F, Fut>(
        mut self,
        handler: &str,
        kind: HandlerKind,
        make_context: fn(Arc<dyn Backend>) -> C,
        f: F,
    ) -> Self
    where
        C: Send + 'static,
        I: Decode + Send + 'static,
        O: Encode + Send + 'static,
        F: Fn(C, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
    {
        let label = format!("{}/{handler}", self.name);
        let run: ErasedHandler = Arc::new(move |core, input| {
            match I::decode(&input) {
                Err(e) => {
                    let error =
                        TerminalError::with_code(400, format!("bad input for {label}: {e}"));
                    Box::pin(std::future::ready(Err(error.into())))
                }
                Ok(input) => {
                    let output = f(make_context(core), input);
                    let label = label.clone();
                    Box::pin(async move {
                        let output = output.await?;
                        // No output is no bytes, as Restate answers it (an empty body), not
                        // `null`; readers take nothing as `null`.
                        if TypeId::of::<O>() == TypeId::of::<()>() {
                            return Ok(Vec::new());
                        }
                        output.encode().map_err(|e| {
                            TerminalError::new(format!("output of {label} cannot be encoded: {e}"))
                                .into()
                        })
                    })
                }
            }
        });
        let previous = self.handlers.insert(
            handler.to_owned(),
            HandlerDef {
                kind,
                ingress_private: self.private_added_later,
                run,
                check_input: check_input::<I>,
                formats: Formats {
                    input: I::FORMAT,
                    output: O::FORMAT,
                },
            },
        );
        assert!(
            previous.is_none(),
            "handler {handler:?} is registered twice on {}",
            self.name
        );
        self
    }

    /// Makes every handler (those added before and after) ingress-private: callable from other
    /// handlers and through the in-process [`Client`](crate::Client), refused by the HTTP
    /// ingress — and by a Restate cluster's ingress, which gets the same flag (Restate's
    /// `ingressPrivate`).
    #[must_use]
    pub fn ingress_private(mut self) -> Self {
        for handler in self.handlers.values_mut() {
            handler.ingress_private = true;
        }
        self.private_added_later = true;
        self
    }

    /// The name `handler` gives, checking that a typed reference belongs to this service.
    fn name_of<K, I, O>(&self, handler: &impl HandlerName<K, I, O>) -> String {
        if let Some(service) = handler.service_name() {
            assert!(
                service == self.name,
                "handler {service}/{} is registered on {}: a reference names its own service",
                handler.handler_name(),
                self.name
            );
        }
        handler.handler_name().to_owned()
    }

    /// Makes one handler ingress-private.
    fn ingress_private_handler(mut self, name: &str) -> Self {
        match self.handlers.get_mut(name) {
            Some(handler) => handler.ingress_private = true,
            None => panic!(
                "no handler {name:?} on {} to make private: register it first",
                self.name
            ),
        }
        self
    }
}

/// What another execution engine reads of a definition to serve it (the `zeroapp-restate`
/// crate, for one): its name, kind and handlers, and a way to run a handler on a
/// [`Backend`].
impl Definition {
    /// The service, object or workflow name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What kind of thing it is.
    pub fn kind(&self) -> ServiceKind {
        self.kind
    }

    /// Its handlers with how each runs, sorted by name.
    pub fn handlers(&self) -> Vec<(&str, HandlerKind)> {
        let mut handlers: Vec<_> = self
            .handlers
            .iter()
            .map(|(name, handler)| (name.as_str(), handler.kind))
            .collect();
        handlers.sort_unstable_by_key(|&(name, _)| name);
        handlers
    }

    /// Whether the HTTP ingress refuses `handler` (it is called by other handlers and through
    /// the in-process `Client` only). False for a handler that does not exist.
    pub fn is_ingress_private(&self, handler: &str) -> bool {
        self.handlers
            .get(handler)
            .is_some_and(|h| h.ingress_private)
    }

    /// How `handler`'s input and output travel; `None` if there is no such handler.
    pub fn formats(&self, handler: &str) -> Option<Formats> {
        self.handlers.get(handler).map(|h| h.formats)
    }

    /// Whether `input` (in the handler's input [`Format`]; for JSON, empty means `null`)
    /// decodes as the handler's input type; why not if it does not. `None` if there is no such
    /// handler.
    pub fn check_input(&self, handler: &str, input: &[u8]) -> Option<Result<(), String>> {
        self.handlers.get(handler).map(|h| (h.check_input)(input))
    }

    /// Runs `handler` with `input` (in its input [`Format`]) on `backend`, which executes its
    /// durable operations; the future yields the output in its output format. `None` if there
    /// is no such handler.
    pub fn invoke(
        &self,
        handler: &str,
        backend: Arc<dyn Backend>,
        input: Vec<u8>,
    ) -> Option<HandlerFuture> {
        self.handlers.get(handler).map(|h| (h.run)(backend, input))
    }
}

/// A service: stateless handlers, any number running at once.
pub struct Service(Definition);

impl Service {
    /// Makes every handler of this service (those added before and after) ingress-private:
    /// callable from other handlers and through the in-process [`Client`](crate::Client),
    /// refused by the HTTP ingress (Restate's `ingressPrivate`).
    #[must_use]
    pub fn ingress_private(self) -> Self {
        Self(self.0.ingress_private())
    }

    /// Makes the handler `name` (registered already) ingress-private.
    ///
    /// # Panics
    ///
    /// If no handler `name` was registered before: a mistake in the program, not in its input.
    #[must_use]
    pub fn ingress_private_handler(self, name: &str) -> Self {
        Self(self.0.ingress_private_handler(name))
    }

    /// A service called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self(Definition::new(name, ServiceKind::Service))
    }

    /// Adds a handler.
    #[must_use]
    pub fn handler<I, O, F, Fut>(self, name: impl HandlerName<OfService, I, O>, f: F) -> Self
    where
        I: Decode + Send + 'static,
        O: Encode + Send + 'static,
        F: Fn(Context, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
    {
        let name = self.0.name_of(&name);
        Self(
            self.0
                .add(&name, HandlerKind::Stateless, Context::from_backend, f),
        )
    }
}

/// A virtual object: handlers keyed by an object key, with K/V state per key. At most one
/// exclusive handler runs per key at a time, in arrival order; shared handlers run alongside.
pub struct VirtualObject(Definition);

impl VirtualObject {
    /// Makes every handler of this object (those added before and after) ingress-private:
    /// callable from other handlers and through the in-process [`Client`](crate::Client),
    /// refused by the HTTP ingress (Restate's `ingressPrivate`).
    #[must_use]
    pub fn ingress_private(self) -> Self {
        Self(self.0.ingress_private())
    }

    /// Makes the handler `name` (registered already) ingress-private.
    ///
    /// # Panics
    ///
    /// If no handler `name` was registered before: a mistake in the program, not in its input.
    #[must_use]
    pub fn ingress_private_handler(self, name: &str) -> Self {
        Self(self.0.ingress_private_handler(name))
    }

    /// A virtual object called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self(Definition::new(name, ServiceKind::VirtualObject))
    }

    /// Adds an exclusive handler (reads and writes state; one at a time per key).
    #[must_use]
    pub fn exclusive<I, O, F, Fut>(self, name: impl HandlerName<OfObject, I, O>, f: F) -> Self
    where
        I: Decode + Send + 'static,
        O: Encode + Send + 'static,
        F: Fn(ObjectContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
    {
        let name = self.0.name_of(&name);
        Self(self.0.add(
            &name,
            HandlerKind::Exclusive,
            ObjectContext::from_backend,
            f,
        ))
    }

    /// Adds a shared handler (reads committed state; runs concurrently).
    #[must_use]
    pub fn shared<I, O, F, Fut>(self, name: impl HandlerName<OfObject, I, O>, f: F) -> Self
    where
        I: Decode + Send + 'static,
        O: Encode + Send + 'static,
        F: Fn(SharedObjectContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
    {
        let name = self.0.name_of(&name);
        Self(self.0.add(
            &name,
            HandlerKind::Shared,
            SharedObjectContext::from_backend,
            f,
        ))
    }
}

/// A workflow: its `run` handler executes once per key; shared handlers run alongside it.
pub struct Workflow(Definition);

impl Workflow {
    /// Makes every handler of this workflow (those added before and after) ingress-private:
    /// callable from other handlers and through the in-process [`Client`](crate::Client),
    /// refused by the HTTP ingress (Restate's `ingressPrivate`).
    #[must_use]
    pub fn ingress_private(self) -> Self {
        Self(self.0.ingress_private())
    }

    /// Makes the handler `name` (registered already) ingress-private.
    ///
    /// # Panics
    ///
    /// If no handler `name` was registered before: a mistake in the program, not in its input.
    #[must_use]
    pub fn ingress_private_handler(self, name: &str) -> Self {
        Self(self.0.ingress_private_handler(name))
    }

    /// The name of a workflow's main handler.
    pub const RUN: &'static str = "run";

    /// A workflow called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self(Definition::new(name, ServiceKind::Workflow))
    }

    /// Sets the `run` handler.
    #[must_use]
    pub fn run<I, O, F, Fut>(self, f: F) -> Self
    where
        I: Decode + Send + 'static,
        O: Encode + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
    {
        Self(self.0.add(
            Self::RUN,
            HandlerKind::WorkflowRun,
            WorkflowContext::from_backend,
            f,
        ))
    }

    /// Adds a shared handler (reads committed state; runs concurrently with `run`).
    #[must_use]
    pub fn shared<I, O, F, Fut>(self, name: impl HandlerName<OfWorkflow, I, O>, f: F) -> Self
    where
        I: Decode + Send + 'static,
        O: Encode + Send + 'static,
        F: Fn(SharedWorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
    {
        let name = self.0.name_of(&name);
        Self(self.0.add(
            &name,
            HandlerKind::Shared,
            SharedWorkflowContext::from_backend,
            f,
        ))
    }
}

impl From<Service> for Definition {
    fn from(service: Service) -> Self {
        service.0
    }
}

impl From<VirtualObject> for Definition {
    fn from(object: VirtualObject) -> Self {
        object.0
    }
}

impl From<Workflow> for Definition {
    fn from(workflow: Workflow) -> Self {
        workflow.0
    }
}

/// Every registered definition, by name.
#[derive(Default)]
pub(crate) struct Registry {
    services: HashMap<String, Definition>,
}

impl Registry {
    /// Whether the HTTP ingress refuses `handler` of `service` (see
    /// [`Definition::is_ingress_private`]).
    #[cfg(feature = "http")]
    pub(crate) fn is_ingress_private(&self, service: &str, handler: &str) -> bool {
        self.services
            .get(service)
            .is_some_and(|definition| definition.is_ingress_private(handler))
    }

    /// Whether every handler of `service` is ingress-private (the ingress does not even name it).
    #[cfg(feature = "http")]
    pub(crate) fn is_wholly_private(&self, service: &str) -> bool {
        self.services.get(service).is_some_and(|definition| {
            definition
                .handlers
                .values()
                .all(|handler| handler.ingress_private)
        })
    }

    /// Adds a definition; `Err(name)` if the name is taken.
    pub(crate) fn add(&mut self, definition: Definition) -> Result<(), String> {
        if self.services.contains_key(&definition.name) {
            return Err(definition.name);
        }
        self.services.insert(definition.name.clone(), definition);
        Ok(())
    }

    fn find(&self, target: &Target) -> Result<&HandlerDef, CallError> {
        let service = self
            .services
            .get(&target.service)
            .ok_or_else(|| CallError::UnknownTarget(format!("no service {:?}", target.service)))?;
        let handler = service.handlers.get(&target.handler).ok_or_else(|| {
            CallError::UnknownTarget(format!(
                "{} has no handler {:?}",
                target.service, target.handler
            ))
        })?;
        match (service.kind, &target.key) {
            (ServiceKind::Service, Some(_)) => Err(CallError::BadKey(format!(
                "{} is a service and takes no key",
                target.service
            ))),
            (ServiceKind::VirtualObject | ServiceKind::Workflow, None) => {
                Err(CallError::BadKey(format!("{} needs a key", target.service)))
            }
            _ => Ok(handler),
        }
    }

    /// How the target's handler takes its input and answers.
    pub(crate) fn formats(&self, target: &Target) -> Result<Formats, CallError> {
        self.find(target).map(|h| h.formats)
    }

    /// How the target's handler runs, or why it cannot be called.
    pub(crate) fn resolve(&self, target: &Target) -> Result<HandlerKind, CallError> {
        self.find(target).map(|h| h.kind)
    }

    /// How the target's handler runs, if `input` is a valid input for it; otherwise why it
    /// cannot be called with it.
    pub(crate) fn resolve_with_input(
        &self,
        target: &Target,
        input: &[u8],
    ) -> Result<HandlerKind, CallError> {
        let handler = self.find(target)?;
        (handler.check_input)(input).map_err(|e| {
            CallError::BadInput(format!("{}/{}: {e}", target.service, target.handler))
        })?;
        Ok(handler.kind)
    }

    /// The registered names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.services.keys().cloned().collect();
        names.sort();
        names
    }

    /// What kind of thing `name` is, if it is registered.
    pub(crate) fn kind_of(&self, name: &str) -> Option<ServiceKind> {
        self.services.get(name).map(|d| d.kind)
    }

    /// The target's handler.
    pub(crate) fn handler(&self, target: &Target) -> Result<ErasedHandler, CallError> {
        self.find(target).map(|h| h.run.clone())
    }
}
