//! The JSON API: catalog, cart, checkout, the payment callback, approvals, order status, login.
//! docs/api.md lists every route with a curl example.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use zeroapp_app::fulfillment;
use zeroapp_app::payment::{self, Decline};
use zeroapp_app::payment_signature;
use zeroapp_app::session::{self, AddItem, BasketLine, Checkout, CheckoutSummary};
use zeroapp_engine::http::{self, ApiError, Request, Response};

use crate::identity::{self, Identity};
use crate::shared::{Shared, db_failure};

/// The header carrying the payment callback's signature: `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "x-signature";

/// Answers `/api/…`; `rest` is the path after `/api/`, split on `/`.
pub async fn route(shared: &Shared, request: Request, rest: &[&str]) -> Result<Response, ApiError> {
    let method = request.method().clone();
    match (rest, &method) {
        (["products"], &Method::GET) => {
            let products = shared.app.products().await.map_err(db_failure)?;
            Ok(http::json(StatusCode::OK, &products))
        }
        (["products", id], &Method::GET) => {
            let id: i64 = id
                .parse()
                .map_err(|_| ApiError::bad_request(format!("product id {id:?} is not a number")))?;
            let product = shared
                .app
                .product(id)
                .await
                .map_err(db_failure)?
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
            let token = shared
                .app
                .create_api_token(&who.user.id, &name.name)
                .await
                .map_err(db_failure)?;
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
            let list = shared.app.orders_for(&who.user).await.map_err(db_failure)?;
            Ok(http::json(StatusCode::OK, &list))
        }
        (["orders", order_id], &Method::GET) => {
            let who = identity::require(&shared.app, &request).await?;
            let order_id = http::decode(order_id)?;
            let order = shared.visible_order(&who.user, &order_id).await?;
            let history = shared.app.history(&order_id).await.map_err(db_failure)?;
            Ok(http::json(
                StatusCode::OK,
                &json!({ "order": order, "history": history }),
            ))
        }
        (["notifications"], &Method::GET) => {
            let who = identity::require(&shared.app, &request).await?;
            let list = shared
                .app
                .notifications_for(&who.user, 100)
                .await
                .map_err(db_failure)?;
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
            shared.visible_order(&who.user, &order_id).await?;
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
    let (user, session) = identity::open_session(&shared.app, &login.user, &login.password).await?;
    let response = http::json(
        StatusCode::OK,
        &json!({ "user": user, "csrfToken": session.csrf_token }),
    );
    Ok(identity::set_session_cookie(response, &session.token))
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

/// Checks the caller's basket out (200 with the order's totals, before its payment): the order
/// id is the request's or a new one, and a retry with it answers the same order. A refusal
/// (empty basket, unknown zone or carrier, bad address, out of stock) is 4xx with its reason.
async fn checkout(shared: &Shared, request: Request) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        order_id: Option<String>,
        zone: String,
        address: String,
        carrier: Option<String>,
    }
    let (who, body): (_, Body) = authenticated_body(shared, request).await?;
    let checkout = Checkout {
        order_id: body.order_id.unwrap_or_else(session::new_order_id),
        zone: body.zone,
        address: body.address,
        carrier: body.carrier,
    };
    let summary: CheckoutSummary = shared
        .client
        .call(session::CHECKOUT.key(&who.user.id), &checkout)
        .await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "orderId": summary.order_id,
            "status": "awaiting_payment",
            "subtotalCents": summary.subtotal_cents,
            "shippingCents": summary.shipping_cents,
            "totalCents": summary.total_cents,
            "carrier": summary.carrier,
            "orderUrl": format!("/api/orders/{}", summary.order_id),
        }),
    ))
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
