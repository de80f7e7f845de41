//! UserSession: a virtual object per user holding the basket, and checkout.
//!
//! Checkout is idempotent per order id: its outcome is kept in the object's state, and a repeat
//! with the same order id answers it again. It prices the basket from SQLite, creates a payment
//! awakeable, files the payment request with the gateway simulator inside a `run` step and waits.
//! Paid: the basket is cleared and the order's OrderFulfillment workflow starts. Declined: the
//! basket stays and checkout fails with the reason.

use serde::{Deserialize, Serialize};
use zeroapp_engine::prelude::*;

use crate::db::{catalog, orders};
use crate::error::DomainError;
use crate::fulfillment::{self, FulfillmentOrder};
use crate::payment::{self, Receipt};
use crate::status::OrderStatus;
use crate::{App, events, step_error};

/// The object's name.
pub const NAME: &str = "UserSession";

/// Adds a product to the user's basket; answers the basket.
pub const ADD_ITEM: ObjectHandler<AddItem, Vec<BasketLine>> = ObjectHandler::new(NAME, "add_item");
/// Removes a product (by id) from the user's basket; answers the basket.
pub const REMOVE_ITEM: ObjectHandler<i64, Vec<BasketLine>> =
    ObjectHandler::new(NAME, "remove_item");
/// The user's basket.
pub const GET_BASKET: ObjectHandler<(), Vec<BasketLine>> = ObjectHandler::new(NAME, "get_basket");
/// Checks the basket out as one order (idempotent per order id).
pub const CHECKOUT: ObjectHandler<Checkout, CheckoutSummary> = ObjectHandler::new(NAME, "checkout");

/// The state key under which the object keeps the user's basket: readers outside the object
/// (pages, the JSON API) read it as committed state, without an invocation, as they read an
/// order's progress.
pub const BASKET: &str = "basket";

/// One line of a basket, priced when it was added (checkout prices again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasketLine {
    /// The product.
    pub product_id: i64,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its unit price.
    pub unit_price_cents: i64,
    /// How many.
    pub quantity: u32,
}

/// `add_item`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddItem {
    /// The product.
    pub product_id: i64,
    /// How many to add (1 to the configured limit per line, in total).
    pub quantity: i64,
}

/// `checkout`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    /// The order id the client chose; repeating it repeats the answer.
    pub order_id: String,
    /// The shipping zone's code.
    pub zone: String,
    /// Where to ship.
    pub address: String,
}

/// A successful checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSummary {
    /// The order.
    pub order_id: String,
    /// Sum of the lines.
    pub subtotal_cents: i64,
    /// The zone's shipping cost.
    pub shipping_cents: i64,
    /// What was charged.
    pub total_cents: i64,
}

/// The object definition.
pub(crate) fn object(app: &App) -> VirtualObject {
    VirtualObject::new(NAME)
        .exclusive(ADD_ITEM, with_state(app.clone(), add_item))
        .exclusive(REMOVE_ITEM, remove_item)
        .shared(GET_BASKET, get_basket)
        .exclusive(CHECKOUT, with_state(app.clone(), run_checkout))
}

async fn basket(ctx: &impl ContextReadState) -> Result<Vec<BasketLine>, TerminalError> {
    Ok(ctx
        .get::<Vec<BasketLine>>(BASKET)
        .await?
        .unwrap_or_default())
}

async fn add_item(
    app: App,
    ctx: ObjectContext,
    item: AddItem,
) -> Result<Vec<BasketLine>, HandlerError> {
    let max = app.config().max_quantity;
    let mut lines = basket(&ctx).await?;
    let already = lines
        .iter()
        .find(|l| l.product_id == item.product_id)
        .map_or(0, |l| i64::from(l.quantity));
    let total = already.saturating_add(item.quantity);
    if item.quantity <= 0 || total > i64::from(max) {
        return Err(TerminalError::from(DomainError::BadQuantity {
            quantity: item.quantity,
            max,
        })
        .into());
    }
    let product_id = item.product_id;
    let product = ctx
        .run("look up product", move || {
            let db = app.db().clone();
            async move {
                db.call(move |conn| catalog::product(conn, product_id))
                    .await
                    .map_err(step_error)
            }
        })
        .await?
        .ok_or(DomainError::UnknownProduct(product_id))
        .map_err(TerminalError::from)?;
    let quantity = u32::try_from(total).unwrap_or(u32::MAX);
    if i64::from(product.stock) < total {
        return Err(TerminalError::from(DomainError::OutOfStock {
            sku: product.sku,
            requested: total,
            available: i64::from(product.stock),
        })
        .into());
    }
    match lines.iter_mut().find(|l| l.product_id == product_id) {
        Some(line) => line.quantity = quantity,
        None => lines.push(BasketLine {
            product_id,
            sku: product.sku,
            name: product.name,
            unit_price_cents: product.price_cents,
            quantity,
        }),
    }
    ctx.set(BASKET, &lines)?;
    Ok(lines)
}

async fn remove_item(ctx: ObjectContext, product_id: i64) -> Result<Vec<BasketLine>, HandlerError> {
    let mut lines = basket(&ctx).await?;
    lines.retain(|l| l.product_id != product_id);
    ctx.set(BASKET, &lines)?;
    Ok(lines)
}

async fn get_basket(ctx: SharedObjectContext, (): ()) -> Result<Vec<BasketLine>, HandlerError> {
    Ok(basket(&ctx).await?)
}

/// The state key keeping a checkout's outcome.
fn outcome_key(order_id: &str) -> String {
    format!("checkout/{order_id}")
}

async fn run_checkout(
    app: App,
    ctx: ObjectContext,
    checkout: Checkout,
) -> Result<CheckoutSummary, HandlerError> {
    let key = outcome_key(&checkout.order_id);
    if let Some(outcome) = ctx
        .get::<Result<CheckoutSummary, DomainError>>(&key)
        .await?
    {
        return Ok(outcome.map_err(TerminalError::from)?);
    }
    let outcome = checkout_once(&app, &ctx, &checkout).await?;
    ctx.set(&key, &outcome)?;
    Ok(outcome.map_err(TerminalError::from)?)
}

/// One checkout: a refusal (kept as the order id's answer) or a summary; `Err` for failures
/// that are not the domain's answer.
async fn checkout_once(
    app: &App,
    ctx: &ObjectContext,
    checkout: &Checkout,
) -> Result<Result<CheckoutSummary, DomainError>, HandlerError> {
    let user = ctx.key().to_owned();
    let lines = basket(ctx).await?;
    if lines.is_empty() {
        return Ok(Err(DomainError::EmptyBasket));
    }
    let address = checkout.address.trim().to_owned();
    if address.is_empty() || address.len() > 500 {
        return Ok(Err(DomainError::BadAddress(
            "give a postal address of at most 500 characters".into(),
        )));
    }
    // Price from SQLite, check stock, and record the order (idempotent by order id).
    let order = ctx
        .run("price and record the order", {
            let app = app.clone();
            let (user, lines, checkout, address) = (
                user.clone(),
                lines.clone(),
                checkout.clone(),
                address.clone(),
            );
            move || {
                let (user, lines, checkout, address) = (
                    user.clone(),
                    lines.clone(),
                    checkout.clone(),
                    address.clone(),
                );
                let db = app.db().clone();
                let now = app.now_ms();
                async move {
                    db.call(move |conn| price(conn, &user, &lines, &checkout, &address, now))
                        .await
                        .map_err(step_error)
                }
            }
        })
        .await?;
    let order = match order {
        Ok(order) => order,
        Err(refusal) => return Ok(Err(refusal)),
    };
    events::record(
        app,
        ctx,
        &order.id,
        &user,
        OrderStatus::AwaitingPayment,
        format!(
            "Order {} placed: waiting for payment of {}",
            order.id,
            money(order.total_cents)
        ),
        false,
    )
    .await?;

    let (awakeable_id, payment) = ctx.awakeable::<Receipt>();
    let auto_pay = ctx
        .run("file payment request", {
            let app = app.clone();
            let (order_id, user) = (order.id.clone(), user.clone());
            let total = order.total_cents;
            move || {
                let (app, order_id, user, awakeable_id) =
                    (app.clone(), order_id.clone(), user.clone(), awakeable_id.clone());
                async move { payment::file_request(&app, order_id, user, total, awakeable_id).await }
            }
        })
        .await?;
    if auto_pay {
        ctx.send(payment::PAY, &order.id).await?;
    }
    match payment.await {
        Ok(_receipt) => {}
        Err(declined) => {
            events::record(
                app,
                ctx,
                &order.id,
                &user,
                OrderStatus::PaymentDeclined,
                format!(
                    "Payment for order {} declined: {}",
                    order.id,
                    declined.message()
                ),
                false,
            )
            .await?;
            return Ok(Err(DomainError::PaymentDeclined(
                declined.message().to_owned(),
            )));
        }
    }
    ctx.clear(BASKET);
    events::record(
        app,
        ctx,
        &order.id,
        &user,
        OrderStatus::Paid,
        format!("Payment for order {} received", order.id),
        true,
    )
    .await?;
    let fulfillment_order = FulfillmentOrder {
        order_id: order.id.clone(),
        user_id: user,
        lines: lines.iter().map(|l| (l.product_id, l.quantity)).collect(),
    };
    ctx.send(fulfillment::RUN.key(&order.id), &fulfillment_order)
        .await?;
    Ok(Ok(CheckoutSummary {
        order_id: order.id,
        subtotal_cents: order.subtotal_cents,
        shipping_cents: order.shipping_cents,
        total_cents: order.total_cents,
    }))
}

/// Prices the basket and records the order; a refusal changes nothing.
fn price(
    conn: &rusqlite::Connection,
    user: &str,
    lines: &[BasketLine],
    checkout: &Checkout,
    address: &str,
    now_ms: i64,
) -> Result<Result<orders::Order, DomainError>, crate::db::DbError> {
    if catalog::user(conn, user)?.is_none() {
        return Ok(Err(DomainError::UnknownUser(user.to_owned())));
    }
    let Some(zone) = catalog::zone(conn, &checkout.zone)? else {
        return Ok(Err(DomainError::UnknownZone(checkout.zone.clone())));
    };
    let mut priced = Vec::new();
    for line in lines {
        let Some(product) = catalog::product(conn, line.product_id)? else {
            return Ok(Err(DomainError::UnknownProduct(line.product_id)));
        };
        if product.stock < line.quantity {
            return Ok(Err(DomainError::OutOfStock {
                sku: product.sku,
                requested: i64::from(line.quantity),
                available: i64::from(product.stock),
            }));
        }
        priced.push(orders::OrderItem {
            product_id: product.id,
            sku: product.sku,
            name: product.name,
            unit_price_cents: product.price_cents,
            quantity: line.quantity,
        });
    }
    let order = orders::create_order(
        conn,
        &orders::NewOrder {
            id: checkout.order_id.clone(),
            user_id: user.to_owned(),
            items: priced,
            shipping_cents: zone.cost_cents,
            zone: zone.code,
            address: address.to_owned(),
            status: OrderStatus::AwaitingPayment.as_str().to_owned(),
        },
        now_ms,
    )?;
    if order.user_id != user {
        return Ok(Err(DomainError::OrderIdTaken(checkout.order_id.clone())));
    }
    Ok(Ok(order))
}

/// Cents as dollars: `$12.34`.
pub fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, (cents % 100).abs())
}
