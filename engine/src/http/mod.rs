//! HTTP for the engine (cargo feature `http`): an ingress that follows Restate's paths and
//! headers, an admin API, and the server loop both run on.
//!
//! ```no_run
//! # use zeroapp_engine::prelude::*;
//! # use zeroapp_engine::http::{self, HttpLimits};
//! # async fn example(engine: Engine) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9080").await?;
//! let ingress = http::ingress(&engine, &HttpLimits::default());
//! let stop = tokio_util::sync::CancellationToken::new();
//! http::serve(listener, ingress, HttpLimits::default(), stop.clone()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! docs/ingress.md lists the routes, and where they differ from Restate's.

mod admin;
mod auth;
mod ingress;
mod metrics;
mod reply;
mod server;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

/// Times in answers: RFC 3339 with milliseconds.
pub use crate::clock::format_time;
pub use crate::http::admin::{admin, invocation_detail_json, invocation_json};
pub use crate::http::auth::{BearerToken, MIN_TOKEN_LEN, require_bearer, same_secret};
pub use crate::http::ingress::ingress;
pub use crate::http::reply::{ApiError, bytes, empty, json, raw_json, read_body, text};
pub use crate::http::server::serve;

/// The body of every response the engine's servers send.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// A request as the servers receive it.
pub type Request = hyper::Request<Incoming>;

/// A response as the servers send it.
pub type Response = hyper::Response<Body>;

/// The future a [`Routes`] returns.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// Something that answers requests: the ingress, the admin API, or an application's own pages.
pub type Routes = Arc<dyn Fn(Request) -> ResponseFuture + Send + Sync>;

/// A percent-decoded path segment, or 400 if it is not UTF-8.
pub fn decode(segment: &str) -> Result<String, ApiError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad_request(format!("path segment {segment:?} is not UTF-8")))
}

/// The (key, value) pairs of a query string, percent-decoded, `+` read as a space.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(key), decode(value))
    })
}

/// Limits that keep one client from exhausting the server.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// A client must send a request's headers within this time.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this time.
    pub idle_timeout: Duration,
    /// Connections beyond this many are answered 503 and closed.
    pub max_connections: usize,
    /// At shutdown, requests in flight get this long to finish before their connections are
    /// dropped.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}
