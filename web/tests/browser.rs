//! The storefront in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver: a shopper logs in, adds two products, checks out; in a second browser
//! session the admin pays on the gateway page and approves; the shopper's order page reaches
//! Delivered live, without a reload, and the notifications arrive in the sidebar. A second order
//! is rejected and its page shows it. Screenshots of every page are saved under
//! `target/tmp/screenshots/` (`docs/screenshots/` keeps current ones for the README).

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
                "--window-size=1280,900",
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

/// Adds products and checks out from the cart page; returns the new order's id.
async fn order(client: &Client, base: &str, products: &[i64], name: &str) -> String {
    client.goto(&format!("{base}/products")).await.unwrap();
    for product in products {
        find(client, &format!("#add-{product}"))
            .await
            .click()
            .await
            .unwrap();
        // The page says what was added, and what the cart holds now.
        let added = find(client, "#added").await.text().await.unwrap();
        assert!(added.starts_with("Added 1 × "), "{added}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if name == "first" {
        screenshot(client, "products").await;
    }
    client.goto(&format!("{base}/cart")).await.unwrap();
    for product in products {
        find(client, &format!("#remove-{product}")).await;
    }
    find(client, "#zone")
        .await
        .select_by_value("domestic")
        .await
        .unwrap();
    find(client, "#address")
        .await
        .send_keys("1 Main Street, Springfield")
        .await
        .unwrap();
    if name == "first" {
        screenshot(client, "cart").await;
    }
    find(client, "#checkout").await.click().await.unwrap();
    let link = find(client, "#flash a").await;
    let href = link.attr("href").await.unwrap().unwrap();
    href.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_pay_approve_and_watch_the_order_deliver_live() {
    let server = common::start();
    let base = format!("http://{}", server.addr);
    let driver = start_driver();
    let profiles = tempfile::tempdir().unwrap();
    let shopper = browser(&driver, &profiles.path().join("alice")).await;
    let admin = browser(&driver, &profiles.path().join("admin")).await;

    log_in(&shopper, &base, "alice").await;
    screenshot(&shopper, "dashboard").await;
    let first = order(&shopper, &base, &[1, 16], "first").await;
    shopper
        .goto(&format!("{base}/orders/{first}"))
        .await
        .unwrap();
    find(&shopper, "#steps").await;
    screenshot(&shopper, "order-waiting").await;

    log_in(&admin, &base, "admin").await;
    admin.goto(&format!("{base}/gateway")).await.unwrap();
    let pay = find(&admin, &format!("#pay-{first}")).await;
    screenshot(&admin, "gateway").await;
    pay.click().await.unwrap();
    admin.goto(&format!("{base}/admin")).await.unwrap();
    let approve = find(&admin, &format!("#approve-{first}")).await;
    screenshot(&admin, "admin").await;
    approve.click().await.unwrap();

    // The shopper's page was never reloaded: the stream moved it to Delivered.
    let steps = wait_for_text(&shopper, "#progress", "delivered").await;
    assert!(steps.contains("Delivery"), "{steps}");
    let tracking = find(&shopper, "#tracking").await.text().await.unwrap();
    assert!(tracking.contains("ZA"), "{tracking}");
    wait_for_text(&shopper, "#notifications", "delivered").await;
    screenshot(&shopper, "order-delivered").await;

    // A second order, rejected by the admin: its page shows the rejection.
    let second = order(&shopper, &base, &[5], "second").await;
    shopper
        .goto(&format!("{base}/orders/{second}"))
        .await
        .unwrap();
    find(&shopper, "#steps").await;
    admin.goto(&format!("{base}/gateway")).await.unwrap();
    find(&admin, &format!("#pay-{second}"))
        .await
        .click()
        .await
        .unwrap();
    admin.goto(&format!("{base}/admin")).await.unwrap();
    find(&admin, &format!("#reject-{second}"))
        .await
        .click()
        .await
        .unwrap();
    wait_for_text(&shopper, "#progress", "rejected").await;
    screenshot(&shopper, "order-rejected").await;
    shopper.goto(&format!("{base}/orders")).await.unwrap();
    find(&shopper, "#notifications").await;
    screenshot(&shopper, "orders").await;

    shopper.close().await.unwrap();
    admin.close().await.unwrap();
}
