//! The storefront on a real 3-node Restate cluster (restate-server from npm, all on 127.0.0.1),
//! its handlers served by `zeroapp serve --restate-admin … --restate-ingress …`, through two
//! failures:
//!
//! 1. Shoppers place orders (auto-pay; some FAIL_SHIP; 30% of carrier calls fail transiently);
//!    an admin approves or rejects each. Mid-way the node leading the most partitions is
//!    SIGKILLed; the remaining decisions go through the surviving nodes (the storefront is given
//!    every node's ingress and admin API). The killed node restarts, rejoins, and a new order is
//!    delivered.
//! 2. The process serving the handlers (and the storefront) is SIGKILLed while orders are being
//!    shipped, and started again on the same data folder and deployment port.
//!
//! At the end every order is as it should be (delivered, rejected, or failed at shipping), with
//! its exact history; stock = initial − delivered; no payment, shipment, history row or
//! notification twice. The long mode repeats the node kill in rounds of more orders:
//! `ZEROAPP_CLUSTER_ORDERS=30 ZEROAPP_CLUSTER_KILLS=5 cargo test -p zeroapp-web --test cluster --
//! --nocapture` (by default one round of 18).

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::supervisor::{self, Process};
use common::{as_user, login, request};
use serde_json::{Value, json};
use zeroapp_restate::local::Cluster;

const SHOPPERS: [&str; 3] = ["alice", "bob", "carol"];

/// What the test decided for an order, and so how it must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Delivered,
    Rejected,
    /// Approved, refused by the carrier (FAIL_SHIP).
    Failed,
}

impl Fate {
    fn status(self) -> &'static str {
        match self {
            Fate::Delivered => "delivered",
            Fate::Rejected => "rejected",
            Fate::Failed => "failed",
        }
    }

    fn history(self) -> Vec<&'static str> {
        let mut history = vec![
            "awaiting_payment",
            "paid",
            "stock_reserved",
            "awaiting_approval",
        ];
        history.extend(match self {
            Fate::Delivered => vec!["approved", "shipped", "delivered"],
            Fate::Rejected => vec!["rejected"],
            Fate::Failed => vec!["approved", "failed"],
        });
        history
    }
}

struct Order {
    id: String,
    shopper: usize,
    product: i64,
    quantity: i64,
    fate: Fate,
}

/// A free port on 127.0.0.1 (the deployment keeps it across restarts: Restate calls that URL).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data: &Path, cluster: &Cluster, deployment_port: u16) -> (Process, String) {
    let ingress: Vec<String> = (0..cluster.len()).map(|n| cluster.ingress_url(n)).collect();
    let admin: Vec<String> = (0..cluster.len()).map(|n| cluster.admin_url(n)).collect();
    let deployment = format!("127.0.0.1:{deployment_port}");
    let args = [
        "--restate-admin",
        &admin.join(","),
        "--restate-ingress",
        &ingress.join(","),
        "--restate-deployment-addr",
        &deployment,
        "--auto-pay",
        "--shipping-failure-rate",
        "0.3",
        "--delivery-delay",
        "1500ms",
        "--approval-deadline",
        "10m",
    ];
    let mut process = supervisor::spawn(data, &args, &supervisor::log_path(data));
    let addrs = process
        .wait_listening(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("zeroapp did not start: {}", log_tail(data)));
    (process, addrs.storefront)
}

fn log_tail(data: &Path) -> String {
    let log = std::fs::read_to_string(supervisor::log_path(data)).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Retries a storefront request while the cluster answers 5xx (a failover in progress, a
/// restarting process); the first answer below 500.
fn settled(addr: &str, method: &str, path: &str, cookie: &str, body: &Value) -> common::Reply {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = std::panic::catch_unwind(|| {
            request(
                addr,
                method,
                path,
                &as_user(cookie),
                body.to_string().as_bytes(),
            )
        });
        if let Ok(reply) = reply {
            if reply.status < 500 {
                return reply;
            }
        }
        assert!(Instant::now() < deadline, "{method} {path} never settled");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status_of(addr: &str, cookie: &str, order: &str) -> Option<String> {
    let path = format!("/api/workflow/{order}/status");
    let reply = std::panic::catch_unwind(|| request(addr, "GET", &path, &as_user(cookie), b""));
    match reply {
        Ok(reply) if reply.status == 200 => reply.json()["status"].as_str().map(str::to_owned),
        _ => None,
    }
}

fn wait_for_status(addr: &str, cookie: &str, order: &str, wanted: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = status_of(addr, cookie, order) {
            if wanted.contains(&status.as_str()) {
                return status;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{order} never reached {wanted:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Adds the order's line to its shopper's cart and checks out; returns once the order waits for
/// the admin.
fn place(addr: &str, cookies: &[String], admin: &str, order: &Order) {
    let cookie = &cookies[order.shopper];
    let line = json!({ "product_id": order.product, "quantity": order.quantity });
    let added = settled(addr, "POST", "/api/cart/add", cookie, &line);
    assert_eq!(added.status, 200, "{}", added.body);
    let checkout = json!({
        "order_id": order.id,
        "zone": "domestic",
        "address": "1 Main Street, Springfield",
    });
    let placed = settled(addr, "POST", "/api/checkout", cookie, &checkout);
    assert_eq!(placed.status, 200, "{}", placed.body);
    wait_for_status(addr, admin, &order.id, &["awaiting_approval"]);
}

/// The admin's decision; a 409 after a retry means an earlier attempt went through.
fn decide(addr: &str, admin: &str, order: &Order) {
    let approved = order.fate != Fate::Rejected;
    let path = format!("/api/workflow/{}/approve", order.id);
    let reply = settled(addr, "POST", &path, admin, &json!({ "approved": approved }));
    assert!(
        reply.status == 200 || reply.status == 409,
        "{}: {} {}",
        order.id,
        reply.status,
        reply.body
    );
}

fn stock(addr: &str) -> BTreeMap<i64, i64> {
    let reply = request(addr, "GET", "/api/products", &[], b"");
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p["stock"].as_i64().unwrap()))
        .collect()
}

/// Every order ended as decided, with its exact history, one payment, at most one shipment,
/// each notification once; stock = initial − delivered. Returns the count of violations.
fn check(
    data: &Path,
    orders: &[Order],
    initial: &BTreeMap<i64, i64>,
    now: &BTreeMap<i64, i64>,
) -> usize {
    let db = rusqlite::Connection::open_with_flags(
        data.join("app.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut violations = Vec::new();
    for order in orders {
        let history: Vec<String> = db
            .prepare("SELECT status FROM order_history WHERE order_id = ?1 ORDER BY id")
            .unwrap()
            .query_map([&order.id], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if history != order.fate.history() {
            violations.push(format!(
                "{}: history {history:?}, expected {:?}",
                order.id,
                order.fate.history()
            ));
        }
        let count =
            |sql: &str| -> i64 { db.query_row(sql, [&order.id], |row| row.get(0)).unwrap() };
        if count("SELECT count(*) FROM payment_requests WHERE order_id = ?1 AND status = 'paid'")
            != 1
        {
            violations.push(format!("{}: not exactly one paid request", order.id));
        }
        let shipments = count("SELECT count(*) FROM shipments WHERE order_id = ?1");
        let expected = i64::from(order.fate == Fate::Delivered);
        if shipments != expected {
            violations.push(format!(
                "{}: {shipments} shipments, expected {expected}",
                order.id
            ));
        }
        let notes = count(
            "SELECT count(*) - count(DISTINCT kind || coalesce(user_id, '')) FROM notifications \
             WHERE order_id = ?1",
        );
        if notes != 0 {
            violations.push(format!("{}: {notes} notifications twice", order.id));
        }
    }
    for (product, before) in initial {
        let delivered: i64 = orders
            .iter()
            .filter(|o| o.product == *product && o.fate == Fate::Delivered)
            .map(|o| o.quantity)
            .sum();
        if now[product] != before - delivered {
            violations.push(format!(
                "product {product}: stock {}, expected {before} − {delivered}",
                now[product]
            ));
        }
    }
    for violation in &violations {
        eprintln!("VIOLATION {violation}");
    }
    violations.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_a_node_kill_and_a_deployment_kill() {
    let setting = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let total = setting("ZEROAPP_CLUSTER_ORDERS", 18).max(6);
    let rounds = setting("ZEROAPP_CLUSTER_KILLS", 1).max(1);
    let mut cluster = Cluster::start(3).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let deployment_port = free_port();
    let (mut process, mut addr) = serve(&data, &cluster, deployment_port);
    let admin = login(&addr, "admin");
    let cookies: Vec<String> = SHOPPERS.iter().map(|s| login(&addr, s)).collect();
    let initial = stock(&addr);

    let order = |i: usize| {
        let fate = match i % 6 {
            2 => Fate::Rejected,
            5 => Fate::Failed,
            _ => Fate::Delivered,
        };
        let suffix = if fate == Fate::Failed {
            "-FAIL_SHIP"
        } else {
            ""
        };
        Order {
            id: format!("c{i}{suffix}"),
            shopper: i % SHOPPERS.len(),
            product: i64::try_from(i % 20 + 1).unwrap(),
            quantity: i64::try_from(i % 3 + 1).unwrap(),
            fate,
        }
    };

    // Phase 1: a node dies mid-flow, once per round; each time it restarts, rejoins and serves
    // a new order.
    let mut orders: Vec<Order> = Vec::new();
    for round in 0..rounds {
        let first = orders.len();
        orders.extend((first..first + total).map(order));
        for order in &orders[first..] {
            place(&addr, &cookies, &admin, order);
        }
        let half = first + total / 2;
        for order in &orders[first..half] {
            decide(&addr, &admin, order);
        }
        let victim = cluster.leader_of_most_partitions().unwrap();
        cluster.kill(victim);
        let killed = Instant::now();
        decide(&addr, &admin, &orders[half]);
        let first_answer = killed.elapsed();
        for order in &orders[half + 1..] {
            decide(&addr, &admin, order);
        }
        for order in &orders[first..] {
            wait_for_status(&addr, &admin, &order.id, &[order.fate.status()]);
        }
        let settled_at = Instant::now();
        cluster.restart(victim).await.unwrap();
        let rejoined = orders.len();
        orders.push(order(rejoined));
        let new_order = &orders[rejoined];
        place(&addr, &cookies, &admin, new_order);
        decide(&addr, &admin, new_order);
        wait_for_status(&addr, &admin, &new_order.id, &[new_order.fate.status()]);
        eprintln!(
            "round {round}: node {victim} ({}) killed: next approval answered {first_answer:?} \
             later; {total} orders settled; the node rejoined and a new order ended {} in {:?}",
            cluster.node_name(victim),
            new_order.fate.status(),
            settled_at.elapsed()
        );
    }

    // Phase 2: the process serving the handlers dies while orders ship.
    let start = orders.len();
    let batch: Vec<Order> = (start..start + 6)
        .map(|i| {
            let mut o = order(i);
            if o.fate == Fate::Rejected {
                o.fate = Fate::Delivered; // every one of these ships, or fails shipping
            }
            o
        })
        .collect();
    orders.extend(batch);
    for order in &orders[start..] {
        place(&addr, &cookies, &admin, order);
        decide(&addr, &admin, order);
    }
    wait_for_status(&addr, &admin, &orders[start].id, &["shipped", "delivered"]);
    assert!(process.kill(), "the deployment process was running");
    let (restarted, new_addr) = serve(&data, &cluster, deployment_port);
    process = restarted;
    addr = new_addr;
    for order in &orders {
        wait_for_status(&addr, &admin, &order.id, &[order.fate.status()]);
    }
    let mut fates = BTreeMap::new();
    for order in &orders {
        *fates.entry(order.fate.status()).or_insert(0) += 1;
    }
    let violations = check(&data, &orders, &initial, &stock(&addr));
    eprintln!(
        "{} orders on 3 nodes ({fates:?}), {rounds} node kills, 1 deployment kill: {violations} \
         violations",
        orders.len()
    );
    assert_eq!(
        violations,
        0,
        "see VIOLATION lines; log:\n{}",
        log_tail(&data)
    );
    process.terminate(Duration::from_secs(15));
}
