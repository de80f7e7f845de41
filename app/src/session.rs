//! UserSession: a virtual object per user holding the basket, and checkout.
//!
//! Checkout is short and idempotent per order id: it prices the basket from SQLite, records the
//! order, moves the basket's lines into it and submits the order's `OrderPayment` workflow, which
//! waits for the payment without holding this object's key (the basket stays usable meanwhile).
//! An accepted checkout's summary is kept in the object's state, so a repeat with the same order
//! id answers it again, even once the basket is empty; a refusal changes nothing, so the same
//! order id may be tried again with the mistake fixed.

use serde::{Deserialize, Serialize};
use zeroapp_engine::prelude::*;

use crate::db::{catalog, orders};
use crate::error::DomainError;
use crate::order_payment::{self, PendingOrder};
use crate::status::OrderStatus;
use crate::{App, events, shipping, step_error};

/// The object's name.
pub const NAME: &str = "UserSession";

/// Adds a product to the user's basket; answers the basket.
pub const ADD_ITEM: ObjectHandler<AddItem, Vec<BasketLine>> = ObjectHandler::new(NAME, "add_item");
/// Removes a product (by id) from the user's basket; answers the basket.
pub const REMOVE_ITEM: ObjectHandler<i64, Vec<BasketLine>> =
    ObjectHandler::new(NAME, "remove_item");
/// The user's basket.
pub const GET_BASKET: ObjectHandler<(), Vec<BasketLine>> = ObjectHandler::new(NAME, "get_basket");
/// Checks the basket out as one order (idempotent per order id) and submits its payment.
pub const CHECKOUT: ObjectHandler<Checkout, CheckoutSummary> = ObjectHandler::new(NAME, "checkout");
/// Puts lines back into the basket (a declined order's); answers the basket.
pub const RETURN_ITEMS: ObjectHandler<Vec<BasketLine>, Vec<BasketLine>> =
    ObjectHandler::new(NAME, "return_items");

/// The longest address checkout takes, in characters.
pub const MAX_ADDRESS_CHARS: usize = 500;

/// The longest order id checkout takes, in bytes.
pub const MAX_ORDER_ID_BYTES: usize = 64;

/// A fresh order id, for a checkout whose client chose none: `o-` and 12 random hex digits
/// (48 bits: short enough to read in a notification, and a clash — which checkout refuses as
/// a used order id, changing nothing — is unlikely before some ten million orders).
pub fn new_order_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("o-{}", &hex[..12])
}

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
    /// The carrier's name (one of [`shipping::CARRIERS`]); `None` for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
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
    /// What is charged.
    pub total_cents: i64,
    /// The carrier chosen.
    pub carrier: String,
}

/// The object definition.
pub(crate) fn object(app: &App) -> VirtualObject {
    VirtualObject::new(NAME)
        .exclusive(ADD_ITEM, with_state(app.clone(), add_item))
        .exclusive(REMOVE_ITEM, remove_item)
        .shared(GET_BASKET, get_basket)
        .exclusive(CHECKOUT, with_state(app.clone(), run_checkout))
        .exclusive(RETURN_ITEMS, with_state(app.clone(), return_items))
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

/// The state key keeping an accepted checkout's summary.
fn outcome_key(order_id: &str) -> String {
    format!("checkout/{order_id}")
}

async fn return_items(
    app: App,
    ctx: ObjectContext,
    returned: Vec<BasketLine>,
) -> Result<Vec<BasketLine>, HandlerError> {
    let max = app.config().max_quantity;
    let mut lines = basket(&ctx).await?;
    for line in returned {
        match lines.iter_mut().find(|l| l.product_id == line.product_id) {
            Some(held) => held.quantity = held.quantity.saturating_add(line.quantity).min(max),
            None => lines.push(line),
        }
    }
    ctx.set(BASKET, &lines)?;
    Ok(lines)
}

async fn run_checkout(
    app: App,
    ctx: ObjectContext,
    checkout: Checkout,
) -> Result<CheckoutSummary, HandlerError> {
    let key = outcome_key(&checkout.order_id);
    if let Some(summary) = ctx.get::<CheckoutSummary>(&key).await? {
        return Ok(summary);
    }
    let summary = checkout_once(&app, &ctx, &checkout)
        .await?
        .map_err(TerminalError::from)?;
    ctx.set(&key, &summary)?;
    Ok(summary)
}

/// One checkout: a refusal (nothing changed: the same order id may be tried again) or the
/// accepted order; `Err` for failures that are not the domain's answer.
async fn checkout_once(
    app: &App,
    ctx: &ObjectContext,
    checkout: &Checkout,
) -> Result<Result<CheckoutSummary, DomainError>, HandlerError> {
    let user = ctx.key().to_owned();
    let id = &checkout.order_id;
    if id.is_empty() || id.len() > MAX_ORDER_ID_BYTES || id.contains('/') {
        return Ok(Err(DomainError::BadOrderId(id.clone())));
    }
    let lines = basket(ctx).await?;
    if lines.is_empty() {
        return Ok(Err(DomainError::EmptyBasket));
    }
    let address = checkout.address.trim().to_owned();
    if address.is_empty() || address.chars().count() > MAX_ADDRESS_CHARS {
        return Ok(Err(DomainError::BadAddress(format!(
            "give a postal address of at most {MAX_ADDRESS_CHARS} characters"
        ))));
    }
    let carrier = match checkout.carrier.as_deref() {
        None => shipping::CARRIERS[0],
        Some(name) => match shipping::carrier(name) {
            Some(carrier) => carrier,
            None => return Ok(Err(DomainError::UnknownCarrier(name.to_owned()))),
        },
    };
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
                    db.call(move |conn| {
                        let order = Priced {
                            user: &user,
                            lines: &lines,
                            checkout: &checkout,
                            address: &address,
                            carrier: carrier.name,
                        };
                        price(conn, &order, now)
                    })
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
    // The lines move into the order: the basket is free for the next one at once. A declined
    // payment brings them back (`order_payment`).
    ctx.clear(BASKET);
    events::record(
        app,
        ctx,
        &order.id,
        &user,
        OrderStatus::AwaitingPayment,
        format!(
            "Order {} placed: awaiting payment of {}",
            order.id,
            money(order.total_cents)
        ),
        false,
    )
    .await?;
    let pending = PendingOrder {
        order_id: order.id.clone(),
        user_id: user,
        lines,
        total_cents: order.total_cents,
    };
    ctx.send(order_payment::RUN.key(&order.id), &pending)
        .await?;
    Ok(Ok(CheckoutSummary {
        order_id: order.id,
        subtotal_cents: order.subtotal_cents,
        shipping_cents: order.shipping_cents,
        total_cents: order.total_cents,
        carrier: order.carrier,
    }))
}

/// What [`price`] records.
struct Priced<'a> {
    user: &'a str,
    lines: &'a [BasketLine],
    checkout: &'a Checkout,
    address: &'a str,
    carrier: &'a str,
}

/// Prices the basket and records the order; a refusal changes nothing.
fn price(
    conn: &rusqlite::Connection,
    order: &Priced<'_>,
    now_ms: i64,
) -> Result<Result<orders::Order, DomainError>, crate::db::DbError> {
    let Priced {
        user,
        lines,
        checkout,
        address,
        carrier,
    } = *order;
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
            carrier: carrier.to_owned(),
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
