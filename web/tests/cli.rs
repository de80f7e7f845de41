//! The `zeroapp` binary as a user runs it: `serve` on random ports until SIGTERM, `inspect` on
//! the folder it left, and clear errors for bad flags and a folder in use.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    post_reply(addr, path, body).0
}

/// A POST of a JSON body over a fresh connection: (status, body).
fn post_reply(addr: &str, path: &str, body: &str) -> (u16, String) {
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
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
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
    let add = r#"{"product_id": 4, "quantity": 1}"#;
    assert_eq!(post(&server.ingress, "/UserSession/bob/add_item", add), 200);
    assert_eq!(get(&server.admin, "/health").0, 200);

    std::fs::write(&fault, b"").unwrap();
    let refused = post(&server.ingress, "/UserSession/bob/add_item", add);
    assert_eq!(refused, 503, "a write after the writer died");
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
    assert!(log.contains("the engine can write nothing more"), "{log}");

    // What was committed before the failure is still there for the restarted server.
    std::fs::remove_file(&fault).unwrap();
    let mut restarted = serve(&data);
    let (status, basket) = post_reply(&restarted.ingress, "/UserSession/bob/get_basket", "");
    assert_eq!(status, 200, "{basket}");
    assert!(basket.contains("\"product_id\":4"), "{basket}");
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
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
