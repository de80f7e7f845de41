//! Helpers shared by the tests that run the real `zeroapp` binary: start it on free ports,
//! raw HTTP/1.1 requests, logins, signed callbacks, event streams read as bytes. Submodules:
//! [`client`] (requests that may go unanswered), [`snapshot`] (both databases, to show a request
//! changed nothing), [`supervisor`] (a server to SIGKILL and start again).

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(dead_code)] // each test file uses some of these

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod client;
pub mod snapshot;
pub mod supervisor;

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The engine's ingress and admin listeners.
    pub ingress: String,
    pub admin: String,
    pub _dir: tempfile::TempDir,
    pub data: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start() -> Server {
    start_with(&["--delivery-delay", "200ms"])
}

/// Like [`start`], with more flags (a later flag wins).
pub fn start_with(flags: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--ingress-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--shipping-failure-rate",
            "0",
            "--max-body-bytes",
            "4096",
        ])
        .args(flags)
        .env("ZEROAPP_DATA_DIR", &data)
        .env("ZEROAPP_LOG", "warn")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut ingress, mut admin) = (String::new(), String::new());
    let addr = loop {
        let line = lines.next().expect("zeroapp exited early").unwrap();
        let bound = line.rsplit("http://").next().unwrap().to_owned();
        if line.contains("ingress listening") {
            ingress = bound;
        } else if line.contains("admin listening") {
            admin = bound;
        } else if line.contains("storefront listening") {
            break bound;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        ingress,
        admin,
        _dir: dir,
        data,
    }
}

/// A response: status, headers (lower-case names), body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Copies the files of a stopped server's data folder into `to` (created).
pub fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A logged-in user's session cookie (`zeroapp_session=…`).
pub fn login(addr: &str, user: &str) -> String {
    let body = json!({ "user": user, "password": format!("{user}-password") }).to_string();
    let reply = request(addr, "POST", "/api/login", &[], body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

pub fn as_user(cookie: &str) -> [(&'static str, &str); 1] {
    [("cookie", cookie)]
}

pub fn sign(data: &Path, body: &[u8]) -> String {
    let key = std::fs::read(data.join("payment-callback.key")).unwrap();
    format!(
        "sha256={}",
        zeroapp_app::payment_signature::sign(&key, body)
    )
}

pub fn wait_for(addr: &str, cookie: &str, order: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = request(
            addr,
            "GET",
            &format!("/api/workflow/{order}/status"),
            &as_user(cookie),
            b"",
        );
        if reply.status == 200 && reply.json()["status"] == status {
            return reply.json();
        }
        assert!(
            Instant::now() < deadline,
            "{order} never reached {status}: {}",
            reply.body
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An open event stream read as raw bytes.
pub struct Stream(pub TcpStream, pub String);

impl Stream {
    pub fn open(addr: &str, path: &str, cookie: &str) -> Stream {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\ncookie: {cookie}\r\n\r\n"
        )
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Stream(stream, String::new())
    }

    /// Reads until `needle` has arrived (after what earlier waits consumed); the text up to it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.1.find(needle) {
                let seen = self.1[..at + needle.len()].to_owned();
                self.1.drain(..at + needle.len());
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "never got {needle:?}; got {:?}",
                self.1
            );
            let mut buf = [0_u8; 4096];
            match self.0.read(&mut buf) {
                Ok(0) => panic!("the stream ended; got {:?}", self.1),
                Ok(n) => self.1.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}
