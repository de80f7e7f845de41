//! PaymentGateway: the payment-gateway simulator.
//!
//! Checkout files a payment request (order, amount, awakeable id) inside a `run` step; the
//! request waits in SQLite until someone presses Pay or Decline on the simulator's page (or its
//! signed HTTP callback is called), or — in auto-pay mode — the gateway pays it at once. Paying
//! resolves the checkout's awakeable, declining rejects it; either is decided once.

use serde::{Deserialize, Serialize};
use zeroapp_engine::prelude::*;

use crate::db::DbError;
use crate::db::payments::{self, PaymentRequest};
use crate::error::DomainError;
use crate::{App, step_error};

/// The service's name.
pub const NAME: &str = "PaymentGateway";

/// Pays the pending request of an order (by id), completing the checkout's awakeable.
pub const PAY: ServiceHandler<String, ()> = ServiceHandler::new(NAME, "pay");
/// Declines the pending request of an order, with a reason for the shopper.
pub const DECLINE: ServiceHandler<Decline, ()> = ServiceHandler::new(NAME, "decline");

/// What a paid awakeable carries to the checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order paid.
    pub order_id: String,
    /// The amount charged.
    pub amount_cents: i64,
}

/// A decline with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decline {
    /// The order whose payment is declined.
    pub order_id: String,
    /// Why, for the shopper.
    pub reason: String,
}

/// The service definition.
pub(crate) fn service(app: &App) -> Service {
    Service::new(NAME)
        .handler(
            PAY,
            with_state(app.clone(), |app, ctx, order_id| {
                decide(app, ctx, order_id, None)
            }),
        )
        .handler(
            DECLINE,
            with_state(app.clone(), |app, ctx, decline: Decline| {
                decide(app, ctx, decline.order_id, Some(decline.reason))
            }),
        )
}

/// Files a payment request (idempotent per order); true if the gateway will pay it by itself.
/// Called inside the checkout's `run` step.
pub(crate) async fn file_request(
    app: &App,
    order_id: String,
    user_id: String,
    amount_cents: i64,
    awakeable_id: String,
) -> Result<bool, HandlerError> {
    let now = app.now_ms();
    app.db()
        .call(move |conn| {
            payments::request(conn, &order_id, &user_id, amount_cents, &awakeable_id, now)
        })
        .await
        .map_err(step_error)?;
    Ok(app.auto_pay())
}

/// Pays (`reason` = None) or declines a pending request, then completes its awakeable.
async fn decide(
    app: App,
    ctx: Context,
    order_id: String,
    reason: Option<String>,
) -> Result<(), HandlerError> {
    let paid = reason.is_none();
    let request: PaymentRequest = ctx
        .run("decide", {
            let order_id = order_id.clone();
            move || {
                let db = app.db().clone();
                let order_id = order_id.clone();
                let now = app.now_ms();
                async move {
                    let id = order_id.clone();
                    let decided = db
                        .call(move |conn| {
                            match payments::decide(conn, &id, paid, now) {
                                // Decided the same way before (a retry of this step after a
                                // crash): carry on with it.
                                Err(DbError::AlreadyDecided { status, .. })
                                    if status.is_paid() == paid =>
                                {
                                    payments::payment(conn, &id)?
                                        .ok_or_else(|| DbError::not_found("payment request", &id))
                                }
                                other => other,
                            }
                        })
                        .await;
                    match decided {
                        Err(DbError::NotFound { .. } | DbError::AlreadyDecided { .. }) => {
                            Err(TerminalError::from(DomainError::NoPendingPayment(order_id)).into())
                        }
                        other => other.map_err(step_error),
                    }
                }
            }
        })
        .await?;
    match reason {
        None => {
            let receipt = Receipt {
                order_id,
                amount_cents: request.amount_cents,
            };
            ctx.resolve_awakeable(&request.awakeable_id, &receipt)
                .await?;
        }
        Some(reason) => ctx.reject_awakeable(&request.awakeable_id, &reason).await?,
    }
    Ok(())
}
