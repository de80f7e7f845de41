//! # zeroapp-restate
//!
//! The same handlers, beyond one machine: serves [`zeroapp_engine`] service definitions —
//! services, virtual objects and workflows registered exactly as for the embedded engine — as a
//! deployment of a [Restate] cluster, on Restate's official Rust SDK (`restate-sdk`, pinned).
//! Every context operation a handler performs goes through the engine's byte-level
//! [`Backend`](zeroapp_engine::context::backend::Backend) seam to the matching Restate operation,
//! so the journal, the timers and the state live in the cluster, which replays a handler on
//! another node after a failure.
//!
//! ```no_run
//! use zeroapp_engine::prelude::*;
//! use zeroapp_restate::Deployment;
//!
//! async fn greet(ctx: Context, name: String) -> Result<String, HandlerError> {
//!     let n: u64 = ctx.run("visit", || async { Ok(42) }).await?;
//!     Ok(format!("Hello, {name}! You are visitor {n}."))
//! }
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let deployment = Deployment::new().register(Service::new("Greeter").handler("greet", greet));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9081").await?;
//! // Then register http://127.0.0.1:9081 with the cluster's admin API (POST /deployments).
//! deployment.serve(listener, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! What Restate does differently from the embedded engine is listed in the repository's
//! docs/scale-out.md; where a difference would change what a handler observes, this crate
//! either maps it or says so with a typed error.
//!
//! [Restate]: https://restate.dev

#![deny(missing_docs)]

mod backend;
mod client;
pub mod local;
mod manifest;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use restate_sdk::endpoint::{ContextInternal, Endpoint};
use restate_sdk::http_server::HttpServer;
use restate_sdk::service::macro_support::{ServiceBoxFuture, service_definition};
use zeroapp_engine::{Definition, HandlerError};

use crate::backend::{RestateBackend, handler_error_to_sdk};
pub use crate::client::RestateClient;

/// Why a set of definitions cannot be served to Restate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentError {
    /// A service or handler name that Restate does not accept.
    InvalidName {
        /// The name.
        name: String,
        /// Restate's rule it breaks.
        reason: String,
    },
    /// Two definitions with one name.
    Duplicate(String),
}

impl std::fmt::Display for DeploymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidName { name, reason } => {
                write!(f, "{name:?} cannot be served by Restate: {reason}")
            }
            Self::Duplicate(name) => write!(f, "{name:?} is registered twice"),
        }
    }
}

impl std::error::Error for DeploymentError {}

/// How long Restate keeps what it keeps after an invocation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A finished workflow's state, promises and result (Restate's default: one day).
    pub workflow: Duration,
    /// The journal of a finished invocation, for introspection.
    pub journal: Duration,
    /// An idempotency key's result.
    pub idempotency: Duration,
}

impl Default for Retention {
    /// The embedded engine's default retention (24 h) for all three.
    fn default() -> Self {
        let day = Duration::from_secs(24 * 60 * 60);
        Self {
            workflow: day,
            journal: day,
            idempotency: day,
        }
    }
}

/// ZeroApp definitions served as one Restate deployment.
#[derive(Default)]
pub struct Deployment {
    definitions: Vec<Definition>,
    retention: Retention,
}

impl Deployment {
    /// An empty deployment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service, virtual object or workflow, as built for the embedded engine.
    #[must_use]
    pub fn register(mut self, definition: impl Into<Definition>) -> Self {
        self.definitions.push(definition.into());
        self
    }

    /// Sets how long Restate keeps finished workflows, journals and idempotency keys.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The discovery manifest's services, as Restate will see them (for inspection and tests).
    pub fn manifest(&self) -> Result<Vec<restate_sdk::discovery::Service>, DeploymentError> {
        let mut names = std::collections::BTreeSet::new();
        self.definitions
            .iter()
            .map(|definition| {
                if !names.insert(definition.name()) {
                    return Err(DeploymentError::Duplicate(definition.name().to_owned()));
                }
                manifest::service(definition, &self.retention)
            })
            .collect()
    }

    /// The restate-sdk endpoint serving every definition: for embedding in another HTTP/2
    /// server. [`serve`](Self::serve) is the usual way.
    pub fn endpoint(self) -> Result<Endpoint, DeploymentError> {
        let manifest = self.manifest()?;
        let mut builder = Endpoint::builder();
        for (definition, discovery) in self.definitions.into_iter().zip(manifest) {
            let dispatcher = Dispatcher {
                definition: Arc::new(definition),
            };
            builder = builder.bind(service_definition(dispatcher, discovery));
        }
        Ok(builder.build())
    }

    /// Serves the deployment on `listener` (HTTP/2, as Restate calls deployments) until
    /// `shutdown` completes; then stops accepting and lets running requests finish (up to
    /// 10 s, restate-sdk's grace period).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), DeploymentError> {
        let endpoint = self.endpoint()?;
        HttpServer::new(endpoint)
            .serve_with_cancel(listener, shutdown)
            .await;
        Ok(())
    }
}

/// Runs the handlers of one definition for Restate.
struct Dispatcher {
    definition: Arc<Definition>,
}

impl restate_sdk::service::Service for Dispatcher {
    type Future = ServiceBoxFuture;

    fn handle(&self, ctx: ContextInternal) -> ServiceBoxFuture {
        let definition = self.definition.clone();
        Box::pin(async move {
            let handler = ctx.handler_name().to_owned();
            let (input, metadata) = ctx.input::<Bytes>().await;
            let backend = Arc::new(RestateBackend::new(ctx.clone(), &metadata));
            let Some(running) = definition.invoke(&handler, backend, Vec::from(input)) else {
                return Err(restate_sdk::endpoint::Error::unknown_handler(
                    ctx.service_name(),
                    ctx.handler_name(),
                ));
            };
            // restate-sdk does not catch panics: a panic is an error Restate retries, as on the
            // embedded engine.
            let result = AssertUnwindSafe(running)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(HandlerError::retryable(panic_message(&panic))));
            ctx.handle_handler_result(result.map(Bytes::from).map_err(handler_error_to_sdk));
            ctx.end();
            Ok(())
        })
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("the handler panicked: {message}")
}

/// docs/scale-out.md, whose Rust code blocks compile as doctests so that they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../docs/scale-out.md")]
pub struct ScaleOutGuide;
