//! The Datastar pages against the real `zeroapp` process: who sees which page, the commands
//! (`@post` with a JSON signals body), and the per-page event streams.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use common::{Stream, as_user, login, request};
use zeroapp_web::assets::DATASTAR_JS_PATH;

/// The headers of a Datastar `@post`: the session, the marker header, a JSON body, and the
/// session's CSRF token (which a page sends as its `csrf` signal).
fn datastar<'a>(addr: &str, cookie: &'a str) -> [(&'static str, &'a str); 4] {
    let csrf: &'static str = Box::leak(csrf(addr, cookie).into_boxed_str());
    [
        ("cookie", cookie),
        ("datastar-request", "true"),
        ("content-type", "application/json"),
        ("x-csrf-token", csrf),
    ]
}

/// The CSRF token of the session in `cookie`, as its pages carry it (the `csrf` signal).
fn csrf(addr: &str, cookie: &str) -> String {
    let page = request(addr, "GET", "/", &as_user(cookie), b"");
    let (_, rest) = page
        .body
        .split_once("csrf: '")
        .unwrap_or_else(|| panic!("no csrf signal in the page: {}", page.body));
    rest.split('\'').next().unwrap().to_owned()
}

/// Logs in through the login form; the session cookie.
fn form_login(addr: &str, user: &str) -> String {
    let body = format!("user={user}&password={user}-password");
    let reply = request(
        addr,
        "POST",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/"));
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

#[test]
fn each_page_renders_for_the_right_user() {
    let server = common::start();
    let addr = server.addr.as_str();

    for path in [
        "/",
        "/dashboard",
        "/products",
        "/cart",
        "/orders",
        "/gateway",
        "/admin",
    ] {
        let reply = request(addr, "GET", path, &[], b"");
        assert_eq!(reply.status, 303, "{path}");
        assert_eq!(reply.header("location"), Some("/login"), "{path}");
    }
    let form = request(addr, "GET", "/login", &[], b"");
    assert_eq!(form.status, 200);
    for needle in [
        r#"id="login-form""#,
        r#"id="user""#,
        r#"id="password""#,
        r#"id="login""#,
        DATASTAR_JS_PATH,
    ] {
        assert!(form.body.contains(needle), "login lacks {needle}");
    }
    let wrong = request(addr, "POST", "/login", &[], b"user=alice&password=nope");
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains(r#"id="error""#), "{}", wrong.body);
    assert!(wrong.header("set-cookie").is_none());
    // The name stays in its field, the password does not come back.
    assert!(wrong.body.contains(r#"value="alice""#), "{}", wrong.body);
    assert!(!wrong.body.contains("nope"), "{}", wrong.body);
    // The icon a browser asks for by itself, and the one every page links.
    for icon in ["/favicon.ico", "/favicon.svg"] {
        let reply = request(addr, "GET", icon, &[], b"");
        assert_eq!(reply.status, 200, "{icon}");
        assert_eq!(
            reply.header("content-type"),
            Some("image/svg+xml"),
            "{icon}"
        );
    }
    assert!(form.body.contains(r#"rel="icon""#), "{}", form.body);

    let alice = form_login(addr, "alice");
    let pages: [(&str, &str, &[&str]); 5] = [
        (
            "/",
            "/dashboard/stream",
            &[r#"id="summary""#, r#"id="recent-orders""#],
        ),
        (
            "/products",
            "/products/stream",
            &[
                r#"id="catalog""#,
                r#"id="qty-1""#,
                r#"data-bind="qty1""#,
                r#"id="add-1""#,
                "data-on:click=\"@post('/cart/add/1')\"",
                "data-indicator:busy",
                r#"id="cart-table""#,
                r#"id="stock-1""#,
            ],
        ),
        (
            "/cart",
            "/cart/stream",
            &[
                r#"id="cart-items""#,
                r#"id="zone""#,
                "data-bind:zone",
                r#"id="address""#,
                "data-bind:address",
                r#"id="checkout-action""#,
                r#"id="carrier""#,
                r#"maxlength="500""#,
                r#"id="total""#,
                r#"id="cart-summary""#,
            ],
        ),
        (
            "/orders",
            "/orders/stream",
            &[r#"id="orders""#, r#"id="orders-summary""#],
        ),
        ("/dashboard", "/dashboard/stream", &[r#"id="summary""#]),
    ];
    for (path, stream, needles) in pages {
        let reply = request(addr, "GET", path, &as_user(&alice), b"");
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let common = [
            format!(r#"<script type="module" src="{DATASTAR_JS_PATH}"></script>"#),
            format!("@get('{stream}')"),
            r#"id="nav""#.to_owned(),
            r#"id="notifications""#.to_owned(),
            r#"id="tab-input""#.to_owned(),
            r#"id="tab-output""#.to_owned(),
            r#"id="input""#.to_owned(),
            r#"id="output""#.to_owned(),
            r#"id="error""#.to_owned(),
            r#"id="logout""#.to_owned(),
            "Alice".to_owned(),
        ];
        for needle in common
            .iter()
            .map(String::as_str)
            .chain(needles.iter().copied())
        {
            assert!(reply.body.contains(needle), "{path} lacks {needle}");
        }
        assert!(!reply.body.contains(r#"id="nav-admin""#), "{path}");
    }

    // The payment gateway decides everyone's payments: the gateway's (an admin's) page.
    assert_eq!(
        request(addr, "GET", "/gateway", &as_user(&alice), b"").status,
        403
    );
    assert!(
        !request(addr, "GET", "/", &as_user(&alice), b"")
            .body
            .contains(r#"id="nav-gateway""#)
    );
    let forbidden = request(addr, "GET", "/admin", &as_user(&alice), b"");
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.body.contains("403"), "{}", forbidden.body);
    assert_eq!(
        request(addr, "GET", "/admin/stream", &as_user(&alice), b"").status,
        403
    );
    let missing = request(addr, "GET", "/orders/nope", &as_user(&alice), b"");
    assert_eq!(missing.status, 404);

    let admin = form_login(addr, "admin");
    let gateway = request(addr, "GET", "/gateway", &as_user(&admin), b"");
    assert_eq!(gateway.status, 200, "{}", gateway.body);
    for needle in [
        r#"id="autopay""#,
        "data-bind:autopay",
        r#"id="payments""#,
        r#"id="payments-summary""#,
        "@get('/gateway/stream')",
    ] {
        assert!(gateway.body.contains(needle), "gateway lacks {needle}");
    }
    let page = request(addr, "GET", "/admin", &as_user(&admin), b"");
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        r#"id="approvals""#,
        r#"id="all-orders""#,
        r#"id="nav-admin""#,
        "@get('/admin/stream')",
    ] {
        assert!(page.body.contains(needle), "admin lacks {needle}");
    }

    let explorer = request(addr, "GET", "/admin/engine", &as_user(&admin), b"");
    assert_eq!(explorer.status, 200, "{}", explorer.body);
    for needle in [
        r#"id="filters""#,
        r#"id="filter-suspended""#,
        r#"id="invocations""#,
        r#"id="journal""#,
        "@get('/admin/engine/stream')",
    ] {
        assert!(explorer.body.contains(needle), "explorer lacks {needle}");
    }
    assert_eq!(
        request(addr, "GET", "/admin/engine", &as_user(&alice), b"").status,
        403
    );
    assert_eq!(
        request(
            addr,
            "GET",
            "/admin/engine?status=nonsense",
            &as_user(&admin),
            b""
        )
        .status,
        400
    );

    let out = request(addr, "POST", "/logout", &as_user(&alice), b"");
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login"));
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        request(addr, "GET", "/products", &as_user(&alice), b"").status,
        303
    );
}

#[test]
fn a_command_answers_and_the_cart_changes() {
    let server = common::start();
    let addr = server.addr.as_str();
    let bob = login(addr, "bob");

    let added = request(
        addr,
        "POST",
        "/cart/add/2",
        &datastar(addr, &bob),
        br#"{"tab": "input", "busy": true, "qty2": 3, "qty1": 1}"#,
    );
    // Adding says so, with what the cart holds now (the cart is on the hidden Output tab).
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.body.contains("id=\"flash\""), "{}", added.body);
    assert!(
        added.body.contains("Added 3 × ") && added.body.contains("holds 3 items"),
        "{}",
        added.body
    );
    let cart = request(addr, "GET", "/api/cart", &as_user(&bob), b"").json();
    assert_eq!(cart["items"][0]["product_id"], 2, "{cart}");
    assert_eq!(cart["items"][0]["quantity"], 3, "{cart}");

    // Reading the cart — pages, their streams' first frames, the API — reads committed state:
    // no invocation, no journal, no commit.
    let invocations = || {
        request(&server.admin, "GET", "/invocations", &[], b"").json()["invocations"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = invocations();
    for path in ["/cart", "/products", "/", "/api/cart"] {
        assert_eq!(
            request(addr, "GET", path, &as_user(&bob), b"").status,
            200,
            "{path}"
        );
    }
    assert_eq!(invocations(), before, "a read created invocations");

    // An input's text is a quantity too.
    let again = request(
        addr,
        "POST",
        "/cart/add/2",
        &datastar(addr, &bob),
        br#"{"qty2": "2"}"#,
    );
    assert_eq!(again.status, 200);
    assert!(again.body.contains("holds 5 items"), "{}", again.body);
    let cart = request(addr, "GET", "/api/cart", &as_user(&bob), b"").json();
    assert_eq!(cart["items"][0]["quantity"], 5, "{cart}");

    // The page carries the session's CSRF token as a signal; a command may send it there.
    let page = request(addr, "GET", "/", &as_user(&bob), b"");
    let token = csrf(addr, &bob);
    assert!(
        page.body.contains(&format!("csrf: '{token}'")),
        "{}",
        page.body
    );
    let in_signals = format!(r#"{{"csrf": "{token}", "qty2": 1}}"#);
    let session_only = [("cookie", bob.as_str()), ("datastar-request", "true")];
    let added = request(
        addr,
        "POST",
        "/cart/add/2",
        &session_only,
        in_signals.as_bytes(),
    );
    assert_eq!(added.status, 200, "{}", added.body);

    // Refusals: no session, no or another CSRF token, another site, an error patched into
    // #error.
    let headers = [("datastar-request", "true")];
    assert_eq!(
        request(addr, "POST", "/cart/add/2", &headers, b"{}").status,
        401
    );
    let no_token = request(
        addr,
        "POST",
        "/cart/add/2",
        &session_only,
        br#"{"qty2": 1}"#,
    );
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert!(no_token.body.contains("CSRF token"), "{}", no_token.body);
    let forged = br#"{"csrf": "00000000000000000000000000000000", "qty2": 1}"#;
    let forged = request(addr, "POST", "/cart/add/2", &session_only, forged);
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(
        forged.body.contains("not this session's"),
        "{}",
        forged.body
    );
    let cart = request(addr, "GET", "/api/cart", &as_user(&bob), b"").json();
    assert_eq!(
        cart["items"][0]["quantity"], 6,
        "refused commands changed nothing: {cart}"
    );
    let cross = [("cookie", bob.as_str()), ("origin", "http://evil.example")];
    assert_eq!(
        request(addr, "POST", "/cart/add/2", &cross, b"{}").status,
        403
    );
    let refused = request(
        addr,
        "POST",
        "/cart/add/999",
        &datastar(addr, &bob),
        br#"{"qty999": 1}"#,
    );
    assert_eq!(refused.status, 200);
    assert!(
        refused
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        refused.body.starts_with(
            "event: datastar-patch-elements\ndata: elements <div class=\"error\" id=\"error\""
        ),
        "{}",
        refused.body
    );
    let no_address = request(
        addr,
        "POST",
        "/cart/checkout",
        &datastar(addr, &bob),
        br#"{"zone": "domestic", "address": " "}"#,
    );
    assert!(
        no_address.body.contains("Enter the address"),
        "{}",
        no_address.body
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/admin/x/approve",
            &datastar(addr, &bob),
            b"{}"
        )
        .status,
        403
    );

    let removed = request(addr, "POST", "/cart/remove/2", &datastar(addr, &bob), b"");
    assert_eq!(removed.status, 200);
    assert!(
        removed.body.contains(r#"id="cart-count""#),
        "{}",
        removed.body
    );
    let cart = request(addr, "GET", "/api/cart", &as_user(&bob), b"").json();
    assert_eq!(cart["items"].as_array().unwrap().len(), 0, "{cart}");
}

#[test]
fn page_streams_send_whole_fragments_and_follow_an_order_live() {
    let server = common::start();
    let addr = server.addr.as_str();
    let carol = login(addr, "carol");
    assert_eq!(
        request(addr, "GET", "/products/stream", &[], b"").status,
        401
    );

    let mut products = Stream::open(addr, "/products/stream", &carol);
    let head = products.wait_for("\r\n\r\n");
    assert!(head.contains("text/event-stream"), "{head}");
    let first = products.wait_for(r#"id="notifications""#);
    assert!(
        first.contains(
            "event: datastar-patch-elements\ndata: elements <span class=\"muted\" id=\"stock-1\">"
        ),
        "{first}"
    );
    assert!(first.contains(r#"id="cart-table""#), "{first}");
    products.wait_for("\n\n");

    // A command changes the cart: the stream sends the new cart table.
    let added = request(
        addr,
        "POST",
        "/cart/add/6",
        &datastar(addr, &carol),
        br#"{"qty6": 2}"#,
    );
    assert_eq!(added.status, 200);
    let update = products.wait_for("</div>\n\n");
    assert!(update.contains(r#"id="cart-table""#), "{update}");
    assert!(update.contains("<td class=\"num\">2</td>"), "{update}");

    let placed = request(
        addr,
        "POST",
        "/cart/checkout",
        &datastar(addr, &carol),
        br#"{"zone": "eu", "address": "5 <Canal> Street"}"#,
    );
    // The checkout's real outcome: accepted, awaiting payment; a fresh order id for the next.
    assert_eq!(placed.status, 200, "{}", placed.body);
    assert!(
        placed.body.contains(r#"id="checkout-status""#),
        "{}",
        placed.body
    );
    assert!(placed.body.contains("awaiting payment"), "{}", placed.body);
    assert!(
        placed.body.contains("datastar-patch-signals"),
        "{}",
        placed.body
    );
    let order = placed
        .body
        .split("/orders/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    // The order is recorded before the checkout answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let page = loop {
        let page = request(
            addr,
            "GET",
            &format!("/orders/{order}"),
            &as_user(&carol),
            b"",
        );
        if page.status == 200 {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "{}", page.body);
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(page.body.contains("5 &lt;Canal&gt; Street"), "escaped");
    assert!(
        page.body
            .contains(&format!("@get('/orders/{order}/stream')")),
        "{}",
        page.body
    );

    let mut live = Stream::open(addr, &format!("/orders/{order}/stream"), &carol);
    let opening = live.wait_for(r#"id="notifications""#);
    for fragment in [
        r#"id="progress""#,
        r#"id="history""#,
        r#"id="order-placed""#,
        r#"id="workflow-meta""#,
    ] {
        assert!(opening.contains(fragment), "{fragment}: {opening}");
    }
    assert!(
        opening.contains(r#"data-status="awaiting_payment""#),
        "{opening}"
    );

    // A shopper may not pay on the gateway page; the gateway (an admin) may, and the order
    // moves on, and the stream shows it.
    let admin = login(addr, "admin");
    let by_carol = request(
        addr,
        "POST",
        &format!("/gateway/{order}/pay"),
        &datastar(addr, &carol),
        b"{}",
    );
    assert_eq!(by_carol.status, 403, "{}", by_carol.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let paid = request(
            addr,
            "POST",
            &format!("/gateway/{order}/pay"),
            &datastar(addr, &admin),
            b"{}",
        );
        if paid.status == 204 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", paid.body);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let waiting = live.wait_for(r#"data-status="awaiting_approval""#);
    assert!(
        waiting.contains("event: datastar-patch-elements"),
        "{waiting}"
    );

    let mut approvals = Stream::open(addr, "/admin/stream", &admin);
    approvals.wait_for(&format!(r#"id="approve-{order}""#));
    let approved = request(
        addr,
        "POST",
        &format!("/admin/{order}/approve"),
        &datastar(addr, &admin),
        b"{}",
    );
    assert_eq!(approved.status, 204, "{}", approved.body);
    let done = live.wait_for(r#"data-status="delivered""#);
    // Steps done are marked by an inline icon (no emoji font needed).
    assert!(done.contains(r#"data-state="done""#), "{done}");
    assert!(done.contains(r#"<svg class="icon""#), "{done}");
    live.wait_for(r#"<dd id="tracking">"#);

    // A reconnect gets the full state again.
    drop(live);
    let mut again = Stream::open(addr, &format!("/orders/{order}/stream"), &carol);
    let state = again.wait_for(r#"id="notifications""#);
    assert!(state.contains(r#"data-status="delivered""#), "{state}");
    assert!(state.contains(r#"id="history""#), "{state}");

    let bob = login(addr, "bob");
    assert_eq!(
        request(
            addr,
            "GET",
            &format!("/orders/{order}/stream"),
            &as_user(&bob),
            b""
        )
        .status,
        404
    );
}

#[test]
fn the_engine_explorer_shows_a_journal_and_cancels() {
    let server = common::start();
    let addr = server.addr.as_str();
    let bob = login(addr, "bob");
    let admin = login(addr, "admin");
    assert_eq!(
        request(
            addr,
            "POST",
            "/cart/add/3",
            &datastar(addr, &bob),
            br#"{"qty3": 1}"#
        )
        .status,
        200
    );
    let placed = request(
        addr,
        "POST",
        "/cart/checkout",
        &datastar(addr, &bob),
        br#"{"zone": "domestic", "address": "9 Elm Road"}"#,
    );
    assert_eq!(placed.status, 200, "{}", placed.body);

    // The checkout waits for the payment: an unfinished invocation with a Cancel button.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        let page = request(addr, "GET", "/admin/engine", &as_user(&admin), b"");
        assert_eq!(page.status, 200);
        if let Some(rest) = page.body.split(r#"id="cancel-"#).nth(1) {
            break rest.split('"').next().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "{}", page.body);
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let detail = request(
        addr,
        "GET",
        &format!("/admin/engine?id={id}"),
        &as_user(&admin),
        b"",
    );
    assert_eq!(detail.status, 200);
    assert!(
        detail.body.contains("UserSession/bob/checkout"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("<h2>Journal</h2>"), "{}", detail.body);

    let mut live = Stream::open(addr, &format!("/admin/engine/stream?id={id}"), &admin);
    live.wait_for(r#"id="journal""#);
    assert_eq!(
        request(
            addr,
            "POST",
            &format!("/admin/engine/{id}/cancel"),
            &datastar(addr, &bob),
            b"{}"
        )
        .status,
        403
    );
    let cancelled = request(
        addr,
        "POST",
        &format!("/admin/engine/{id}/cancel"),
        &datastar(addr, &admin),
        b"{}",
    );
    assert_eq!(cancelled.status, 204, "{}", cancelled.body);
    // It finishes (the checkout gives up on the payment): no Cancel button any more.
    loop {
        let page = request(addr, "GET", "/admin/engine", &as_user(&admin), b"");
        if !page.body.contains(&format!(r#"id="cancel-{id}""#)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", page.body);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let after = live.wait_for(r#"id="invocations""#);
    assert!(after.contains("datastar-patch-elements"), "{after}");
}
