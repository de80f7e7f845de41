//! Bad input over HTTP against the real `zeroapp` process: malformed, oversized, non-UTF-8 and
//! deeply nested bodies, path traversal, unknown routes, wrong methods, missing or forged
//! sessions and origins, forged awakeable ids and payment signatures, bad quantities, unknown
//! products, out of stock, approvals of unknown, finished or decided orders.
//!
//! Each case answers its documented status and message (the table in docs/testing.md, "Bad-input
//! suite", is printed by this test with `--nocapture`), and after each one both databases are
//! as before: every row of every SQLite table, the engine's object and workflow state and its
//! invocations — except, for refusals a handler decides, the one finished invocation that
//! records the refusal. The server answers /health at the end.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::time::{Duration, Instant};

use common::client::raw_request;
use common::snapshot::{self, EngineSnapshot};
use common::{Reply, Server, as_user, login, request, sign, start, wait_for};
use serde_json::{Value, json};

/// Which listener a case talks to.
#[derive(Clone, Copy)]
enum To {
    Storefront,
    Ingress,
    Admin,
}

/// One bad request and what it must answer.
struct Case {
    name: String,
    to: To,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Sent byte for byte instead of method, path, headers and body.
    raw: Option<Vec<u8>>,
    status: u16,
    /// Part of the error's `message` (or of the body, when it is not a JSON error).
    message: String,
    /// A header the answer must carry.
    header: Option<(&'static str, &'static str)>,
    /// The finished invocations (target, status) the case leaves behind: a refusal decided
    /// inside a handler is recorded as that handler's failed invocation.
    leaves: Vec<(String, &'static str)>,
}

fn case(name: &str, method: &'static str, path: &str) -> Case {
    Case {
        name: name.to_owned(),
        to: To::Storefront,
        method,
        path: path.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        raw: None,
        status: 0,
        message: String::new(),
        header: None,
        leaves: Vec::new(),
    }
}

impl Case {
    fn to(mut self, to: To) -> Self {
        self.to = to;
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    fn by(self, cookie: &str) -> Self {
        self.header("cookie", cookie)
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    fn raw(mut self, raw: impl Into<Vec<u8>>) -> Self {
        self.raw = Some(raw.into());
        self
    }
    fn answers(mut self, status: u16, message: &str) -> Self {
        self.status = status;
        self.message = message.to_owned();
        self
    }
    fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }
    fn leaves(mut self, target: &str, status: &'static str) -> Self {
        self.leaves.push((target.to_owned(), status));
        self
    }

    fn send(&self, server: &Server) -> Reply {
        let addr = match self.to {
            To::Storefront => &server.addr,
            To::Ingress => &server.ingress,
            To::Admin => &server.admin,
        };
        if let Some(raw) = &self.raw {
            return raw_request(addr, raw, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{}: no answer: {e}", self.name));
        }
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        request(addr, self.method, &self.path, &headers, &self.body)
    }
}

/// What the cases need: a server with orders in every interesting state.
struct Fixture {
    server: Server,
    alice: String,
    bob: String,
    carol: String,
    admin: String,
    /// The awakeable bob's unpaid checkout waits on.
    awakeable: String,
}

/// The statuses of the orders the fixture makes.
const DONE: &str = "bi-done"; // alice's, delivered
const REJECTED: &str = "bi-rejected"; // alice's, rejected by the admin
const WAITING: &str = "bi-wait"; // alice's, paid, waiting for the admin
const UNPAID: &str = "bi-unpaid"; // bob's, waiting for the payment

fn post_ok(addr: &str, cookie: &str, path: &str, body: &Value, status: u16) {
    let reply = request(
        addr,
        "POST",
        path,
        &as_user(cookie),
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, status, "{path} {body}: {}", reply.body);
}

/// A signed payment callback, repeated until the checkout has filed its request.
fn pay(server: &Server, order: &str) {
    let body = json!({ "order_id": order, "status": "paid" }).to_string();
    let signature = sign(&server.data, body.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let headers = [("x-signature", signature.as_str())];
        let reply = request(
            &server.addr,
            "POST",
            "/api/payment/callback",
            &headers,
            body.as_bytes(),
        );
        if reply.status == 200 {
            return;
        }
        assert!(
            reply.status == 404 && Instant::now() < deadline,
            "paying {order}: {} {}",
            reply.status,
            reply.body
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn place(server: &Server, cookie: &str, product: i64, order: &str) {
    let addr = server.addr.as_str();
    post_ok(
        addr,
        cookie,
        "/api/cart/add",
        &json!({ "product_id": product, "quantity": 1 }),
        200,
    );
    let checkout = json!({ "order_id": order, "zone": "domestic", "address": "1 Main Street" });
    post_ok(addr, cookie, "/api/checkout", &checkout, 200);
}

fn fixture() -> Fixture {
    let server = start();
    let addr = server.addr.clone();
    let [alice, bob, carol, admin] = ["alice", "bob", "carol", "admin"].map(|u| login(&addr, u));
    for (order, product, approved, end) in [
        (DONE, 1, true, "delivered"),
        (REJECTED, 2, false, "rejected"),
    ] {
        place(&server, &alice, product, order);
        pay(&server, order);
        wait_for(&addr, &alice, order, "awaiting_approval");
        let path = format!("/api/workflow/{order}/approve");
        post_ok(&addr, &admin, &path, &json!({ "approved": approved }), 200);
        wait_for(&addr, &alice, order, end);
    }
    place(&server, &alice, 3, WAITING);
    pay(&server, WAITING);
    wait_for(&addr, &alice, WAITING, "awaiting_approval");
    place(&server, &bob, 4, UNPAID);
    post_ok(
        &addr,
        &carol,
        "/api/cart/add",
        &json!({ "product_id": 6, "quantity": 1 }),
        200,
    );
    let database = server.data.join("app.sqlite");
    let deadline = Instant::now() + Duration::from_secs(20);
    let awakeable = loop {
        let conn = rusqlite::Connection::open_with_flags(
            &database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let found: Option<String> = conn
            .query_row(
                "SELECT awakeable_id FROM payment_requests WHERE order_id = ?1",
                [UNPAID],
                |row| row.get(0),
            )
            .ok();
        if let Some(id) = found {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "{UNPAID} never filed its payment request"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Fixture {
        server,
        alice,
        bob,
        carol,
        admin,
        awakeable,
    }
}

/// Both databases: SQLite's rows, and the engine as the admin API shows it.
struct Snapshot {
    sqlite: std::collections::BTreeMap<String, Vec<String>>,
    engine: EngineSnapshot,
}

fn take(server: &Server) -> Snapshot {
    let objects = [
        ("UserSession", "alice"),
        ("UserSession", "bob"),
        ("UserSession", "carol"),
        ("OrderFulfillment", DONE),
        ("OrderFulfillment", REJECTED),
        ("OrderFulfillment", WAITING),
        ("OrderFulfillment", UNPAID),
    ];
    Snapshot {
        sqlite: snapshot::sqlite(&server.data.join("app.sqlite")),
        engine: snapshot::engine(&server.admin, &objects),
    }
}

/// Takes snapshots until two in a row agree: what the fixture started has settled.
fn settled(server: &Server) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = take(server);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = take(server);
        if now.sqlite == last.sqlite && now.engine == last.engine {
            return now;
        }
        assert!(Instant::now() < deadline, "the fixture never settled");
        last = now;
    }
}

fn cases(f: &Fixture) -> Vec<Case> {
    let (alice, bob, carol, admin) = (&f.alice, &f.bob, &f.carol, &f.admin);
    let data = f.server.data.as_path();
    let add = |name: &str, body: &[u8]| case(name, "POST", "/api/cart/add").by(alice).body(body);
    let add_refused = |name: &str, body: &str, status, message: &str| {
        add(name, body.as_bytes())
            .answers(status, message)
            .leaves("UserSession/alice/add_item", "failed")
    };
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let signed = |name: &str, body: &str| {
        case(name, "POST", "/api/payment/callback")
            .header("x-signature", &sign(data, body.as_bytes()))
            .body(body.as_bytes())
    };
    let approve = |name: &str, order: &str, who: &str, body: &str| {
        case(name, "POST", &format!("/api/workflow/{order}/approve"))
            .by(who)
            .body(body.as_bytes())
    };
    let awakeable = |name: &str, id: &str, action: &str| {
        case(name, "POST", &format!("/restate/awakeables/{id}/{action}")).to(To::Ingress)
    };
    let real = f.awakeable.as_str();
    let forged_awakeable = {
        let mut id = real.to_owned();
        let last = if id.ends_with('0') { "1" } else { "0" };
        id.replace_range(id.len() - 1.., last);
        id
    };
    let paid_unpaid = json!({ "order_id": UNPAID, "status": "paid" }).to_string();
    let chunked = |path: &str, size: usize| {
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncookie: {alice}\r\nconnection: close\r\n\
             transfer-encoding: chunked\r\n\r\n{size:x}\r\n"
        )
        .into_bytes();
        raw.extend(vec![b' '; size]);
        raw.extend(b"\r\n0\r\n\r\n");
        raw
    };
    vec![
        // Bodies.
        add("malformed JSON", b"{not json").answers(400, "bad request body"),
        add("empty body", b"").answers(400, "bad request body: EOF"),
        add("a JSON string", br#""two tents""#).answers(400, "bad request body: invalid type"),
        add("trailing bytes", br#"{"product_id": 1, "quantity": 1} x"#)
            .answers(400, "trailing characters"),
        add("non-UTF-8 body", b"\xff\xfe\xfd").answers(400, "bad request body"),
        add(
            "non-UTF-8 in a string",
            b"{\"product_id\": 1, \"quantity\": 1, \"x\": \"\xff\"}",
        )
        .answers(400, "bad request body: not UTF-8"),
        add("deeply nested JSON (1,500 levels)", nested(1500).as_bytes())
            .answers(400, "bad request body: invalid type: sequence"),
        add(
            "deeply nested unknown field (1,500 levels)",
            format!(r#"{{"x": {}, "product_id": 1}}"#, nested(1500)).as_bytes(),
        )
        .answers(400, "missing field `quantity`"),
        add(
            "deeply nested field value",
            format!(r#"{{"product_id": {}, "quantity": 1}}"#, nested(1000)).as_bytes(),
        )
        .answers(400, "bad request body: invalid type: sequence"),
        add("body over --max-body-bytes", &[b' '; 5000])
            .answers(413, "the request body exceeds 4096 bytes"),
        case(
            "chunked body over --max-body-bytes",
            "POST",
            "/api/cart/add",
        )
        .raw(chunked("/api/cart/add", 5000))
        .answers(413, "the request body exceeds 4096 bytes"),
        add(
            "quantity as a string",
            br#"{"product_id": 1, "quantity": "2"}"#,
        )
        .answers(400, "invalid type: string"),
        add(
            "quantity as a fraction",
            br#"{"product_id": 1, "quantity": 1.5}"#,
        )
        .answers(400, "invalid type: floating point"),
        add(
            "quantity beyond i64",
            br#"{"product_id": 1, "quantity": 99999999999999999999}"#,
        )
        .answers(400, "bad request body"),
        add("missing quantity", br#"{"product_id": 1}"#).answers(400, "missing field `quantity`"),
        // Quantities, products, stock: refused by UserSession.add_item.
        add_refused(
            "quantity 0",
            r#"{"product_id": 1, "quantity": 0}"#,
            400,
            "quantity 0 is not allowed: use 1 to 99",
        ),
        add_refused(
            "negative quantity",
            r#"{"product_id": 1, "quantity": -5}"#,
            400,
            "quantity -5 is not allowed",
        ),
        add_refused(
            "quantity over 99",
            r#"{"product_id": 1, "quantity": 100}"#,
            400,
            "quantity 100 is not allowed",
        ),
        add_refused(
            "quantity i64::MAX",
            r#"{"product_id": 1, "quantity": 9223372036854775807}"#,
            400,
            "quantity 9223372036854775807 is not allowed",
        ),
        add_refused(
            "quantity i64::MIN",
            r#"{"product_id": 1, "quantity": -9223372036854775808}"#,
            400,
            "is not allowed",
        ),
        add_refused(
            "unknown product",
            r#"{"product_id": 999, "quantity": 1}"#,
            404,
            "unknown product 999",
        ),
        add_refused(
            "negative product id",
            r#"{"product_id": -1, "quantity": 1}"#,
            404,
            "unknown product -1",
        ),
        add_refused(
            "out of stock",
            r#"{"product_id": 18, "quantity": 11}"#,
            409,
            "out of stock: MAP-GPS has 10 left, 11 requested",
        ),
        // Checkout.
        // A refusal of the checkout handler is its answer: one failed checkout, nothing else.
        case("checkout, empty basket", "POST", "/api/checkout")
            .by(alice)
            .body(br#"{"order_id": "bi-empty", "zone": "domestic", "address": "x"}"#.as_slice())
            .answers(400, "the basket is empty")
            .leaves("UserSession/alice/checkout", "failed"),
        case("checkout, unknown zone", "POST", "/api/checkout")
            .by(carol)
            .body(br#"{"zone": "moon", "address": "x"}"#.as_slice())
            .answers(404, "unknown shipping zone \"moon\"")
            .leaves("UserSession/carol/checkout", "failed"),
        case("checkout, unknown carrier", "POST", "/api/checkout")
            .by(carol)
            .body(br#"{"zone": "eu", "address": "x", "carrier": "PigeonPost"}"#.as_slice())
            .answers(404, "unknown carrier \"PigeonPost\"")
            .leaves("UserSession/carol/checkout", "failed"),
        case("checkout, a 501-character address", "POST", "/api/checkout")
            .by(carol)
            .body(json!({ "zone": "eu", "address": "x".repeat(501) }).to_string())
            .answers(400, "at most 500 characters")
            .leaves("UserSession/carol/checkout", "failed"),
        case("checkout, order id with '/'", "POST", "/api/checkout")
            .by(carol)
            .body(br#"{"order_id": "../bi-done", "zone": "domestic", "address": "x"}"#.as_slice())
            .answers(400, "use 1 to 64 characters without '/'")
            .leaves("UserSession/carol/checkout", "failed"),
        case("checkout, 65-character order id", "POST", "/api/checkout")
            .by(carol)
            .body(json!({ "order_id": "x".repeat(65), "zone": "eu", "address": "x" }).to_string())
            .answers(400, "use 1 to 64 characters")
            .leaves("UserSession/carol/checkout", "failed"),
        case("checkout, empty order id", "POST", "/api/checkout")
            .by(carol)
            .body(br#"{"order_id": "", "zone": "eu", "address": "x"}"#.as_slice())
            .answers(400, "use 1 to 64 characters")
            .leaves("UserSession/carol/checkout", "failed"),
        // The payment gateway's page commands are the gateway's (an admin's), not a shopper's.
        case(
            "a shopper pays on the gateway page",
            "POST",
            &format!("/gateway/{UNPAID}/pay"),
        )
        .by(bob)
        .answers(403, "admin"),
        case(
            "a shopper declines on the gateway page",
            "POST",
            &format!("/gateway/{UNPAID}/decline"),
        )
        .by(carol)
        .answers(403, "admin"),
        case(
            "a shopper switches auto-pay on",
            "POST",
            "/gateway/auto-pay",
        )
        .by(alice)
        .body(br#"{"autopay": true}"#.as_slice())
        .answers(403, "admin"),
        case("checkout, missing zone", "POST", "/api/checkout")
            .by(carol)
            .body(br#"{"address": "x"}"#.as_slice())
            .answers(400, "missing field `zone`"),
        // Sessions and origins.
        case("no session", "GET", "/api/cart").answers(401, "log in first"),
        case("forged session cookie", "GET", "/api/cart")
            .header("cookie", "zeroapp_session=forged")
            .answers(401, "log in first"),
        case("forged 64-hex session cookie", "GET", "/api/cart")
            .header("cookie", &format!("zeroapp_session={}", "ab".repeat(32)))
            .answers(401, "log in first"),
        case("forged API token", "GET", "/api/me")
            .header("authorization", "Bearer forged")
            .answers(401, "log in first"),
        case("bare user header", "GET", "/api/me")
            .header("x-user-id", "alice")
            .answers(401, "log in first"),
        case("add to cart without a session", "POST", "/api/cart/add")
            .body(br#"{"product_id": 1, "quantity": 1}"#.as_slice())
            .answers(401, "log in first"),
        add(
            "another site's Origin",
            br#"{"product_id": 1, "quantity": 1}"#,
        )
        .header("origin", "https://evil.example")
        .answers(403, "cross-site request refused"),
        add("Origin: null", br#"{"product_id": 1, "quantity": 1}"#)
            .header("origin", "null")
            .answers(403, "cross-site request refused"),
        add(
            "Origin of another port",
            br#"{"product_id": 1, "quantity": 1}"#,
        )
        .header("origin", "http://127.0.0.1:1")
        .answers(403, "cross-site request refused"),
        case("login from another site", "POST", "/api/login")
            .header("origin", "https://evil.example")
            .body(br#"{"user": "alice", "password": "alice-password"}"#.as_slice())
            .answers(403, "cross-site request refused"),
        case("logout from another site", "POST", "/api/logout")
            .by(alice)
            .header("origin", "https://evil.example")
            .answers(403, "cross-site request refused"),
        case("wrong password", "POST", "/api/login")
            .body(br#"{"user": "alice", "password": "guess"}"#.as_slice())
            .answers(401, "unknown user or wrong password"),
        case("unknown user", "POST", "/api/login")
            .body(br#"{"user": "mallory", "password": "mallory-password"}"#.as_slice())
            .answers(401, "unknown user or wrong password"),
        case(
            "another user's order",
            "GET",
            &format!("/api/orders/{DONE}"),
        )
        .by(bob)
        .answers(404, "no order \"bi-done\""),
        case(
            "another user's order status",
            "GET",
            &format!("/api/workflow/{DONE}/status"),
        )
        .by(bob)
        .answers(404, "no order \"bi-done\""),
        case(
            "another user's order stream",
            "GET",
            &format!("/stream/workflow/{DONE}"),
        )
        .by(bob)
        .answers(404, "no order \"bi-done\""),
        case("stream without a session", "GET", "/stream/notifications")
            .answers(401, "log in first"),
        case("admin page as a shopper", "GET", "/admin")
            .by(alice)
            .answers(403, "This page is for admins."),
        case("page without a session", "GET", "/orders")
            .answers(303, "")
            .with_header("location", "/login"),
        // Approvals.
        approve(
            "a shopper approves",
            WAITING,
            alice,
            r#"{"approved": true}"#,
        )
        .answers(403, "this needs an admin"),
        approve(
            "the admin approves from another site",
            WAITING,
            admin,
            r#"{"approved": true}"#,
        )
        .header("origin", "https://evil.example")
        .answers(403, "cross-site request refused"),
        approve(
            "approval not a boolean",
            WAITING,
            admin,
            r#"{"approved": "yes"}"#,
        )
        .answers(400, "bad request body: invalid type"),
        approve("approval without a body", WAITING, admin, "")
            .answers(400, "bad request body: EOF"),
        approve(
            "approve an unknown order",
            "nope",
            admin,
            r#"{"approved": true}"#,
        )
        .answers(404, "unknown order \"nope\"")
        .leaves("OrderFulfillment/nope/approve", "failed"),
        approve(
            "approve order `%2e%2e`",
            "%2e%2e",
            admin,
            r#"{"approved": true}"#,
        )
        .answers(404, "unknown order \"..\"")
        .leaves("OrderFulfillment/../approve", "failed"),
        approve(
            "approve order `%FF` (not UTF-8)",
            "%FF",
            admin,
            r#"{"approved": true}"#,
        )
        .answers(400, "is not UTF-8"),
        approve(
            "reject a delivered order",
            DONE,
            admin,
            r#"{"approved": false}"#,
        )
        .answers(409, "order \"bi-done\" is not waiting for a decision")
        .leaves("OrderFulfillment/bi-done/approve", "failed"),
        approve(
            "approve a rejected order",
            REJECTED,
            admin,
            r#"{"approved": true}"#,
        )
        .answers(409, "order \"bi-rejected\" is not waiting for a decision")
        .leaves("OrderFulfillment/bi-rejected/approve", "failed"),
        approve("reject it twice", REJECTED, admin, r#"{"approved": false}"#)
            .answers(409, "order \"bi-rejected\" is not waiting for a decision")
            .leaves("OrderFulfillment/bi-rejected/approve", "failed"),
        // Payment callbacks.
        case("unsigned payment callback", "POST", "/api/payment/callback")
            .body(paid_unpaid.as_bytes())
            .answers(401, "missing x-signature"),
        case("forged payment signature", "POST", "/api/payment/callback")
            .header("x-signature", "sha256=00ff")
            .body(paid_unpaid.as_bytes())
            .answers(401, "bad signature"),
        case("signature of another body", "POST", "/api/payment/callback")
            .header(
                "x-signature",
                &sign(
                    data,
                    json!({ "order_id": UNPAID, "status": "declined" })
                        .to_string()
                        .as_bytes(),
                ),
            )
            .body(paid_unpaid.as_bytes())
            .answers(401, "bad signature"),
        case("signature not hex", "POST", "/api/payment/callback")
            .header("x-signature", "sha256=zz")
            .body(paid_unpaid.as_bytes())
            .answers(401, "bad signature"),
        signed("signed malformed callback", "{not json").answers(400, "bad callback body"),
        signed(
            "signed unknown status",
            &json!({ "order_id": UNPAID, "status": "refunded" }).to_string(),
        )
        .answers(400, "status \"refunded\": use \"paid\" or \"declined\""),
        signed(
            "signed callback, unknown order",
            r#"{"order_id": "nope", "status": "paid"}"#,
        )
        .answers(404, "no pending payment for order \"nope\"")
        .leaves("PaymentGateway/pay", "failed"),
        signed(
            "signed callback, paid twice",
            &json!({ "order_id": DONE, "status": "paid" }).to_string(),
        )
        .answers(409, "already completed")
        .leaves("PaymentGateway/pay", "failed"),
        signed(
            "signed decline of a paid order",
            &json!({ "order_id": DONE, "status": "declined" }).to_string(),
        )
        .answers(404, "no pending payment for order \"bi-done\"")
        .leaves("PaymentGateway/decline", "failed"),
        // Awakeables on the ingress.
        awakeable(
            "resolve a forged awakeable (real one, last digit changed)",
            &forged_awakeable,
            "resolve",
        )
        .body(br#"{"order_id": "bi-unpaid", "amount_cents": 0}"#.as_slice())
        .answers(404, "unknown awakeable"),
        awakeable(
            "resolve a made-up awakeable",
            &format!("awk_{}", "0".repeat(56)),
            "resolve",
        )
        .body(b"1".as_slice())
        .answers(404, "unknown awakeable"),
        awakeable("reject a forged awakeable", &forged_awakeable, "reject")
            .body(b"no".as_slice())
            .answers(404, "unknown awakeable"),
        awakeable("malformed awakeable id", "awk_xyz", "resolve")
            .body(b"1".as_slice())
            .answers(400, "awakeable"),
        awakeable(
            "resolve the real awakeable with malformed JSON",
            real,
            "resolve",
        )
        .body(b"{not json".as_slice())
        .answers(400, "not valid JSON"),
        awakeable(
            "resolve the real awakeable, body too large",
            real,
            "resolve",
        )
        .body(vec![b' '; 5000])
        .answers(413, "the request body exceeds 4096 bytes"),
        case(
            "GET on an awakeable",
            "GET",
            &format!("/restate/awakeables/{real}/resolve"),
        )
        .to(To::Ingress)
        .answers(405, "method not allowed; use POST"),
        // Static assets: no path reaches the file system.
        case("/assets/../Cargo.toml", "GET", "/assets/../Cargo.toml")
            .answers(404, "no page /assets/../Cargo.toml"),
        case(
            "/assets/%2e%2e/%2e%2e/Cargo.toml",
            "GET",
            "/assets/%2e%2e/%2e%2e/Cargo.toml",
        )
        .answers(404, "no page /assets/%2e%2e/%2e%2e/Cargo.toml"),
        case(
            "/assets/..%2f..%2fCargo.toml",
            "GET",
            "/assets/..%2f..%2fCargo.toml",
        )
        .answers(404, "no asset"),
        case(
            "/assets/%2e%2e%2fweb%2fsrc%2fmain.rs",
            "GET",
            "/assets/%2e%2e%2fweb%2fsrc%2fmain.rs",
        )
        .answers(404, "no asset"),
        case("unhashed asset name", "GET", "/assets/datastar.js").answers(404, "no asset"),
        // Unknown routes, wrong methods, broken requests.
        case("unknown API route", "GET", "/api/nothing").answers(404, "no API route /api/nothing"),
        case("unknown page", "GET", "/nothing").answers(404, "no page /nothing"),
        case("unknown stream", "GET", "/stream/nothing")
            .by(alice)
            .answers(404, "no stream /stream/nothing"),
        case(
            "product id not a number",
            "GET",
            "/api/products/99999999999999999999",
        )
        .answers(400, "is not a number"),
        case("order id not UTF-8", "GET", "/api/orders/%FF")
            .by(alice)
            .answers(400, "is not UTF-8"),
        case("DELETE /api/products", "DELETE", "/api/products").answers(405, "use GET"),
        case("GET /api/checkout", "GET", "/api/checkout")
            .by(alice)
            .answers(405, "use POST"),
        case("PUT /api/cart/add", "PUT", "/api/cart/add")
            .by(alice)
            .answers(405, "use POST"),
        case("POST /api/orders", "POST", "/api/orders")
            .by(alice)
            .answers(405, "use GET"),
        case(
            "unknown service on the ingress",
            "POST",
            "/NoSuchService/handler",
        )
        .to(To::Ingress)
        .answers(404, "service 'NoSuchService' not found"),
        // The domain's handlers are private: the ingress refuses every one, whoever asks.
        case(
            "pay bob's order through the ingress",
            "POST",
            "/PaymentGateway/pay",
        )
        .to(To::Ingress)
        .body(format!("\"{UNPAID}\"").into_bytes())
        .answers(403, "PaymentGateway/pay is private"),
        case(
            "approve an order through the ingress",
            "POST",
            &format!("/OrderFulfillment/{WAITING}/approve"),
        )
        .to(To::Ingress)
        .body(b"true".as_slice())
        .answers(403, "OrderFulfillment/approve is private"),
        case(
            "fill someone's basket through the ingress",
            "POST",
            "/UserSession/carol/add_item/send",
        )
        .to(To::Ingress)
        .body(br#"{"product_id": 1, "quantity": 1}"#.as_slice())
        .answers(403, "UserSession/add_item is private"),
        case(
            "read a workflow's output through the ingress",
            "GET",
            &format!("/restate/workflow/OrderFulfillment/{DONE}/output"),
        )
        .to(To::Ingress)
        .answers(403, "OrderFulfillment/run is private"),
        case("POST /health on the admin API", "POST", "/health")
            .to(To::Admin)
            .answers(405, "use GET"),
        case("bad invocation id", "GET", "/invocations/inv_zzz")
            .to(To::Admin)
            .answers(400, "bad invocation id"),
        case(
            "unknown invocation",
            "PATCH",
            "/invocations/inv_00000000ffffffff/cancel",
        )
        .to(To::Admin)
        .answers(404, "not found"),
        case("not HTTP", "GET", "")
            .raw(b"GARBAGE\r\n\r\n".as_slice())
            .answers(400, ""),
    ]
}

/// A reply's message for the table: the JSON error's message, or what the body is.
fn shown(reply: &Reply) -> String {
    let message = message_of(reply);
    if message != reply.body {
        message
    } else if reply.body.is_empty() {
        format!(
            "(no body{})",
            reply
                .header("location")
                .map_or(String::new(), |l| format!("; location: {l}"))
        )
    } else if reply.body.starts_with("<!DOCTYPE html>") {
        "(an HTML page)".to_owned()
    } else {
        reply.body.chars().take(80).collect()
    }
}

/// The part of `message` a case checks: the JSON error's message, or else the whole body.
fn message_of(reply: &Reply) -> String {
    serde_json::from_str::<Value>(&reply.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| reply.body.clone())
}

#[test]
fn bad_input_is_refused_with_its_status_and_changes_nothing() {
    let f = fixture();
    let first = settled(&f.server);
    let mut last = first.engine.clone();
    let mut failures = Vec::new();
    let mut table = String::from("| case | status | message |\n|---|---|---|\n");
    for case in cases(&f) {
        let reply = case.send(&f.server);
        let message = message_of(&reply);
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            case.name,
            reply.status,
            shown(&reply).replace('|', "\\|")
        ));
        let header_ok = case.header.is_none_or(|(n, v)| reply.header(n) == Some(v));
        if reply.status != case.status || !message.contains(&case.message) || !header_ok {
            failures.push(format!(
                "{}: {} {:?}, expected {} {:?}",
                case.name, reply.status, message, case.status, case.message
            ));
        }
        let now = take(&f.server);
        if now.sqlite != first.sqlite {
            failures.push(format!(
                "{}: SQLite changed: {}",
                case.name,
                diff(&first.sqlite, &now.sqlite)
            ));
        }
        for (object, state) in &now.engine.state {
            if first.engine.state.get(object) != Some(state) {
                failures.push(format!(
                    "{}: the state of {object} changed: {state}",
                    case.name
                ));
            }
        }
        let kept: std::collections::BTreeMap<_, _> = now
            .engine
            .invocations
            .iter()
            .filter(|(id, _)| last.invocations.contains_key(*id))
            .map(|(id, v)| (id.clone(), v.clone()))
            .collect();
        if kept != last.invocations {
            failures.push(format!("{}: earlier invocations changed", case.name));
        }
        let left: Vec<(String, String)> = now
            .engine
            .new_since(&last)
            .into_iter()
            .map(|(_, v)| {
                (
                    v["target"].as_str().unwrap().to_owned(),
                    v["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let wanted: Vec<(String, String)> = case
            .leaves
            .iter()
            .map(|(t, s)| (t.clone(), (*s).to_owned()))
            .collect();
        if left != wanted {
            failures.push(format!(
                "{}: new invocations {left:?}, expected {wanted:?}",
                case.name
            ));
        }
        last = now.engine;
    }
    eprintln!("{table}");

    // Still serving: no case took the server down.
    let health = request(&f.server.admin, "GET", "/health", &[], b"");
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, r#"{"status":"ok"}"#)
    );
    let products = request(&f.server.addr, "GET", "/api/products", &[], b"");
    assert_eq!(products.status, 200);
    let ingress = request(&f.server.ingress, "GET", "/restate/health", &[], b"");
    assert_eq!(ingress.status, 200);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The unpaid order still waits, and paying it for real still works.
    pay(&f.server, UNPAID);
    wait_for(&f.server.addr, &f.bob, UNPAID, "awaiting_approval");
}

/// Table by table, what differs.
fn diff(
    before: &std::collections::BTreeMap<String, Vec<String>>,
    after: &std::collections::BTreeMap<String, Vec<String>>,
) -> String {
    let mut out = String::new();
    for (table, rows) in after {
        let old = before.get(table).cloned().unwrap_or_default();
        let added: Vec<&String> = rows.iter().filter(|r| !old.contains(r)).collect();
        let gone: Vec<&String> = old.iter().filter(|r| !rows.contains(r)).collect();
        if !added.is_empty() || !gone.is_empty() {
            out.push_str(&format!("{table}: +{added:?} -{gone:?}; "));
        }
    }
    out
}
