//! `zeroapp check` on real data folders: a sound one after a delivered order (exit 0), the same
//! folder while a server uses it (exit 2), and damaged copies — an order row lost from
//! app.sqlite, bytes overwritten in engine.redb — each named, exit 1 (or 2 when the file cannot
//! be opened at all), never a crash.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{as_user, copy_folder, login, request, supervisor, wait_for};
use serde_json::json;

fn check(data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .args(["check", "--data-dir"])
        .arg(data)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_passes_a_sound_folder_and_names_each_damage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "--auto-pay",
        "--auto-approve",
        "--delivery-delay",
        "100ms",
        "--shipping-failure-rate",
        "0",
    ];
    let mut server = supervisor::spawn(&data, &args, &supervisor::log_path(&data));
    let addr = server
        .wait_listening(Duration::from_secs(30))
        .unwrap()
        .storefront;
    let alice = login(&addr, "alice");
    let line = json!({ "product_id": 3, "quantity": 1 }).to_string();
    let added = request(
        &addr,
        "POST",
        "/api/cart/add",
        &as_user(&alice),
        line.as_bytes(),
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let order = json!({ "order_id": "chk-1", "zone": "domestic", "address": "1 Main St" });
    let placed = request(
        &addr,
        "POST",
        "/api/checkout",
        &as_user(&alice),
        order.to_string().as_bytes(),
    );
    assert_eq!(placed.status, 200, "{}", placed.body);
    wait_for(&addr, &alice, "chk-1", "delivered");

    let busy = check(&data);
    assert_eq!(busy.status.code(), Some(2), "{}", text(&busy));
    assert!(
        text(&busy).contains("a server is using it"),
        "{}",
        text(&busy)
    );

    assert!(
        server
            .terminate(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    let sound = check(&data);
    assert_eq!(sound.status.code(), Some(0), "{}", text(&sound));
    assert!(text(&sound).contains("sound"), "{}", text(&sound));

    // An order row lost from app.sqlite: its history dangles, and the engine's workflow has no
    // order.
    let lost = dir.path().join("lost-order");
    copy_folder(&data, &lost);
    let db = rusqlite::Connection::open(lost.join("app.sqlite")).unwrap();
    db.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM orders WHERE id = 'chk-1';")
        .unwrap();
    drop(db);
    let found = check(&lost);
    assert_eq!(found.status.code(), Some(1), "{}", text(&found));
    let report = text(&found);
    assert!(report.contains("order_history row"), "{report}");
    assert!(
        report.contains("workflow for order chk-1, which app.sqlite does not have"),
        "{report}"
    );

    // Bytes overwritten inside engine.redb.
    let damaged = dir.path().join("damaged-engine");
    copy_folder(&data, &damaged);
    let file = damaged.join("engine.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    // Everything after the header: whatever the layout, used pages are hit.
    let start = 4096.min(bytes.len());
    bytes[start..].fill(0xA5);
    std::fs::write(&file, bytes).unwrap();
    let found = check(&damaged);
    let report = text(&found);
    assert!(
        matches!(found.status.code(), Some(1 | 2)),
        "exit {:?}: {report}",
        found.status.code()
    );
    // The refusal names the file and calls it damage (redb's own panic message may precede it
    // on stderr: the panic is caught, the process ends normally).
    assert!(
        report.contains("engine.redb is damaged") || report.contains("problem: engine.redb"),
        "{report}"
    );

    // A missing engine file beside orders is a problem, unless the folder runs on Restate.
    let missing = dir.path().join("missing-engine");
    copy_folder(&data, &missing);
    std::fs::remove_file(missing.join("engine.redb")).unwrap();
    let found = check(&missing);
    assert_eq!(found.status.code(), Some(1), "{}", text(&found));
    assert!(
        text(&found).contains("engine.redb: missing"),
        "{}",
        text(&found)
    );
}
