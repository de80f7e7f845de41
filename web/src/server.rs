//! The storefront's routes on `http::serve`: the JSON API under `/api/`, event streams under
//! `/stream/`, the Datastar client under `/assets/`, and the HTML pages everywhere else (`/` is
//! the dashboard; see [`crate::pages`]).

use std::sync::Arc;

use crate::engine::EngineClient;
use zeroapp_app::App;
use zeroapp_engine::http::{ApiError, HttpLimits, Routes};

use crate::{api, pages, sse};

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
    /// Runs `f` on the database thread; a database failure is a 500 (logged).
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, zeroapp_app::db::DbError>
        + Send
        + 'static,
    ) -> Result<T, ApiError> {
        self.app
            .db()
            .call(f)
            .await
            .map_err(crate::identity::internal)
    }
}

/// The storefront's routes.
pub fn routes(shared: Shared) -> Routes {
    let shared = Arc::new(shared);
    let state = Arc::new(pages::State::default());
    Arc::new(move |request| {
        let shared = shared.clone();
        let state = state.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let method = request.method().clone();
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            let response = match segments.as_slice() {
                ["api", rest @ ..] => api::route(&shared, request, rest).await,
                ["stream", rest @ ..] => sse::route(&shared, request, rest).await,
                ["assets", _] => {
                    let etag = request
                        .headers()
                        .get(hyper::header::IF_NONE_MATCH)
                        .and_then(|v| v.to_str().ok());
                    crate::assets::serve(&path, etag)
                        .ok_or_else(|| ApiError::not_found(format!("no asset {path}")))
                }
                ["favicon.svg" | "favicon.ico"] => Ok(crate::assets::favicon()),
                _ => pages::route(&shared, &state, request, &segments).await,
            }
            .unwrap_or_else(ApiError::into_response);
            tracing::debug!(%method, %path, status = response.status().as_u16(), "storefront");
            response
        })
    })
}
