//! Crash tests with real processes: a test binary re-executes itself as a child (its
//! `child_process` test, told its role by environment variables), the parent SIGKILLs it at
//! random moments and restarts it on the same data folder, and the child reports what it did in
//! a side file that survives the kills.

#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The child's role; unset in the parent.
pub const ROLE: &str = "ZEROAPP_KILL_TEST_ROLE";
/// The data folder the child opens.
pub const DATA: &str = "ZEROAPP_KILL_TEST_DATA";
/// The side file the child appends to.
pub const SIDE: &str = "ZEROAPP_KILL_TEST_SIDE";

pub fn random_below(n: u64) -> u64 {
    rand_u64() % n.max(1)
}

pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}

/// Appends one line to the side file in a single write, so a kill never leaves half a line.
pub fn record(path: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

pub fn side_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn spawn_child(role: &str, data: &Path, side: &Path, capture: bool) -> Child {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args([
            "child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(DATA, data)
        .env(SIDE, side)
        // In builds with the `testing` feature (the workspace's): log segments of 8 KiB and a
        // checkpoint every 20 batches, so that kills also land during segment switches and
        // checkpoints, not only during appends.
        .env("ZEROAPP_TESTING_LOG_SEGMENT_BYTES", "8192")
        .env("ZEROAPP_TESTING_CHECKPOINT_BATCHES", "20")
        .stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap()
}

/// Runs the child to completion (no kill) and asserts it finished cleanly.
pub fn run_child_to_end(role: &str, data: &Path, side: &Path) {
    let mut child = spawn_child(role, data, side, true);
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                status.success() && stdout.contains("CHILD DONE"),
                "child {role} failed: {status}\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            return;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("child {role} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `role` over and over, killing it with SIGKILL after a random delay, `kills` times.
/// Returns how many kills landed while the child was still running.
pub fn kill_repeatedly(
    role: &str,
    data: &Path,
    side: &Path,
    kills: usize,
    max_delay_ms: u64,
) -> usize {
    let mut landed = 0;
    for _ in 0..kills {
        let mut child = spawn_child(role, data, side, false);
        std::thread::sleep(Duration::from_millis(5 + random_below(max_delay_ms)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            landed += 1;
        }
        child.wait().unwrap();
    }
    landed
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
