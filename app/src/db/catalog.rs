//! Reference data: products, users and shipping zones. Read-only here; stock changes go
//! through [`stock`](super::stock).

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::DbError;
use super::sql::{from_row, select, select_one};

/// A product of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its id, the key baskets and orders use.
    pub id: i64,
    /// Its stock-keeping unit, unique.
    pub sku: String,
    /// Its display name.
    pub name: String,
    /// A sentence or two about it.
    pub description: String,
    /// Its unit price in cents.
    pub price_cents: i64,
    /// Units in stock now (not counting those reserved by orders).
    pub stock: u32,
}

from_row!(
    Product,
    "products",
    [id, sku, name, description, price_cents, stock]
);

/// A user of the storefront.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id, such as `alice`: the key of its session object.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its e-mail address.
    pub email: String,
    /// Whether it may approve orders and sees the admins' notifications.
    pub is_admin: bool,
}

from_row!(User, "users", [id, name, email, is_admin]);

/// A shipping zone and what shipping to it costs per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// Its code, such as `domestic`.
    pub code: String,
    /// Its display name.
    pub name: String,
    /// The shipping cost of one order, in cents.
    pub cost_cents: i64,
}

from_row!(Zone, "shipping_zones", [code, name, cost_cents]);

/// Every product, by id.
pub fn products(conn: &Connection) -> Result<Vec<Product>, DbError> {
    select(conn, "ORDER BY id", [])
}

/// The product with this id, if any.
pub fn product(conn: &Connection, id: i64) -> Result<Option<Product>, DbError> {
    select_one(conn, "WHERE id = ?1", [id])
}

/// The product with this SKU, if any.
pub fn product_by_sku(conn: &Connection, sku: &str) -> Result<Option<Product>, DbError> {
    select_one(conn, "WHERE sku = ?1", [sku])
}

/// Every user, by id.
pub fn users(conn: &Connection) -> Result<Vec<User>, DbError> {
    select(conn, "ORDER BY id", [])
}

/// The user with this id, if any.
pub fn user(conn: &Connection, id: &str) -> Result<Option<User>, DbError> {
    select_one(conn, "WHERE id = ?1", [id])
}

/// Every shipping zone, cheapest first.
pub fn zones(conn: &Connection) -> Result<Vec<Zone>, DbError> {
    select(conn, "ORDER BY cost_cents, code", [])
}

/// The shipping zone with this code, if any.
pub fn zone(conn: &Connection, code: &str) -> Result<Option<Zone>, DbError> {
    select_one(conn, "WHERE code = ?1", [code])
}
