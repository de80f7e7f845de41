//! Each page's one long-lived event stream (`GET {page}/stream`, opened by `data-init`).
//!
//! It opens with every fragment of the page (so a reconnect gets the full state), then renders
//! the page again whenever something may have changed — a notification for the viewer, a
//! command of any page ([`State::changed`]), or a short tick on pages that show time or other
//! users' actions — and sends only the fragments whose HTML differs; Datastar morphs them in.
//! An idle stream sends a keep-alive comment every [`KEEP_ALIVE`].
//!
//! The events are formatted here by hand rather than with the `datastar` crate: the protocol
//! needs two event kinds of a few lines each, and the body is the API streams' own
//! ([`crate::sse::stream_response`]), so the crate would add a dependency to save a dozen lines.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use maud::Markup;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use zeroapp_app::db::notifications::Notification;
use zeroapp_engine::http::{ApiError, Request, Response};

use super::{Page, State, layout, view};
use crate::identity::{self, Identity};
use crate::shared::Shared;

pub use crate::sse::KEEP_ALIVE;

/// A `datastar-patch-elements` event: morph these elements (matched by id) into the page.
pub fn patch_elements(markup: &Markup) -> Bytes {
    elements_event("", markup)
}

/// A `datastar-patch-elements` event that puts `markup` first inside the element `selector`
/// names.
pub fn prepend(selector: &str, markup: &Markup) -> Bytes {
    elements_event(
        &format!("data: mode prepend\ndata: selector {selector}\n"),
        markup,
    )
}

/// A `datastar-patch-elements` event with these option lines before the elements.
fn elements_event(options: &str, markup: &Markup) -> Bytes {
    let mut event = format!("event: datastar-patch-elements\n{options}");
    for line in markup.0.lines() {
        event.push_str("data: elements ");
        event.push_str(line);
        event.push('\n');
    }
    event.push('\n');
    Bytes::from(event)
}

/// A `datastar-patch-signals` event: merge this JSON object into the page's signals.
pub fn patch_signals(signals: &Value) -> Bytes {
    Bytes::from(format!(
        "event: datastar-patch-signals\ndata: signals {signals}\n\n"
    ))
}

/// How often a page re-renders without being told, for what changes without a notification to
/// the viewer (other users' payments and orders, the engine). Not the order page: its status
/// is an engine call, and its elapsed time counts in the browser (`data-on-interval`).
fn tick(page: &Page) -> Option<Duration> {
    match page {
        Page::Gateway | Page::Admin | Page::Engine { .. } => Some(Duration::from_secs(2)),
        _ => None,
    }
}

/// Opens `page`'s stream for the caller: 401 without a session, 403 for a shopper on an admin
/// page, 404 for an order the caller may not see.
pub async fn open(
    shared: Arc<Shared>,
    state: &State,
    request: &Request,
    page: Page,
) -> Result<Response, ApiError> {
    let who = identity::require(&shared.app, request).await?;
    if page.admin_only() {
        who.require_admin()?;
    }
    let mut notes = if who.user.is_admin {
        shared.app.notifier().subscribe_admins()
    } else {
        shared.app.notifier().subscribe_user(&who.user.id)
    };
    // An admin watching someone's order hears that user's notifications too.
    let mut owner_notes = match &page {
        Page::Order(id) => {
            let order = shared.visible_order(&who.user, id).await?;
            Some(shared.app.notifier().subscribe_user(&order.user_id))
        }
        _ => None,
    };
    let mut changes = state.subscribe();
    let first = render(&shared, &who, &page).await?;

    let (tx, response) = crate::sse::stream_response();

    tokio::spawn(async move {
        let mut sent = Rendered::default();
        if !sent.send_changes(&tx, first).await {
            return;
        }
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        let mut ticker = tokio::time::interval(tick(&page).unwrap_or(KEEP_ALIVE));
        ticker.tick().await;
        let ticks = tick(&page).is_some();
        loop {
            let next = tokio::select! {
                () = tx.closed() => return,
                _ = keep_alive.tick() => Next::KeepAlive,
                _ = ticker.tick(), if ticks => Next::Render,
                received = notes.recv() => heard(received.map(|_| true)),
                received = recv_owner(&mut owner_notes) => heard(received.map(|_| true)),
                received = changes.recv() => heard(received.map(|user| {
                    user.is_none_or(|user| user == who.user.id)
                })),
            };
            match next {
                Next::End => return,
                Next::Skip => continue,
                Next::KeepAlive => {
                    if tx
                        .send(Bytes::from_static(b": keep-alive\n\n"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Next::Render => match render(&shared, &who, &page).await {
                    Ok(now) => {
                        if !sent.send_changes(&tx, now).await {
                            return;
                        }
                    }
                    Err(error) => tracing::warn!(%error.message, "page stream render failed"),
                },
            }
        }
    });
    Ok(response)
}

/// What a stream does next.
enum Next {
    /// Send a keep-alive comment.
    KeepAlive,
    /// Render the page and send what changed.
    Render,
    /// Nothing (a change for another user).
    Skip,
    /// Stop: the source is gone (the server is stopping).
    End,
}

/// What a received message (`Ok(true)`: about the viewer) means: render, skip, or end; after
/// a lag, render (something changed).
fn heard(received: Result<bool, broadcast::error::RecvError>) -> Next {
    match received {
        Ok(true) | Err(broadcast::error::RecvError::Lagged(_)) => Next::Render,
        Ok(false) => Next::Skip,
        Err(broadcast::error::RecvError::Closed) => Next::End,
    }
}

/// The owner's notifications, or never.
async fn recv_owner(
    owner: &mut Option<broadcast::Receiver<Notification>>,
) -> Result<Notification, broadcast::error::RecvError> {
    match owner {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// One rendering of a page: its fragments (the notifications last) and signals.
struct Snapshot {
    fragments: Vec<Markup>,
    signals: Option<Value>,
}

async fn render(shared: &Shared, who: &Identity, page: &Page) -> Result<Snapshot, ApiError> {
    let view = view(shared, who, page).await?;
    let mut fragments = view.fragments;
    let cart = super::shop::basket(shared, who).await?;
    fragments.push(layout::cart_count(super::shop::items(&cart)));
    fragments.push(layout::notifications(shared, who).await?);
    Ok(Snapshot {
        fragments,
        signals: view.signals,
    })
}

/// What the stream sent last, to send only what changed.
#[derive(Default)]
struct Rendered {
    fragments: Vec<String>,
    signals: Option<Value>,
}

impl Rendered {
    /// Sends the fragments and signals that differ from the last sent; false once the client
    /// is gone.
    async fn send_changes(&mut self, tx: &mpsc::Sender<Bytes>, now: Snapshot) -> bool {
        if now.signals.is_some() && now.signals != self.signals {
            if let Some(signals) = &now.signals {
                if tx.send(patch_signals(signals)).await.is_err() {
                    return false;
                }
            }
            self.signals = now.signals;
        }
        let same_shape = self.fragments.len() == now.fragments.len();
        let mut fresh = Vec::with_capacity(now.fragments.len());
        for (i, fragment) in now.fragments.into_iter().enumerate() {
            let changed = !same_shape || self.fragments.get(i) != Some(&fragment.0);
            if changed && tx.send(patch_elements(&fragment)).await.is_err() {
                return false;
            }
            fresh.push(fragment.0);
        }
        self.fragments = fresh;
        true
    }
}
