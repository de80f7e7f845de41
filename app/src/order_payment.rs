//! OrderPayment: a workflow per order id that waits for the order's payment.
//!
//! Checkout (in `UserSession`) records the order, moves the basket's lines into it and submits
//! this workflow, then answers at once: the payment wait holds no user's key, so the shopper's
//! basket stays usable while the gateway decides. `run` files the payment request with the
//! gateway simulator inside a `run` step and waits on an awakeable.
//! - Paid: the order's OrderFulfillment workflow starts.
//! - Declined: the order's lines go back into the shopper's basket (the cart is kept) and no
//!   fulfillment starts.
//!
//! Both are the workflow's answer ([`PaymentOutcome`]): a declined payment is a domain outcome,
//! not a failed invocation.

use serde::{Deserialize, Serialize};
use zeroapp_engine::prelude::*;

use crate::fulfillment::{self, FulfillmentOrder};
use crate::payment::{self, Receipt};
use crate::session::{self, BasketLine, money};
use crate::status::OrderStatus;
use crate::{App, events};

/// The workflow's name.
pub const NAME: &str = "OrderPayment";

/// Waits for the payment of one order (the workflow key is the order id).
pub const RUN: WorkflowHandler<PendingOrder, PaymentOutcome> = WorkflowHandler::run(NAME);

/// An order waiting for its payment, as checkout left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOrder {
    /// The order (also the workflow's key).
    pub order_id: String,
    /// Whose it is.
    pub user_id: String,
    /// The basket's lines the order took.
    pub lines: Vec<BasketLine>,
    /// What to charge.
    pub total_cents: i64,
}

/// How an order's payment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentOutcome {
    /// Paid; fulfillment started.
    Paid {
        /// The amount charged.
        amount_cents: i64,
    },
    /// Declined; the lines went back into the basket.
    Declined {
        /// Why, for the shopper.
        reason: String,
    },
}

/// The workflow definition.
pub(crate) fn workflow(app: &App) -> Workflow {
    Workflow::new(NAME).run(with_state(app.clone(), run))
}

async fn run(
    app: App,
    ctx: WorkflowContext,
    order: PendingOrder,
) -> Result<PaymentOutcome, HandlerError> {
    let (order_id, user) = (order.order_id.clone(), order.user_id.clone());
    let (awakeable_id, payment) = ctx.awakeable::<Receipt>();
    let auto_pay = ctx
        .run("file payment request", {
            let app = app.clone();
            let (order_id, user) = (order_id.clone(), user.clone());
            let total = order.total_cents;
            move || {
                let (app, order_id, user, awakeable_id) =
                    (app.clone(), order_id.clone(), user.clone(), awakeable_id.clone());
                async move { payment::file_request(&app, order_id, user, total, awakeable_id).await }
            }
        })
        .await?;
    if auto_pay {
        ctx.send(payment::PAY, &order_id).await?;
    }
    let receipt = match payment.await {
        Ok(receipt) => receipt,
        Err(declined) => {
            let reason = declined.message().to_owned();
            // Back in the basket before the shopper hears of it (pages refresh on the news).
            let _: Vec<BasketLine> = ctx
                .call(session::RETURN_ITEMS.key(&user), &order.lines)
                .await?;
            let message = format!(
                "Payment for order {order_id} declined: {reason}. Its items are back in the cart"
            );
            let status = OrderStatus::PaymentDeclined;
            events::record(&app, &ctx, &order_id, &user, status, message, false).await?;
            return Ok(PaymentOutcome::Declined { reason });
        }
    };
    let message = format!(
        "Payment of {} for order {order_id} confirmed",
        money(receipt.amount_cents)
    );
    events::record(
        &app,
        &ctx,
        &order_id,
        &user,
        OrderStatus::Paid,
        message,
        true,
    )
    .await?;
    let fulfillment_order = FulfillmentOrder {
        order_id: order_id.clone(),
        user_id: user,
        lines: order
            .lines
            .iter()
            .map(|l| (l.product_id, l.quantity))
            .collect(),
    };
    ctx.send(fulfillment::RUN.key(&order_id), &fulfillment_order)
        .await?;
    Ok(PaymentOutcome::Paid {
        amount_cents: receipt.amount_cents,
    })
}
