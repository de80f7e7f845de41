//! The storefront's HTML pages, server-rendered with [maud] and kept live with Datastar 1.0.
//!
//! Every page is three panes (navigation, a centre with Input and Output tabs, live
//! notifications) and opens one long-lived event stream, `{page}/stream`, with `data-init`. The
//! stream sends the page's fragments (whole elements with ids) at once — so a reconnect gets the
//! full state — and again whenever one of them changes; Datastar morphs them into place.
//! Commands are `@post`s that answer 204 and let the stream show the result, or answer a short
//! stream patching the error into `#error`.
//!
//! | path | what |
//! |---|---|
//! | `GET /login`, `POST /login`, `POST /logout` | the login form (a plain form: 303 to `/`), logout |
//! | `GET /`, `/dashboard` | the dashboard |
//! | `GET /products`, `POST /cart/add/{productId}` | the catalog; add `qty{productId}` (or `quantity`) |
//! | `GET /cart`, `POST /cart/remove/{productId}`, `POST /cart/checkout` | the cart; checkout with `orderId`, `zone`, `carrier`, `address` |
//! | `GET /orders`, `GET /orders/{id}` | the caller's orders; one order's live progress |
//! | `GET /gateway`, `POST /gateway/{orderId}/pay` \| `decline`, `POST /gateway/auto-pay` | the payment simulator (admins only: the gateway's role) |
//! | `GET /admin`, `POST /admin/{orderId}/approve` \| `reject` | approvals (admins only, 403 otherwise) |
//! | `GET /admin/engine?status=…&service=…&key=…&q=…&id=…`, `POST /admin/engine/{invocationId}/cancel` | the engine explorer (admins only) |
//!
//! Unauthenticated page requests get 303 to `/login`; commands need the session (401), pass
//! [`identity::same_origin`] (403) and carry the session's CSRF token, which every page holds as
//! its `csrf` signal ([`identity::require_csrf`], 403).

mod admin;
mod explorer;
mod gateway;
mod layout;
mod login;
mod orders;
mod shop;
mod stream;

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::{Method, StatusCode};
use maud::{Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use zeroapp_engine::http::{self, ApiError, Request, Response};

use crate::identity::{self, Identity};
use crate::shared::Shared;

/// What the pages share beyond [`Shared`]: a signal that some state changed (a user's cart, or
/// for everyone: a payment, an approval), so the open page streams concerned re-render and send
/// what differs.
pub struct State {
    changes: broadcast::Sender<Option<String>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            changes: broadcast::channel(64).0,
        }
    }
}

impl State {
    /// Tells the open page streams of `user` (`None`: everyone's) to look again.
    pub fn changed(&self, user: Option<&str>) {
        // Nobody listening is fine.
        let _ = self.changes.send(user.map(str::to_owned));
    }

    fn subscribe(&self) -> broadcast::Receiver<Option<String>> {
        self.changes.subscribe()
    }
}

/// A page with a live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// `/`: an overview.
    Dashboard,
    /// `/products`: the catalog.
    Products,
    /// `/cart`: the basket and checkout.
    Cart,
    /// `/orders`: the caller's orders.
    Orders,
    /// `/orders/{id}`: one order's progress.
    Order(String),
    /// `/gateway`: the payment simulator.
    Gateway,
    /// `/admin`: approvals and all orders.
    Admin,
    /// `/admin/engine?…`: the engine explorer, filtered.
    Engine(explorer::Query),
}

impl Page {
    /// The page's path.
    pub fn path(&self) -> String {
        match self {
            Page::Dashboard => "/dashboard".into(),
            Page::Products => "/products".into(),
            Page::Cart => "/cart".into(),
            Page::Orders => "/orders".into(),
            Page::Order(id) => format!("/orders/{}", encode(id)),
            Page::Gateway => "/gateway".into(),
            Page::Admin => "/admin".into(),
            Page::Engine(query) => query.href(),
        }
    }

    /// The path of the page's event stream.
    pub fn stream_path(&self) -> String {
        match self {
            Page::Engine(_) => self
                .path()
                .replacen("/admin/engine", "/admin/engine/stream", 1),
            _ => format!("{}/stream", self.path()),
        }
    }

    /// Whether only admins may see it. The payment gateway is the gateway's (an admin's), not
    /// every shopper's: it decides everyone's payments.
    pub fn admin_only(&self) -> bool {
        matches!(self, Page::Gateway | Page::Admin | Page::Engine(_))
    }

    /// The title shown.
    pub fn title(&self) -> String {
        match self {
            Page::Dashboard => "Dashboard".into(),
            Page::Products => "Products".into(),
            Page::Cart => "Cart".into(),
            Page::Orders => "Orders".into(),
            Page::Order(id) => format!("Order {id}"),
            Page::Gateway => "Payment gateway".into(),
            Page::Admin => "Admin".into(),
            Page::Engine(_) => "Engine explorer".into(),
        }
    }
}

/// What a page shows: its Input and Output tabs, and the fragments its stream keeps fresh (each
/// a whole element with an id, also placed somewhere in `input`, `output` or `aside`).
pub struct View {
    /// The Input tab: what the user does (forms, buttons).
    pub input: Markup,
    /// The Output tab: results (tables, progress).
    pub output: Markup,
    /// The live fragments.
    pub fragments: Vec<Markup>,
    /// Signals the stream sets (`datastar-patch-signals`), if any.
    pub signals: Option<Value>,
    /// A box above the notifications in the right pane (an order's workflow metadata).
    pub aside: Option<Markup>,
    /// The tab the page opens on, until the user picks one (remembered per page).
    pub tab: Tab,
}

/// The centre's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// What the user does.
    Input,
    /// What came of it.
    Output,
}

impl Tab {
    /// The signal's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Tab::Input => "input",
            Tab::Output => "output",
        }
    }
}

/// What a command answers when it has something to show: elements to morph in (by id), a
/// success message for `#flash`, a line for the notifications, signals to set. Empty: 204,
/// and the page's stream shows the result.
#[derive(Default)]
pub struct Reply {
    elements: Vec<Markup>,
    flash: Option<Markup>,
    note: Option<String>,
    signals: Option<Value>,
}

impl Reply {
    /// Morphs `element` (a whole element with an id) into the page.
    pub fn element(mut self, element: Markup) -> Self {
        self.elements.push(element);
        self
    }

    /// Shows `content` as the success message (replacing an earlier error).
    pub fn flash(mut self, content: Markup) -> Self {
        self.flash = Some(content);
        self
    }

    /// Puts `line` on top of the notifications (for this page only: it is not stored).
    pub fn note(mut self, line: &str) -> Self {
        self.note = Some(line.to_owned());
        self
    }

    /// Sets these signals.
    pub fn signals(mut self, signals: Value) -> Self {
        self.signals = Some(signals);
        self
    }

    fn is_empty(&self) -> bool {
        self.elements.is_empty()
            && self.flash.is_none()
            && self.note.is_none()
            && self.signals.is_none()
    }

    /// The reply's events; a success also clears the error box.
    fn into_events(self) -> Vec<Bytes> {
        let mut events = vec![stream::patch_elements(&layout::error_box(""))];
        if let Some(signals) = &self.signals {
            events.push(stream::patch_signals(signals));
        }
        if let Some(flash) = self.flash {
            events.push(stream::patch_elements(&layout::flash(flash)));
        }
        events.extend(self.elements.iter().map(stream::patch_elements));
        if let Some(note) = &self.note {
            events.push(stream::prepend(
                "#notifications",
                &layout::passing_note(note),
            ));
        }
        events
    }
}

/// Answers the pages' paths; `segments` is the path split on `/` (`[""]` for `/`).
pub async fn route(
    shared: &Arc<Shared>,
    state: &State,
    request: Request,
    segments: &[&str],
) -> Result<Response, ApiError> {
    let method = request.method().clone();
    let page = match segments {
        [""] | ["dashboard"] | ["dashboard", "stream"] => Some(Page::Dashboard),
        ["products"] | ["products", "stream"] => Some(Page::Products),
        ["cart"] | ["cart", "stream"] => Some(Page::Cart),
        ["orders"] | ["orders", "stream"] => Some(Page::Orders),
        ["orders", id] | ["orders", id, "stream"] => Some(Page::Order(http::decode(id)?)),
        ["gateway"] | ["gateway", "stream"] => Some(Page::Gateway),
        ["admin"] | ["admin", "stream"] => Some(Page::Admin),
        ["admin", "engine"] | ["admin", "engine", "stream"] => Some(Page::Engine(
            explorer::Query::parse(request.uri().query().unwrap_or("")),
        )),
        _ => None,
    };
    let is_stream = segments.last() == Some(&"stream");
    match (&method, segments, page) {
        (&Method::GET, ["login"], _) => login::form(shared, &request).await,
        (&Method::POST, ["login"], _) => login::submit(shared, request).await,
        (&Method::POST, ["logout"], _) => login::logout(shared, request).await,
        (&Method::GET, _, Some(page)) if is_stream => {
            stream::open(shared.clone(), state, &request, page).await
        }
        (&Method::GET, [_] | ["orders" | "admin", _], Some(page)) => {
            show(shared, &request, page).await
        }
        (&Method::POST, _, _) => command(shared, state, request, segments).await,
        (_, _, Some(_)) => Err(ApiError::method_not_allowed("GET")),
        _ => Err(ApiError::not_found(format!(
            "no page /{}; try / or the JSON API under /api/ (docs/api.md)",
            segments.join("/")
        ))),
    }
}

/// A page: 303 to `/login` without a session, 403 for a shopper on an admin page.
async fn show(shared: &Shared, request: &Request, page: Page) -> Result<Response, ApiError> {
    let Some(who) = identity::identify(&shared.app, request).await? else {
        return Ok(redirect("/login"));
    };
    if page.admin_only() && !who.user.is_admin {
        return Ok(html(
            StatusCode::FORBIDDEN,
            layout::problem(Some(&who), 403, "This page is for admins."),
        ));
    }
    match view(shared, &who, &page).await {
        Ok(view) => {
            let notes = layout::notifications(shared, &who).await?;
            let cart = shop::items(&shop::basket(shared, &who).await?);
            Ok(html(
                StatusCode::OK,
                layout::page(&who, &page, view, notes, cart),
            ))
        }
        Err(error) => Ok(html(
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            layout::problem(Some(&who), error.status, &error.message),
        )),
    }
}

/// The page's content for this user.
async fn view(shared: &Shared, who: &Identity, page: &Page) -> Result<View, ApiError> {
    match page {
        Page::Dashboard => shop::dashboard(shared, who).await,
        Page::Products => shop::products(shared, who).await,
        Page::Cart => shop::cart(shared, who).await,
        Page::Orders => orders::list(shared, who).await,
        Page::Order(id) => orders::detail(shared, who, id).await,
        Page::Gateway => gateway::view(shared).await,
        Page::Admin => admin::view(shared, who).await,
        Page::Engine(query) => explorer::view(shared, who, query).await,
    }
}

/// A command (`@post`): same origin, a session, then the action. 204 when it worked (the page's
/// stream shows the result), else a short stream patching the message into `#error`.
async fn command(
    shared: &Shared,
    state: &State,
    request: Request,
    segments: &[&str],
) -> Result<Response, ApiError> {
    identity::same_origin(&request)?;
    let who = identity::require(&shared.app, &request).await?;
    if matches!(segments.first(), Some(&("admin" | "gateway"))) {
        who.require_admin()?;
    }
    let header = request
        .headers()
        .get(identity::CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = http::read_body(request, shared.limits.max_body_bytes).await?;
    let signals = parse_signals(&body)?;
    let signal = signals.get("csrf").and_then(Value::as_str);
    identity::require_csrf(&who, header.as_deref(), signal)?;
    let outcome = match segments {
        ["cart", "add", id] => shop::add(shared, &who, id, &signals).await,
        ["cart", "remove", id] => shop::remove(shared, &who, id).await,
        ["cart", "checkout"] => shop::checkout(shared, &who, &signals).await,
        ["gateway", "auto-pay"] => gateway::auto_pay(shared, &signals),
        ["gateway", order, action @ ("pay" | "decline")] => {
            gateway::decide(shared, &http::decode(order)?, action).await
        }
        ["admin", "engine", id, "cancel"] => {
            explorer::cancel(shared, &who, &http::decode(id)?).await
        }
        ["admin", order, action @ ("approve" | "reject")] => {
            admin::decide(shared, &who, &http::decode(order)?, *action == "approve").await
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "no command /{}",
                segments.join("/")
            )));
        }
    };
    state.changed((segments.first() == Some(&"cart")).then_some(who.user.id.as_str()));
    Ok(match outcome {
        Ok(reply) if reply.is_empty() => http::empty(StatusCode::NO_CONTENT),
        Ok(reply) => sse_once(&reply.into_events()),
        // A failure replaces an earlier success message: never both at once.
        Err(error) => sse_once(&[
            stream::patch_elements(&layout::error_box(&error.message)),
            stream::patch_elements(&html! { div #flash {} }),
        ]),
    })
}

/// The Datastar signals a command's body carries: a JSON object (an empty or blank body is no
/// signals), else 400 naming the problem. Fuzzed by `fuzz/fuzz_targets/datastar_signals.rs`.
pub fn parse_signals(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad signals: {e}")))
}

/// A finished event stream of these events.
fn sse_once(events: &[Bytes]) -> Response {
    let text: String = events
        .iter()
        .map(|event| String::from_utf8_lossy(event))
        .collect();
    let mut response = http::text(StatusCode::OK, "text/event-stream", text);
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    response
}

/// An HTML page.
fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = http::text(status, "text/html; charset=utf-8", markup.into_string());
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// 303 See Other to `to`.
fn redirect(to: &'static str) -> Response {
    let mut response = http::empty(StatusCode::SEE_OTHER);
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// What [`encode`] escapes: all but letters, digits and `-_.~` (so no quote, slash or `%`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment percent-encoded so that it is safe inside a URL in a JavaScript string.
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}
