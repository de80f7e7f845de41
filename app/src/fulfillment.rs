//! OrderFulfillment: a workflow per order id.
//!
//! `run` reserves stock (compensation: release it), waits for the admin's approval promise with
//! a deadline (expiry counts as rejection), ships through ShippingService (compensation: cancel
//! the shipment, registered once the carrier took it), sleeps until delivery and completes. A
//! terminal failure or a cancellation runs the compensations in reverse order. A rejected or
//! failed order is the workflow's answer (its [`Progress`] says why); a cancelled run fails. Shared handlers:
//! `approve(bool)` and `status`, the order's live progress.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use zeroapp_engine::prelude::*;

use crate::db::stock;
use crate::error::DomainError;
use crate::shipping;
use crate::status::OrderStatus;
use crate::{App, events, step_error};

/// The workflow's name.
pub const NAME: &str = "OrderFulfillment";

/// Fulfils one order (the workflow key is the order id); answers its final progress.
pub const RUN: WorkflowHandler<FulfillmentOrder, Progress> = WorkflowHandler::run(NAME);
/// The admin's decision on an order awaiting approval.
pub const APPROVE: WorkflowHandler<bool, ()> = WorkflowHandler::new(NAME, "approve");
/// The order's progress, as the workflow last committed it.
pub const STATUS: WorkflowHandler<(), Progress> = WorkflowHandler::new(NAME, "status");

/// The state key under which the workflow keeps its [`Progress`]: readers outside the workflow
/// read it as committed state, without an invocation (`Client::state` on the embedded engine,
/// `RestateClient::state` on a cluster), then bring it [`up_to_date`].
pub const PROGRESS: &str = "progress";
const APPROVAL: &str = "approval";

/// What `run` takes: the order as checkout left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentOrder {
    /// The order (also the workflow's key).
    pub order_id: String,
    /// Whose it is.
    pub user_id: String,
    /// (product id, quantity) per line.
    pub lines: Vec<(i64, u32)>,
}

/// The steps of fulfillment, in order.
pub const STEPS: [&str; 5] = [
    "Payment",
    "Stock reservation",
    "Admin approval",
    "Shipping",
    "Delivery",
];

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not reached yet.
    Pending,
    /// Happening now.
    Active,
    /// Done.
    Done,
    /// Failed (the order failed here).
    Failed,
}

/// An order's live progress: the seed's "Workflow Metadata".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The order.
    pub order_id: String,
    /// Whose it is.
    pub user_id: String,
    /// Each of [`STEPS`] with its state.
    pub steps: Vec<(String, StepState)>,
    /// The current status.
    pub status: OrderStatus,
    /// When fulfillment started (ms since the epoch).
    pub started_at_ms: u64,
    /// How long it has been running (or ran), in ms.
    pub elapsed_ms: u64,
    /// Calls it took the carrier to accept the shipment.
    pub shipping_attempts: u32,
    /// The carrier, once shipped.
    pub carrier: Option<String>,
    /// The tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// What happens next, for a person.
    pub next_action: String,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// When it finished (ms since the epoch), if it did.
    pub finished_at_ms: Option<u64>,
}

impl Progress {
    fn new(order: &FulfillmentOrder, started_at_ms: u64) -> Self {
        let mut progress = Self {
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
            steps: STEPS
                .iter()
                .map(|s| ((*s).to_owned(), StepState::Pending))
                .collect(),
            status: OrderStatus::Paid,
            started_at_ms,
            elapsed_ms: 0,
            shipping_attempts: 0,
            carrier: None,
            tracking_number: None,
            next_action: String::new(),
            failure: None,
            finished_at_ms: None,
        };
        progress.enter(1, OrderStatus::Paid, "Reserving stock");
        progress
    }

    /// Marks every step before `step` done and `step` active.
    fn enter(&mut self, step: usize, status: OrderStatus, next_action: &str) {
        for (i, (_, state)) in self.steps.iter_mut().enumerate() {
            *state = match i.cmp(&step) {
                std::cmp::Ordering::Less => StepState::Done,
                std::cmp::Ordering::Equal => StepState::Active,
                std::cmp::Ordering::Greater => StepState::Pending,
            };
        }
        self.status = status;
        self.next_action = next_action.to_owned();
    }

    fn active_step(&self) -> Option<usize> {
        self.steps.iter().position(|(_, s)| *s == StepState::Active)
    }
}

/// The workflow definition.
pub(crate) fn workflow(app: &App) -> Workflow {
    Workflow::new(NAME)
        .run(with_state(app.clone(), run))
        .shared(APPROVE, approve)
        .shared(STATUS, status)
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn run(
    app: App,
    ctx: WorkflowContext,
    order: FulfillmentOrder,
) -> Result<Progress, HandlerError> {
    let started = millis(ctx.now().await?);
    let mut progress = Progress::new(&order, started);
    ctx.set(PROGRESS, &progress)?;
    let mut saga = Saga::new(&ctx);
    let result = fulfil(&app, &ctx, &order, &mut progress, &mut saga).await;
    let result = saga.finish(result).await;
    let finished = millis(ctx.now().await?);
    progress.finished_at_ms = Some(finished);
    progress.elapsed_ms = finished.saturating_sub(started);
    match result {
        Ok(()) => {
            progress.enter(
                STEPS.len(),
                OrderStatus::Delivered,
                "Nothing: the order was delivered",
            );
            // Each event is recorded after the progress that shows it: pages refresh on the
            // notification and read the progress.
            ctx.set(PROGRESS, &progress)?;
            let message = format!("Order {} delivered", order.order_id);
            let (id, user) = (&order.order_id, &order.user_id);
            events::record(&app, &ctx, id, user, OrderStatus::Delivered, message, true).await?;
            Ok(progress)
        }
        Err(error) => {
            if let Some(step) = progress.active_step() {
                progress.steps[step].1 = StepState::Failed;
            }
            let (status, message) = if progress.status == OrderStatus::Rejected {
                let reason = progress.failure.take().unwrap_or_default();
                let message = format!("Order {} rejected: {reason}", order.order_id);
                (OrderStatus::Rejected, message)
            } else {
                let message = format!("Order {} failed: {}", order.order_id, error.message());
                (OrderStatus::Failed, message)
            };
            progress.status = status;
            progress.failure = Some(error.message().to_owned());
            progress.next_action = "Nothing: stock was released and the order closed".into();
            ctx.set(PROGRESS, &progress)?;
            let (id, user) = (&order.order_id, &order.user_id);
            events::record(&app, &ctx, id, user, status, message, true).await?;
            // A rejected or refused order is the workflow's answer, and it completes; only a
            // cancellation ends it as one (failed, as the engine reports cancellations).
            if is_cancellation(&error) {
                Err(error.into())
            } else {
                Ok(progress)
            }
        }
    }
}

/// Whether `error` is the engine's cancellation of the run (not a refusal by the domain, some
/// of which share its code).
fn is_cancellation(error: &TerminalError) -> bool {
    error.code() == TerminalError::CANCELLED
        && ["cancelled", "killed"]
            .iter()
            .any(|word| error.message().eq_ignore_ascii_case(word))
}

/// The steps; compensations go into `saga` as they become needed.
async fn fulfil(
    app: &App,
    ctx: &WorkflowContext,
    order: &FulfillmentOrder,
    progress: &mut Progress,
    saga: &mut Saga,
) -> Result<(), TerminalError> {
    let order_id = order.order_id.clone();
    let user_id = order.user_id.as_str();
    // Registered before the step: release is idempotent and harmless if nothing was reserved.
    saga.compensate("release stock", {
        let (db, order_id) = (app.db().clone(), order_id.clone());
        move || {
            let (db, order_id) = (db.clone(), order_id.clone());
            async move {
                db.call(move |conn| stock::release(conn, &order_id))
                    .await
                    .map(drop)
                    .map_err(step_error)
            }
        }
    });
    ctx.run("reserve stock", {
        let (app, order_id, lines) = (app.clone(), order_id.clone(), order.lines.clone());
        move || {
            let (db, order_id, lines) = (app.db().clone(), order_id.clone(), lines.clone());
            let now = app.now_ms();
            async move {
                db.call(move |conn| stock::reserve(conn, &order_id, &lines, now))
                    .await
                    .map(drop)
                    .map_err(step_error)
            }
        }
    })
    .await?;
    events::record(
        app,
        ctx,
        &order_id,
        user_id,
        OrderStatus::StockReserved,
        format!("Stock reserved for order {order_id}"),
        false,
    )
    .await?;

    progress.enter(
        2,
        OrderStatus::AwaitingApproval,
        "An admin approves or rejects the order",
    );
    ctx.set(PROGRESS, progress)?;
    events::record(
        app,
        ctx,
        &order_id,
        user_id,
        OrderStatus::AwaitingApproval,
        format!("Order {order_id} waits for approval"),
        true,
    )
    .await?;
    let auto_approve = app.config().auto_approve;
    let auto = ctx
        .run("auto-approve?", move || async move { Ok(auto_approve) })
        .await?;
    let decision = if auto {
        Ok(true)
    } else {
        let approval = ctx.promise::<bool>(APPROVAL);
        let deadline = ctx.sleep(app.config().approval_deadline);
        match ctx.select(&[&approval, &deadline]).await? {
            0 => Ok(approval.await?),
            _ => Err(format!(
                "no decision within {}",
                humantime::format_duration(app.config().approval_deadline)
            )),
        }
    };
    if decision != Ok(true) {
        let reason = decision
            .err()
            .unwrap_or_else(|| "rejected by an admin".into());
        // Recorded by `run` once the compensations ran and the progress says so.
        progress.status = OrderStatus::Rejected;
        progress.failure = Some(reason.clone());
        return Err(DomainError::Rejected(reason).into());
    }
    progress.enter(3, OrderStatus::Approved, "The carrier picks the parcel up");
    ctx.set(PROGRESS, progress)?;
    events::record(
        app,
        ctx,
        &order_id,
        user_id,
        OrderStatus::Approved,
        format!("Order {order_id} approved"),
        false,
    )
    .await?;
    let shipment = ctx.call(shipping::INITIATE_SHIPMENT, &order_id).await?;
    saga.compensate_call("cancel shipment", shipping::CANCEL_SHIPMENT, &order_id);
    progress.shipping_attempts = shipment.attempts;
    progress.carrier = Some(shipment.carrier.clone());
    progress.tracking_number = Some(shipment.tracking_number.clone());
    progress.enter(4, OrderStatus::Shipped, "The parcel is on its way");
    ctx.set(PROGRESS, progress)?;
    events::record(
        app,
        ctx,
        &order_id,
        user_id,
        OrderStatus::Shipped,
        format!(
            "Order {order_id} shipped with {}, tracking {}",
            shipment.carrier, shipment.tracking_number
        ),
        false,
    )
    .await?;
    ctx.sleep(app.config().delivery_delay).await?;
    Ok(())
}

/// The admin's decision. Refused for an unknown order and for one not waiting for a decision
/// (decided already, or past that step).
async fn approve(ctx: SharedWorkflowContext, approved: bool) -> Result<(), HandlerError> {
    let order_id = ctx.key().to_owned();
    let Some(progress) = ctx.get::<Progress>(PROGRESS).await? else {
        return Err(TerminalError::from(DomainError::UnknownOrder(order_id)).into());
    };
    if progress.status != OrderStatus::AwaitingApproval {
        return Err(TerminalError::from(DomainError::NotAwaitingDecision(order_id)).into());
    }
    match ctx.resolve_promise(APPROVAL, &approved).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == TerminalError::CONFLICT => {
            Err(TerminalError::from(DomainError::NotAwaitingDecision(order_id)).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `progress` as read from the workflow's committed state, with the elapsed time of an
/// unfinished order brought up to date by the app's clock.
pub fn up_to_date(app: &App, mut progress: Progress) -> Progress {
    if progress.finished_at_ms.is_none() {
        let now_ms = u64::try_from(app.now_ms()).unwrap_or(0);
        progress.elapsed_ms = now_ms.saturating_sub(progress.started_at_ms);
    }
    progress
}

/// The order's progress, with the time elapsed so far.
async fn status(ctx: SharedWorkflowContext, (): ()) -> Result<Progress, HandlerError> {
    let order_id = ctx.key().to_owned();
    let Some(mut progress) = ctx.get::<Progress>(PROGRESS).await? else {
        return Err(TerminalError::from(DomainError::UnknownOrder(order_id)).into());
    };
    if progress.finished_at_ms.is_none() {
        let now = millis(ctx.now().await?);
        progress.elapsed_ms = now.saturating_sub(progress.started_at_ms);
    }
    Ok(progress)
}
