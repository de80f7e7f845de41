//! Disk full: the real `zeroapp serve` with its data folder on a small tmpfs mounted by this
//! test. Once a filler file has taken the last byte, writes to the engine fail with a clear
//! 507 and a message that says so, reads (catalog, order status, introspection) keep being
//! answered, and an order delivered before is still there; once the filler is removed the same
//! process takes writes again and a new order goes to delivery; after a SIGKILL and a restart
//! both orders are still delivered.
//!
//! Mounting needs root (CAP_SYS_ADMIN), which the project's CI has; where the mount is refused
//! the test fails and says so rather than pass without checking anything.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::supervisor::{self, Addrs, Process};
use common::{Reply, as_user, login, request, wait_for};

/// The ingress's token: the test writes through the domain's handlers on the ingress
/// (`--public-handlers`), which needs one.
const TOKEN: &str = "disk-full-ingress-token-0123";

const ARGS: [&str; 9] = [
    "--auto-pay",
    "--auto-approve",
    "--delivery-delay",
    "100ms",
    "--shipping-failure-rate",
    "0",
    "--public-handlers",
    "--ingress-token",
    TOKEN,
];

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, megabytes: u32) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(at)
            .status()
            .ok()?;
        status.success().then(|| SmallDisk {
            mount: at.to_owned(),
        })
    }

    /// Writes a file until the disk is full; returns its size.
    fn fill(&self) -> u64 {
        let mut filler = std::fs::File::create(self.filler()).unwrap();
        let mut written = 0u64;
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
            let bytes = vec![0xA5u8; chunk];
            while filler.write_all(&bytes).is_ok() {
                written += chunk as u64;
            }
        }
        let _ = filler.sync_all();
        written
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn start(data: &Path, log: &Path) -> (Process, Addrs) {
    let mut server = supervisor::spawn(data, &ARGS, log);
    let addrs = server
        .wait_listening(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the server did not start: {}", read(log)));
    (server, addrs)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn add_to_cart(addrs: &Addrs, cookie: &str, product: u32) -> Reply {
    let body = format!(r#"{{"product_id": {product}, "quantity": 1}}"#);
    request(
        &addrs.storefront,
        "POST",
        "/api/cart/add",
        &as_user(cookie),
        body.as_bytes(),
    )
}

fn order(addrs: &Addrs, cookie: &str, id: &str) {
    let cart = add_to_cart(addrs, cookie, 2);
    assert_eq!(cart.status, 200, "{}", cart.body);
    let body = format!(r#"{{"order_id": "{id}", "zone": "domestic", "address": "1 Main Street"}}"#);
    let checkout = request(
        &addrs.storefront,
        "POST",
        "/api/checkout",
        &as_user(cookie),
        body.as_bytes(),
    );
    assert_eq!(checkout.status, 200, "{}", checkout.body);
    wait_for(&addrs.storefront, cookie, id, "delivered");
}

#[test]
fn a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers_when_space_is_freed() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&scratch.path().join("disk"), 24) else {
        panic!("cannot mount a tmpfs (mount -t tmpfs needs root): the full-disk test cannot run");
    };
    let data = disk.mount.join("data");
    let log = scratch.path().join("zeroapp.log");
    let (mut server, addrs) = start(&data, &log);
    let alice = login(&addrs.storefront, "alice");
    order(&addrs, &alice, "before-full");

    let filled = disk.fill();
    assert!(filled > 0, "the filler wrote nothing");

    // Writes: the engine's file has free pages inside, so the first commits still find room.
    // Keep sending (each with a long idempotency key, which the engine keeps for a day) until one
    // is refused: it must be a 507 that says what happened.
    let deadline = Instant::now() + Duration::from_secs(90);
    let padding = "k".repeat(4000);
    let bearer = format!("Bearer {TOKEN}");
    let mut accepted = 0;
    let refused = loop {
        let key = format!("{accepted}-{padding}");
        let reply = request(
            &addrs.ingress,
            "POST",
            "/UserSession/bob/add_item/send",
            &[("idempotency-key", &key), ("authorization", &bearer)],
            br#"{"product_id": 4, "quantity": 1}"#,
        );
        if reply.status != 202 {
            break reply;
        }
        accepted += 1;
        assert!(
            Instant::now() < deadline,
            "{accepted} writes on a full disk, none refused"
        );
    };
    assert_eq!(
        refused.status, 507,
        "after {accepted} sends: {}",
        refused.body
    );
    assert!(
        refused.message().contains("no space left"),
        "{}",
        refused.body
    );
    eprintln!("disk full: {accepted} sends accepted after the filler, then 507");
    // Through the storefront's API too.
    let cart = add_to_cart(&addrs, &alice, 3);
    assert_eq!(cart.status, 507, "{}", cart.body);

    // Reads go on: the catalog, the delivered order, the engine's introspection.
    let products = request(&addrs.storefront, "GET", "/api/products", &[], b"");
    assert_eq!(products.status, 200, "{}", products.body);
    let status = request(
        &addrs.storefront,
        "GET",
        "/api/workflow/before-full/status",
        &as_user(&alice),
        b"",
    );
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.json()["status"], "delivered");
    let invocations = request(&addrs.admin, "GET", "/invocations?limit=5", &[], b"");
    assert_eq!(invocations.status, 200, "{}", invocations.body);

    // Space is freed: the same process takes writes again and runs a whole order.
    disk.free();
    let freed = Instant::now();
    let deadline = freed + Duration::from_secs(20);
    loop {
        let reply = add_to_cart(&addrs, &alice, 3);
        if reply.status == 200 {
            eprintln!(
                "disk full: writes resumed {:?} after the space was freed",
                freed.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes never resumed: {}",
            reply.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    order(&addrs, &alice, "after-full");

    // Nothing committed was lost: both orders after a kill and a restart.
    server.kill();
    let (_server, addrs) = start(&data, &log);
    let alice = login(&addrs.storefront, "alice");
    for id in ["before-full", "after-full"] {
        wait_for(&addrs.storefront, &alice, id, "delivered");
    }
    assert!(!read(&log).contains("panicked"), "{}", read(&log));
}
