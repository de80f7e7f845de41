//! The `zeroapp` binary as a user runs it: `serve` on random ports until SIGTERM, `inspect` on
//! the folder it left, and clear errors for bad flags and a folder in use.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

fn zeroapp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zeroapp"));
    command.env_remove("RUST_LOG").env("ZEROAPP_LOG", "warn");
    command
}

struct Serving {
    child: Child,
    storefront: String,
    ingress: String,
    admin: String,
}

/// Starts `zeroapp` (no subcommand: `serve` is the default) on random ports.
fn serve(data: &Path) -> Serving {
    serve_with(zeroapp().stderr(Stdio::null()), data)
}

/// Starts `command` as [`serve`] does.
fn serve_with(command: &mut Command, data: &Path) -> Serving {
    let mut child = command
        .args([
            "--addr",
            "127.0.0.1:0",
            "--ingress-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .env("ZEROAPP_DATA_DIR", data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut ingress, mut admin, mut storefront) = (None, None, None);
    while ingress.is_none() || admin.is_none() || storefront.is_none() {
        let line = lines
            .next()
            .expect("zeroapp exited before listening")
            .unwrap();
        let addr = line.rsplit("http://").next().unwrap().to_owned();
        if line.contains("ingress listening") {
            ingress = Some(addr);
        } else if line.contains("admin listening") {
            admin = Some(addr);
        } else if line.contains("storefront listening") {
            storefront = Some(addr);
        }
    }
    // Keep reading stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Serving {
        child,
        storefront: storefront.unwrap(),
        ingress: ingress.unwrap(),
        admin: admin.unwrap(),
    }
}

/// A GET over a fresh connection: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// A POST of a JSON body over a fresh connection: the status.
fn post(addr: &str, path: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: \
         application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response[9..12].parse().unwrap()
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "zeroapp did not stop within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

#[test]
fn serves_until_sigterm_then_inspect_reads_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = serve(&data);

    let (status, body) = get(&server.ingress, "/restate/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"services\""), "{body}");
    let (status, body) = get(&server.admin, "/health");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = get(&server.admin, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("zeroapp_writer_commits_total"), "{body}");
    let (status, _) = get(&server.ingress, "/NoSuchService/handler");
    assert_eq!(status, 404);
    let login = post(
        &server.storefront,
        "/api/login",
        r#"{"user": "alice", "password": "alice-password"}"#,
    );
    assert_eq!(login, 200);

    // The folder is in use: inspect refuses it with a clear message.
    let busy = run(zeroapp().args(["inspect", "--data-dir"]).arg(&data));
    assert!(!busy.status.success());
    let message = String::from_utf8_lossy(&busy.stderr);
    assert!(message.contains("in use"), "{message}");

    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_with_timeout(&mut server.child, Duration::from_secs(15));
    assert!(status.success(), "zeroapp exited with {status}");

    // A clean stop leaves app.sqlite complete on its own: no write-ahead log beside it, and a
    // copy of the file alone (as a naive backup takes it) holds the catalog and the session
    // the login wrote.
    assert!(
        !data.join("app.sqlite-wal").exists(),
        "app.sqlite-wal left after a clean stop"
    );
    let copy = dir.path().join("copy.sqlite");
    std::fs::copy(data.join("app.sqlite"), &copy).unwrap();
    let copied = rusqlite::Connection::open(&copy).unwrap();
    let count = |table: &str| -> i64 {
        copied
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    };
    assert_eq!(count("products"), 24);
    assert!(count("sessions") >= 1, "the login's session is in the file");

    let listed = run(zeroapp().args(["inspect", "--data-dir"]).arg(&data));
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(stdout.contains("0 invocation(s)"), "{stdout}");
    let missing = run(zeroapp()
        .args(["inspect", "--data-dir"])
        .arg(dir.path().join("nowhere")));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no data file"));
    let unknown = run(zeroapp()
        .args(["inspect", "inv_0000000000000001", "--data-dir"])
        .arg(&data));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no invocation"));
}

/// The storage layer failing while serving (what redb does on some damage: it panics on the
/// writer thread) leaves an engine that can commit nothing. The process must not go on serving
/// errors behind a green `/health`: it logs why and exits non-zero, for a supervisor to restart
/// it. The failure is injected into the real binary through the engine's `testing` feature
/// (on in test builds only): the writer fails once the named file exists.
#[test]
fn a_dead_writer_ends_the_server_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fault = dir.path().join("fail-storage");
    let mut server = serve_with(
        zeroapp()
            .env("ZEROAPP_TESTING_STORAGE_FAULT_FILE", &fault)
            .stderr(Stdio::piped()),
        &data,
    );
    let bob = common::login(&server.storefront, "bob");
    let add = || {
        let body = br#"{"product_id": 4, "quantity": 1}"#;
        common::request(
            &server.storefront,
            "POST",
            "/api/cart/add",
            &common::as_user(&bob),
            body,
        )
    };
    assert_eq!(add().status, 200);
    assert_eq!(get(&server.admin, "/health").0, 200);

    std::fs::write(&fault, b"").unwrap();
    let refused = add();
    assert_eq!(
        refused.status, 503,
        "a write after the writer died: {}",
        refused.body
    );
    // Until the process is gone, /health answers 503 or nothing at all, never ok.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        if let Ok(mut stream) = TcpStream::connect(&server.admin) {
            let request = "GET /health HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n";
            let mut response = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut response).is_ok()
                && response.len() > 12
            {
                assert_eq!(&response[9..12], "503", "{response}");
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "zeroapp still running 30 s after its writer died"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2), "exit status {status}");
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("injected storage failure"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal: {log}"
    );
    assert!(log.contains("the engine can write nothing more"), "{log}");

    // What was committed before the failure is still there for the restarted server.
    std::fs::remove_file(&fault).unwrap();
    let mut restarted = serve(&data);
    let bob = common::login(&restarted.storefront, "bob");
    let cart = common::request(
        &restarted.storefront,
        "GET",
        "/api/cart",
        &common::as_user(&bob),
        b"",
    );
    assert_eq!(cart.status, 200, "{}", cart.body);
    assert!(cart.body.contains("\"product_id\":4"), "{}", cart.body);
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

/// A listener other machines can reach needs a token: the start is refused before anything is
/// created, with a message that says what to do.
#[test]
fn a_reachable_listener_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (flag, listener) in [("--ingress-addr", "ingress"), ("--admin-addr", "admin API")] {
        let other = if flag == "--ingress-addr" {
            "--admin-addr"
        } else {
            "--ingress-addr"
        };
        let out = run(zeroapp()
            .args([
                "--addr",
                "127.0.0.1:0",
                other,
                "127.0.0.1:0",
                flag,
                "0.0.0.0:0",
            ])
            .env("ZEROAPP_DATA_DIR", &data));
        let message = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{message}");
        assert!(
            message.contains(&format!("the {listener} would listen on 0.0.0.0:0")),
            "{message}"
        );
        assert!(message.contains("without a token"), "{message}");
        assert!(!data.exists(), "nothing is created for a refused start");
    }
    let same = run(zeroapp()
        .args([
            "--ingress-token",
            "one-token-for-both-0123",
            "--admin-token",
        ])
        .arg("one-token-for-both-0123")
        .env("ZEROAPP_DATA_DIR", &data));
    assert_eq!(same.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&same.stderr).contains("distinct tokens"));
    let public = run(zeroapp()
        .arg("--public-handlers")
        .env("ZEROAPP_DATA_DIR", &data));
    assert_eq!(public.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&public.stderr).contains("give the ingress a token"));
    assert!(!data.exists());
}

/// Tokens in the data folder guard the ingress and the admin API (the health checks stay
/// open); `zeroapp backup` finds the admin token there; the domain's handlers stay private even
/// to a caller with the ingress token.
#[test]
fn tokens_in_the_data_folder_guard_the_ingress_and_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (ingress_token, admin_token) =
        ("ingress-token-from-a-file-01", "admin-token-from-a-file-01");
    std::fs::write(data.join("ingress.token"), format!("{ingress_token}\n")).unwrap();
    std::fs::write(data.join("admin.token"), admin_token).unwrap();
    let mut server = serve(&data);
    let bearer = |token: &str| format!("Bearer {token}");
    let ask = |addr: &str, method: &str, path: &str, token: Option<&str>| {
        let auth = token.map(bearer);
        let headers: Vec<(&str, &str)> = auth
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        common::request(addr, method, path, &headers, b"")
    };
    assert_eq!(get(&server.ingress, "/restate/health").0, 200);
    assert_eq!(get(&server.admin, "/health").0, 200);
    let refused = ask(&server.admin, "GET", "/invocations", None);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(
        ask(&server.admin, "GET", "/invocations", Some(ingress_token)).status,
        401
    );
    assert_eq!(
        ask(&server.admin, "GET", "/invocations", Some(admin_token)).status,
        200
    );
    let path = "/UserSession/bob/get_basket";
    assert_eq!(ask(&server.ingress, "POST", path, None).status, 401);
    let private = ask(&server.ingress, "POST", path, Some(ingress_token));
    assert_eq!(private.status, 403, "{}", private.body);

    let backup = dir.path().join("backup");
    let out = run(zeroapp()
        .arg("backup")
        .arg(&backup)
        .args(["--admin-addr", &server.admin, "--data-dir"])
        .arg(&data));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(backup.join("engine.redb").is_file());
    let out = run(zeroapp()
        .arg("backup")
        .arg(dir.path().join("backup-2"))
        .args(["--admin-addr", &server.admin, "--data-dir"])
        .arg(dir.path().join("elsewhere")));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// `zeroapp invocations`, `metrics` and `awakeables` operate a running server through its admin
/// API and ingress (the admin token from the data folder): tables, `--json`, and exit codes —
/// 0 done, 1 refused by the server, 2 could not ask.
#[test]
fn a_running_server_is_operated_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("admin.token"), "admin-token-for-the-cli-0123").unwrap();
    let mut server = serve(&data);
    let alice = common::login(&server.storefront, "alice");
    let body = br#"{"product_id": 4, "quantity": 1}"#;
    let added = common::request(
        &server.storefront,
        "POST",
        "/api/cart/add",
        &common::as_user(&alice),
        body,
    );
    assert_eq!(added.status, 200, "{}", added.body);

    let ingress_cli = |args: &[&str]| {
        let out = run(zeroapp()
            .args(args)
            .args(["--ingress-addr", &server.ingress, "--data-dir"])
            .arg(&data));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    let admin_cli = |args: &[&str]| {
        let out = run(zeroapp()
            .args(args)
            .args(["--admin-addr", &server.admin, "--data-dir"])
            .arg(&data));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };

    let (code, table, stderr) = admin_cli(&["invocations", "list", "--service", "UserSession"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        table.contains("UserSession/alice/add_item") && table.contains("completed"),
        "{table}"
    );
    let (code, json, _) = admin_cli(&["invocations", "list", "--json"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let add = json["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["target"] == "UserSession/alice/add_item")
        .unwrap();
    let id = add["id"].as_str().unwrap().to_owned();

    let (code, shown, stderr) = admin_cli(&["invocations", "show", &id]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        shown.contains("journal:") && shown.contains("look up product"),
        "{shown}"
    );
    let (code, shown, _) = admin_cli(&["invocations", "show", &id, "--json"]);
    assert_eq!(code, Some(0));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(!shown["journal"].as_array().unwrap().is_empty(), "{shown}");

    // Refused by the server: exit 1 with its reason.
    let (code, _, stderr) = admin_cli(&["invocations", "cancel", &id]);
    assert_eq!(code, Some(1), "cancelling a finished invocation: {stderr}");
    assert!(stderr.contains("409"), "{stderr}");
    let (code, _, stderr) = admin_cli(&["invocations", "show", "inv_zzz"]);
    assert_eq!(code, Some(1), "{stderr}");
    let (code, purged, stderr) = admin_cli(&["invocations", "purge", &id]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(purged.contains("purged"), "{purged}");
    let (code, _, stderr) = admin_cli(&["invocations", "show", &id]);
    assert_eq!(code, Some(1), "a purged invocation is gone: {stderr}");
    assert!(stderr.contains("404"), "{stderr}");

    let (code, metrics, stderr) = admin_cli(&["metrics"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        metrics.contains("completed") && metrics.contains("writer commits"),
        "{metrics}"
    );
    let (code, metrics, _) = admin_cli(&["metrics", "--json"]);
    assert_eq!(code, Some(0));
    let metrics: serde_json::Value = serde_json::from_str(&metrics).unwrap();
    assert!(metrics["writerCommits"].as_u64().unwrap() > 0, "{metrics}");

    let (code, _, stderr) = ingress_cli(&["awakeables", "resolve", "awk_not_one", "true"]);
    assert_eq!(code, Some(1), "{stderr}");
    let (code, _, stderr) = ingress_cli(&["awakeables", "resolve", "awk_not_one", "not json"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not JSON"), "{stderr}");

    // Could not ask: no token, or nobody there.
    let out = run(zeroapp()
        .args(["metrics", "--admin-addr", &server.admin, "--data-dir"])
        .arg(dir.path().join("elsewhere")));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = run(zeroapp().args(["invocations", "list", "--admin-addr", "127.0.0.1:1"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the admin API"));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let out = run(zeroapp().args(["--ingress-addr", "not-an-address"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ingress-addr"));
    let out = run(zeroapp().args(["--shutdown-grace", "forever"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(zeroapp().args(["inspect", "--status", "sleepy", "--data-dir", "."]));
    assert!(!out.status.success());
}

/// The replay gate from the command line: a folder with an order waiting for its payment
/// (checkout in flight) replays against this build; its export does too, read on its own; a
/// folder in use and a file that is not an export are refused with exit 2.
#[test]
fn replay_check_reads_a_stopped_folder_or_its_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = serve(&data);
    let alice = common::login(&server.storefront, "alice");
    let as_alice = common::as_user(&alice);
    let added = common::request(
        &server.storefront,
        "POST",
        "/api/cart/add",
        &as_alice,
        br#"{"product_id": 4, "quantity": 1}"#,
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let checkout = common::request(
        &server.storefront,
        "POST",
        "/api/checkout",
        &as_alice,
        br#"{"order_id": "rc-1", "zone": "domestic", "address": "1 Main St"}"#,
    );
    assert_eq!(checkout.status, 200, "{}", checkout.body);

    let busy = run(zeroapp().args(["replay-check", "--data-dir"]).arg(&data));
    assert_eq!(busy.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("a server is using it"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );

    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_with_timeout(&mut server.child, Duration::from_secs(15)).success());

    let checked = run(zeroapp().args(["replay-check", "--data-dir"]).arg(&data));
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(stdout.contains("invocations replayed"), "{stdout}");
    assert!(stdout.contains("every invocation replays"), "{stdout}");

    let export = dir.path().join("journals.json");
    let exported = run(zeroapp()
        .args(["replay-check", "--data-dir"])
        .arg(&data)
        .arg("--export")
        .arg(&export));
    assert_eq!(exported.status.code(), Some(0));
    let from_file = run(zeroapp()
        .args(["replay-check", "--json", "--from"])
        .arg(&export));
    assert_eq!(from_file.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
    assert!(report["checked"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["incompatible"], serde_json::json!([]));

    std::fs::write(&export, "not json").unwrap();
    let refused = run(zeroapp().args(["replay-check", "--from"]).arg(&export));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not an export"));
}
