//! Shipments: at most one per order, created once by the shipping service and cancelled (never
//! deleted) by the fulfillment's compensation.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::DbError;
use super::sql::{count, from_row, select_one, text_enum, write};

text_enum! {
    /// Whether a shipment stands.
    pub enum ShipmentStatus {
        /// On its way, or delivered.
        Active => "active",
        /// Called off by a compensation.
        Cancelled => "cancelled",
    }
}

/// A shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The order shipped.
    pub order_id: String,
    /// The carrier's name.
    pub carrier: String,
    /// The carrier's tracking number, unique across shipments.
    pub tracking_number: String,
    /// Whether it stands.
    pub status: ShipmentStatus,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it was cancelled, if it was.
    pub cancelled_at_ms: Option<i64>,
    /// How many calls to the carrier it took.
    pub attempts: u32,
}

from_row!(
    Shipment,
    "shipments",
    [
        order_id,
        carrier,
        tracking_number,
        status,
        created_at_ms,
        cancelled_at_ms,
        attempts
    ]
);

/// Creates the order's shipment and returns it.
///
/// Idempotent by order id: if the order has a shipment already (even a cancelled one), this
/// changes nothing and returns it as stored, whatever the arguments say now. A tracking number
/// already used by another order's shipment fails the unique constraint ([`DbError::Sqlite`]).
pub fn create(
    conn: &Connection,
    order_id: &str,
    carrier: &str,
    tracking_number: &str,
    attempts: u32,
    now_ms: i64,
) -> Result<Shipment, DbError> {
    write(
        conn,
        "INSERT INTO shipments (order_id, carrier, tracking_number, created_at_ms, attempts)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (order_id) DO NOTHING",
        (order_id, carrier, tracking_number, now_ms, attempts),
    )?;
    shipment(conn, order_id)?.ok_or_else(|| DbError::not_found("shipment", order_id))
}

/// Cancels the order's shipment. Idempotent: true if this call cancelled it; false if it was
/// cancelled already or the order has none.
pub fn cancel(conn: &Connection, order_id: &str, now_ms: i64) -> Result<bool, DbError> {
    Ok(write(
        conn,
        "UPDATE shipments SET status = 'cancelled', cancelled_at_ms = ?2
         WHERE order_id = ?1 AND status = 'active'",
        (order_id, now_ms),
    )? > 0)
}

/// The order's shipment, if any.
pub fn shipment(conn: &Connection, order_id: &str) -> Result<Option<Shipment>, DbError> {
    select_one(conn, "WHERE order_id = ?1", [order_id])
}

/// How many shipments are active (not cancelled).
pub fn count_active(conn: &Connection) -> Result<i64, DbError> {
    count(
        conn,
        "SELECT COUNT(*) FROM shipments WHERE status = 'active'",
        [],
    )
}
