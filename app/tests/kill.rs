//! Orders across SIGKILLs of the process (the engine's crash harness, `common/process.rs`): a
//! child submits orders and lets them run; the parent kills it at random moments — during
//! start-up, checkout, payment, reservation, shipping, delivery — and restarts it, then lets
//! everything finish. Every order reaches the same final state as without kills, stock equals
//! initial − delivered, and no shipment, payment request, history row or notification exists
//! twice.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

#[allow(dead_code)] // the harness has more than this test uses
#[path = "../../engine/tests/common/process.rs"]
mod process;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use process::{DATA, ROLE, kill_repeatedly, run_child_to_end, runtime};
use zeroapp_app::db::{orders, payments, shipments, stock};
use zeroapp_app::fulfillment::{self, Progress};
use zeroapp_app::session::{self, AddItem, Checkout};
use zeroapp_app::status::OrderStatus;
use zeroapp_app::{App, AppConfig};
use zeroapp_engine::{Engine, SendOptions};

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const ORDERS: usize = 18;

/// Order `n`: its id, its user and its one line. Every sixth order is refused by the carrier.
fn order(n: usize) -> (String, &'static str, i64) {
    let user = USERS[n % USERS.len()];
    let id = if n % 6 == 5 {
        format!("kill-{n}-FAIL_SHIP")
    } else {
        format!("kill-{n}")
    };
    (id, user, i64::try_from(n % 24 + 1).unwrap())
}

fn config() -> AppConfig {
    AppConfig {
        shipping_failure_rate: 0.3,
        delivery_delay: Duration::from_millis(200),
        auto_pay: true,
        auto_approve: true,
        ..AppConfig::default()
    }
}

/// Submits every order (idempotently: a restart re-submits the same requests) and, for the
/// `finish` role, waits until every workflow has ended.
async fn child(data: &Path, finish: bool) {
    let app = App::open(data, config()).await.unwrap();
    let engine = app.register(Engine::builder()).open(data).await.unwrap();
    let client = engine.client();
    for n in 0..ORDERS {
        let (id, user, product_id) = order(n);
        let once = |what: &str| SendOptions::default().idempotency_key(format!("{what}-{id}"));
        client
            .send_with(
                session::ADD_ITEM.key(user),
                &AddItem {
                    product_id,
                    quantity: 1,
                },
                once("add"),
            )
            .await
            .unwrap();
        client
            .send_with(
                session::CHECKOUT.key(user),
                &Checkout {
                    order_id: id.clone(),
                    zone: "world".into(),
                    address: "3 Harbour Road, Wellington".into(),
                    carrier: None,
                },
                once("checkout"),
            )
            .await
            .unwrap();
    }
    if !finish {
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    for n in 0..ORDERS {
        let (id, _, _) = order(n);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while client.workflow_invocation(fulfillment::NAME, &id).is_err() {
            assert!(std::time::Instant::now() < deadline, "no workflow for {id}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = client
            .attach_workflow::<Progress>(fulfillment::NAME, &id)
            .await;
    }
    engine.shutdown().await;
    println!("CHILD DONE");
}

#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let data = PathBuf::from(std::env::var(DATA).unwrap());
    runtime().block_on(child(&data, role == "finish"));
}

#[test]
fn orders_survive_repeated_sigkills() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let side = dir.path().join("side.txt");
    // The seed's stock, read from a database no order touched yet.
    let rt = runtime();
    let initial = rt.block_on(async {
        let app = App::open(&data, config()).await.unwrap();
        app.db().call(|c| stock::levels(c)).await.unwrap()
    });

    let landed = kill_repeatedly("serve", &data, &side, 10, 1500);
    assert!(
        landed >= 5,
        "only {landed} kills landed while the child ran"
    );
    run_child_to_end("finish", &data, &side);

    rt.block_on(async {
        let app = App::open(&data, config()).await.unwrap();
        let db = app.db();
        let mut delivered: HashMap<i64, u32> = HashMap::new();
        for n in 0..ORDERS {
            let (id, _, product_id) = order(n);
            let key = id.clone();
            let stored = db
                .call(move |c| orders::order(c, &key))
                .await
                .unwrap()
                .unwrap();
            let key = id.clone();
            let shipment = db
                .call(move |c| shipments::shipment(c, &key))
                .await
                .unwrap();
            let key = id.clone();
            let history = db.call(move |c| orders::history(c, &key)).await.unwrap();
            let key = id.clone();
            let payment = db.call(move |c| payments::payment(c, &key)).await.unwrap();
            assert_eq!(
                payment.unwrap().status,
                payments::PaymentStatus::Paid,
                "{id}"
            );
            let statuses: Vec<&str> = history.iter().map(|h| h.status.as_str()).collect();
            let mut unique = statuses.clone();
            unique.dedup();
            assert_eq!(unique, statuses, "{id}: a history row twice");
            if id.contains("FAIL_SHIP") {
                assert_eq!(
                    stored.status,
                    OrderStatus::Failed.as_str(),
                    "{id}: {statuses:?}"
                );
                assert!(shipment.is_none(), "{id} was shipped");
            } else {
                assert_eq!(
                    stored.status,
                    OrderStatus::Delivered.as_str(),
                    "{id}: {statuses:?}"
                );
                assert_eq!(
                    shipment.unwrap().status,
                    shipments::ShipmentStatus::Active,
                    "{id}"
                );
                *delivered.entry(product_id).or_default() += 1;
            }
        }
        let levels = db.call(|c| stock::levels(c)).await.unwrap();
        for (was, now) in initial.iter().zip(&levels) {
            let gone = delivered.get(&was.product_id).copied().unwrap_or(0);
            assert_eq!(now.stock, was.stock - gone, "{}", was.sku);
        }
        let duplicates: i64 = db
            .call(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM (SELECT order_id, kind, user_id FROM notifications
                     GROUP BY order_id, kind, user_id HAVING COUNT(*) > 1)",
                    [],
                    |row| row.get(0),
                )
                .map_err(zeroapp_app::db::DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(duplicates, 0, "notifications twice");
        eprintln!("{landed} kills landed; {ORDERS} orders reached their final state");
    });
}
