//! The storefront in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver by clicks only, a shopper and an admin in two browser sessions at
//! 1280×800, through the five scenarios of docs/app.md:
//! 1. the happy path: the page's order goes from the cart to Delivered live, without a reload;
//! 2. a declined payment: no fulfillment, and the items come back to the cart live;
//! 3. an admin's rejection: compensated, the stock released;
//! 4. a carrier that refuses the parcel (NoPost, chosen in the cart): failed, the stock
//!    released, no shipment to cancel;
//! 5. the same checkout clicked twice: one order, one payment, one workflow.
//!
//! and the defects it must not have again: a cart that freezes while a payment waits, a second
//! "Place order" that orders again, a refused checkout that claims success, a shopper on the
//! payment gateway, actions behind horizontal scrollbars, notifications out of reach on a phone.
//! Screenshots at both sizes are saved under `target/tmp/screenshots/` (`docs/screenshots/`
//! keeps current ones for the README).

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const INSTALL: &str = "apt-get install -y chromium chromium-driver";

/// ChromeDriver on a free port, killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> Driver {
    for tool in ["chromium", "chromedriver"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: install it with `{INSTALL}`");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}): install it with `{INSTALL}`"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver(child, port)
}

/// A fresh headless browser session with its own profile.
async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1280,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .unwrap()
}

/// Waits for an element; fails naming it.
async fn find(client: &Client, css: &str) -> Element {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
}

/// Waits until the element's text contains `needle` (the page is not reloaded meanwhile).
async fn wait_for_text(client: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(needle) {
                    return text;
                }
                assert!(
                    Instant::now() < deadline,
                    "{css} never showed {needle:?}; it shows {text:?}"
                );
            }
        }
        assert!(Instant::now() < deadline, "{css} never showed {needle:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until no element matches `css`.
async fn wait_gone(client: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.find(Locator::Css(css)).await.is_ok() {
        assert!(Instant::now() < deadline, "{css} is still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `script` in the page and returns what it returns.
async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, Vec::new()).await.unwrap()
}

async fn screenshot(client: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn log_in(client: &Client, base: &str, user: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    find(client, "#user").await.send_keys(user).await.unwrap();
    find(client, "#password")
        .await
        .send_keys(&format!("{user}-password"))
        .await
        .unwrap();
    find(client, "#login").await.click().await.unwrap();
    find(client, "#notifications").await;
}

/// Clicks "Add to cart" on the products page; returns what the page then says.
async fn add(client: &Client, base: &str, product: i64) -> String {
    client.goto(&format!("{base}/products")).await.unwrap();
    find(client, &format!("#add-{product}"))
        .await
        .click()
        .await
        .unwrap();
    let added = find(client, "#added").await.text().await.unwrap();
    assert!(added.starts_with("Added 1 × "), "{added}");
    wait_for_text(client, "#notifications", "Item added").await;
    added
}

/// The products page's stock of `product`.
async fn stock(client: &Client, base: &str, product: i64) -> String {
    client.goto(&format!("{base}/products")).await.unwrap();
    find(client, &format!("#stock-{product}"))
        .await
        .text()
        .await
        .unwrap()
}

/// On the cart page: fills the form (with `carrier`, if given) and clicks "Place order";
/// returns the accepted order's id, from the latest-order box the answer shows.
async fn check_out(
    client: &Client,
    base: &str,
    carrier: Option<&str>,
    screenshot_as: &str,
) -> String {
    client.goto(&format!("{base}/cart")).await.unwrap();
    let before = latest_order(client).await;
    find(client, "#zone")
        .await
        .select_by_value("domestic")
        .await
        .unwrap();
    if let Some(carrier) = carrier {
        find(client, "#carrier")
            .await
            .select_by_value(carrier)
            .await
            .unwrap();
    }
    find(client, "#address")
        .await
        .send_keys("1 Main Street, Springfield")
        .await
        .unwrap();
    if !screenshot_as.is_empty() {
        screenshot(client, screenshot_as).await;
    }
    find(client, "#checkout").await.click().await.unwrap();
    accepted_after(client, before).await
}

/// The latest order the cart page shows, if any.
async fn latest_order(client: &Client) -> Option<String> {
    let link = client.find(Locator::Css("#latest-order")).await.ok()?;
    let href = link.attr("href").await.ok()??;
    Some(href.rsplit('/').next()?.to_owned())
}

/// Waits until the cart page shows a newer latest order than `before`, awaiting payment.
async fn accepted_after(client: &Client, before: Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(id) = latest_order(client)
            .await
            .filter(|id| Some(id) != before.as_ref())
        {
            // The answer shows on Output, where the page turned.
            wait_for_text(client, "#checkout-status", "awaiting payment").await;
            return id;
        }
        assert!(Instant::now() < deadline, "the checkout was never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The admin pays (or declines) `order` on the gateway page.
async fn gateway(admin: &Client, base: &str, order: &str, action: &str) {
    admin.goto(&format!("{base}/gateway")).await.unwrap();
    find(admin, &format!("#{action}-{order}"))
        .await
        .click()
        .await
        .unwrap();
    wait_gone(admin, &format!("#payment-{order}")).await;
}

/// The admin approves (or rejects) `order` on the admin page, once it waits for that.
async fn decide(admin: &Client, base: &str, order: &str, action: &str) {
    admin.goto(&format!("{base}/admin")).await.unwrap();
    find(admin, &format!("#{action}-{order}"))
        .await
        .click()
        .await
        .unwrap();
    wait_gone(admin, &format!("#approval-{order}")).await;
}

/// Whether any table on the page scrolls sideways (its actions or badges hidden).
async fn scrolls_sideways(client: &Client) -> bool {
    js(
        client,
        "return [...document.querySelectorAll('.table-wrap')]\
         .some(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1)",
    )
    .await
    .as_bool()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_scenarios_played_from_the_pages() {
    // A delivery takes 5 s, as the storefront's default: the screenshots show real times.
    let server = common::start_with(&["--delivery-delay", "5s"]);
    let base = format!("http://{}", server.addr);
    let driver = start_driver();
    let profiles = tempfile::tempdir().unwrap();
    let shopper = browser(&driver, &profiles.path().join("alice")).await;
    let admin = browser(&driver, &profiles.path().join("admin")).await;
    log_in(&shopper, &base, "alice").await;
    log_in(&admin, &base, "admin").await;
    screenshot(&shopper, "dashboard").await;

    // The payment gateway is the gateway's: a shopper gets a 403 page and no link to it.
    shopper.goto(&format!("{base}/gateway")).await.unwrap();
    wait_for_text(&shopper, "#problem", "for admins").await;
    assert!(shopper.find(Locator::Css("#nav-gateway")).await.is_err());

    // 1. The happy path. Adding says so, in the page and in the notifications, and counts.
    let tent_stock = stock(&shopper, &base, 1).await;
    add(&shopper, &base, 1).await;
    wait_for_text(&shopper, "#cart-count", "1").await;
    add(&shopper, &base, 16).await;
    wait_for_text(&shopper, "#cart-count", "2").await;
    screenshot(&shopper, "products").await;
    let happy = check_out(&shopper, &base, None, "cart").await;
    // The basket moved into the order: no second "Place order" to click.
    wait_gone(&shopper, "#checkout").await;
    assert_eq!(
        find(&shopper, "#address")
            .await
            .attr("maxlength")
            .await
            .unwrap()
            .as_deref(),
        Some("500")
    );

    // The cart is not frozen while the payment waits: an add answers at once.
    let started = Instant::now();
    add(&shopper, &base, 2).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "adding while a payment waits took {:?}",
        started.elapsed()
    );

    // The order page opens on Output, with the workflow's metadata beside it.
    shopper
        .goto(&format!("{base}/orders/{happy}"))
        .await
        .unwrap();
    find(&shopper, "#steps").await;
    assert!(
        find(&shopper, "#progress")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    assert_eq!(
        find(&shopper, "#tab-output")
            .await
            .attr("aria-selected")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    wait_for_text(&shopper, "#workflow-meta", "Payment").await;
    screenshot(&shopper, "order-waiting").await;

    admin.goto(&format!("{base}/gateway")).await.unwrap();
    find(&admin, &format!("#pay-{happy}")).await;
    assert!(
        !scrolls_sideways(&admin).await,
        "the gateway's table scrolls sideways"
    );
    screenshot(&admin, "gateway").await;
    gateway(&admin, &base, &happy, "pay").await;
    admin.goto(&format!("{base}/admin")).await.unwrap();
    find(&admin, &format!("#approve-{happy}")).await;
    assert!(
        !scrolls_sideways(&admin).await,
        "the approvals scroll sideways at 1280×800"
    );
    screenshot(&admin, "admin").await;
    decide(&admin, &base, &happy, "approve").await;
    // The shopper's page was never reloaded: the stream moved it to Delivered.
    let steps = wait_for_text(&shopper, "#progress", "delivered").await;
    assert!(steps.contains("Delivery"), "{steps}");
    let tracking = find(&shopper, "#tracking").await.text().await.unwrap();
    assert!(tracking.contains("ZA"), "{tracking}");
    wait_for_text(&shopper, "#notifications", "delivered").await;
    wait_for_text(&shopper, "#workflow-meta", "finished").await;
    screenshot(&shopper, "order-delivered").await;
    assert_ne!(
        stock(&shopper, &base, 1).await,
        tent_stock,
        "delivered: the stock went"
    );

    // 2. A declined payment: the cart page, left open, shows it and gets its items back.
    let declined = check_out(&shopper, &base, None, "").await;
    wait_gone(&shopper, "#remove-2").await;
    gateway(&admin, &base, &declined, "decline").await;
    wait_for_text(&shopper, "#checkout-status", "declined").await;
    find(&shopper, "#remove-2").await;
    wait_for_text(&shopper, "#cart-count", "1").await;
    shopper
        .find(Locator::Css("#tab-output"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    screenshot(&shopper, "cart-declined").await;
    shopper
        .find(Locator::Css("#tab-input"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shopper
        .goto(&format!("{base}/orders/{declined}"))
        .await
        .unwrap();
    let step = find(&shopper, "#step-0")
        .await
        .attr("data-state")
        .await
        .unwrap();
    assert_eq!(step.as_deref(), Some("failed"), "the payment step failed");
    admin
        .goto(&format!(
            "{base}/admin/engine?service=OrderFulfillment&key={declined}"
        ))
        .await
        .unwrap();
    wait_for_text(&admin, "#invocations", "No invocation").await;

    // A refused checkout says why and claims nothing.
    shopper.goto(&format!("{base}/cart")).await.unwrap();
    find(&shopper, "#checkout").await.click().await.unwrap();
    wait_for_text(&shopper, "#error", "Enter the address").await;
    assert_eq!(find(&shopper, "#flash").await.text().await.unwrap(), "");

    // 3. The admin rejects: the stock comes back.
    let map_stock = stock(&shopper, &base, 2).await;
    let rejected = check_out(&shopper, &base, None, "").await;
    assert!(
        find(&shopper, "#error")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_some(),
        "the accepted checkout cleared the earlier error"
    );
    gateway(&admin, &base, &rejected, "pay").await;
    decide(&admin, &base, &rejected, "reject").await;
    shopper
        .goto(&format!("{base}/orders/{rejected}"))
        .await
        .unwrap();
    wait_for_text(&shopper, "#progress", "rejected").await;
    screenshot(&shopper, "order-rejected").await;
    assert_eq!(
        stock(&shopper, &base, 2).await,
        map_stock,
        "rejected: the stock is back"
    );

    // 4. A carrier that refuses every parcel: failed after approval, the stock released.
    let stove_stock = stock(&shopper, &base, 3).await;
    add(&shopper, &base, 3).await;
    let refused = check_out(&shopper, &base, Some("NoPost"), "").await;
    gateway(&admin, &base, &refused, "pay").await;
    decide(&admin, &base, &refused, "approve").await;
    shopper
        .goto(&format!("{base}/orders/{refused}"))
        .await
        .unwrap();
    wait_for_text(&shopper, "#progress", "failed").await;
    let failure = find(&shopper, "#failure").await.text().await.unwrap();
    assert!(failure.contains("NoPost"), "{failure}");
    screenshot(&shopper, "order-shipping-failed").await;
    assert_eq!(
        stock(&shopper, &base, 3).await,
        stove_stock,
        "refused: the stock is back"
    );

    // 5. The same checkout clicked twice at once: one order, one payment, one workflow.
    add(&shopper, &base, 4).await;
    shopper.goto(&format!("{base}/cart")).await.unwrap();
    let before = latest_order(&shopper).await;
    find(&shopper, "#address")
        .await
        .send_keys("1 Main Street, Springfield")
        .await
        .unwrap();
    js(
        &shopper,
        "const b = document.getElementById('checkout'); b.click(); b.click(); return true",
    )
    .await;
    let twice = accepted_after(&shopper, before).await;
    admin.goto(&format!("{base}/gateway")).await.unwrap();
    find(&admin, &format!("#pay-{twice}")).await;
    let rows = js(
        &admin,
        "return document.querySelectorAll('#payments tbody tr').length",
    )
    .await;
    assert_eq!(rows, 1, "one payment request");
    gateway(&admin, &base, &twice, "pay").await;
    admin
        .goto(&format!(
            "{base}/admin/engine?service=OrderFulfillment&key={twice}"
        ))
        .await
        .unwrap();
    wait_for_text(&admin, "#filter-all", "All 1").await;
    shopper.goto(&format!("{base}/orders")).await.unwrap();
    let listed = js(
        &shopper,
        "return document.querySelectorAll('#orders tbody tr').length",
    )
    .await;
    assert_eq!(listed, 5, "five orders, not six");
    screenshot(&shopper, "orders").await;

    // The explorer: no invocation for reading a cart; filters; its journal on Output.
    admin
        .goto(&format!("{base}/admin/engine?q=get_basket"))
        .await
        .unwrap();
    wait_for_text(&admin, "#invocations", "No invocation").await;
    admin
        .goto(&format!("{base}/admin/engine?service=OrderPayment"))
        .await
        .unwrap();
    find(&admin, "#invocations a").await.click().await.unwrap();
    wait_for_text(&admin, "#journal", "file payment request").await;
    assert!(
        find(&admin, "#journal").await.is_displayed().await.unwrap(),
        "the journal opens on Output"
    );
    screenshot(&admin, "explorer").await;

    // A phone: the notifications are within the first screen.
    shopper.set_window_size(390, 844).await.unwrap();
    shopper.goto(&format!("{base}/products")).await.unwrap();
    find(&shopper, "#notifications").await;
    let top = js(
        &shopper,
        "return document.getElementById('aside').getBoundingClientRect().top",
    )
    .await;
    assert!(
        top.as_f64().unwrap() < 844.0,
        "the notifications start at {top} px"
    );
    screenshot(&shopper, "phone-products").await;
    shopper
        .goto(&format!("{base}/orders/{happy}"))
        .await
        .unwrap();
    find(&shopper, "#steps").await;
    screenshot(&shopper, "phone-order").await;

    shopper.close().await.unwrap();
    admin.close().await.unwrap();
}
