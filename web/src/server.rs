//! The storefront's routes on `http::serve`: the JSON API under `/api/`, event streams under
//! `/stream/`, the Datastar client under `/assets/`, and the HTML pages everywhere else (`/` is
//! the dashboard; see [`crate::pages`]).

use std::sync::Arc;

use zeroapp_engine::http::{ApiError, Routes};

use crate::shared::Shared;
use crate::{api, pages, sse};

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
