//! `zeroapp backup` under load: three shoppers place orders while a backup is taken through the
//! admin API. The copy passes `zeroapp check`; a server started on it lists every order the
//! original listed before the backup, and none it had not listed by the backup's end; and every
//! one of them reaches a final state there, with its history, as after a crash at that moment.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{as_user, login, request, supervisor};
use serde_json::{Value, json};

const ARGS: [&str; 8] = [
    "--auto-pay",
    "--auto-approve",
    "--delivery-delay",
    "300ms",
    "--shipping-failure-rate",
    "0.2",
    "--approval-deadline",
    "10m",
];

fn order_ids(addr: &str, admin: &str) -> BTreeSet<String> {
    let reply = request(addr, "GET", "/api/orders", &as_user(admin), b"");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

fn zeroapp(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .args(args)
        .arg(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Places orders for `user` until `stop`.
fn shop(addr: String, user: &'static str, stop: Arc<AtomicBool>) -> usize {
    let cookie = login(&addr, user);
    let mut placed = 0;
    while !stop.load(Ordering::SeqCst) {
        let line = json!({ "product_id": placed % 20 + 1, "quantity": 1 }).to_string();
        let added = request(
            &addr,
            "POST",
            "/api/cart/add",
            &as_user(&cookie),
            line.as_bytes(),
        );
        assert_eq!(added.status, 200, "{}", added.body);
        let order = json!({
            "order_id": format!("bk-{user}-{placed}"),
            "zone": "domestic",
            "address": "1 Main St",
        });
        let body = order.to_string();
        let reply = request(
            &addr,
            "POST",
            "/api/checkout",
            &as_user(&cookie),
            body.as_bytes(),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        placed += 1;
        std::thread::sleep(Duration::from_millis(30));
    }
    placed
}

fn final_status(addr: &str, admin: &str, order: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let path = format!("/api/workflow/{order}/status");
        let reply = request(addr, "GET", &path, &as_user(admin), b"");
        if reply.status == 200 {
            let status = reply.json()["status"].clone();
            if ["delivered", "failed", "rejected"].contains(&status.as_str().unwrap_or("")) {
                return status;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{order} never settled: {}",
            reply.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_backup_under_load_restores_to_the_state_at_its_moment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = supervisor::spawn(&data, &ARGS, &supervisor::log_path(&data));
    let addrs = server.wait_listening(Duration::from_secs(30)).unwrap();
    let admin = login(&addrs.storefront, "admin");

    let stop = Arc::new(AtomicBool::new(false));
    let shoppers: Vec<_> = ["alice", "bob", "carol"]
        .into_iter()
        .map(|user| {
            let (addr, stop) = (addrs.storefront.clone(), stop.clone());
            std::thread::spawn(move || shop(addr, user, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));

    let before = order_ids(&addrs.storefront, &admin);
    let dest = dir.path().join("copy");
    let started = Instant::now();
    let backup = Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .args(["backup", "--admin-addr", &addrs.admin])
        .arg(&dest)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(backup.status.success(), "{}", text(&backup));
    let after = order_ids(&addrs.storefront, &admin);
    // A second backup into the same folder is refused, naming it.
    let again = Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .args(["backup", "--admin-addr", &addrs.admin])
        .arg(&dest)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let placed: usize = shoppers.into_iter().map(|s| s.join().unwrap()).sum();
    assert!(
        server
            .terminate(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );

    let checked = zeroapp(&["check", "--data-dir"], &dest);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));

    let mut restored = supervisor::spawn(&dest, &ARGS, &supervisor::log_path(&dest));
    let raddrs = restored.wait_listening(Duration::from_secs(30)).unwrap();
    let admin = login(&raddrs.storefront, "admin");
    let recovered = order_ids(&raddrs.storefront, &admin);
    assert!(
        before.is_subset(&recovered),
        "lost: {:?}",
        before.difference(&recovered)
    );
    assert!(
        recovered.is_subset(&after),
        "from after the backup: {:?}",
        recovered.difference(&after)
    );
    let mut fates = std::collections::BTreeMap::new();
    for order in &recovered {
        *fates
            .entry(final_status(&raddrs.storefront, &admin, order).to_string())
            .or_insert(0) += 1;
    }
    assert!(
        restored
            .terminate(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    let checked = zeroapp(&["check", "--data-dir"], &dest);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    eprintln!(
        "{placed} orders placed under load; backup in {took:?} ({}); the copy held {} orders \
         ({} listed before, {} after): restored and settled as {fates:?}",
        String::from_utf8_lossy(&backup.stdout).trim(),
        recovered.len(),
        before.len(),
        after.len()
    );
}
