//! Stock reservations: an order takes its quantities out of `products.stock` once, and a
//! compensation gives them back once.
//!
//! For every product, at any time: stock seeded = `products.stock` + the quantities of its
//! reservations not released (see [`levels`]). Reserving and releasing keep that sum, and both
//! are idempotent per order, so a step replayed after a crash cannot move stock twice.

use rusqlite::{Connection, Row};
use serde::{Deserialize, Serialize};

use super::DbError;
use super::catalog;
use super::sql::{FromRow, atomic, from_row, select, write};

/// One product's line of a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationLine {
    /// The product reserved.
    pub product_id: i64,
    /// How many units.
    pub quantity: u32,
}

/// The stock an order holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The order holding it.
    pub order_id: String,
    /// One line per product, in the order they were reserved.
    pub lines: Vec<ReservationLine>,
    /// True once [`release`] has returned the quantities to stock.
    pub released: bool,
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// A product's stock: what is on the shelf and what orders hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    /// The product.
    pub product_id: i64,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Units in stock, free to reserve.
    pub stock: u32,
    /// Units held by reservations not released (including those of shipped orders).
    pub reserved: u32,
}

impl FromRow for StockLevel {
    const TABLE: &'static str = "products p";
    const COLUMNS: &'static str = "p.id, p.sku, p.name, p.stock, \
        (SELECT COALESCE(SUM(r.quantity), 0) FROM stock_reservations r \
         WHERE r.product_id = p.id AND r.released = 0)";
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            product_id: row.get(0)?,
            sku: row.get(1)?,
            name: row.get(2)?,
            stock: row.get(3)?,
            reserved: row.get(4)?,
        })
    }
}

/// A reservation row, before rows are grouped into a [`Reservation`].
struct HeldLine {
    product_id: i64,
    quantity: u32,
    released: bool,
    created_at_ms: i64,
}

from_row!(
    HeldLine,
    "stock_reservations",
    [product_id, quantity, released, created_at_ms]
);

/// Reserves stock for an order: checks every line `(product id, quantity)` against stock, then
/// takes the quantities out of stock and records them, all in one transaction. Lines naming
/// the same product are added together.
///
/// Idempotent per order: if the order already has a reservation (even a released one), this
/// changes nothing and returns it, whatever `lines` says now.
///
/// Refuses, changing nothing, with [`DbError::OutOfStock`] (the first line that is short, with
/// the quantities), [`DbError::NotFound`] for an unknown product, or [`DbError::Invalid`] for
/// no lines or a zero quantity.
pub fn reserve(
    conn: &Connection,
    order_id: &str,
    lines: &[(i64, u32)],
    now_ms: i64,
) -> Result<Reservation, DbError> {
    atomic(conn, |conn| {
        if let Some(existing) = reservation(conn, order_id)? {
            return Ok(existing);
        }
        let lines = merge_lines(lines)?;
        for &(product_id, requested) in &lines {
            let product = catalog::product(conn, product_id)?
                .ok_or_else(|| DbError::not_found("product", product_id))?;
            if product.stock < requested {
                return Err(DbError::OutOfStock {
                    product_id,
                    name: product.name,
                    requested,
                    available: product.stock,
                });
            }
        }
        for &(product_id, quantity) in &lines {
            write(
                conn,
                "UPDATE products SET stock = stock - ?2 WHERE id = ?1",
                (product_id, quantity),
            )?;
            write(
                conn,
                "INSERT INTO stock_reservations (order_id, product_id, quantity, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                (order_id, product_id, quantity, now_ms),
            )?;
        }
        reservation(conn, order_id)?.ok_or_else(|| DbError::not_found("reservation", order_id))
    })
}

/// Returns an order's reserved quantities to stock and marks its reservation released, in one
/// transaction. Idempotent: true if this call returned stock; false if the reservation was
/// already released or the order has none.
pub fn release(conn: &Connection, order_id: &str) -> Result<bool, DbError> {
    atomic(conn, |conn| {
        write(
            conn,
            "UPDATE products SET stock = stock + (
                 SELECT r.quantity FROM stock_reservations r
                 WHERE r.order_id = ?1 AND r.product_id = products.id AND r.released = 0)
             WHERE id IN (
                 SELECT product_id FROM stock_reservations WHERE order_id = ?1 AND released = 0)",
            [order_id],
        )?;
        let released = write(
            conn,
            "UPDATE stock_reservations SET released = 1 WHERE order_id = ?1 AND released = 0",
            [order_id],
        )?;
        Ok(released > 0)
    })
}

/// The order's reservation, if it has one.
pub fn reservation(conn: &Connection, order_id: &str) -> Result<Option<Reservation>, DbError> {
    let rows: Vec<HeldLine> = select(conn, "WHERE order_id = ?1 ORDER BY rowid", [order_id])?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Reservation {
        order_id: order_id.to_string(),
        created_at_ms: first.created_at_ms,
        released: rows.iter().all(|row| row.released),
        lines: rows
            .into_iter()
            .map(|row| ReservationLine {
                product_id: row.product_id,
                quantity: row.quantity,
            })
            .collect(),
    }))
}

/// Units of this product in stock now, or `None` for an unknown product.
pub fn stock_of(conn: &Connection, product_id: i64) -> Result<Option<u32>, DbError> {
    Ok(catalog::product(conn, product_id)?.map(|product| product.stock))
}

/// Every product's stock and reserved units, by product id.
pub fn levels(conn: &Connection) -> Result<Vec<StockLevel>, DbError> {
    select(conn, "ORDER BY p.id", [])
}

/// Merges basket lines `(product id, quantity)` that name the same product, keeping the order
/// in which products first appear. Refuses an empty list and zero quantities.
fn merge_lines(lines: &[(i64, u32)]) -> Result<Vec<(i64, u32)>, DbError> {
    if lines.is_empty() {
        return Err(DbError::Invalid("an order needs at least one line".into()));
    }
    let mut merged: Vec<(i64, u32)> = Vec::with_capacity(lines.len());
    for &(product_id, quantity) in lines {
        if quantity == 0 {
            return Err(DbError::Invalid(format!(
                "product {product_id}: quantity must be at least 1"
            )));
        }
        match merged.iter_mut().find(|(id, _)| *id == product_id) {
            Some((_, total)) => {
                *total = total.checked_add(quantity).ok_or_else(|| {
                    DbError::Invalid(format!("product {product_id}: quantity too large"))
                })?;
            }
            None => merged.push((product_id, quantity)),
        }
    }
    Ok(merged)
}
