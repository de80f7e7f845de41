//! One folder, one identity: `zeroapp serve` refuses, with one line naming the file and what to
//! do, a folder whose engine file is missing or empty beside orders, whose app.sqlite is
//! missing beside the engine's data, or whose store comes from another folder — and changes
//! nothing in it (no store created, nothing re-seeded). `zeroapp check` reports the same.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{as_user, copy_folder, login, request, supervisor, wait_for};
use serde_json::json;

const ARGS: [&str; 6] = [
    "--auto-pay",
    "--auto-approve",
    "--delivery-delay",
    "100ms",
    "--shipping-failure-rate",
    "0",
];

/// A folder with one delivered order, stopped cleanly.
fn folder_with_an_order(data: &Path) {
    let mut server = supervisor::spawn(data, &ARGS, &supervisor::log_path(data));
    let addr = server
        .wait_listening(Duration::from_secs(30))
        .unwrap()
        .storefront;
    let alice = login(&addr, "alice");
    let line = json!({ "product_id": 2, "quantity": 1 }).to_string();
    let added = request(
        &addr,
        "POST",
        "/api/cart/add",
        &as_user(&alice),
        line.as_bytes(),
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let order = json!({ "order_id": "id-1", "zone": "domestic", "address": "1 Main St" });
    let body = order.to_string();
    let placed = request(
        &addr,
        "POST",
        "/api/checkout",
        &as_user(&alice),
        body.as_bytes(),
    );
    assert_eq!(placed.status, 200, "{}", placed.body);
    wait_for(&addr, &alice, "id-1", "delivered");
    assert!(
        server
            .terminate(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
}

/// Starts `zeroapp serve` on `data` and expects it to refuse: its exit code and stderr.
fn refused(data: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--ingress-addr",
            "127.0.0.1:0",
        ])
        .args(["--admin-addr", "127.0.0.1:0"])
        .env("ZEROAPP_DATA_DIR", data)
        .env("ZEROAPP_LOG", "warn")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "not refused: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// The folder's files, without SQLite's `-wal`/`-shm` (which reading app.sqlite may create).
fn files(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with("-wal") && !name.ends_with("-shm"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_store_missing_empty_or_foreign_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    folder_with_an_order(&data);
    let other = dir.path().join("other");
    folder_with_an_order(&other);

    // engine.redb deleted beside orders.
    let case = dir.path().join("no-engine");
    copy_folder(&data, &case);
    std::fs::remove_file(case.join("engine.redb")).unwrap();
    let before = files(&case);
    let message = refused(&case);
    assert!(
        message.contains("engine.redb is missing or empty"),
        "{message}"
    );
    assert_eq!(files(&case), before, "no store created");

    // engine.redb emptied (0 bytes).
    let case = dir.path().join("empty-engine");
    copy_folder(&data, &case);
    std::fs::write(case.join("engine.redb"), b"").unwrap();
    let message = refused(&case);
    assert!(
        message.contains("engine.redb is missing or empty"),
        "{message}"
    );

    // app.sqlite deleted beside the engine's data: not re-seeded.
    let case = dir.path().join("no-app");
    copy_folder(&data, &case);
    std::fs::remove_file(case.join("app.sqlite")).unwrap();
    let message = refused(&case);
    assert!(
        message.contains("app.sqlite is missing or empty"),
        "{message}"
    );
    assert!(
        !case.join("app.sqlite").exists(),
        "no fresh app.sqlite seeded"
    );

    // engine.redb from another folder.
    let case = dir.path().join("foreign-engine");
    copy_folder(&data, &case);
    std::fs::copy(other.join("engine.redb"), case.join("engine.redb")).unwrap();
    let message = refused(&case);
    assert!(
        message.contains("engine.redb does not belong to this data folder"),
        "{message}"
    );
    let check = Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .args(["check", "--data-dir"])
        .arg(&case)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stdout).contains("does not belong"));

    // An order row lost from app.sqlite, while the engine holds its workflow.
    let case = dir.path().join("lost-row");
    copy_folder(&data, &case);
    let db = rusqlite::Connection::open(case.join("app.sqlite")).unwrap();
    db.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM orders WHERE id = 'id-1';")
        .unwrap();
    drop(db);
    let message = refused(&case);
    assert!(message.contains("app.sqlite lacks 1 order(s)"), "{message}");
    assert!(message.contains("id-1"), "{message}");

    // The write-ahead log lost after a kill: whatever it held is gone from app.sqlite, and the
    // start is refused rather than served without it.
    let case = dir.path().join("lost-wal");
    copy_folder(&data, &case);
    let mut server = supervisor::spawn(&case, &ARGS, &supervisor::log_path(&case));
    let addr = server
        .wait_listening(Duration::from_secs(30))
        .unwrap()
        .storefront;
    let bob = login(&addr, "bob");
    let line = json!({ "product_id": 4, "quantity": 1 }).to_string();
    request(
        &addr,
        "POST",
        "/api/cart/add",
        &as_user(&bob),
        line.as_bytes(),
    );
    let order = json!({ "order_id": "id-2", "zone": "domestic", "address": "2 Main St" });
    let body = order.to_string();
    request(
        &addr,
        "POST",
        "/api/checkout",
        &as_user(&bob),
        body.as_bytes(),
    );
    wait_for(&addr, &bob, "id-2", "delivered");
    assert!(server.kill());
    let wal = case.join("app.sqlite-wal");
    assert!(wal.exists(), "a killed server leaves its log");
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(case.join("app.sqlite-shm"));
    let message = refused(&case);
    assert!(
        message.contains("app.sqlite-wal may have been lost"),
        "{message}"
    );

    // The folder itself still starts, with its order.
    let mut server = supervisor::spawn(&data, &ARGS, &supervisor::log_path(&data));
    let addr = server
        .wait_listening(Duration::from_secs(30))
        .unwrap()
        .storefront;
    let alice = login(&addr, "alice");
    wait_for(&addr, &alice, "id-1", "delivered");
    assert!(
        server
            .terminate(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
}
