//! ShippingService: ships an order with a simulated carrier, and cancels shipments.
//!
//! The carrier is simulated in-process. The shopper picks one of [`CARRIERS`] at checkout:
//! `NoPost` refuses every parcel (the shipping-failure scenario, playable from the cart). It
//! also refuses orders whose id contains `FAIL_SHIP`, fails
//! transiently at a configurable rate (and always on the first two attempts for order ids
//! containing `FLAKY_SHIP`, so tests can count retries), and records each shipment in SQLite by
//! order id with the attempts it took. A request for an order it already shipped (the step
//! executed again after a crash) gets that shipment back, unchanged: the step is idempotent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroapp_engine::prelude::*;

use crate::db::{orders, shipments};
use crate::error::DomainError;
use crate::{App, step_error};

/// The service's name.
pub const NAME: &str = "ShippingService";

/// Hands an order (by id) to a carrier, retrying refusals; answers the shipment.
pub const INITIATE_SHIPMENT: ServiceHandler<String, ShipmentInfo> =
    ServiceHandler::new(NAME, "initiate_shipment");
/// Cancels an order's shipment; answers whether there was one to cancel.
pub const CANCEL_SHIPMENT: ServiceHandler<String, bool> =
    ServiceHandler::new(NAME, "cancel_shipment");

/// A carrier a shopper can choose at checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarrierOption {
    /// Its name, stored with the order.
    pub name: &'static str,
    /// What it does, for the shopper.
    pub description: &'static str,
    /// Whether it takes parcels at all.
    pub ships: bool,
}

/// The carriers, the default first.
pub const CARRIERS: [CarrierOption; 2] = [
    CarrierOption {
        name: "ZeroPost",
        description: "standard delivery",
        ships: true,
    },
    CarrierOption {
        name: "NoPost",
        description: "test carrier: refuses every parcel",
        ships: false,
    },
];

/// The carrier named `name`, if there is one.
pub fn carrier(name: &str) -> Option<CarrierOption> {
    CARRIERS.iter().copied().find(|c| c.name == name)
}

/// What `initiate_shipment` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentInfo {
    /// The carrier that took the parcel.
    pub carrier: String,
    /// Its tracking number.
    pub tracking_number: String,
    /// How many calls to the carrier it took.
    pub attempts: u32,
}

/// The simulated carrier: counts attempts per order (for display and for `FLAKY_SHIP`).
#[derive(Default)]
pub(crate) struct Carrier {
    attempts: Mutex<HashMap<String, u32>>,
}

impl Carrier {
    fn attempt(&self, order_id: &str) -> u32 {
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = attempts.entry(order_id.to_owned()).or_insert(0);
        *n += 1;
        *n
    }
}

/// The retry policy of the carrier call: quick first retries, then up to 2 s apart, 12 tries.
fn carrier_policy() -> RetryPolicy {
    RetryPolicy::exponential(Duration::from_millis(20))
        .max_delay(Duration::from_secs(2))
        .max_attempts(12)
}

/// The service definition.
pub(crate) fn service(app: &App) -> Service {
    Service::new(NAME)
        .handler(INITIATE_SHIPMENT, with_state(app.clone(), initiate))
        .handler(CANCEL_SHIPMENT, with_state(app.clone(), cancel_shipment))
}

async fn initiate(app: App, ctx: Context, order_id: String) -> Result<ShipmentInfo, HandlerError> {
    // Drawn through the journal, so a replay (and a test run with the engine's seed) sees the
    // same number.
    let tracking = format!("ZA{:010}", ctx.rand_u64().await? % 10_000_000_000);
    let info = ctx
        .run_with("carrier: ship", carrier_policy(), move || {
            let (app, order_id, tracking) = (app.clone(), order_id.clone(), tracking.clone());
            async move { ship_with_carrier(&app, order_id, tracking).await }
        })
        .await?;
    Ok(info)
}

/// One call to the simulated carrier.
async fn ship_with_carrier(
    app: &App,
    order_id: String,
    tracking: String,
) -> Result<ShipmentInfo, HandlerError> {
    let id = order_id.clone();
    let (shipped, order) = app
        .db()
        .call(move |conn| Ok((shipments::shipment(conn, &id)?, orders::order(conn, &id)?)))
        .await
        .map_err(step_error)?;
    if let Some(shipment) = shipped {
        return Ok(ShipmentInfo::from(shipment));
    }
    let chosen = order
        .as_ref()
        .and_then(|order| carrier(&order.carrier))
        .unwrap_or(CARRIERS[0]);
    let simulated: &Arc<Carrier> = &app.inner.carrier;
    let attempts = simulated.attempt(&order_id);
    if !chosen.ships || order_id.contains("FAIL_SHIP") {
        return Err(TerminalError::from(DomainError::ShipmentRefused(format!(
            "{} does not ship order {order_id}",
            chosen.name
        )))
        .into());
    }
    let flaky = order_id.contains("FLAKY_SHIP") && attempts <= 2;
    if flaky || rand::random::<f64>() < app.config().shipping_failure_rate {
        return Err(HandlerError::retryable(format!(
            "the carrier is unavailable (attempt {attempts})"
        )));
    }
    let now = app.now_ms();
    let shipment = app
        .db()
        .call(move |conn| shipments::create(conn, &order_id, chosen.name, &tracking, attempts, now))
        .await
        .map_err(step_error)?;
    Ok(ShipmentInfo::from(shipment))
}

impl From<shipments::Shipment> for ShipmentInfo {
    fn from(shipment: shipments::Shipment) -> Self {
        Self {
            carrier: shipment.carrier,
            tracking_number: shipment.tracking_number,
            attempts: shipment.attempts,
        }
    }
}

async fn cancel_shipment(app: App, ctx: Context, order_id: String) -> Result<bool, HandlerError> {
    let cancelled = ctx
        .run("carrier: cancel", move || {
            let db = app.db().clone();
            let order_id = order_id.clone();
            let now = app.now_ms();
            async move {
                db.call(move |conn| shipments::cancel(conn, &order_id, now))
                    .await
                    .map_err(step_error)
            }
        })
        .await?;
    Ok(cancelled)
}
