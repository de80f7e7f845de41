//! The domain's refusals: typed, with a status-like code, and terminal for the engine (retrying
//! cannot change the answer).

use serde::{Deserialize, Serialize};
use zeroapp_engine::TerminalError;

/// Why the domain refused a request. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DomainError {
    /// No product with this id.
    #[error("unknown product {0}")]
    UnknownProduct(i64),
    /// A quantity must be between 1 and the per-line limit.
    #[error("quantity {quantity} is not allowed: use 1 to {max}")]
    BadQuantity {
        /// What was asked.
        quantity: i64,
        /// The largest quantity per line.
        max: u32,
    },
    /// Checkout needs at least one item.
    #[error("the basket is empty")]
    EmptyBasket,
    /// Not enough stock for a line.
    #[error("out of stock: {sku} has {available} left, {requested} requested")]
    OutOfStock {
        /// The product.
        sku: String,
        /// What the order needs.
        requested: i64,
        /// What is left.
        available: i64,
    },
    /// No such shipping zone.
    #[error("unknown shipping zone {0:?}")]
    UnknownZone(String),
    /// No such user.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// No order with this id.
    #[error("unknown order {0:?}")]
    UnknownOrder(String),
    /// The order was already approved or rejected, or is no longer waiting for a decision.
    #[error("order {0:?} is not waiting for a decision")]
    NotAwaitingDecision(String),
    /// The order id was used for another basket or user.
    #[error("order id {0:?} is already used")]
    OrderIdTaken(String),
    /// The payment was declined.
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    /// No pending payment for this order.
    #[error("no pending payment for order {0:?}")]
    NoPendingPayment(String),
    /// The carrier refused the shipment.
    #[error("shipment refused: {0}")]
    ShipmentRefused(String),
    /// The admin rejected the order, or the approval deadline passed.
    #[error("order rejected: {0}")]
    Rejected(String),
    /// An order id must be 1 to 64 characters without `/`.
    #[error("bad order id {0:?}: use 1 to 64 characters without '/'")]
    BadOrderId(String),
    /// No such carrier.
    #[error("unknown carrier {0:?}")]
    UnknownCarrier(String),
    /// The address is empty or too long.
    #[error("bad address: {0}")]
    BadAddress(String),
}

impl DomainError {
    /// The HTTP-like status the refusal maps to.
    pub fn code(&self) -> u16 {
        match self {
            Self::BadQuantity { .. }
            | Self::EmptyBasket
            | Self::BadAddress(_)
            | Self::BadOrderId(_) => 400,
            Self::PaymentDeclined(_) => 402,
            Self::UnknownProduct(_)
            | Self::UnknownZone(_)
            | Self::UnknownCarrier(_)
            | Self::UnknownUser(_)
            | Self::UnknownOrder(_)
            | Self::NoPendingPayment(_) => 404,
            Self::OutOfStock { .. }
            | Self::NotAwaitingDecision(_)
            | Self::OrderIdTaken(_)
            | Self::Rejected(_) => 409,
            Self::ShipmentRefused(_) => 422,
        }
    }
}

impl From<DomainError> for TerminalError {
    fn from(error: DomainError) -> Self {
        TerminalError::with_code(error.code(), error.to_string())
    }
}
