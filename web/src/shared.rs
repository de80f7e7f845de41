//! What every request handler can reach: the domain, the engine's client, limits and secrets.
//! A leaf: it names no other module of this crate, so routes, pages and streams all import it
//! and none of them imports another's state.

use zeroapp_app::App;
use zeroapp_app::db::DbError;
use zeroapp_app::db::orders::Order;
use zeroapp_engine::http::{ApiError, HttpLimits};

use crate::engine::EngineClient;

/// What every request handler can reach.
pub struct Shared {
    /// The domain.
    pub app: App,
    /// The engine's client: embedded, or a Restate cluster's.
    pub client: EngineClient,
    /// Body limits and the like.
    pub limits: HttpLimits,
    /// The payment callback's HMAC secret.
    pub callback_secret: Vec<u8>,
}

impl Shared {
    /// The order if `viewer` may see it (its owner or an admin); 404 otherwise, so that other
    /// users' order ids are not revealed.
    pub async fn visible_order(
        &self,
        viewer: &zeroapp_app::db::catalog::User,
        order_id: &str,
    ) -> Result<Order, ApiError> {
        self.app
            .order_for(viewer, order_id)
            .await
            .map_err(db_failure)?
            .ok_or_else(|| ApiError::not_found(format!("no order {order_id:?}")))
    }
}

/// A failure of the domain's database: 500, logged.
pub fn db_failure(error: DbError) -> ApiError {
    tracing::error!(%error, "database failure");
    ApiError::new(500, format!("internal error: {error}"))
}
