//! The payment-gateway simulator's requests. Checkout files one per order (idempotently),
//! carrying the awakeable that resumes it; the gateway decides each once, paid or declined.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::DbError;
use super::sql::{FromRow, from_row, query_one, select, select_one, text_enum, write};

text_enum! {
    /// Where a payment request stands.
    pub enum PaymentStatus {
        /// Waiting for the gateway's decision.
        Pending => "pending",
        /// Charged.
        Paid => "paid",
        /// Refused.
        Declined => "declined",
    }
}

impl PaymentStatus {
    /// True for [`PaymentStatus::Paid`].
    pub fn is_paid(self) -> bool {
        self == Self::Paid
    }
}

/// A payment request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    /// The order paid for (one request per order).
    pub order_id: String,
    /// The user paying.
    pub user_id: String,
    /// The amount, in cents.
    pub amount_cents: i64,
    /// The awakeable the checkout waits on; the gateway resolves it with the decision.
    pub awakeable_id: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// When it was filed, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it was decided, if it was.
    pub decided_at_ms: Option<i64>,
}

from_row!(
    PaymentRequest,
    "payment_requests",
    [
        order_id,
        user_id,
        amount_cents,
        awakeable_id,
        status,
        created_at_ms,
        decided_at_ms
    ]
);

/// Files a pending payment request for the order and returns it.
///
/// Idempotent by order id: if the order has a request already, this changes nothing and
/// returns that one as stored (with its awakeable and status), whatever the arguments say now.
pub fn request(
    conn: &Connection,
    order_id: &str,
    user_id: &str,
    amount_cents: i64,
    awakeable_id: &str,
    now_ms: i64,
) -> Result<PaymentRequest, DbError> {
    write(
        conn,
        "INSERT INTO payment_requests (order_id, user_id, amount_cents, awakeable_id, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (order_id) DO NOTHING",
        (order_id, user_id, amount_cents, awakeable_id, now_ms),
    )?;
    payment(conn, order_id)?.ok_or_else(|| DbError::not_found("payment request", order_id))
}

/// Every pending request, oldest first.
pub fn pending(conn: &Connection) -> Result<Vec<PaymentRequest>, DbError> {
    select(
        conn,
        "WHERE status = 'pending' ORDER BY created_at_ms, order_id",
        [],
    )
}

/// The order's payment request, if any.
pub fn payment(conn: &Connection, order_id: &str) -> Result<Option<PaymentRequest>, DbError> {
    select_one(conn, "WHERE order_id = ?1", [order_id])
}

/// Decides a pending request: paid if `paid`, else declined. Returns the decided request, whose
/// `awakeable_id` the caller resolves.
///
/// A request is decided once: deciding again is refused with [`DbError::AlreadyDecided`]
/// (carrying the decision that stands), an unknown order with [`DbError::NotFound`].
pub fn decide(
    conn: &Connection,
    order_id: &str,
    paid: bool,
    now_ms: i64,
) -> Result<PaymentRequest, DbError> {
    let status = if paid {
        PaymentStatus::Paid
    } else {
        PaymentStatus::Declined
    };
    let sql = format!(
        "UPDATE payment_requests SET status = ?2, decided_at_ms = ?3
         WHERE order_id = ?1 AND status = 'pending'
         RETURNING {}",
        PaymentRequest::COLUMNS
    );
    if let Some(decided) = query_one(conn, &sql, (order_id, status, now_ms))? {
        return Ok(decided);
    }
    match payment(conn, order_id)? {
        Some(existing) => Err(DbError::AlreadyDecided {
            order_id: order_id.to_string(),
            status: existing.status,
        }),
        None => Err(DbError::not_found("payment request", order_id)),
    }
}
