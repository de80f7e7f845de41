//! The real `zeroapp serve` as a child process that a crash test can SIGKILL and start again on
//! the same data folder: random 127.0.0.1 ports each time, the listening addresses read from
//! its stdout, its stderr appended to a log file that survives the kills.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Where one server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addrs {
    pub storefront: String,
    pub ingress: String,
    pub admin: String,
}

/// A running (or killed) `zeroapp serve`.
pub struct Process {
    child: Child,
    listening: Receiver<Addrs>,
    spawned_at: Instant,
}

/// Starts `zeroapp serve` on `data` with `args` added to the random ports; its stderr goes to
/// `log` (appended). Returns at once: [`Process::wait_listening`] waits for the ports.
pub fn spawn(data: &Path, args: &[&str], log: &Path) -> Process {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zeroapp"))
        .arg("serve")
        .args([
            "--addr",
            "127.0.0.1:0",
            "--ingress-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("ZEROAPP_DATA_DIR", data)
        .env("ZEROAPP_LOG", "warn")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, listening) = channel();
    std::thread::spawn(move || {
        let (mut ingress, mut admin) = (String::new(), String::new());
        // Reads to the end, so the server never blocks on a full pipe.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let bound = line.rsplit("http://").next().unwrap_or_default().to_owned();
            if line.contains("ingress listening") {
                ingress = bound;
            } else if line.contains("admin listening") {
                admin = bound;
            } else if line.contains("storefront listening") {
                let _ = tx.send(Addrs {
                    storefront: bound,
                    ingress: ingress.clone(),
                    admin: admin.clone(),
                });
            }
        }
    });
    Process {
        child,
        listening,
        spawned_at: Instant::now(),
    }
}

impl Process {
    /// Waits until all three listeners are up; `None` if the process exited first or
    /// `timeout` passed.
    pub fn wait_listening(&mut self, timeout: Duration) -> Option<Addrs> {
        self.listening.recv_timeout(timeout).ok()
    }

    /// SIGKILL, then reaps it. True if it was still running (the kill landed).
    pub fn kill(&mut self) -> bool {
        let running = self.child.try_wait().unwrap().is_none();
        let _ = self.child.kill();
        let _ = self.child.wait();
        running
    }

    /// Time since the process was started.
    pub fn age(&self) -> Duration {
        self.spawned_at.elapsed()
    }

    /// SIGTERM, then waits up to `timeout` for it to exit (killing it after that).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log file for a data folder: next to it, `zeroapp.log`.
pub fn log_path(data: &Path) -> PathBuf {
    data.with_file_name("zeroapp.log")
}
