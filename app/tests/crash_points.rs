//! The engine's crash-point checker on the app's own handlers: a checkout (with the payment
//! awakeable and the simulator), and the fulfillment workflow to delivery, to a carrier refusal
//! and to an expired approval. Each runs once, then again from scratch with a crash after each of
//! its journal entries; every run must end with the same result and journal, and leave SQLite
//! in the state one run leaves — one order, one payment request, one reservation, at most one
//! shipment, each history row and notification once.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use zeroapp_app::db::orders::{self, NewOrder, OrderItem};
use zeroapp_app::db::{catalog, notifications, payments, shipments, stock};
use zeroapp_app::fulfillment::{self, FulfillmentOrder, Progress};
use zeroapp_app::order_payment::{self, PaymentOutcome, PendingOrder};
use zeroapp_app::session::{self, AddItem, Checkout, CheckoutSummary};
use zeroapp_app::shipping::{self, ShipmentInfo};
use zeroapp_app::status::OrderStatus;
use zeroapp_app::{App, AppConfig};
use zeroapp_engine::testing::{CrashPoints, START_MS, Setup, TestEngine};
use zeroapp_engine::{Client, EngineBuilder, ManualClock, TerminalError};

const USER: &str = "alice";
const PRODUCT: i64 = 3;
const QUANTITY: u32 = 2;

/// One run's outside world: the app's SQLite database in its own folder.
#[derive(Clone)]
struct Shop {
    app: App,
    /// What the invocation under test needs before it is submitted.
    prepare: Prepare,
    _dir: Arc<tempfile::TempDir>,
}

#[derive(Clone, Copy)]
enum Prepare {
    /// Two units in alice's basket.
    Basket,
    /// A paid order `order_id` in SQLite, as a checkout leaves it.
    PaidOrder(&'static str),
}

impl Shop {
    async fn open(config: AppConfig, prepare: Prepare, clock: ManualClock) -> Result<Shop, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let app = App::open_with_clock(dir.path(), config, clock)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Shop {
            app,
            prepare,
            _dir: Arc::new(dir),
        })
    }

    async fn initial_stock(&self) -> u32 {
        self.app
            .db()
            .call(|conn| catalog::product(conn, PRODUCT))
            .await
            .unwrap()
            .unwrap()
            .stock
    }
}

impl Setup for Shop {
    fn register(&self, builder: EngineBuilder) -> EngineBuilder {
        self.app.register(builder)
    }

    async fn prepare(&self, client: &Client) -> Result<(), String> {
        match self.prepare {
            Prepare::Basket => {
                let add = AddItem {
                    product_id: PRODUCT,
                    quantity: i64::from(QUANTITY),
                };
                client
                    .call(session::ADD_ITEM.key(USER), &add)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Prepare::PaidOrder(order_id) => {
                self.app
                    .db()
                    .call(move |conn| {
                        let product = catalog::product(conn, PRODUCT)?.unwrap();
                        let order = NewOrder {
                            id: order_id.to_owned(),
                            user_id: USER.to_owned(),
                            items: vec![OrderItem {
                                product_id: PRODUCT,
                                sku: product.sku,
                                name: product.name,
                                quantity: QUANTITY,
                                unit_price_cents: product.price_cents,
                            }],
                            shipping_cents: 499,
                            zone: "domestic".to_owned(),
                            address: "1 Main Street".to_owned(),
                            carrier: "ZeroPost".to_owned(),
                            status: OrderStatus::Paid.as_str().to_owned(),
                        };
                        orders::create_order(conn, &order, 0)
                    })
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

fn shop_config() -> AppConfig {
    AppConfig {
        // The carrier's transient failures are random: off, so every run is the same.
        shipping_failure_rate: 0.0,
        approval_deadline: Duration::from_secs(24 * 3600),
        delivery_delay: Duration::from_secs(3600),
        auto_pay: true,
        auto_approve: true,
        ..AppConfig::default()
    }
}

/// What one order left in SQLite; fails if a history row or a notification is there twice.
async fn one_of_each(shop: &Shop, order_id: &str) -> Result<Facts, String> {
    let order_id = order_id.to_owned();
    let facts = shop
        .app
        .db()
        .call(move |conn| {
            let history = orders::history(conn, &order_id)?;
            let mut seen = HashSet::new();
            let repeated_status = history
                .iter()
                .find(|h| !seen.insert(h.status.clone()))
                .map(|h| h.status.clone());
            let mut seen = HashSet::new();
            let mut all = notifications::for_user(conn, USER, 1000)?;
            all.extend(notifications::for_admins(conn, 1000)?);
            let repeated_notification = all
                .iter()
                .filter(|n| n.order_id == order_id)
                .find(|n| !seen.insert((n.user_id.clone(), n.kind.clone())))
                .map(|n| n.message.clone());
            Ok(Facts {
                status: orders::order(conn, &order_id)?.map(|o| o.status),
                statuses: history.into_iter().map(|h| h.status).collect(),
                repeated_status,
                repeated_notification,
                payment: payments::payment(conn, &order_id)?.map(|p| format!("{:?}", p.status)),
                reserved: stock::reservation(conn, &order_id)?.is_some_and(|r| !r.released),
                shipment: shipments::shipment(conn, &order_id)?.map(|s| format!("{:?}", s.status)),
                stock: catalog::product(conn, PRODUCT)?.map_or(0, |p| p.stock),
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    if let Some(status) = &facts.repeated_status {
        return Err(format!("history has {status} twice: {:?}", facts.statuses));
    }
    if let Some(message) = &facts.repeated_notification {
        return Err(format!("notification sent twice: {message}"));
    }
    Ok(facts)
}

#[derive(Debug)]
struct Facts {
    status: Option<String>,
    statuses: Vec<String>,
    repeated_status: Option<String>,
    repeated_notification: Option<String>,
    payment: Option<String>,
    reserved: bool,
    shipment: Option<String>,
    stock: u32,
}

#[tokio::test]
async fn checkout_is_the_same_after_a_crash_at_any_entry() {
    let checker =
        CrashPoints::with_setup(|clock| Shop::open(shop_config(), Prepare::Basket, clock))
            .timeout(Duration::from_secs(60));
    let checkout = Checkout {
        order_id: "cp-checkout".into(),
        zone: "domestic".into(),
        address: "1 Main Street".into(),
        carrier: None,
    };
    let report = checker
        .check_with(
            session::CHECKOUT.key(USER),
            &checkout,
            async |test: &TestEngine<Shop>, outcome: &Result<CheckoutSummary, TerminalError>| {
                // Checkout answers before the payment: let the order's payment workflow (paid
                // by the simulator's auto-pay) run too.
                test.idle().await;
                let facts = one_of_each(test.setup(), "cp-checkout").await?;
                if facts.payment.as_deref() != Some("Paid") {
                    return Err(format!("payment request: {:?}", facts.payment));
                }
                let summary = outcome.as_ref().map_err(ToString::to_string)?;
                if summary.order_id != "cp-checkout" {
                    return Err(format!("summary of another order: {summary:?}"));
                }
                Ok(())
            },
        )
        .await;
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.crash_points >= 6, "{:#?}", report.journal);
    println!(
        "checkout: {} crash points; steps run again after a crash: {:?}",
        report.crash_points, report.repeated_steps
    );
}

#[tokio::test]
async fn an_order_payment_is_the_same_after_a_crash_at_any_entry() {
    const ORDER: &str = "cp-payment";
    let checker = CrashPoints::with_setup(|clock| {
        Shop::open(shop_config(), Prepare::PaidOrder(ORDER), clock)
    })
    .timeout(Duration::from_secs(60));
    let pending = PendingOrder {
        order_id: ORDER.into(),
        user_id: USER.into(),
        lines: Vec::new(),
        total_cents: 4_299,
    };
    let report = checker
        .check_with(
            order_payment::RUN.key(ORDER),
            &pending,
            async |test: &TestEngine<Shop>, outcome: &Result<PaymentOutcome, TerminalError>| {
                let facts = one_of_each(test.setup(), ORDER).await?;
                if facts.payment.as_deref() != Some("Paid") {
                    return Err(format!("payment request: {:?}", facts.payment));
                }
                match outcome {
                    Ok(PaymentOutcome::Paid {
                        amount_cents: 4_299,
                    }) => Ok(()),
                    other => Err(format!("the workflow answered {other:?}")),
                }
            },
        )
        .await;
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.crash_points >= 6, "{:#?}", report.journal);
}

/// Checks the fulfillment workflow of `order_id` from a paid order to the status it must end in.
async fn fulfil(order_id: &'static str, config: AppConfig, expected: OrderStatus) {
    // The seed's stock, before any reservation.
    let initial = Shop::open(shop_config(), Prepare::Basket, ManualClock::new(START_MS))
        .await
        .unwrap()
        .initial_stock()
        .await;
    let checker = CrashPoints::with_setup(move |clock| {
        Shop::open(config.clone(), Prepare::PaidOrder(order_id), clock)
    })
    .timeout(Duration::from_secs(60));
    let input = FulfillmentOrder {
        order_id: order_id.into(),
        user_id: USER.into(),
        lines: vec![(PRODUCT, QUANTITY)],
    };
    let report = checker
        .check_with(
            fulfillment::RUN.key(order_id),
            &input,
            async |test: &TestEngine<Shop>, outcome: &Result<Progress, TerminalError>| {
                let shop = test.setup();
                let facts = one_of_each(shop, order_id).await?;
                if facts.status.as_deref() != Some(expected.as_str()) {
                    return Err(format!("order {:?}, expected {expected:?}", facts.status));
                }
                let delivered = expected == OrderStatus::Delivered;
                match outcome {
                    Ok(progress) if delivered => {
                        if progress.tracking_number.is_none() {
                            return Err(format!("no tracking number: {progress:?}"));
                        }
                    }
                    Ok(progress) if !delivered && progress.status == expected => {}
                    other => return Err(format!("the workflow answered {other:?}")),
                }
                let want_stock = if delivered {
                    initial - QUANTITY
                } else {
                    initial
                };
                if facts.stock != want_stock {
                    return Err(format!("stock {} instead of {want_stock}", facts.stock));
                }
                if facts.reserved != delivered {
                    return Err(format!("reservation held: {}", facts.reserved));
                }
                let want_shipment = delivered.then(|| "Active".to_owned());
                if facts.shipment != want_shipment {
                    return Err(format!("shipment {:?}", facts.shipment));
                }
                Ok(())
            },
        )
        .await;
    let report = report.unwrap_or_else(|e| panic!("{order_id}: {e}"));
    println!(
        "{order_id}: {} crash points; steps run again after a crash: {:?}",
        report.crash_points, report.repeated_steps
    );
}

#[tokio::test]
async fn fulfilment_to_delivery_is_the_same_after_a_crash_at_any_entry() {
    fulfil("cp-delivered", shop_config(), OrderStatus::Delivered).await;
}

#[tokio::test]
async fn a_refused_shipment_is_compensated_the_same_after_a_crash_at_any_entry() {
    fulfil("cp-FAIL_SHIP", shop_config(), OrderStatus::Failed).await;
}

#[tokio::test]
async fn an_expired_approval_is_the_same_after_a_crash_at_any_entry() {
    let config = AppConfig {
        auto_approve: false,
        ..shop_config()
    };
    fulfil("cp-expired", config, OrderStatus::Rejected).await;
}

#[tokio::test]
async fn a_shipment_with_carrier_retries_is_the_same_after_a_crash_at_any_entry() {
    const ORDER: &str = "cp-FLAKY_SHIP";
    let checker = CrashPoints::with_setup(|clock| {
        Shop::open(shop_config(), Prepare::PaidOrder(ORDER), clock)
    });
    let report = checker
        .check_with(
            shipping::INITIATE_SHIPMENT,
            &ORDER.to_owned(),
            async |test: &TestEngine<Shop>, outcome: &Result<ShipmentInfo, TerminalError>| {
                let facts = one_of_each(test.setup(), ORDER).await?;
                if facts.shipment.as_deref() != Some("Active") {
                    return Err(format!("shipment {:?}", facts.shipment));
                }
                let info = outcome.as_ref().map_err(ToString::to_string)?;
                // Two transient refusals, then the parcel is taken.
                if info.attempts != 3 {
                    return Err(format!("{} carrier attempts: {info:?}", info.attempts));
                }
                Ok(())
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.journal.len(), 2, "{:#?}", report.journal);
}
