//! Many concurrent orders with auto-pay and auto-approve: every one is delivered, and stock,
//! payments and shipments balance.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::time::Duration;

use zeroapp_app::db::{DbError, payments, shipments, stock};
use zeroapp_app::fulfillment::{self, Progress};
use zeroapp_app::session::{self, AddItem, Checkout, CheckoutSummary};
use zeroapp_app::status::OrderStatus;
use zeroapp_app::{App, AppConfig};
use zeroapp_engine::Engine;

const USERS: usize = 20;
const ORDERS_PER_USER: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_orders_are_all_delivered_and_stock_balances() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::open(
        dir.path(),
        AppConfig {
            shipping_failure_rate: 0.0,
            delivery_delay: Duration::from_millis(10),
            auto_pay: true,
            auto_approve: true,
            ..AppConfig::default()
        },
    )
    .await
    .unwrap();
    // Shoppers, and stock enough for everyone.
    app.db()
        .call(|c| {
            for u in 0..USERS {
                c.execute(
                    "INSERT INTO users (id, name, email, is_admin) VALUES (?1, ?1, ?1 || '@example.com', 0)",
                    [format!("shopper{u:02}")],
                )?;
            }
            c.execute("UPDATE products SET stock = stock + 1000", [])?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
    let before = app.db().call(|c| stock::levels(c)).await.unwrap();
    let engine = app
        .register(Engine::builder())
        .open(dir.path())
        .await
        .unwrap();
    let client = engine.client();

    let mut shoppers = Vec::new();
    for u in 0..USERS {
        let client = client.clone();
        shoppers.push(tokio::spawn(async move {
            let user = format!("shopper{u:02}");
            let mut ordered = Vec::new();
            for n in 0..ORDERS_PER_USER {
                let product_id = i64::try_from((u * ORDERS_PER_USER + n) % 24 + 1).unwrap();
                let item = AddItem {
                    product_id,
                    quantity: 1,
                };
                client
                    .call(session::ADD_ITEM.key(&user), &item)
                    .await
                    .unwrap();
                let order_id = format!("{user}-{n}");
                let summary: CheckoutSummary = client
                    .call(
                        session::CHECKOUT.key(&user),
                        &Checkout {
                            order_id: order_id.clone(),
                            zone: "eu".into(),
                            address: "2 Rue de la Paix, Paris".into(),
                            carrier: None,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(summary.order_id, order_id);
                ordered.push((order_id, product_id));
            }
            ordered
        }));
    }
    let mut orders = Vec::new();
    for shopper in shoppers {
        orders.extend(shopper.await.unwrap());
    }
    assert_eq!(orders.len(), USERS * ORDERS_PER_USER);

    let mut delivered_per_product = std::collections::HashMap::<i64, u32>::new();
    for (order_id, product_id) in &orders {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while client
            .workflow_invocation(fulfillment::NAME, order_id)
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no workflow for {order_id}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let done: Progress = client
            .attach_workflow(fulfillment::NAME, order_id)
            .await
            .unwrap();
        assert_eq!(done.status, OrderStatus::Delivered, "{order_id}");
        *delivered_per_product.entry(*product_id).or_default() += 1;
    }

    let after = app.db().call(|c| stock::levels(c)).await.unwrap();
    for (was, now) in before.iter().zip(&after) {
        let delivered = delivered_per_product
            .get(&was.product_id)
            .copied()
            .unwrap_or(0);
        assert_eq!(now.stock, was.stock - delivered, "{}", was.sku);
    }
    let active = app.db().call(|c| shipments::count_active(c)).await.unwrap();
    assert_eq!(active, i64::try_from(orders.len()).unwrap());
    let pending = app.db().call(|c| payments::pending(c)).await.unwrap();
    assert!(
        pending.is_empty(),
        "{} payments still pending",
        pending.len()
    );
    engine.shutdown().await;
}
