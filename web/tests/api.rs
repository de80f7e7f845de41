//! The JSON API against the real `zeroapp` process: every route, its auth rules and its bad
//! inputs, and an order from cart to delivery through the API alone.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--ingress-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--delivery-delay",
            "200ms",
            "--shipping-failure-rate",
            "0",
            "--max-body-bytes",
            "4096",
        ])
        .env("ZEROAPP_DATA_DIR", &data)
        .env("ZEROAPP_LOG", "warn")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("zeroapp exited early").unwrap();
        if line.contains("storefront listening") {
            break line.rsplit("http://").next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        _dir: dir,
        data,
    }
}

/// A response: status, headers (lower-case names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A logged-in user's session cookie (`zeroapp_session=…`).
fn login(addr: &str, user: &str) -> String {
    let body = json!({ "user": user, "password": format!("{user}-password") }).to_string();
    let reply = request(addr, "POST", "/api/login", &[], body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

fn as_user(cookie: &str) -> [(&'static str, &str); 1] {
    [("cookie", cookie)]
}

fn sign(data: &Path, body: &[u8]) -> String {
    let key = std::fs::read(data.join("payment-callback.key")).unwrap();
    format!(
        "sha256={}",
        zeroapp_app::payment_signature::sign(&key, body)
    )
}

fn wait_for(addr: &str, cookie: &str, order: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = request(
            addr,
            "GET",
            &format!("/api/workflow/{order}/status"),
            &as_user(cookie),
            b"",
        );
        if reply.status == 200 && reply.json()["status"] == status {
            return reply.json();
        }
        assert!(
            Instant::now() < deadline,
            "{order} never reached {status}: {}",
            reply.body
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_order_from_cart_to_delivery_through_the_api() {
    let server = start();
    let addr = server.addr.as_str();
    let alice = login(addr, "alice");
    let admin = login(addr, "admin");

    let products = request(addr, "GET", "/api/products", &[], b"").json();
    assert!(products.as_array().unwrap().len() >= 20);
    let tent = request(addr, "GET", "/api/products/1", &[], b"").json();
    assert_eq!(tent["sku"], "TENT-2P");

    let cart = request(
        addr,
        "POST",
        "/api/cart/add",
        &as_user(&alice),
        br#"{"product_id": 1, "quantity": 2}"#,
    );
    assert_eq!(cart.status, 200, "{}", cart.body);
    assert_eq!(cart.json()["subtotalCents"], 2 * 24900);
    let cart = request(addr, "GET", "/api/cart", &as_user(&alice), b"").json();
    assert_eq!(cart["items"][0]["quantity"], 2);

    let order = br#"{"order_id": "web-1", "zone": "domestic", "address": "1 Main Street"}"#;
    let first = request(addr, "POST", "/api/checkout", &as_user(&alice), order);
    assert_eq!(first.status, 202, "{}", first.body);
    let again = request(addr, "POST", "/api/checkout", &as_user(&alice), order);
    assert_eq!(again.json()["invocationId"], first.json()["invocationId"]);

    // The gateway's callback: unsigned and forged ones change nothing.
    let paid = br#"{"order_id": "web-1", "status": "paid"}"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let orders = request(addr, "GET", "/api/orders", &as_user(&alice), b"").json();
        if orders.as_array().is_some_and(|o| !o.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the order was never recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    let unsigned = request(addr, "POST", "/api/payment/callback", &[], paid);
    assert_eq!(unsigned.status, 401);
    let forged = request(
        addr,
        "POST",
        "/api/payment/callback",
        &[("x-signature", "sha256=00ff")],
        paid,
    );
    assert_eq!(forged.status, 401);
    let tampered_signature = sign(
        &server.data,
        br#"{"order_id": "web-1", "status": "declined"}"#,
    );
    let tampered = request(
        addr,
        "POST",
        "/api/payment/callback",
        &[("x-signature", &tampered_signature)],
        paid,
    );
    assert_eq!(tampered.status, 401);
    let signature = sign(&server.data, paid);
    // 404 until checkout has filed its payment request, a moment after recording the order.
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let headers = [("x-signature", signature.as_str())];
        let reply = request(addr, "POST", "/api/payment/callback", &headers, paid);
        if reply.status != 404 || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(reply.status, 200, "{}", reply.body);
    let twice = request(
        addr,
        "POST",
        "/api/payment/callback",
        &[("x-signature", &signature)],
        paid,
    );
    assert_eq!(twice.status, 409, "decided once: {}", twice.body);

    wait_for(addr, &alice, "web-1", "awaiting_approval");
    let by_shopper = request(
        addr,
        "POST",
        "/api/workflow/web-1/approve",
        &as_user(&alice),
        br#"{"approved": true}"#,
    );
    assert_eq!(by_shopper.status, 403);
    let approved = request(
        addr,
        "POST",
        "/api/workflow/web-1/approve",
        &as_user(&admin),
        br#"{"approved": true}"#,
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    let done = wait_for(addr, &alice, "web-1", "delivered");
    assert!(done["tracking_number"].as_str().is_some());

    let bob = login(addr, "bob");
    let peek = request(
        addr,
        "GET",
        "/api/workflow/web-1/status",
        &as_user(&bob),
        b"",
    );
    assert_eq!(peek.status, 404, "bob cannot see alice's order");
    let detail = request(addr, "GET", "/api/orders/web-1", &as_user(&alice), b"").json();
    assert_eq!(detail["order"]["status"], "delivered");
    let notes = request(addr, "GET", "/api/notifications", &as_user(&alice), b"").json();
    assert!(notes.as_array().unwrap().len() >= 7);
}

#[test]
fn auth_rules_and_bad_input() {
    let server = start();
    let addr = server.addr.as_str();
    let wrong = request(
        addr,
        "POST",
        "/api/login",
        &[],
        br#"{"user": "alice", "password": "guess"}"#,
    );
    assert_eq!(wrong.status, 401);
    let bare_header = request(addr, "GET", "/api/cart", &[("x-user-id", "alice")], b"");
    assert_eq!(bare_header.status, 401, "a bare user header is no identity");
    let forged_cookie = request(
        addr,
        "GET",
        "/api/cart",
        &[("cookie", "zeroapp_session=forged")],
        b"",
    );
    assert_eq!(forged_cookie.status, 401);

    let alice = login(addr, "alice");
    let mut with_origin = as_user(&alice).to_vec();
    with_origin.push(("origin", "https://evil.example"));
    let cross_site = request(
        addr,
        "POST",
        "/api/cart/add",
        &with_origin,
        br#"{"product_id": 1, "quantity": 1}"#,
    );
    assert_eq!(cross_site.status, 403);

    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "POST",
            "/api/cart/add",
            b"{not json".to_vec(),
            400,
            "bad request body",
        ),
        (
            "POST",
            "/api/cart/add",
            br#"{"product_id": 1}"#.to_vec(),
            400,
            "quantity",
        ),
        (
            "POST",
            "/api/cart/add",
            br#"{"product_id": 1, "quantity": 0}"#.to_vec(),
            400,
            "quantity 0",
        ),
        (
            "POST",
            "/api/cart/add",
            br#"{"product_id": 1, "quantity": 100000}"#.to_vec(),
            400,
            "quantity",
        ),
        (
            "POST",
            "/api/cart/add",
            br#"{"product_id": 999, "quantity": 1}"#.to_vec(),
            404,
            "unknown product",
        ),
        ("POST", "/api/cart/add", vec![b' '; 5000], 413, "exceeds"),
        ("GET", "/api/cart/add", Vec::new(), 405, "POST"),
        ("DELETE", "/api/products", Vec::new(), 405, "GET"),
        ("GET", "/api/products/abc", Vec::new(), 400, "not a number"),
        ("GET", "/api/products/999", Vec::new(), 404, "no product"),
        ("GET", "/api/nothing", Vec::new(), 404, "no API route"),
        (
            "POST",
            "/api/checkout",
            br#"{"zone": "domestic", "address": "x"}"#.to_vec(),
            400,
            "empty",
        ),
        (
            "POST",
            "/api/checkout",
            br#"{"zone": "moon", "address": "x"}"#.to_vec(),
            400,
            "zone",
        ),
        (
            "POST",
            "/api/workflow/nope/approve",
            br#"{"approved": true}"#.to_vec(),
            403,
            "admin",
        ),
        (
            "GET",
            "/api/workflow/nope/status",
            Vec::new(),
            404,
            "no order",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let reply = request(addr, method, path, &as_user(&alice), &body);
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        let message = reply.message();
        assert!(
            message.contains(needle),
            "{method} {path}: {message:?} lacks {needle:?}"
        );
    }
    let cart = request(addr, "GET", "/api/cart", &as_user(&alice), b"").json();
    assert_eq!(cart["items"], json!([]), "nothing changed");

    let admin = login(addr, "admin");
    let unknown = request(
        addr,
        "POST",
        "/api/workflow/nope/approve",
        &as_user(&admin),
        br#"{"approved": true}"#,
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // An API token works without a cookie, and is no session.
    let token = request(
        addr,
        "POST",
        "/api/tokens",
        &as_user(&alice),
        br#"{"name": "ci"}"#,
    );
    assert_eq!(token.status, 201, "{}", token.body);
    let bearer = format!("Bearer {}", token.json()["token"].as_str().unwrap());
    let me = request(addr, "GET", "/api/me", &[("authorization", &bearer)], b"");
    assert_eq!(me.json()["id"], "alice");
    let bad = request(
        addr,
        "GET",
        "/api/me",
        &[("authorization", "Bearer nope")],
        b"",
    );
    assert_eq!(bad.status, 401);

    let logout = request(addr, "POST", "/api/logout", &as_user(&alice), b"");
    assert_eq!(logout.status, 204);
    let after = request(addr, "GET", "/api/cart", &as_user(&alice), b"");
    assert_eq!(after.status, 401, "the session ended");
}

/// An open event stream read as raw bytes.
struct Stream(TcpStream, String);

impl Stream {
    fn open(addr: &str, path: &str, cookie: &str) -> Stream {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\ncookie: {cookie}\r\n\r\n"
        )
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Stream(stream, String::new())
    }

    /// Reads until `needle` has arrived (after what earlier waits consumed); the text up to it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.1.find(needle) {
                let seen = self.1[..at + needle.len()].to_owned();
                self.1.drain(..at + needle.len());
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "never got {needle:?}; got {:?}",
                self.1
            );
            let mut buf = [0_u8; 4096];
            match self.0.read(&mut buf) {
                Ok(0) => panic!("the stream ended; got {:?}", self.1),
                Ok(n) => self.1.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn event_streams_push_changes_and_a_reconnect_gets_the_full_state() {
    let server = start();
    let addr = server.addr.as_str();
    let carol = login(addr, "carol");
    let unauthenticated = request(addr, "GET", "/stream/notifications", &[], b"");
    assert_eq!(unauthenticated.status, 401);

    let mut notes = Stream::open(addr, "/stream/notifications", &carol);
    let head = notes.wait_for("event: snapshot");
    assert!(head.contains("text/event-stream"), "{head}");
    notes.wait_for("\n\n");

    request(
        addr,
        "POST",
        "/api/cart/add",
        &as_user(&carol),
        br#"{"product_id": 6, "quantity": 1}"#,
    );
    let order = br#"{"order_id": "web-2", "zone": "eu", "address": "5 Canal Street"}"#;
    assert_eq!(
        request(addr, "POST", "/api/checkout", &as_user(&carol), order).status,
        202
    );
    let pushed = notes.wait_for("waiting for payment");
    assert!(pushed.contains("event: notification"), "{pushed}");

    let paid = br#"{"order_id": "web-2", "status": "paid"}"#;
    let signature = sign(&server.data, paid);
    let mut progress = Stream::open(addr, "/stream/workflow/web-2", &carol);
    progress.wait_for("HTTP/1.1 200");
    let deadline = Instant::now() + Duration::from_secs(20);
    while request(
        addr,
        "POST",
        "/api/payment/callback",
        &[("x-signature", &signature)],
        paid,
    )
    .status
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "the payment request never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let update = progress.wait_for(r#""status":"awaiting_approval""#);
    assert!(update.contains("event: progress"), "{update}");
    notes.wait_for("received");

    drop(notes);
    let mut again = Stream::open(addr, "/stream/notifications", &carol);
    let snapshot = again.wait_for("event: snapshot");
    assert!(!snapshot.is_empty());
    let state = again.wait_for("\n\n");
    assert!(
        state.contains("waiting for payment") && state.contains("received"),
        "{state}"
    );
    let bob = login(addr, "bob");
    let foreign = request(addr, "GET", "/stream/workflow/web-2", &as_user(&bob), b"");
    assert_eq!(foreign.status, 404);
}

#[test]
fn the_datastar_client_is_served_with_long_caching_and_nothing_else_is() {
    let server = start();
    let addr = server.addr.as_str();
    let path = zeroapp_web::assets::DATASTAR_JS_PATH;
    let js = request(addr, "GET", path, &[], b"");
    assert_eq!(js.status, 200);
    assert_eq!(js.body.len(), 34_083);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.header("cache-control").unwrap().contains("immutable"));
    let etag = js.header("etag").unwrap().to_owned();
    let cached = request(addr, "GET", path, &[("if-none-match", &etag)], b"");
    assert_eq!(cached.status, 304);
    for probe in [
        "/assets/datastar.js",
        "/assets/..%2F..%2Fetc%2Fpasswd",
        "/assets/../Cargo.toml",
    ] {
        assert_eq!(request(addr, "GET", probe, &[], b"").status, 404, "{probe}");
    }
}
