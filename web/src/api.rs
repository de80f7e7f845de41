//! The JSON API: catalog, cart, checkout, the payment callback, approvals, order status, login.
//! docs/api.md lists every route with a curl example.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use zeroapp_app::db::{auth, catalog, notifications, orders};
use zeroapp_app::fulfillment;
use zeroapp_app::payment::{self, Decline};
use zeroapp_app::payment_signature;
use zeroapp_app::session::{self, AddItem, BasketLine, Checkout};
use zeroapp_engine::http::{self, ApiError, Request, Response};

use crate::identity::{self, Identity, now_ms};
use crate::server::Shared;

/// The header carrying the payment callback's signature: `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "x-signature";

/// Answers `/api/…`; `rest` is the path after `/api/`, split on `/`.
pub async fn route(shared: &Shared, request: Request, rest: &[&str]) -> Result<Response, ApiError> {
    let method = request.method().clone();
    match (rest, &method) {
        (["products"], &Method::GET) => {
            let products = shared.query(|c| catalog::products(c)).await?;
            Ok(http::json(StatusCode::OK, &products))
        }
        (["products", id], &Method::GET) => {
            let id: i64 = id
                .parse()
                .map_err(|_| ApiError::bad_request(format!("product id {id:?} is not a number")))?;
            let product = shared
                .query(move |c| catalog::product(c, id))
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no product {id}")))?;
            Ok(http::json(StatusCode::OK, &product))
        }
        (["login"], &Method::POST) => login(shared, request).await,
        (["logout"], &Method::POST) => {
            identity::end_session(&shared.app, &request).await?;
            Ok(identity::clear_session_cookie(http::empty(
                StatusCode::NO_CONTENT,
            )))
        }
        (["tokens"], &Method::POST) => {
            #[derive(Deserialize)]
            struct Name {
                name: String,
            }
            let (who, name): (_, Name) = authenticated_body(shared, request).await?;
            if who.session_token.is_none() {
                return Err(ApiError::forbidden(
                    "API tokens are created from a login session",
                ));
            }
            let user = who.user.id.clone();
            let token = shared
                .query(move |c| auth::create_api_token(c, &user, &name.name, now_ms()))
                .await?;
            Ok(http::json(StatusCode::CREATED, &json!({ "token": token })))
        }
        (["me"], &Method::GET) => {
            let who = identity::require(&shared.app, &request).await?;
            Ok(http::json(StatusCode::OK, &who.user))
        }
        (["cart"], &Method::GET) => {
            let who = identity::require(&shared.app, &request).await?;
            cart(shared, &who).await
        }
        (["cart", "add"], &Method::POST) => {
            let (who, item): (_, AddItem) = authenticated_body(shared, request).await?;
            // add_item answers the basket: no second invocation to read it.
            let lines: Vec<BasketLine> = shared
                .client
                .call(session::ADD_ITEM.key(&who.user.id), &item)
                .await?;
            Ok(cart_of(&lines))
        }
        (["cart", "remove"], &Method::POST) => {
            #[derive(Deserialize)]
            struct Remove {
                product_id: i64,
            }
            let (who, remove): (_, Remove) = authenticated_body(shared, request).await?;
            let lines: Vec<BasketLine> = shared
                .client
                .call(session::REMOVE_ITEM.key(&who.user.id), &remove.product_id)
                .await?;
            Ok(cart_of(&lines))
        }
        (["checkout"], &Method::POST) => checkout(shared, request).await,
        (["orders"], &Method::GET) => {
            let who = identity::require(&shared.app, &request).await?;
            let user = who.user.clone();
            let list = shared
                .query(move |c| {
                    if user.is_admin {
                        orders::all_orders(c, 500)
                    } else {
                        orders::orders_of(c, &user.id)
                    }
                })
                .await?;
            Ok(http::json(StatusCode::OK, &list))
        }
        (["orders", order_id], &Method::GET) => {
            let who = identity::require(&shared.app, &request).await?;
            let order_id = http::decode(order_id)?;
            let order = visible_order(shared, &who, &order_id).await?;
            let history = shared.query(move |c| orders::history(c, &order_id)).await?;
            Ok(http::json(
                StatusCode::OK,
                &json!({ "order": order, "history": history }),
            ))
        }
        (["notifications"], &Method::GET) => {
            let who = identity::require(&shared.app, &request).await?;
            let user = who.user.clone();
            let list = shared
                .query(move |c| {
                    if user.is_admin {
                        notifications::for_admins(c, 100)
                    } else {
                        notifications::for_user(c, &user.id, 100)
                    }
                })
                .await?;
            Ok(http::json(StatusCode::OK, &list))
        }
        (["payment", "callback"], &Method::POST) => payment_callback(shared, request).await,
        (["workflow", order_id, "approve"], &Method::POST) => {
            #[derive(Deserialize)]
            struct Approval {
                approved: bool,
            }
            let order_id = http::decode(order_id)?;
            let (who, approval): (_, Approval) = authenticated_body(shared, request).await?;
            who.require_admin()?;
            let () = shared
                .client
                .call(fulfillment::APPROVE.key(&order_id), &approval.approved)
                .await?;
            Ok(http::json(
                StatusCode::OK,
                &json!({ "orderId": order_id, "approved": approval.approved }),
            ))
        }
        (["workflow", order_id, "status"], &Method::GET) => {
            let who = identity::require(&shared.app, &request).await?;
            let order_id = http::decode(order_id)?;
            visible_order(shared, &who, &order_id).await?;
            let progress = shared
                .client
                .progress(&shared.app, &order_id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("order {order_id:?} is not being fulfilled yet"))
                })?;
            Ok(http::json(StatusCode::OK, &progress))
        }
        (
            ["products" | "cart" | "orders" | "notifications" | "me"]
            | ["products" | "orders", _]
            | ["workflow", _, "status"],
            _,
        ) => Err(ApiError::method_not_allowed("GET")),
        (
            ["login" | "logout" | "checkout" | "tokens"]
            | ["cart", "add" | "remove"]
            | ["payment", "callback"]
            | ["workflow", _, "approve"],
            _,
        ) => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found(format!(
            "no API route /api/{}",
            rest.join("/")
        ))),
    }
}

/// The caller (401 if nobody), the same-origin check, and the JSON body decoded into `T`.
async fn authenticated_body<T: DeserializeOwned>(
    shared: &Shared,
    request: Request,
) -> Result<(Identity, T), ApiError> {
    identity::same_origin(&request)?;
    let who = identity::require(&shared.app, &request).await?;
    let body = json_body(shared, request).await?;
    Ok((who, body))
}

/// The body decoded into `T`: 413 over the limit, 400 naming what is wrong.
pub async fn json_body<T: DeserializeOwned>(
    shared: &Shared,
    request: Request,
) -> Result<T, ApiError> {
    let bytes = http::read_body(request, shared.limits.max_body_bytes).await?;
    // serde_json skips the bytes of an ignored field's string without checking them: refuse
    // a body that is not UTF-8 as a whole first.
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| ApiError::bad_request(format!("bad request body: not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("bad request body: {e}")))
}

async fn login(shared: &Shared, request: Request) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Login {
        user: String,
        password: String,
    }
    identity::same_origin(&request)?;
    let login: Login = json_body(shared, request).await?;
    let (user, session) = open_session(shared, login.user, login.password).await?;
    let response = http::json(
        StatusCode::OK,
        &json!({ "user": user, "csrfToken": session.csrf_token }),
    );
    Ok(identity::set_session_cookie(response, &session.token))
}

/// Checks a user's password and opens a session (the login of the API and of the login page);
/// 401 on an unknown user or a wrong password.
pub async fn open_session(
    shared: &Shared,
    user: String,
    password: String,
) -> Result<(catalog::User, auth::NewSession), ApiError> {
    let session = shared
        .query(move |c| {
            let Some(user) = auth::verify_password(c, &user, &password)? else {
                return Ok(None);
            };
            let session = auth::create_session(c, &user.id, identity::SESSION_TTL_MS, now_ms())?;
            Ok(Some((user, session)))
        })
        .await?;
    session.ok_or_else(|| ApiError::unauthorized("unknown user or wrong password"))
}

/// The caller's basket with its subtotal.
async fn cart(shared: &Shared, who: &Identity) -> Result<Response, ApiError> {
    let lines: Vec<BasketLine> = shared.client.basket(&who.user.id).await?;
    Ok(cart_of(&lines))
}

/// The cart answer: the lines and their subtotal.
fn cart_of(lines: &[BasketLine]) -> Response {
    let subtotal: i64 = lines
        .iter()
        .map(|l| l.unit_price_cents.saturating_mul(i64::from(l.quantity)))
        .sum();
    http::json(
        StatusCode::OK,
        &json!({ "items": lines, "subtotalCents": subtotal }),
    )
}

/// Starts a checkout (202): the order id is the request's or a new one, and is the idempotency
/// key, so a retried request maps to the same checkout.
async fn checkout(shared: &Shared, request: Request) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        order_id: Option<String>,
        zone: String,
        address: String,
    }
    let (who, body): (_, Body) = authenticated_body(shared, request).await?;
    let (order_id, id) =
        start_checkout(shared, &who, body.order_id, body.zone, body.address).await?;
    Ok(http::json(
        StatusCode::ACCEPTED,
        &json!({
            "orderId": order_id,
            "invocationId": id,
            "status": "awaiting_payment",
            "statusUrl": format!("/api/workflow/{order_id}/status"),
        }),
    ))
}

/// Starts the caller's checkout (of the API and of the cart page): the order id is `order_id`
/// or a new one, and is the idempotency key, so a retried request maps to the same checkout.
/// 400 on a bad order id, an unknown zone or an empty basket. Returns the order id and the
/// checkout's invocation.
pub async fn start_checkout(
    shared: &Shared,
    who: &Identity,
    order_id: Option<String>,
    zone: String,
    address: String,
) -> Result<(String, String), ApiError> {
    let order_id = order_id.unwrap_or_else(|| format!("ord-{}", uuid::Uuid::new_v4().simple()));
    if order_id.is_empty() || order_id.len() > 64 || order_id.contains('/') {
        return Err(ApiError::bad_request(
            "order_id must be 1 to 64 characters without '/'",
        ));
    }
    let code = zone.clone();
    let known_zone = shared.query(move |c| catalog::zone(c, &code)).await?;
    if known_zone.is_none() {
        return Err(ApiError::bad_request(format!(
            "unknown shipping zone {zone:?}"
        )));
    }
    let lines: Vec<BasketLine> = shared.client.basket(&who.user.id).await?;
    if lines.is_empty() {
        // A paid checkout empties the basket: a retry of it (same order id, same user) must
        // still answer that checkout, not "empty".
        let (id, user) = (order_id.clone(), who.user.id.clone());
        let placed = shared.query(move |c| orders::order(c, &id)).await?;
        if placed.is_none_or(|order| order.user_id != user) {
            return Err(ApiError::bad_request("the basket is empty"));
        }
    }
    let checkout = Checkout {
        order_id: order_id.clone(),
        zone,
        address,
        carrier: None,
    };
    let id = shared
        .client
        .send_idempotent(
            session::CHECKOUT.key(&who.user.id),
            &checkout,
            format!("checkout/{order_id}"),
        )
        .await?;
    Ok((order_id, id))
}

/// The order if the caller may see it (its owner or an admin); 404 otherwise, so that other
/// users' order ids are not revealed.
pub async fn visible_order(
    shared: &Shared,
    who: &Identity,
    order_id: &str,
) -> Result<orders::Order, ApiError> {
    let id = order_id.to_owned();
    let order = shared.query(move |c| orders::order(c, &id)).await?;
    match order {
        Some(order) if who.user.is_admin || order.user_id == who.user.id => Ok(order),
        _ => Err(ApiError::not_found(format!("no order {order_id:?}"))),
    }
}

/// The payment gateway's callback: `{"order_id", "status": "paid"|"declined", "reason"?}`
/// signed with HMAC-SHA256 of the body in `X-Signature: sha256=<hex>`. A bad or missing
/// signature is 401 and changes nothing.
async fn payment_callback(shared: &Shared, request: Request) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Callback {
        order_id: String,
        status: String,
        reason: Option<String>,
    }
    let signature = request
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("sha256=").unwrap_or(v).to_owned());
    let body = http::read_body(request, shared.limits.max_body_bytes).await?;
    let Some(signature) = signature else {
        return Err(ApiError::unauthorized(format!(
            "missing {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body>"
        )));
    };
    if !payment_signature::verify(&shared.callback_secret, &body, &signature) {
        return Err(ApiError::unauthorized("bad signature"));
    }
    let callback: Callback = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad callback body: {e}")))?;
    match callback.status.as_str() {
        "paid" => {
            let () = shared.client.call(payment::PAY, &callback.order_id).await?;
        }
        "declined" => {
            let decline = Decline {
                order_id: callback.order_id.clone(),
                reason: callback
                    .reason
                    .unwrap_or_else(|| "declined by the bank".into()),
            };
            let () = shared.client.call(payment::DECLINE, &decline).await?;
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "status {other:?}: use \"paid\" or \"declined\""
            )));
        }
    }
    Ok(http::json(
        StatusCode::OK,
        &json!({ "orderId": callback.order_id, "status": callback.status }),
    ))
}
