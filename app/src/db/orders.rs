//! Orders and their status history.
//!
//! An order is created once, at checkout; afterwards only its status changes, through
//! [`record_status`], which also appends to its history. Both are idempotent (by order id and by
//! event key), so a durable step replayed after a crash writes nothing twice.

use rusqlite::types::Type;
use rusqlite::{Connection, Row};
use serde::{Deserialize, Serialize};

use super::DbError;
use super::sql::{FromRow, atomic, from_row, select, select_one, write};

/// One priced line of an order, frozen at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product.
    pub product_id: i64,
    /// Its SKU at checkout.
    pub sku: String,
    /// Its name at checkout.
    pub name: String,
    /// Units ordered (at least 1).
    pub quantity: u32,
    /// The unit price at checkout, in cents.
    pub unit_price_cents: i64,
}

impl OrderItem {
    /// `quantity × unit_price_cents`, or `None` on overflow.
    pub fn line_total_cents(&self) -> Option<i64> {
        self.unit_price_cents.checked_mul(i64::from(self.quantity))
    }
}

/// What [`create_order`] needs; the totals are computed from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// The order id, chosen by the caller (it is the idempotency key).
    pub id: String,
    /// The user placing it; must exist in `users`.
    pub user_id: String,
    /// The priced lines (at least one).
    pub items: Vec<OrderItem>,
    /// The zone's shipping cost, in cents.
    pub shipping_cents: i64,
    /// The shipping zone's code; must exist in `shipping_zones`.
    pub zone: String,
    /// The delivery address.
    pub address: String,
    /// The carrier chosen (see `shipping::CARRIERS`).
    pub carrier: String,
    /// The status it starts in, such as `"awaiting_payment"`.
    pub status: String,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order id.
    pub id: String,
    /// The user who placed it.
    pub user_id: String,
    /// Its lines, as priced at checkout.
    pub items: Vec<OrderItem>,
    /// The sum of the lines, in cents.
    pub subtotal_cents: i64,
    /// The shipping cost, in cents.
    pub shipping_cents: i64,
    /// `subtotal_cents + shipping_cents`.
    pub total_cents: i64,
    /// The shipping zone's code.
    pub zone: String,
    /// The delivery address.
    pub address: String,
    /// The carrier chosen at checkout (see `shipping::CARRIERS`).
    pub carrier: String,
    /// Its current status (the workflow's vocabulary, such as `"paid"`).
    pub status: String,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When its status last changed, in milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

impl FromRow for Order {
    const TABLE: &'static str = "orders";
    const COLUMNS: &'static str = "id, user_id, items, subtotal_cents, shipping_cents, \
        total_cents, zone, address, status, created_at_ms, updated_at_ms, carrier";
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let items: String = row.get(2)?;
        let items = serde_json::from_str(&items)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, Type::Text, Box::new(e)))?;
        Ok(Self {
            id: row.get(0)?,
            user_id: row.get(1)?,
            items,
            subtotal_cents: row.get(3)?,
            shipping_cents: row.get(4)?,
            total_cents: row.get(5)?,
            zone: row.get(6)?,
            address: row.get(7)?,
            status: row.get(8)?,
            created_at_ms: row.get(9)?,
            updated_at_ms: row.get(10)?,
            carrier: row.get(11)?,
        })
    }
}

/// One status an order went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Its id; ids grow with time.
    pub id: i64,
    /// The order.
    pub order_id: String,
    /// The status entered.
    pub status: String,
    /// Free text about the change (a carrier, a reason for a rejection...).
    pub detail: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The key that made the change happen once.
    pub event_key: String,
}

from_row!(
    HistoryEntry,
    "order_history",
    [id, order_id, status, detail, at_ms, event_key]
);

/// Creates the order in its starting status, with its subtotal (the sum of the lines) and
/// total (plus shipping), and returns it as stored. This writes no history: the history starts
/// with the first [`record_status`].
///
/// Idempotent by order id: if the order exists, this changes nothing and returns it as stored
/// (compare its `user_id` to detect an id reused by someone else). Refuses with
/// [`DbError::Invalid`] an order without items or with a zero quantity; an unknown user or
/// zone fails the foreign key ([`DbError::Sqlite`]).
pub fn create_order(conn: &Connection, order: &NewOrder, now_ms: i64) -> Result<Order, DbError> {
    if order.items.is_empty() {
        return Err(DbError::Invalid(format!(
            "order {:?} has no items",
            order.id
        )));
    }
    if order.items.iter().any(|item| item.quantity == 0) {
        return Err(DbError::Invalid(format!(
            "order {:?}: a quantity is 0",
            order.id
        )));
    }
    let too_large = || DbError::Invalid(format!("order {:?}: the total is too large", order.id));
    let subtotal_cents = order.items.iter().try_fold(0_i64, |sum, item| {
        item.line_total_cents()
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(too_large)
    })?;
    let total_cents = subtotal_cents
        .checked_add(order.shipping_cents)
        .ok_or_else(too_large)?;
    let items = serde_json::to_string(&order.items)
        .map_err(|e| DbError::Invalid(format!("order {:?}: items: {e}", order.id)))?;
    write(
        conn,
        "INSERT INTO orders (id, user_id, items, subtotal_cents, shipping_cents, total_cents,
                             zone, address, status, created_at_ms, updated_at_ms, carrier)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)
         ON CONFLICT (id) DO NOTHING",
        rusqlite::params![
            order.id,
            order.user_id,
            items,
            subtotal_cents,
            order.shipping_cents,
            total_cents,
            order.zone,
            order.address,
            order.status,
            now_ms,
            order.carrier,
        ],
    )?;
    self::order(conn, &order.id)?.ok_or_else(|| DbError::not_found("order", &order.id))
}

/// The order with this id, if any.
pub fn order(conn: &Connection, id: &str) -> Result<Option<Order>, DbError> {
    select_one(conn, "WHERE id = ?1", [id])
}

/// A user's orders, newest first.
pub fn orders_of(conn: &Connection, user_id: &str) -> Result<Vec<Order>, DbError> {
    select(
        conn,
        "WHERE user_id = ?1 ORDER BY created_at_ms DESC, id DESC",
        [user_id],
    )
}

/// The newest `limit` orders of all users, newest first.
pub fn all_orders(conn: &Connection, limit: u32) -> Result<Vec<Order>, DbError> {
    select(
        conn,
        "ORDER BY created_at_ms DESC, id DESC LIMIT ?1",
        [limit],
    )
}

/// Moves the order to `status` and appends the change to its history, in one transaction.
///
/// Idempotent by `event_key` (unique across all orders, such as `"{order}/approved"`): true if
/// this call made the change; false, changing nothing, if that key was recorded before.
/// Refuses with [`DbError::NotFound`] an unknown order.
pub fn record_status(
    conn: &Connection,
    order_id: &str,
    status: &str,
    detail: &str,
    event_key: &str,
    now_ms: i64,
) -> Result<bool, DbError> {
    atomic(conn, |conn| {
        let changed = write(
            conn,
            "UPDATE orders SET status = ?2, updated_at_ms = ?3
             WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM order_history WHERE event_key = ?4)",
            (order_id, status, now_ms, event_key),
        )?;
        if changed == 0 {
            if order(conn, order_id)?.is_none() {
                return Err(DbError::not_found("order", order_id));
            }
            return Ok(false);
        }
        write(
            conn,
            "INSERT INTO order_history (order_id, status, detail, at_ms, event_key)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            (order_id, status, detail, now_ms, event_key),
        )?;
        Ok(true)
    })
}

/// The order's history, oldest first.
pub fn history(conn: &Connection, order_id: &str) -> Result<Vec<HistoryEntry>, DbError> {
    select(conn, "WHERE order_id = ?1 ORDER BY id", [order_id])
}
