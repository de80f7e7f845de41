//! The order-fulfillment flow end to end, against a real SQLite file: the happy path to delivery,
//! a declined payment, an admin rejection, a carrier refusal, transient carrier failures,
//! repeated checkouts, an expired approval deadline, bad input, and a cancellation. Every
//! scenario runs twice from this one code, so that any difference in behaviour fails a test:
//! on the embedded engine (`embedded::…`) and, through `zeroapp-restate`, on a real single-node
//! Restate server (`restate::…`).

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use zeroapp_app::db::{catalog, notifications, orders, payments, shipments, stock};
use zeroapp_app::fulfillment::{self, Progress, StepState};
use zeroapp_app::order_payment::{self, PaymentOutcome};
use zeroapp_app::payment::{self, Decline};
use zeroapp_app::session::{self, AddItem, BasketLine, Checkout, CheckoutSummary};
use zeroapp_app::status::OrderStatus;
use zeroapp_app::{App, AppConfig};
use zeroapp_engine::handler::{Answers, Callee};
use zeroapp_engine::{CallError, Client, Engine, Workflow};
use zeroapp_restate::local::Cluster;
use zeroapp_restate::{Deployment, RestateClient};

/// Which engine runs the handlers: the same definitions, the same scenarios.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// The embedded engine, in process.
    Embedded,
    /// A real single-node Restate server (restate-server from npm), the definitions served by
    /// `zeroapp-restate` from this process.
    Restate,
}

enum Runner {
    Embedded {
        engine: Engine,
        client: Client,
    },
    Restate {
        client: Box<RestateClient>,
        stop: CancellationToken,
        serving: tokio::task::JoinHandle<Result<(), zeroapp_restate::DeploymentError>>,
        _cluster: Box<Cluster>,
    },
}

struct Shop {
    app: App,
    runner: Runner,
    _dir: tempfile::TempDir,
}

impl Shop {
    async fn open(kind: Kind, config: AppConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let app = App::open(dir.path(), config).await.unwrap();
        let runner = match kind {
            Kind::Embedded => {
                let engine = app
                    .register(Engine::builder())
                    .open(dir.path())
                    .await
                    .unwrap();
                let client = engine.client();
                Runner::Embedded { engine, client }
            }
            Kind::Restate => {
                let cluster = Cluster::single().await.unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let endpoint = listener.local_addr().unwrap();
                let deployment = app
                    .definitions()
                    .into_iter()
                    .fold(Deployment::new(), |d, definition| d.register(definition));
                let stop = CancellationToken::new();
                let serving =
                    tokio::spawn(deployment.serve(listener, stop.clone().cancelled_owned()));
                cluster
                    .register(&format!("http://{endpoint}/"))
                    .await
                    .unwrap();
                let client = Box::new(RestateClient::new(
                    &cluster.ingress_url(0),
                    &cluster.admin_url(0),
                ));
                Runner::Restate {
                    client,
                    stop,
                    serving,
                    _cluster: Box::new(cluster),
                }
            }
        };
        Shop {
            app,
            runner,
            _dir: dir,
        }
    }

    async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        target: impl Callee<I> + Answers<O>,
        input: &I,
    ) -> Result<O, CallError> {
        let target = target.into_target();
        match &self.runner {
            Runner::Embedded { client, .. } => client.call(target, input).await,
            Runner::Restate { client, .. } => client.call(&target, input).await,
        }
    }

    /// The id of the order's fulfillment run, once it was submitted.
    async fn workflow_run(&self, order_id: &str) -> Option<String> {
        match &self.runner {
            Runner::Embedded { client, .. } => client
                .workflow_invocation(fulfillment::NAME, order_id)
                .ok()
                .map(|id| id.to_string()),
            Runner::Restate { client, .. } => client
                .invocations(fulfillment::NAME, Some(Workflow::RUN), Some(order_id))
                .await
                .unwrap()
                .into_iter()
                .next(),
        }
    }

    /// How many invocations of `service`'s `handler` there were.
    async fn invocations(&self, service: &str, handler: &str) -> usize {
        match &self.runner {
            Runner::Embedded { engine, .. } => engine
                .list_invocations(&zeroapp_engine::InvocationFilter {
                    service: Some(service.into()),
                    ..Default::default()
                })
                .unwrap()
                .iter()
                .filter(|i| i.target.handler == handler)
                .count(),
            Runner::Restate { client, .. } => client
                .invocations(service, Some(handler), None)
                .await
                .unwrap()
                .len(),
        }
    }

    /// The names of an invocation's journal entries (steps, and the targets of calls).
    async fn journal_names(&self, id: &str) -> Vec<String> {
        match &self.runner {
            Runner::Embedded { engine, .. } => engine
                .journal(id.parse().unwrap())
                .unwrap()
                .unwrap()
                .into_iter()
                .filter_map(|e| e.name)
                .collect(),
            Runner::Restate { client, .. } => client.journal_names(id).await.unwrap(),
        }
    }

    async fn cancel(&self, id: &str) {
        match &self.runner {
            Runner::Embedded { client, .. } => client.cancel(id.parse().unwrap()).await.unwrap(),
            Runner::Restate { client, .. } => client.cancel(id).await.unwrap(),
        }
    }

    async fn add(
        &self,
        user: &str,
        product_id: i64,
        quantity: i64,
    ) -> Result<Vec<BasketLine>, CallError> {
        self.call(
            session::ADD_ITEM.key(user),
            &AddItem {
                product_id,
                quantity,
            },
        )
        .await
    }

    async fn basket(&self, user: &str) -> Vec<BasketLine> {
        self.call(session::GET_BASKET.key(user), &()).await.unwrap()
    }

    /// Checks out with the default carrier: the answer comes before the payment.
    async fn checkout(&self, user: &str, order_id: &str) -> Result<CheckoutSummary, CallError> {
        self.checkout_with(user, order_id, None).await
    }

    async fn checkout_with(
        &self,
        user: &str,
        order_id: &str,
        carrier: Option<&str>,
    ) -> Result<CheckoutSummary, CallError> {
        self.call(
            session::CHECKOUT.key(user),
            &Checkout {
                order_id: order_id.into(),
                zone: "domestic".into(),
                address: "1 Main Street, Springfield".into(),
                carrier: carrier.map(str::to_owned),
            },
        )
        .await
    }

    /// How the order's payment ended.
    async fn payment_outcome(&self, order_id: &str) -> PaymentOutcome {
        match &self.runner {
            Runner::Embedded { client, .. } => {
                client.attach_workflow(order_payment::NAME, order_id).await
            }
            Runner::Restate { client, .. } => {
                client.attach_workflow(order_payment::NAME, order_id).await
            }
        }
        .unwrap()
    }

    /// Waits until the gateway holds a pending request for the order.
    async fn pending_payment(&self, order_id: &str) -> payments::PaymentRequest {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let id = order_id.to_owned();
            let found = self
                .app
                .db()
                .call(move |c| payments::payment(c, &id))
                .await
                .unwrap();
            if let Some(request) = found {
                return request;
            }
            assert!(
                Instant::now() < deadline,
                "no payment request for {order_id}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn pay(&self, order_id: &str) {
        self.pending_payment(order_id).await;
        self.call(payment::PAY, &order_id.to_owned()).await.unwrap();
    }

    /// Waits until the order's workflow is waiting for the admin.
    async fn awaiting_approval(&self, order_id: &str) {
        self.wait_for_status(order_id, OrderStatus::AwaitingApproval)
            .await;
    }

    async fn wait_for_status(&self, order_id: &str, status: OrderStatus) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(progress) = self.progress(order_id).await {
                if progress.status == status {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{order_id} never reached {status}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn approve(&self, order_id: &str, approved: bool) -> Result<(), CallError> {
        self.call(fulfillment::APPROVE.key(order_id), &approved)
            .await
    }

    async fn progress(&self, order_id: &str) -> Result<Progress, CallError> {
        self.call(fulfillment::STATUS.key(order_id), &()).await
    }

    /// Waits for the order's workflow to be submitted, then for its outcome.
    async fn outcome(&self, order_id: &str) -> Result<Progress, CallError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.workflow_run(order_id).await.is_none() {
            assert!(Instant::now() < deadline, "no workflow for {order_id}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match &self.runner {
            Runner::Embedded { client, .. } => {
                client.attach_workflow(fulfillment::NAME, order_id).await
            }
            Runner::Restate { client, .. } => {
                client.attach_workflow(fulfillment::NAME, order_id).await
            }
        }
    }

    async fn stock(&self, product_id: i64) -> u32 {
        self.app
            .db()
            .call(move |c| stock::stock_of(c, product_id))
            .await
            .unwrap()
            .unwrap()
    }

    async fn shipment(&self, order_id: &str) -> Option<shipments::Shipment> {
        let id = order_id.to_owned();
        self.app
            .db()
            .call(move |c| shipments::shipment(c, &id))
            .await
            .unwrap()
    }

    async fn history(&self, order_id: &str) -> Vec<String> {
        let id = order_id.to_owned();
        self.app
            .db()
            .call(move |c| orders::history(c, &id))
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.status)
            .collect()
    }

    async fn stop(self) {
        match self.runner {
            Runner::Embedded { engine, .. } => engine.shutdown().await,
            Runner::Restate { stop, serving, .. } => {
                stop.cancel();
                serving.await.unwrap().unwrap();
            }
        }
    }
}

/// Each scenario as a test on each backend, named `embedded::NAME` and `restate::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Embedded).await;
                }
            )*
        }
        mod restate {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Restate).await;
                }
            )*
        }
    };
}

on_both_backends!(
    happy_path_to_delivered,
    declined_payment_keeps_the_basket_and_starts_nothing,
    admin_rejection_releases_stock_and_ships_nothing,
    carrier_refusal_releases_stock_without_cancelling_a_shipment,
    transient_carrier_failures_are_retried,
    checkout_three_times_is_one_order,
    an_expired_approval_deadline_rejects_the_order,
    bad_input_is_a_typed_refusal_that_changes_nothing,
    cancelling_a_shipped_order_cancels_the_shipment_then_releases_stock,
);

fn config() -> AppConfig {
    AppConfig {
        shipping_failure_rate: 0.0,
        approval_deadline: Duration::from_secs(60),
        delivery_delay: Duration::from_millis(100),
        auto_pay: false,
        auto_approve: false,
        max_quantity: 10,
    }
}

async fn happy_path_to_delivered(kind: Kind) {
    let shop = Shop::open(kind, config()).await;
    let tent_before = shop.stock(1).await;
    shop.add("alice", 1, 2).await.unwrap();
    let basket = shop.add("alice", 16, 3).await.unwrap();
    assert_eq!(basket.len(), 2);
    assert_eq!(shop.basket("alice").await, basket);

    let mut live = shop.app.notifier().subscribe_user("alice");
    let mut admins = shop.app.notifier().subscribe_admins();
    let summary = shop.checkout("alice", "order-1").await.unwrap();
    assert!(
        shop.basket("alice").await.is_empty(),
        "the lines moved into the order"
    );
    let request = shop.pending_payment("order-1").await;
    assert_eq!(request.amount_cents, 2 * 24900 + 3 * 2400 + 499);
    assert_eq!(summary.total_cents, request.amount_cents);
    assert_eq!(summary.carrier, "ZeroPost");
    // The basket is usable while the payment waits: the checkout holds no key.
    shop.add("alice", 2, 1).await.unwrap();
    shop.pay("order-1").await;
    assert_eq!(
        shop.payment_outcome("order-1").await,
        PaymentOutcome::Paid {
            amount_cents: request.amount_cents
        }
    );
    assert_eq!(
        shop.basket("alice").await.len(),
        1,
        "what was added after checkout stays"
    );

    shop.awaiting_approval("order-1").await;
    assert_eq!(shop.stock(1).await, tent_before - 2, "reserved");
    shop.approve("order-1", true).await.unwrap();
    let done = shop.outcome("order-1").await.unwrap();
    assert_eq!(done.status, OrderStatus::Delivered);
    assert!(
        done.steps.iter().all(|(_, s)| *s == StepState::Done),
        "{done:?}"
    );
    assert!(done.tracking_number.is_some());
    assert_eq!(shop.stock(1).await, tent_before - 2);
    let shipment = shop.shipment("order-1").await.unwrap();
    assert_eq!(shipment.status, shipments::ShipmentStatus::Active);
    assert_eq!(
        shop.history("order-1").await,
        [
            "awaiting_payment",
            "paid",
            "stock_reserved",
            "awaiting_approval",
            "approved",
            "shipped",
            "delivered"
        ]
    );
    let notes = shop
        .app
        .db()
        .call(|c| notifications::for_user(c, "alice", 100))
        .await
        .unwrap();
    assert_eq!(notes.len(), 7, "{notes:?}");
    let mut pushed = Vec::new();
    while let Ok(note) = live.try_recv() {
        pushed.push(note.kind);
    }
    assert_eq!(
        pushed,
        shop.history("order-1").await,
        "each step pushed live, once"
    );
    let mut for_admins = Vec::new();
    while let Ok(note) = admins.try_recv() {
        for_admins.push(note.kind);
    }
    assert_eq!(for_admins, ["paid", "awaiting_approval", "delivered"]);
    shop.stop().await;
}

async fn declined_payment_keeps_the_basket_and_starts_nothing(kind: Kind) {
    let shop = Shop::open(kind, config()).await;
    let before = shop.stock(3).await;
    shop.add("bob", 3, 1).await.unwrap();
    shop.checkout("bob", "order-2").await.unwrap();
    shop.pending_payment("order-2").await;
    shop.add("bob", 3, 2).await.unwrap();
    shop.call::<_, ()>(
        payment::DECLINE,
        &Decline {
            order_id: "order-2".into(),
            reason: "card expired".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        shop.payment_outcome("order-2").await,
        PaymentOutcome::Declined {
            reason: "card expired".into()
        }
    );
    let basket = shop.basket("bob").await;
    assert_eq!(basket.len(), 1, "the basket is kept: {basket:?}");
    assert_eq!(
        basket[0].quantity, 3,
        "the order's 1 back beside the 2 added"
    );
    assert_eq!(shop.stock(3).await, before);
    assert!(shop.workflow_run("order-2").await.is_none());
    assert_eq!(
        shop.history("order-2").await,
        ["awaiting_payment", "payment_declined"]
    );
    shop.stop().await;
}

async fn admin_rejection_releases_stock_and_ships_nothing(kind: Kind) {
    let shop = Shop::open(kind, config()).await;
    let before = shop.stock(5).await;
    shop.add("carol", 5, 4).await.unwrap();
    shop.checkout("carol", "order-3").await.unwrap();
    shop.pay("order-3").await;
    shop.awaiting_approval("order-3").await;
    assert_eq!(shop.stock(5).await, before - 4);
    shop.approve("order-3", false).await.unwrap();
    let closed = shop.outcome("order-3").await.unwrap();
    assert_eq!(
        closed.status,
        OrderStatus::Rejected,
        "an answer, not a failure"
    );
    assert!(
        closed.failure.as_deref().unwrap().contains("rejected"),
        "{closed:?}"
    );
    assert_eq!(shop.stock(5).await, before, "released");
    assert!(shop.shipment("order-3").await.is_none());
    let progress = shop.progress("order-3").await.unwrap();
    assert_eq!(progress.status, OrderStatus::Rejected);
    assert_eq!(progress.steps[2].1, StepState::Failed);
    shop.stop().await;
}

async fn carrier_refusal_releases_stock_without_cancelling_a_shipment(kind: Kind) {
    let shop = Shop::open(kind, config()).await;
    let before = shop.stock(7).await;
    shop.add("alice", 7, 1).await.unwrap();
    let summary = shop
        .checkout_with("alice", "order-4", Some("NoPost"))
        .await
        .unwrap();
    assert_eq!(summary.carrier, "NoPost");
    shop.pay("order-4").await;
    shop.awaiting_approval("order-4").await;
    shop.approve("order-4", true).await.unwrap();
    let closed = shop.outcome("order-4").await.unwrap();
    assert_eq!(closed.status, OrderStatus::Failed);
    assert!(
        closed.failure.as_deref().unwrap().contains("NoPost"),
        "{closed:?}"
    );
    assert_eq!(closed.steps[3].1, StepState::Failed, "{closed:?}");
    assert_eq!(shop.stock(7).await, before);
    assert!(shop.shipment("order-4").await.is_none());
    assert_eq!(
        shop.invocations("ShippingService", "cancel_shipment").await,
        0,
        "no cancel_shipment call"
    );
    assert_eq!(shop.history("order-4").await.last().unwrap(), "failed");
    shop.stop().await;
}

async fn transient_carrier_failures_are_retried(kind: Kind) {
    let shop = Shop::open(kind, config()).await;
    shop.add("bob", 9, 1).await.unwrap();
    shop.checkout("bob", "order-FLAKY_SHIP-5").await.unwrap();
    shop.pay("order-FLAKY_SHIP-5").await;
    shop.awaiting_approval("order-FLAKY_SHIP-5").await;
    shop.approve("order-FLAKY_SHIP-5", true).await.unwrap();
    let done = shop.outcome("order-FLAKY_SHIP-5").await.unwrap();
    assert_eq!(done.status, OrderStatus::Delivered);
    assert_eq!(
        done.shipping_attempts, 3,
        "two transient failures, then success"
    );
    shop.stop().await;
}

async fn checkout_three_times_is_one_order(kind: Kind) {
    let shop = Shop::open(kind, config()).await;
    shop.add("alice", 11, 2).await.unwrap();
    let first = shop.checkout("alice", "order-6").await.unwrap();
    let second = shop.checkout("alice", "order-6").await.unwrap();
    shop.pay("order-6").await;
    let third = shop.checkout("alice", "order-6").await.unwrap();
    assert!(
        [&second, &third].iter().all(|s| **s == first),
        "the same answer, though the basket is empty after the first"
    );
    let pending = shop.app.db().call(|c| payments::pending(c)).await.unwrap();
    assert!(pending.is_empty());
    shop.awaiting_approval("order-6").await;
    assert_eq!(shop.invocations(fulfillment::NAME, Workflow::RUN).await, 1);
    assert_eq!(
        shop.invocations(order_payment::NAME, Workflow::RUN).await,
        1
    );
    shop.stop().await;
}

async fn an_expired_approval_deadline_rejects_the_order(kind: Kind) {
    let shop = Shop::open(
        kind,
        AppConfig {
            approval_deadline: Duration::from_millis(300),
            ..config()
        },
    )
    .await;
    let before = shop.stock(12).await;
    shop.add("carol", 12, 1).await.unwrap();
    shop.checkout("carol", "order-7").await.unwrap();
    shop.pay("order-7").await;
    let closed = shop.outcome("order-7").await.unwrap();
    assert_eq!(closed.status, OrderStatus::Rejected);
    let reason = closed.failure.unwrap();
    assert!(reason.contains("no decision within"), "{reason}");
    assert_eq!(shop.stock(12).await, before);
    let late = shop.approve("order-7", true).await.unwrap_err();
    assert_eq!(late.as_terminal().unwrap().code(), 409, "{late}");
    shop.stop().await;
}

async fn bad_input_is_a_typed_refusal_that_changes_nothing(kind: Kind) {
    let shop = Shop::open(kind, config()).await;
    let code = |r: Result<Vec<BasketLine>, CallError>| r.unwrap_err().as_terminal().unwrap().code();
    assert_eq!(code(shop.add("alice", 999, 1).await), 404);
    assert_eq!(code(shop.add("alice", 1, 0).await), 400);
    assert_eq!(code(shop.add("alice", 1, -3).await), 400);
    assert_eq!(code(shop.add("alice", 1, 11).await), 400);
    shop.add("alice", 4, 6).await.unwrap();
    assert_eq!(
        code(shop.add("alice", 4, 5).await),
        400,
        "11 in the basket is above the limit"
    );
    assert_eq!(shop.basket("alice").await[0].quantity, 6);
    shop.call::<_, Vec<BasketLine>>(session::REMOVE_ITEM.key("alice"), &4)
        .await
        .unwrap();

    let stock_18 = shop.stock(18).await;
    assert_eq!(stock_18, 10);
    shop.add("bob", 18, 10).await.unwrap();
    shop.app
        .db()
        .call(|c| {
            c.execute("UPDATE products SET stock = 3 WHERE id = 18", [])
                .map_err(zeroapp_app::db::DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(code(shop.add("carol", 18, 5).await), 409, "3 left");
    let error = shop.checkout("bob", "order-8").await.unwrap_err();
    assert_eq!(error.as_terminal().unwrap().code(), 409, "{error}");
    assert!(error.to_string().contains("out of stock"), "{error}");
    assert_eq!(
        shop.basket("bob").await.len(),
        1,
        "a refusal keeps the basket"
    );

    let error = shop.checkout("carol", "order-9").await.unwrap_err();
    assert_eq!(error.as_terminal().unwrap().code(), 400);
    assert!(error.to_string().contains("empty"), "{error}");

    let error = shop
        .checkout_with("bob", "order-8", Some("PigeonPost"))
        .await
        .unwrap_err();
    assert_eq!(error.as_terminal().unwrap().code(), 404, "{error}");

    let unknown = shop.approve("no-such-order", true).await.unwrap_err();
    assert_eq!(unknown.as_terminal().unwrap().code(), 404);

    shop.add("alice", 2, 1).await.unwrap();
    shop.checkout("alice", "order-10").await.unwrap();
    shop.pay("order-10").await;
    shop.awaiting_approval("order-10").await;
    shop.approve("order-10", true).await.unwrap();
    let twice = shop.approve("order-10", true).await.unwrap_err();
    assert_eq!(twice.as_terminal().unwrap().code(), 409, "{twice}");
    shop.outcome("order-10").await.unwrap();
    let orders = shop
        .app
        .db()
        .call(|c| orders::all_orders(c, 100))
        .await
        .unwrap();
    assert_eq!(
        orders.len(),
        1,
        "refused checkouts record no order: {orders:?}"
    );
    let users = shop.app.db().call(|c| catalog::users(c)).await.unwrap();
    assert!(users.iter().any(|u| u.is_admin));
    shop.stop().await;
}

async fn cancelling_a_shipped_order_cancels_the_shipment_then_releases_stock(kind: Kind) {
    let shop = Shop::open(
        kind,
        AppConfig {
            delivery_delay: Duration::from_secs(30),
            ..config()
        },
    )
    .await;
    let before = shop.stock(13).await;
    shop.add("bob", 13, 2).await.unwrap();
    shop.checkout("bob", "order-11").await.unwrap();
    shop.pay("order-11").await;
    shop.awaiting_approval("order-11").await;
    shop.approve("order-11", true).await.unwrap();
    shop.wait_for_status("order-11", OrderStatus::Shipped).await;
    let run = shop.workflow_run("order-11").await.unwrap();
    shop.cancel(&run).await;
    let error = shop.outcome("order-11").await.unwrap_err();
    assert_eq!(error.as_terminal().unwrap().code(), 409, "{error}");
    let shipment = shop.shipment("order-11").await.unwrap();
    assert_eq!(shipment.status, shipments::ShipmentStatus::Cancelled);
    assert_eq!(shop.stock(13).await, before, "released");
    let compensations: Vec<String> = shop
        .journal_names(&run)
        .await
        .into_iter()
        .filter(|n| n == "release stock" || n.contains("cancel_shipment"))
        .collect();
    assert_eq!(compensations.len(), 2, "{compensations:?}");
    assert!(
        compensations[0].contains("cancel_shipment"),
        "LIFO: {compensations:?}"
    );
    assert_eq!(shop.history("order-11").await.last().unwrap(), "failed");
    shop.stop().await;
}
