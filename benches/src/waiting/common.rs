//! What the waiting points share: opening engines, submitting in bulk, polling, reading /proc.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zeroapp_engine::prelude::*;
use zeroapp_engine::{Client, EngineBuilder, InvocationFilter, InvocationId, InvocationStatus};

use super::SERVICE;

/// Whatever the settings, a point gives up after waiting this long for something.
pub(super) const PATIENCE: Duration = Duration::from_secs(600);

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds since the Unix epoch by the system clock: what the engine's default clock reads,
/// with sub-millisecond precision.
pub(super) fn wall_clock_ns() -> i64 {
    #[allow(
        clippy::disallowed_methods,
        reason = "measures timer lateness against the engine's system clock; never journaled"
    )]
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A field of /proc/self/status in bytes (`VmRSS`, `VmHWM`), if the system reports it.
pub fn memory_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| *key == field)
        .and_then(|(_, value)| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

/// Bytes this process has caused to be written to storage (`write_bytes` of /proc/self/io), if
/// the system reports it.
pub fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| *key == "write_bytes")
        .and_then(|(_, value)| value.trim().parse().ok())
}

/// The 1-minute load average, from /proc/loadavg.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

pub(super) fn data_file_bytes(dir: &Path) -> Result<u64, String> {
    std::fs::metadata(dir.join(zeroapp_engine::DATA_FILE))
        .map(|m| m.len())
        .map_err(|e| format!("cannot read the data file's size: {e}"))
}

pub(super) async fn open(builder: EngineBuilder, dir: &Path) -> Result<Engine, String> {
    builder
        .open(dir)
        .await
        .map_err(|e| format!("cannot open the engine: {e}"))
}

/// Polls `done` every few milliseconds until it holds; fails after `timeout` with `what`.
pub(super) async fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if done()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("gave up after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends `count` invocations of `handler`, input `0..count`, from `senders` tasks; returns
/// their ids by input if `keep` (else none).
pub(super) async fn submit(
    client: &Client,
    handler: &'static str,
    count: usize,
    senders: usize,
    keep: bool,
) -> Result<Vec<InvocationId>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..senders.clamp(1, count.max(1)))
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let mut sent = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok::<_, String>(sent);
                    }
                    let id = client
                        .send(Target::service(SERVICE, handler), &(i as u64))
                        .await
                        .map_err(|e| format!("send failed: {e}"))?;
                    if keep {
                        sent.push((i, id));
                    }
                }
            })
        })
        .collect();
    let mut ids = vec![None; if keep { count } else { 0 }];
    for task in tasks {
        let sent = task.await.map_err(|e| format!("a sender died: {e}"))??;
        for (i, id) in sent {
            ids[i] = Some(id);
        }
    }
    ids.into_iter()
        .map(|id| id.ok_or_else(|| "an invocation was not sent".to_owned()))
        .collect()
}

/// Whether no invocation has `status`: a scan of every record that keeps at most one.
pub(super) fn none_with(engine: &Engine, status: InvocationStatus) -> Result<bool, String> {
    engine
        .list_invocations(&InvocationFilter {
            status: Some(status),
            limit: Some(1),
            ..InvocationFilter::default()
        })
        .map(|found| found.is_empty())
        .map_err(|e| format!("cannot list invocations: {e}"))
}
