//! The engine the storefront talks to: the embedded one in this process, or a Restate cluster
//! (`zeroapp serve --restate-admin … --restate-ingress …`, docs/scale-out.md). Pages and the
//! JSON API call handlers and read committed state (a basket, an order's progress) the same
//! way on both;
//! only the engine explorer needs the embedded engine's introspection.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroapp_app::App;
use zeroapp_app::fulfillment::{self, Progress};
use zeroapp_app::session::{self, BasketLine};
use zeroapp_engine::handler::{Answers, Callee};
use zeroapp_engine::{CallError, Client, InvocationId};
use zeroapp_restate::RestateClient;

/// A client of whichever engine runs the handlers. Cheap to clone.
#[derive(Clone)]
pub enum EngineClient {
    /// The embedded engine, in this process.
    Embedded(Client),
    /// A Restate cluster, through its ingress and admin API.
    Restate(Arc<RestateClient>),
}

impl EngineClient {
    /// Calls a handler and waits for its result.
    pub async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        target: impl Callee<I> + Answers<O>,
        input: &I,
    ) -> Result<O, CallError> {
        let target = target.into_target();
        match self {
            Self::Embedded(client) => client.call(target, input).await,
            Self::Restate(client) => client.call(&target, input).await,
        }
    }

    /// The order's progress as its workflow last committed it, read without an invocation;
    /// `None` before the workflow started.
    pub async fn progress(&self, app: &App, order_id: &str) -> Result<Option<Progress>, CallError> {
        let (name, key) = (fulfillment::NAME, fulfillment::PROGRESS);
        let stored: Option<Progress> = match self {
            Self::Embedded(client) => client.state(name, order_id, key).await?,
            Self::Restate(client) => client.state(name, order_id, key).await?,
        };
        Ok(stored.map(|progress| fulfillment::up_to_date(app, progress)))
    }

    /// The user's basket as the session object last committed it, read without an invocation
    /// (a page render or a stream update writes nothing).
    pub async fn basket(&self, user_id: &str) -> Result<Vec<BasketLine>, CallError> {
        let (name, key) = (session::NAME, session::BASKET);
        let stored: Option<Vec<BasketLine>> = match self {
            Self::Embedded(client) => client.state(name, user_id, key).await?,
            Self::Restate(client) => client.state(name, user_id, key).await?,
        };
        Ok(stored.unwrap_or_default())
    }

    /// Cancels an invocation by its id.
    pub async fn cancel(&self, id: &str) -> Result<(), CallError> {
        match self {
            Self::Embedded(client) => {
                let id: InvocationId = id
                    .parse()
                    .map_err(|e| CallError::UnknownInvocation(format!("{id}: {e}")))?;
                client.cancel(id).await
            }
            Self::Restate(client) => client.cancel(id).await,
        }
    }

    /// The embedded engine's client, for its introspection; `None` on a cluster, whose
    /// invocations Restate's own tools show.
    pub fn embedded(&self) -> Option<&Client> {
        match self {
            Self::Embedded(client) => Some(client),
            Self::Restate(_) => None,
        }
    }
}
