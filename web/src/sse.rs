//! Server-sent event streams for API clients: `/stream/notifications` and
//! `/stream/workflow/{orderID}`. Each opens with the full current state (so a reconnect needs
//! nothing else), then sends every change as it happens, and a keep-alive comment every 15 s.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use zeroapp_engine::http::{self, ApiError, Request, Response};

use crate::identity::{self, Identity};
use crate::shared::{Shared, db_failure};

/// How often an idle stream sends a comment, so proxies and browsers keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How many notifications a stream opens with.
const BACKLOG: u32 = 50;

/// Answers `/stream/…`; `rest` is the path after `/stream/`.
pub async fn route(shared: &Shared, request: Request, rest: &[&str]) -> Result<Response, ApiError> {
    if request.method() != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    let who = identity::require(&shared.app, &request).await?;
    match rest {
        ["notifications"] => Ok(notifications_stream(shared, who).await?),
        ["workflow", order_id] => {
            let order_id = http::decode(order_id)?;
            let order = shared.visible_order(&who.user, &order_id).await?;
            Ok(workflow_stream(shared, order_id, &order.user_id))
        }
        _ => Err(ApiError::not_found(format!(
            "no stream /stream/{}; use /stream/notifications or /stream/workflow/{{orderID}}",
            rest.join("/")
        ))),
    }
}

/// One SSE event: `event: {name}` and its JSON data.
fn event(name: &str, data: &impl serde::Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// An event stream's response, fed by the returned sender: the one body of every stream, the
/// API's and the pages'. The stream ends when the sender is dropped (and the sender notices a
/// closed client through `closed()`).
pub fn stream_response() -> (mpsc::Sender<Bytes>, Response) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let frames = ReceiverStream::new(rx).map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    let mut response = hyper::Response::new(StreamBody::new(frames).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (tx, response)
}

/// The caller's notifications (an admin's: the admins'), newest `BACKLOG` first in a
/// `snapshot` event, then each new one as a `notification` event.
async fn notifications_stream(shared: &Shared, who: Identity) -> Result<Response, ApiError> {
    let mut live = if who.user.is_admin {
        shared.app.notifier().subscribe_admins()
    } else {
        shared.app.notifier().subscribe_user(&who.user.id)
    };
    let app = shared.app.clone();
    let snapshot = move || {
        let (app, user) = (app.clone(), who.user.clone());
        async move {
            app.notifications_for(&user, BACKLOG)
                .await
                .map_err(db_failure)
        }
    };
    let first = snapshot().await?;
    let (tx, response) = stream_response();
    tokio::spawn(async move {
        if tx.send(event("snapshot", &first)).await.is_err() {
            return;
        }
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            let bytes = tokio::select! {
                () = tx.closed() => return,
                _ = keep_alive.tick() => Bytes::from_static(b": keep-alive\n\n"),
                received = live.recv() => match received {
                    Ok(note) => event("notification", &note),
                    // Fell behind: send the whole state again.
                    Err(broadcast::error::RecvError::Lagged(_)) => match snapshot().await {
                        Ok(all) => event("snapshot", &all),
                        Err(_) => return,
                    },
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(bytes).await.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

/// An order's progress: a `progress` event now and after each of its status changes.
fn workflow_stream(shared: &Shared, order_id: String, owner: &str) -> Response {
    let mut live = shared.app.notifier().subscribe_user(owner);
    let (app, client) = (shared.app.clone(), shared.client.clone());
    let progress = {
        let order_id = order_id.clone();
        move || {
            let (app, client, order_id) = (app.clone(), client.clone(), order_id.clone());
            async move { client.progress(&app, &order_id).await.ok().flatten() }
        }
    };
    let (tx, response) = stream_response();
    tokio::spawn(async move {
        // Before payment the workflow has not started: the stream starts with the first change.
        if let Some(now) = &progress().await {
            if tx.send(event("progress", now)).await.is_err() {
                return;
            }
        }
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            let changed = tokio::select! {
                () = tx.closed() => return,
                _ = keep_alive.tick() => None,
                received = live.recv() => match received {
                    Ok(note) if note.order_id == order_id => Some(()),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => Some(()),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            let bytes = match changed {
                None => Bytes::from_static(b": keep-alive\n\n"),
                Some(()) => match progress().await {
                    Some(now) => event("progress", &now),
                    None => continue,
                },
            };
            if tx.send(bytes).await.is_err() {
                return;
            }
        }
    });
    response
}
