//! The JSON API against the real `zeroapp` process: every route, its auth rules and its bad
//! inputs, and an order from cart to delivery through the API alone.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::time::{Duration, Instant};

use common::{Stream, as_user, login, request, sign, start, wait_for};
use serde_json::json;

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
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["totalCents"], 2 * 24900 + 499);
    // The basket moved into the order: it is free at once, and a retry answers the same order.
    let cart = request(addr, "GET", "/api/cart", &as_user(&alice), b"").json();
    assert_eq!(cart["items"], json!([]));
    let again = request(addr, "POST", "/api/checkout", &as_user(&alice), order);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json(), first.json());

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
            br#"{"order_id": "a/b", "zone": "domestic", "address": "x"}"#.to_vec(),
            400,
            "order id",
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
        200
    );
    let pushed = notes.wait_for("awaiting payment");
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
    notes.wait_for("confirmed");

    drop(notes);
    let mut again = Stream::open(addr, "/stream/notifications", &carol);
    let snapshot = again.wait_for("event: snapshot");
    assert!(!snapshot.is_empty());
    let state = again.wait_for("\n\n");
    assert!(
        state.contains("awaiting payment") && state.contains("confirmed"),
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
