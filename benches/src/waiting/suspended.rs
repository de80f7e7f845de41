//! The suspended point: N invocations each wait on an awakeable until they suspend; then the
//! process's memory and the data file are read, and every awakeable is resolved at a steady rate.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use zeroapp_engine::prelude::*;
use zeroapp_engine::{Client, Context, InvocationStatus, WriterStatistics};

use super::SERVICE;
use super::common::{
    PATIENCE, bytes_written, data_file_bytes, lock, memory_status, nanos, none_with, open, submit,
    wait_until,
};
use crate::stats::Latencies;

/// The longest awakeable id the point can hold (the engine's are 60 bytes).
const ID_CAPACITY: usize = 64;

/// An awakeable id stored inline: a million of them make one allocation, not a million small
/// ones scattered between the engine's (which would pin the engine's freed memory in place).
type IdSlot = OnceLock<([u8; ID_CAPACITY], u8)>;

/// What the handlers tell the bench.
struct Parked {
    started: Instant,
    /// Each invocation's awakeable id, by input; the first one published wins.
    ids: Vec<IdSlot>,
    published: AtomicUsize,
    /// When `resolve_awakeable` was called and returned, and when the handler resumed with the
    /// value, in nanoseconds since `started` (0: not yet).
    called: Vec<AtomicU64>,
    returned: Vec<AtomicU64>,
    resumed: Vec<AtomicU64>,
    resumed_count: AtomicUsize,
    returned_count: AtomicUsize,
    wrong_values: AtomicUsize,
    failure: Mutex<Option<String>>,
}

impl Parked {
    fn new(count: usize) -> Self {
        let zeros = || (0..count).map(|_| AtomicU64::new(0)).collect();
        Self {
            started: Instant::now(),
            ids: (0..count).map(|_| OnceLock::new()).collect(),
            published: AtomicUsize::new(0),
            called: zeros(),
            returned: zeros(),
            resumed: zeros(),
            resumed_count: AtomicUsize::new(0),
            returned_count: AtomicUsize::new(0),
            wrong_values: AtomicUsize::new(0),
            failure: Mutex::new(None),
        }
    }

    /// Bytes these tables take, allocated up front for `count` invocations.
    fn bytes(count: usize) -> u64 {
        (count * (size_of::<IdSlot>() + 3 * size_of::<AtomicU64>())) as u64
    }

    fn now(&self) -> u64 {
        nanos(self.started.elapsed()).max(1)
    }

    fn publish(&self, i: u64, id: &str) {
        let Some(slot) = self.ids.get(i as usize) else {
            return;
        };
        let mut bytes = [0; ID_CAPACITY];
        let Some(stored) = bytes.get_mut(..id.len()) else {
            self.fail(format!(
                "awakeable id {id:?} is longer than {ID_CAPACITY} bytes"
            ));
            return;
        };
        stored.copy_from_slice(id.as_bytes());
        if slot.set((bytes, id.len() as u8)).is_ok() {
            self.published.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn id(&self, i: usize) -> Result<String, String> {
        let (bytes, len) = self.ids[i]
            .get()
            .ok_or_else(|| format!("awakeable {i} has no id"))?;
        std::str::from_utf8(&bytes[..usize::from(*len)])
            .map(str::to_owned)
            .map_err(|e| format!("awakeable id {i} is not UTF-8: {e}"))
    }

    fn resume(&self, i: u64, value: u64) {
        let now = self.now();
        if value != i {
            self.wrong_values.fetch_add(1, Ordering::SeqCst);
        }
        let Some(slot) = self.resumed.get(i as usize) else {
            return;
        };
        if slot
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.resumed_count.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn fail(&self, error: String) {
        lock(&self.failure).get_or_insert(error);
    }

    fn failure(&self) -> Result<(), String> {
        lock(&self.failure).clone().map_or(Ok(()), Err)
    }
}

/// What the suspended point measured.
#[derive(Debug, Clone)]
pub struct SuspendedPoint {
    /// Invocations created, suspended, then completed.
    pub invocations: usize,
    /// How long creating them took (every `send` returned, every awakeable id published).
    pub create: Duration,
    /// From the first `send` until every invocation was suspended.
    pub until_suspended: Duration,
    /// Resident memory of the process before the engine opened.
    pub rss_before: u64,
    /// Resident memory once every invocation was suspended.
    pub rss_suspended: u64,
    /// The process's peak resident memory (`VmHWM`) at that moment.
    pub rss_peak: u64,
    /// The bench's own tables (awakeable ids, timestamps), part of `rss_suspended`.
    pub bench_bytes: u64,
    /// The data file once every invocation was suspended.
    pub file_suspended: u64,
    /// The data file once every invocation had finished.
    pub file_finished: u64,
    /// Bytes written to storage from the engine's opening until all were suspended.
    pub written_suspending: u64,
    /// Bytes written to storage while the awakeables were resolved and the invocations finished.
    pub written_completing: u64,
    /// How long one check that none was left running took (a full scan of the records).
    pub scan: Duration,
    /// Awakeables resolved per second, asked.
    pub rate: f64,
    /// Awakeables resolved per second, achieved (first call to last call).
    pub achieved_rate: f64,
    /// From the call to `resolve_awakeable` to the handler holding the value.
    pub from_call: Latencies,
    /// From `resolve_awakeable` returning to the handler holding the value (zero when the
    /// handler was first).
    pub from_return: Latencies,
    /// The latency of `resolve_awakeable` itself.
    pub resolve_call: Latencies,
    /// The writer while the awakeables were resolved.
    pub writer: WriterStatistics,
}

/// Creates `count` invocations that each wait on an awakeable, from `senders` tasks, waits
/// until all are suspended (after `suspend_after`), measures memory and the data file, then
/// resolves every awakeable at `rate` per second and records when each handler resumes.
pub async fn suspended_point(
    dir: &Path,
    count: usize,
    senders: usize,
    suspend_after: Duration,
    rate: f64,
) -> Result<SuspendedPoint, String> {
    let rss_before = memory_status("VmRSS").unwrap_or(0);
    let parked = Arc::new(Parked::new(count));
    let tables = parked.clone();
    let service = Service::new(SERVICE).handler("wait", move |ctx: Context, i: u64| {
        let parked = tables.clone();
        async move {
            let (id, resolved) = ctx.awakeable::<u64>();
            parked.publish(i, &id);
            let value = resolved.await?;
            parked.resume(i, value);
            Ok(())
        }
    });
    let written_before = bytes_written().unwrap_or(0);
    let engine = open(
        Engine::builder()
            .register(service)
            .inactivity_timeout(suspend_after),
        dir,
    )
    .await?;
    let client = engine.client();
    let started = Instant::now();
    submit(&client, "wait", count, senders, false).await?;
    wait_until("every awakeable id", PATIENCE, || {
        parked.failure()?;
        Ok(parked.published.load(Ordering::SeqCst) >= count)
    })
    .await?;
    let create = started.elapsed();
    // Create, the awakeable's entry and the suspension: three commands per invocation.
    wait_until("every invocation to suspend", PATIENCE, || {
        Ok(engine.writer_statistics().commands >= 3 * count as u64)
    })
    .await?;
    // The timer service's first command is counted too: check that none is left running.
    let scanned = Instant::now();
    let mut scan = None;
    wait_until("the last suspensions", PATIENCE, || {
        let done = none_with(&engine, InvocationStatus::Running)?;
        scan.get_or_insert(scanned.elapsed());
        Ok(done)
    })
    .await?;
    let until_suspended = started.elapsed();
    let rss_suspended = memory_status("VmRSS").unwrap_or(0);
    let rss_peak = memory_status("VmHWM").unwrap_or(0);
    let file_suspended = data_file_bytes(dir)?;
    let written_suspended = bytes_written().unwrap_or(0);

    let writer_before = engine.writer_statistics();
    let (first_call, last_call) = resolve_steadily(&client, &parked, count, rate).await?;
    wait_until("every handler to resume", PATIENCE, || {
        parked.failure()?;
        Ok(parked.resumed_count.load(Ordering::SeqCst) >= count
            && parked.returned_count.load(Ordering::SeqCst) >= count)
    })
    .await?;
    let writer = engine.writer_statistics().since(&writer_before);
    let wrong = parked.wrong_values.load(Ordering::SeqCst);
    if wrong > 0 {
        return Err(format!("{wrong} handlers resumed with another value"));
    }
    // Then every outcome: the complete and the finish make five commands per invocation.
    wait_until("every outcome", PATIENCE, || {
        Ok(engine.writer_statistics().commands >= 5 * count as u64)
    })
    .await?;
    wait_until("every invocation to finish", PATIENCE, || {
        Ok(none_with(&engine, InvocationStatus::Running)?
            && none_with(&engine, InvocationStatus::Suspended)?)
    })
    .await?;
    drop(client);
    engine.shutdown().await;
    let file_finished = data_file_bytes(dir)?;
    let written_finished = bytes_written().unwrap_or(0);

    let mut from_call = Vec::with_capacity(count);
    let mut from_return = Vec::with_capacity(count);
    let mut resolve_call = Vec::with_capacity(count);
    for i in 0..count {
        let called = parked.called[i].load(Ordering::SeqCst);
        let returned = parked.returned[i].load(Ordering::SeqCst);
        let resumed = parked.resumed[i].load(Ordering::SeqCst);
        from_call.push(Duration::from_nanos(resumed.saturating_sub(called)));
        from_return.push(Duration::from_nanos(resumed.saturating_sub(returned)));
        resolve_call.push(Duration::from_nanos(returned.saturating_sub(called)));
    }
    let span = last_call.saturating_sub(first_call).as_secs_f64();
    Ok(SuspendedPoint {
        invocations: count,
        create,
        until_suspended,
        rss_before,
        rss_suspended,
        rss_peak,
        bench_bytes: Parked::bytes(count),
        file_suspended,
        file_finished,
        written_suspending: written_suspended.saturating_sub(written_before),
        written_completing: written_finished.saturating_sub(written_suspended),
        scan: scan.unwrap_or_default(),
        rate,
        achieved_rate: if span > 0.0 {
            (count - 1) as f64 / span
        } else {
            rate
        },
        from_call: Latencies::new(from_call),
        from_return: Latencies::new(from_return),
        resolve_call: Latencies::new(resolve_call),
        writer,
    })
}

/// Resolves awakeable `i` at `start + i / rate`, each from its own task (an open loop: a slow
/// resolve does not delay the next). Returns when the first and the last call were made.
async fn resolve_steadily(
    client: &Client,
    parked: &Arc<Parked>,
    count: usize,
    rate: f64,
) -> Result<(Duration, Duration), String> {
    let start = Instant::now();
    let mut issued = 0;
    let mut first_call = None;
    let mut last_call = Duration::ZERO;
    while issued < count {
        let elapsed = start.elapsed();
        let due = ((elapsed.as_secs_f64() * rate) as usize + 1).min(count);
        while issued < due {
            let i = issued;
            let id = parked.id(i)?;
            let (client, parked) = (client.clone(), parked.clone());
            tokio::spawn(async move {
                parked.called[i].store(parked.now(), Ordering::SeqCst);
                match client.resolve_awakeable(&id, &(i as u64)).await {
                    Ok(()) => {
                        parked.returned[i].store(parked.now(), Ordering::SeqCst);
                        parked.returned_count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => parked.fail(format!("cannot resolve awakeable {i}: {e}")),
                }
            });
            first_call.get_or_insert(elapsed);
            last_call = elapsed;
            issued += 1;
        }
        parked.failure()?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok((first_call.unwrap_or_default(), last_call))
}
