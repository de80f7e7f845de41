//! The statuses an order goes through, as stored in `orders.status` and `order_history`.

use serde::{Deserialize, Serialize};

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Checked out; the payment request waits at the gateway.
    AwaitingPayment,
    /// The gateway declined; the basket was kept. Final.
    PaymentDeclined,
    /// Paid; fulfillment starts.
    Paid,
    /// Stock is reserved for it.
    StockReserved,
    /// Waiting for an admin to approve or reject it.
    AwaitingApproval,
    /// Approved by an admin.
    Approved,
    /// Rejected by an admin, or the approval deadline passed; stock released. Final.
    Rejected,
    /// Handed to the carrier.
    Shipped,
    /// Delivered. Final.
    Delivered,
    /// Fulfillment failed (out of stock, the carrier refused, cancelled); compensations ran. Final.
    Failed,
}

impl OrderStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::PaymentDeclined => "payment_declined",
            Self::Paid => "paid",
            Self::StockReserved => "stock_reserved",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Whether nothing more happens to the order.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::PaymentDeclined | Self::Rejected | Self::Delivered | Self::Failed
        )
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
