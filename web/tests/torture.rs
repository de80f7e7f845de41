//! Crash torture: the real `zeroapp serve` under a mixed load of orders over the JSON API,
//! SIGKILLed at random moments (some during start-up and recovery) and restarted on the same
//! data folder; at the end every order must be in the final state an independent model expects,
//! and SQLite and the engine must hold exactly what those orders imply.
//!
//! Short mode (part of `cargo test --workspace`): 40 kills. Long mode:
//! `ZEROAPP_TORTURE_KILLS=200 cargo test --release -p zeroapp-web --test torture -- --nocapture`.
//! `ZEROAPP_TORTURE_SEED` replays the harness's random choices (not the kills' timing).
//! docs/testing.md ("Crash torture") describes the model and the invariants.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use common::Reply;
use common::client::try_request;
use common::supervisor::{self, Addrs, Process};
use serde_json::{Value, json};

const SHOPPERS: [&str; 3] = ["alice", "bob", "carol"];
const ZONES: [&str; 5] = ["local", "domestic", "express", "eu", "world"];
/// The engine's statuses of invocations that have not finished.
const UNFINISHED: [&str; 5] = [
    "pending",
    "scheduled",
    "running",
    "backing-off",
    "suspended",
];
const SERVER_ARGS: [&str; 10] = [
    "--auto-pay",
    "--delivery-delay",
    "150ms",
    "--shipping-failure-rate",
    "0.3",
    "--approval-deadline",
    "1h",
    "--shutdown-grace",
    "2s",
    "--log-level=warn",
];
/// How long one request may take before the harness counts it as unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long any one wait of the harness may take, restarts included.
const PATIENCE: Duration = Duration::from_secs(120);

/// A small deterministic generator (xorshift64*), seeded per thread from the run's seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// The final state the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Delivered,
    Rejected,
    Failed,
}

impl Expect {
    fn status(self) -> &'static str {
        match self {
            Expect::Delivered => "delivered",
            Expect::Rejected => "rejected",
            Expect::Failed => "failed",
        }
    }
    /// The order's history, in order.
    fn history(self) -> Vec<&'static str> {
        let mut h = vec![
            "awaiting_payment",
            "paid",
            "stock_reserved",
            "awaiting_approval",
        ];
        match self {
            Expect::Delivered => h.extend(["approved", "shipped", "delivered"]),
            Expect::Rejected => h.push("rejected"),
            Expect::Failed => h.extend(["approved", "failed"]),
        }
        h
    }
}

/// Statuses after which the domain also notifies the admins.
const ADMIN_NOTIFIED: [&str; 5] = [
    "paid",
    "awaiting_approval",
    "rejected",
    "failed",
    "delivered",
];

/// The admin's decision on one order, as far as the harness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Not sent yet.
    Open,
    /// Sent without an answer: it may have landed.
    Sent,
    /// Known to be taken.
    Taken,
}

/// One order as the harness means it.
#[derive(Debug, Clone)]
struct Order {
    id: String,
    user: &'static str,
    lines: Vec<(i64, u32)>,
    zone: &'static str,
    approve: bool,
    /// Approve (or reject) twice, the second time the other way: must be refused (409).
    double_decision: bool,
    fail_ship: bool,
    /// Checkout answered 200 and the payment went through: the admin may decide.
    paid: bool,
    decision: Decision,
}

impl Order {
    fn expect(&self) -> Expect {
        if !self.approve {
            Expect::Rejected
        } else if self.fail_ship {
            Expect::Failed
        } else {
            Expect::Delivered
        }
    }
}

/// The independent model: the orders placed and the stock no order has claimed yet.
struct Model {
    orders: Vec<Order>,
    /// Stock the harness has not put into an order yet (every order counts, whatever its
    /// fate), so no basket can run out of stock.
    budget: BTreeMap<i64, u32>,
}

impl Model {
    fn new_order(&mut self, user: &'static str, rng: &mut Rng) -> Option<Order> {
        let n = self.orders.len();
        let wanted = if rng.percent(20) { 2 } else { 1 };
        let mut lines: Vec<(i64, u32)> = Vec::new();
        for _ in 0..wanted {
            let quantity = if rng.percent(15) { 2 } else { 1 };
            let candidates: Vec<i64> = self
                .budget
                .iter()
                .filter(|&(p, &left)| left >= quantity && !lines.iter().any(|l| l.0 == *p))
                .map(|(&p, _)| p)
                .collect();
            if candidates.is_empty() {
                break;
            }
            let product = candidates[usize::try_from(rng.below(candidates.len() as u64)).unwrap()];
            *self.budget.get_mut(&product).unwrap() -= quantity;
            lines.push((product, quantity));
        }
        if lines.is_empty() {
            return None;
        }
        let kind = rng.below(100);
        let suffix = match kind {
            0..12 => "-FAIL_SHIP",
            12..20 => "-FLAKY_SHIP",
            _ => "",
        };
        let order = Order {
            id: format!("tt-{n:04}-{user}{suffix}"),
            user,
            lines,
            zone: ZONES[usize::try_from(rng.below(ZONES.len() as u64)).unwrap()],
            approve: !rng.percent(20),
            double_decision: rng.percent(15),
            fail_ship: kind < 12,
            paid: false,
            decision: Decision::Open,
        };
        self.orders.push(order.clone());
        Some(order)
    }

    fn update(&mut self, id: &str, f: impl FnOnce(&mut Order)) {
        f(self.orders.iter_mut().find(|o| o.id == id).unwrap());
    }
}

#[derive(Default)]
struct Counters {
    unanswered: AtomicUsize,
    unanswered_writes: AtomicUsize,
    /// POSTs sent and not answered yet: the killer aims some kills at them.
    writes_in_flight: AtomicUsize,
    duplicate_checkouts: AtomicUsize,
    double_decisions: AtomicUsize,
}

/// What the threads share: the live server's addresses, the model, the violations found.
struct Harness {
    live: Mutex<Option<Addrs>>,
    up: Condvar,
    model: Mutex<Model>,
    violations: Mutex<Vec<String>>,
    cookies: HashMap<&'static str, String>,
    stop_orders: AtomicBool,
    shoppers_done: AtomicBool,
    counters: Counters,
}

impl Harness {
    fn violation(&self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.violations.lock().unwrap().push(what);
    }

    fn publish(&self, addrs: Option<Addrs>) {
        *self.live.lock().unwrap() = addrs;
        self.up.notify_all();
    }

    /// The addresses of the server that is up, waiting for one.
    fn addrs(&self) -> Addrs {
        let live = self.live.lock().unwrap();
        let (live, timeout) = self
            .up
            .wait_timeout_while(live, PATIENCE, |a| a.is_none())
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "no server came up within {PATIENCE:?}"
        );
        live.clone().unwrap()
    }

    /// One try on the storefront; `None` if there was no answer (the server may have acted).
    fn attempt(&self, method: &str, path: &str, user: &str, body: &Value) -> Option<Reply> {
        let addrs = self.addrs();
        let cookie = &self.cookies[user];
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let headers = [("cookie", cookie.as_str())];
        let write = method == "POST";
        let in_flight = &self.counters.writes_in_flight;
        if write {
            in_flight.fetch_add(1, Ordering::SeqCst);
        }
        let reply = try_request(
            &addrs.storefront,
            method,
            path,
            &headers,
            &body,
            REQUEST_TIMEOUT,
        );
        if write {
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        match reply {
            Ok(reply) => Some(reply),
            Err(_) => {
                self.counters.unanswered.fetch_add(1, Ordering::Relaxed);
                if write {
                    self.counters
                        .unanswered_writes
                        .fetch_add(1, Ordering::Relaxed);
                }
                // Give the killer time to publish the next server.
                std::thread::sleep(Duration::from_millis(30));
                None
            }
        }
    }

    /// A request that may be repeated (a read, or an idempotent write) until it is answered.
    fn answered(&self, method: &str, path: &str, user: &str, body: &Value) -> Reply {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(reply) = self.attempt(method, path, user, body) {
                return reply;
            }
            assert!(Instant::now() < deadline, "{method} {path}: never answered");
        }
    }

    /// A GET on the admin API, repeated until answered; the JSON body.
    fn admin_get(&self, path: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let addrs = self.addrs();
            if let Ok(reply) = try_request(&addrs.admin, "GET", path, &[], b"", REQUEST_TIMEOUT) {
                assert_eq!(reply.status, 200, "admin {path}: {}", reply.body);
                return reply.json();
            }
            assert!(Instant::now() < deadline, "admin {path}: never answered");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Unfinished invocations (optionally of one object key), as `target status` lines.
    fn unfinished(&self, service_key: Option<(&str, &str)>) -> Vec<String> {
        let filter = service_key.map_or(String::new(), |(s, k)| format!("&service={s}&key={k}"));
        let mut found = Vec::new();
        for status in UNFINISHED {
            let list = self.admin_get(&format!("/invocations?status={status}{filter}"));
            for inv in list["invocations"].as_array().unwrap() {
                found.push(format!("{} {} {}", inv["id"], inv["target"], inv["status"]));
            }
        }
        found
    }

    /// Waits until the user's UserSession object runs nothing: a request that got no answer
    /// has then either happened or not, for good.
    fn wait_session_quiet(&self, user: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let busy = self.unfinished(Some(("UserSession", user)));
            if busy.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{user}'s session stays busy: {busy:?}"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

/// (product, quantity) lines of a cart answer, sorted.
fn cart_lines(cart: &Value) -> Vec<(i64, u32)> {
    let mut lines: Vec<(i64, u32)> = cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["product_id"].as_i64().unwrap(),
                u32::try_from(l["quantity"].as_u64().unwrap()).unwrap(),
            )
        })
        .collect();
    lines.sort_unstable();
    lines
}

/// Brings the user's basket to exactly `want`, one add or remove at a time. After a request
/// without an answer the basket is unknown: wait until the session is quiet, then read it.
fn converge_basket(
    h: &Harness,
    user: &str,
    want: &[(i64, u32)],
    known: &mut Option<Vec<(i64, u32)>>,
) {
    let mut want = want.to_vec();
    want.sort_unstable();
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(
            Instant::now() < deadline,
            "{user}'s basket never became {want:?}"
        );
        let have = match known.take() {
            Some(have) => have,
            None => {
                h.wait_session_quiet(user);
                cart_lines(&h.answered("GET", "/api/cart", user, &Value::Null).json())
            }
        };
        if have == want {
            *known = Some(have);
            return;
        }
        let (path, body) = if let Some(&(product, _)) = have.iter().find(|l| !want.contains(l)) {
            ("/api/cart/remove", json!({ "product_id": product }))
        } else {
            let &(product, quantity) = want.iter().find(|l| !have.contains(l)).unwrap();
            (
                "/api/cart/add",
                json!({ "product_id": product, "quantity": quantity }),
            )
        };
        match h.attempt("POST", path, user, &body) {
            Some(reply) if reply.status == 200 => *known = Some(cart_lines(&reply.json())),
            Some(reply) => {
                h.violation(format!(
                    "{user} {path} {body}: {} {}",
                    reply.status, reply.body
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            None => {}
        }
    }
}

/// Checkout (repeated until answered: the order id makes it idempotent), sometimes sent twice
/// on purpose, then waits until the payment went through.
fn checkout(h: &Harness, order: &Order, rng: &mut Rng) {
    let (user, id) = (order.user, order.id.as_str());
    let body = json!({
        "order_id": id,
        "zone": order.zone,
        "address": format!("{} Torture Lane", &id[3..7]),
    });
    let first = h.answered("POST", "/api/checkout", user, &body);
    if first.status != 200 {
        h.violation(format!("checkout {id}: {} {}", first.status, first.body));
        return;
    }
    let answer = first.json();
    let same_checkout = |when: &str| {
        h.counters
            .duplicate_checkouts
            .fetch_add(1, Ordering::Relaxed);
        let again = h.answered("POST", "/api/checkout", user, &body);
        if again.status != 200 || again.json() != answer {
            h.violation(format!(
                "checkout {id} repeated {when}: {} {} (first: {answer})",
                again.status, again.body
            ));
        }
    };
    if rng.percent(25) {
        same_checkout("at once");
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = h.answered("GET", &format!("/api/orders/{id}"), user, &Value::Null);
        if reply.status == 200 {
            match reply.json()["order"]["status"].as_str().unwrap() {
                "awaiting_payment" => {}
                "payment_declined" => {
                    h.violation(format!("{id}: payment declined under --auto-pay"));
                    return;
                }
                _ => break,
            }
        } else if reply.status != 404 {
            h.violation(format!("GET order {id}: {} {}", reply.status, reply.body));
        }
        if Instant::now() > deadline {
            h.violation(format!("{id} never got paid"));
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if rng.percent(20) {
        same_checkout("after payment");
    }
    h.model.lock().unwrap().update(id, |o| o.paid = true);
}

/// A shopper: order after order (basket, checkout, payment) until told to stop.
/// `slow` stretches the pause between orders, in tenths: a long run spreads the stock over
/// all its kills.
fn shopper(h: &Harness, user: &'static str, mut rng: Rng, slow: u64) {
    // The basket starts empty and every paid checkout empties it.
    let mut known = Some(Vec::new());
    while !h.stop_orders.load(Ordering::Relaxed) {
        let Some(order) = h.model.lock().unwrap().new_order(user, &mut rng) else {
            break;
        };
        converge_basket(h, user, &order.lines, &mut known);
        checkout(h, &order, &mut rng);
        known = Some(Vec::new());
        // Two orders a second per shopper or so (short mode): several in flight at every kill.
        std::thread::sleep(Duration::from_millis((200 + rng.below(400)) * slow / 10));
    }
}

/// The admin: approves or rejects each paid order once it waits for a decision.
fn admin(h: &Harness) {
    loop {
        let open: Vec<Order> = h
            .model
            .lock()
            .unwrap()
            .orders
            .iter()
            .filter(|o| o.paid && o.decision != Decision::Taken)
            .cloned()
            .collect();
        if open.is_empty() && h.shoppers_done.load(Ordering::Relaxed) {
            return;
        }
        for order in &open {
            decide(h, order);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn decide(h: &Harness, order: &Order) {
    let id = order.id.as_str();
    let status = h.answered(
        "GET",
        &format!("/api/workflow/{id}/status"),
        "admin",
        &Value::Null,
    );
    if status.status == 404 {
        return; // the workflow has not started yet
    }
    if status.status != 200 {
        h.violation(format!("status of {id}: {} {}", status.status, status.body));
        return;
    }
    let set = |d: Decision| h.model.lock().unwrap().update(id, |o| o.decision = d);
    match status.json()["status"].as_str().unwrap() {
        "paid" | "stock_reserved" => {}
        "awaiting_approval" => {
            let path = format!("/api/workflow/{id}/approve");
            let body = json!({ "approved": order.approve });
            match h.attempt("POST", &path, "admin", &body) {
                Some(reply) if reply.status == 200 => {
                    set(Decision::Taken);
                    if order.double_decision {
                        h.counters.double_decisions.fetch_add(1, Ordering::Relaxed);
                        let other = json!({ "approved": !order.approve });
                        match h.attempt("POST", &path, "admin", &other) {
                            Some(again) if again.status != 409 => h.violation(format!(
                                "second decision on {id}: {} {}",
                                again.status, again.body
                            )),
                            _ => {}
                        }
                    }
                }
                Some(reply) if reply.status == 409 && order.decision == Decision::Sent => {
                    set(Decision::Taken);
                }
                Some(reply) => {
                    h.violation(format!("approve {id}: {} {}", reply.status, reply.body));
                    set(Decision::Taken);
                }
                None => set(Decision::Sent),
            }
        }
        past => {
            if order.decision == Decision::Open {
                h.violation(format!("{id} went on to {past} without a decision"));
            }
            set(Decision::Taken);
        }
    }
}

struct Kills {
    landed: usize,
    before_listening: usize,
    during_writes: usize,
    spawns: usize,
}

/// Starts servers and SIGKILLs them until `wanted` kills landed; leaves the last one running.
fn killer(h: &Harness, data: &Path, log: &Path, wanted: usize, mut rng: Rng) -> (Kills, Process) {
    let mut kills = Kills {
        landed: 0,
        before_listening: 0,
        during_writes: 0,
        spawns: 0,
    };
    while kills.landed < wanted {
        let mut server = supervisor::spawn(data, &SERVER_ARGS, log);
        kills.spawns += 1;
        if rng.percent(25) {
            // During start-up: opening the journal, recovering invocations.
            std::thread::sleep(Duration::from_millis(rng.below(25)));
            let listening = server.wait_listening(Duration::ZERO).is_some();
            if server.kill() {
                kills.landed += 1;
                kills.before_listening += usize::from(!listening);
            }
            continue;
        }
        let Some(addrs) = server.wait_listening(PATIENCE) else {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            panic!("zeroapp did not start: {}", tail_of(&tail));
        };
        h.publish(Some(addrs));
        std::thread::sleep(Duration::from_millis(150 + rng.below(1850)));
        let in_flight = &h.counters.writes_in_flight;
        if rng.percent(40) {
            // Aim at a request in flight (add, remove, checkout, approve).
            let give_up = Instant::now() + Duration::from_millis(1500);
            while in_flight.load(Ordering::SeqCst) == 0 && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.below(4)));
        }
        let during_write = in_flight.load(Ordering::SeqCst) > 0;
        if server.kill() {
            kills.landed += 1;
            kills.during_writes += usize::from(during_write);
        } else {
            h.violation(format!(
                "the server exited by itself after {:?}",
                server.age()
            ));
        }
        h.publish(None);
    }
    let mut server = supervisor::spawn(data, &SERVER_ARGS, log);
    kills.spawns += 1;
    let addrs = server
        .wait_listening(PATIENCE)
        .expect("the last server did not start");
    h.publish(Some(addrs));
    (kills, server)
}

fn tail_of(text: &str) -> &str {
    &text[text.len().saturating_sub(2000)..]
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap())
}

#[test]
fn orders_survive_random_sigkills_of_the_server() {
    let started = Instant::now();
    let wanted = usize::try_from(env_number("ZEROAPP_TORTURE_KILLS").unwrap_or(40)).unwrap();
    let seed = env_number("ZEROAPP_TORTURE_SEED").unwrap_or_else(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish()
    });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = supervisor::log_path(&data);

    // First start: log in, and read the seeded stock before any order.
    let mut first = supervisor::spawn(&data, &SERVER_ARGS, &log);
    let addrs = first
        .wait_listening(PATIENCE)
        .expect("zeroapp did not start");
    let mut cookies = HashMap::new();
    for user in SHOPPERS.into_iter().chain(["admin"]) {
        cookies.insert(user, common::login(&addrs.storefront, user));
    }
    let products = common::request(&addrs.storefront, "GET", "/api/products", &[], b"").json();
    let initial: BTreeMap<i64, u32> = products
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_i64().unwrap(),
                u32::try_from(p["stock"].as_u64().unwrap()).unwrap(),
            )
        })
        .collect();
    first.kill();
    drop(first);

    let h = Harness {
        live: Mutex::new(None),
        up: Condvar::new(),
        model: Mutex::new(Model {
            orders: Vec::new(),
            budget: initial.clone(),
        }),
        violations: Mutex::new(Vec::new()),
        cookies,
        stop_orders: AtomicBool::new(false),
        shoppers_done: AtomicBool::new(false),
        counters: Counters::default(),
    };
    eprintln!(
        "torture: seed {seed}, {wanted} kills wanted, data in {}",
        data.display()
    );

    let (kills, mut server, load_time) = std::thread::scope(|s| {
        let mut rng = Rng::new(seed);
        let admin_thread = s.spawn(|| admin(&h));
        let shoppers: Vec<_> = SHOPPERS
            .into_iter()
            .map(|user| {
                let rng = Rng::new(rng.next());
                let h = &h;
                // About 1,000 units of stock: some 750 orders.
                let slow = (wanted as u64 * 10 / 80).max(10);
                s.spawn(move || shopper(h, user, rng, slow))
            })
            .collect();
        let (kills, server) = killer(&h, &data, &log, wanted, Rng::new(rng.next()));
        let load_time = started.elapsed();
        h.stop_orders.store(true, Ordering::Relaxed);
        for shopper in shoppers {
            shopper.join().unwrap();
        }
        h.shoppers_done.store(true, Ordering::Relaxed);
        admin_thread.join().unwrap();
        (kills, server, load_time)
    });

    let orders = h.model.lock().unwrap().orders.clone();
    wait_for_final_states(&h, &orders);
    let unfinished = wait_for_engine_quiet(&h);
    for line in &unfinished {
        h.violation(format!("unfinished invocation: {line}"));
    }
    let runs = h.admin_get("/invocations?service=OrderFulfillment&limit=1000000");
    check_checkouts(&h, &orders);
    let exit = server.terminate(Duration::from_secs(30));
    if !exit.is_some_and(|status| status.success()) {
        h.violation(format!("SIGTERM: the server exited with {exit:?}"));
    }
    drop(server);
    check_inspect(&h, &data);
    check_workflow_runs(&h, &orders, &runs);
    check_sqlite(&h, &data.join("app.sqlite"), &orders, &initial);

    let violations = h.violations.lock().unwrap().clone();
    let count = |e: Expect| orders.iter().filter(|o| o.expect() == e).count();
    eprintln!(
        "torture: {} kills landed ({} before the server listened, {} with a POST in flight; \
         {} starts), {} orders ({} delivered, {} rejected, {} failed), {} requests unanswered \
         ({} of them writes), {} repeated checkouts, {} second decisions; {} violations; \
         load {:.1}s, total {:.1}s",
        kills.landed,
        kills.before_listening,
        kills.during_writes,
        kills.spawns,
        orders.len(),
        count(Expect::Delivered),
        count(Expect::Rejected),
        count(Expect::Failed),
        h.counters.unanswered.load(Ordering::Relaxed),
        h.counters.unanswered_writes.load(Ordering::Relaxed),
        h.counters.duplicate_checkouts.load(Ordering::Relaxed),
        h.counters.double_decisions.load(Ordering::Relaxed),
        violations.len(),
        load_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(kills.landed >= wanted);
    assert!(
        orders.len() >= 3 * SHOPPERS.len(),
        "too few orders to mean anything: {}",
        orders.len()
    );
    assert!(
        violations.is_empty(),
        "{} violations (seed {seed}):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// Waits until every order reached a final status (read through the API as the admin).
fn wait_for_final_states(h: &Harness, orders: &[Order]) {
    let deadline = Instant::now() + PATIENCE;
    for order in orders {
        loop {
            let reply = h.answered(
                "GET",
                &format!("/api/orders/{}", order.id),
                "admin",
                &Value::Null,
            );
            let status = if reply.status == 200 {
                reply.json()["order"]["status"].as_str().unwrap().to_owned()
            } else {
                format!("{} {}", reply.status, reply.body)
            };
            if ["delivered", "rejected", "failed", "payment_declined"].contains(&status.as_str()) {
                break;
            }
            if Instant::now() > deadline {
                h.violation(format!("{} stuck in {status}", order.id));
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits until no invocation is unfinished; those still unfinished after the wait.
fn wait_for_engine_quiet(h: &Harness) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let unfinished = h.unfinished(None);
        if unfinished.is_empty() || Instant::now() > deadline {
            return unfinished;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `zeroapp inspect` on the stopped server's folder: no invocation left unfinished.
fn check_inspect(h: &Harness, data: &Path) {
    for status in UNFINISHED {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zeroapp"))
            .args(["inspect", "--status", status, "--data-dir"])
            .arg(data)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains("\n0 invocation(s)") {
            h.violation(format!(
                "inspect --status {status}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
}

/// Each order checked out once: one OrderPayment run, completed (however often its checkout
/// was repeated).
fn check_checkouts(h: &Harness, orders: &[Order]) {
    let listing = h.admin_get("/invocations?service=OrderPayment&limit=1000000");
    let mut runs: HashMap<String, Vec<String>> = HashMap::new();
    for inv in listing["invocations"].as_array().unwrap() {
        runs.entry(inv["key"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(inv["status"].as_str().unwrap().to_owned());
    }
    for order in orders {
        let got = runs.remove(&order.id).unwrap_or_default();
        if order.paid && got != ["completed"] {
            h.violation(format!(
                "{}: payment runs {got:?}, expected [completed]",
                order.id
            ));
        }
    }
}

/// One OrderFulfillment run per order, completed.
fn check_workflow_runs(h: &Harness, orders: &[Order], listing: &Value) {
    let mut runs: HashMap<String, Vec<String>> = HashMap::new();
    for inv in listing["invocations"].as_array().unwrap() {
        if inv["handler"] == "run" {
            runs.entry(inv["key"].as_str().unwrap_or_default().to_owned())
                .or_default()
                .push(inv["status"].as_str().unwrap().to_owned());
        }
    }
    for order in orders {
        // A rejected or refused order is the workflow's answer: every run completes.
        let want = "completed";
        let got = runs.remove(&order.id).unwrap_or_default();
        if got != [want] {
            h.violation(format!(
                "{}: workflow runs {got:?}, expected [{want}]",
                order.id
            ));
        }
    }
    for (key, got) in runs {
        h.violation(format!(
            "a workflow run for an order never placed: {key} {got:?}"
        ));
    }
}

/// Every table against the model, read with rusqlite after the server stopped.
fn check_sqlite(h: &Harness, path: &Path, orders: &[Order], initial: &BTreeMap<i64, u32>) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let rows = |sql: &str| -> Vec<Vec<Value>> {
        let mut statement = conn.prepare(sql).unwrap();
        let width = statement.column_count();
        statement
            .query_map([], |row| {
                (0..width)
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(n) => json!(n),
                            rusqlite::types::ValueRef::Real(x) => json!(x),
                            rusqlite::types::ValueRef::Text(t) => {
                                json!(String::from_utf8_lossy(t))
                            }
                            rusqlite::types::ValueRef::Blob(b) => json!(b),
                        })
                    })
                    .collect()
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let by_order = |sql: &str| {
        let mut map: HashMap<String, Vec<Vec<Value>>> = HashMap::new();
        for row in rows(sql) {
            map.entry(row[0].as_str().unwrap().to_owned())
                .or_default()
                .push(row[1..].to_vec());
        }
        map
    };
    let mut stored = by_order("SELECT id, user_id, status, items, total_cents FROM orders");
    let mut history = by_order("SELECT order_id, status FROM order_history ORDER BY id");
    let mut notes = by_order(
        "SELECT order_id, kind, user_id FROM notifications ORDER BY order_id, kind, user_id",
    );
    let mut payments =
        by_order("SELECT order_id, user_id, status, amount_cents FROM payment_requests");
    let mut shipments = by_order("SELECT order_id, status FROM shipments");
    let mut reservations = by_order(
        "SELECT order_id, product_id, quantity, released FROM stock_reservations \
         ORDER BY order_id, product_id",
    );
    let mut delivered: BTreeMap<i64, u32> = BTreeMap::new();

    for order in orders {
        let id = order.id.as_str();
        let expect = order.expect();
        let Some(row) = stored.remove(id) else {
            h.violation(format!("{id}: no order row"));
            continue;
        };
        let row = &row[0];
        let mut items: Vec<(i64, u32)> = serde_json::from_str::<Value>(row[2].as_str().unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["product_id"].as_i64().unwrap(),
                    u32::try_from(i["quantity"].as_u64().unwrap()).unwrap(),
                )
            })
            .collect();
        items.sort_unstable();
        let mut lines = order.lines.clone();
        lines.sort_unstable();
        if row[0] != order.user || row[1] != expect.status() || items != lines {
            h.violation(format!(
                "{id}: stored {row:?}, expected {} {} {lines:?}",
                order.user,
                expect.status()
            ));
        }
        let statuses: Vec<Value> = history.remove(id).unwrap_or_default().concat();
        if statuses != expect.history() {
            h.violation(format!(
                "{id}: history {statuses:?}, expected {:?}",
                expect.history()
            ));
        }
        let mut wanted_notes: Vec<Vec<Value>> = Vec::new();
        for status in expect.history() {
            wanted_notes.push(vec![json!(status), json!(order.user)]);
            if ADMIN_NOTIFIED.contains(&status) {
                wanted_notes.push(vec![json!(status), Value::Null]);
            }
        }
        let sort = |v: &mut Vec<Vec<Value>>| v.sort_by_key(|n| format!("{n:?}"));
        sort(&mut wanted_notes);
        let mut got_notes = notes.remove(id).unwrap_or_default();
        sort(&mut got_notes);
        if got_notes != wanted_notes {
            h.violation(format!(
                "{id}: notifications {got_notes:?}, expected {wanted_notes:?}"
            ));
        }
        let payment = payments.remove(id).unwrap_or_default();
        if payment != [vec![json!(order.user), json!("paid"), row[3].clone()]] {
            h.violation(format!("{id}: payment requests {payment:?}"));
        }
        let shipment = shipments.remove(id).unwrap_or_default();
        let wanted_shipment = if expect == Expect::Delivered {
            vec![vec![json!("active")]]
        } else {
            Vec::new()
        };
        if shipment != wanted_shipment {
            h.violation(format!(
                "{id}: shipments {shipment:?}, expected {wanted_shipment:?}"
            ));
        }
        let released = i64::from(expect != Expect::Delivered);
        let wanted_reservations: Vec<Vec<Value>> = lines
            .iter()
            .map(|&(p, q)| vec![json!(p), json!(q), json!(released)])
            .collect();
        let got_reservations = reservations.remove(id).unwrap_or_default();
        if got_reservations != wanted_reservations {
            h.violation(format!(
                "{id}: reservations {got_reservations:?}, expected {wanted_reservations:?}"
            ));
        }
        if expect == Expect::Delivered {
            for &(product, quantity) in &order.lines {
                *delivered.entry(product).or_default() += quantity;
            }
        }
    }
    for (what, left) in [
        ("orders", stored),
        ("history", history),
        ("notifications", notes),
        ("payment requests", payments),
        ("shipments", shipments),
        ("reservations", reservations),
    ] {
        for (id, rows) in left {
            h.violation(format!(
                "{what} of an order the harness never placed: {id} {rows:?}"
            ));
        }
    }
    for row in rows("SELECT id, stock FROM products ORDER BY id") {
        let product = row[0].as_i64().unwrap();
        let stock = row[1].as_i64().unwrap();
        let want =
            i64::from(initial[&product]) - i64::from(delivered.get(&product).copied().unwrap_or(0));
        if stock != want {
            h.violation(format!(
                "product {product}: stock {stock}, expected {want} (initial − delivered)"
            ));
        }
    }
}
