//! The timers point: N invocations each sleep until a deadline spread uniformly over a window;
//! lateness = when the handler wakes − its deadline, by the system clock.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use tokio::sync::watch;
use zeroapp_engine::prelude::*;
use zeroapp_engine::{
    Clock, Context, InvocationFilter, InvocationStatus, SystemClock, WriterStatistics,
};

use super::SERVICE;
use super::common::{PATIENCE, open, submit, wait_until, wall_clock_ns};
use crate::stats::Latencies;

/// Long enough that no sleeper suspends while the point runs.
const NEVER: Duration = Duration::from_secs(3600);

/// How the sleepers wait, and what they do once woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sleeping {
    /// In memory (the inactivity timeout is longer than the wait); each finishes once woken.
    Live,
    /// Suspended; a fired timer starts a replay, which finishes.
    Suspended,
    /// In memory, and never finishing once woken: no outcome is committed, so the timer service
    /// has the writer to itself. It shows where the time goes; no target applies.
    Staying,
}

impl Sleeping {
    /// Every way, in the order the bench runs them.
    pub const ALL: [Sleeping; 3] = [Sleeping::Live, Sleeping::Suspended, Sleeping::Staying];

    /// How the docs name it.
    pub fn label(self) -> &'static str {
        match self {
            Sleeping::Live => "in memory",
            Sleeping::Suspended => "suspended",
            Sleeping::Staying => "in memory, never finishing",
        }
    }

    /// Whether the lateness target applies.
    pub fn has_target(self) -> bool {
        self != Sleeping::Staying
    }
}

/// What the handlers share with the bench.
struct Sleepers {
    count: u64,
    window_ms: u64,
    stay: bool,
    /// The start of the window, in milliseconds since the Unix epoch, once chosen.
    start: watch::Sender<Option<u64>>,
    parked: AtomicUsize,
    woke: AtomicUsize,
    /// Lateness of each timer in nanoseconds (`i64::MIN`: not woken yet).
    lateness: Vec<AtomicI64>,
}

impl Sleepers {
    fn deadline_ms(&self, start: u64, i: u64) -> u64 {
        start + i * self.window_ms / self.count.max(1)
    }

    fn woke(&self, i: u64, late: i64) {
        let Some(slot) = self.lateness.get(i as usize) else {
            return;
        };
        if slot
            .compare_exchange(i64::MIN, late, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.woke.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// What the timers point measured.
#[derive(Debug, Clone)]
pub struct TimerPoint {
    /// How the sleepers waited.
    pub sleeping: Sleeping,
    /// Timers.
    pub timers: usize,
    /// The span their deadlines were spread over.
    pub window: Duration,
    /// How long before the first deadline every timer was stored.
    pub stored_ahead: Duration,
    /// How many invocations had suspended when the first deadline came (suspended variant).
    pub suspended_at_start: usize,
    /// Wake-up minus deadline, for every timer.
    pub lateness: Latencies,
    /// Timers that woke before their deadline (must be none).
    pub early: usize,
    /// Median lateness of the timers due in the first tenth of the window.
    pub first_tenth_p50: Duration,
    /// Median lateness of the timers due in the last tenth of the window.
    pub last_tenth_p50: Duration,
    /// From the first deadline until the last sleeper woke.
    pub until_all_woke: Duration,
    /// The writer over the same span.
    pub writer: WriterStatistics,
}

/// Creates `count` invocations that each sleep until a deadline spread uniformly over `window`;
/// the deadlines are chosen once every handler has started, far enough ahead that every timer
/// is stored (and, for [`Sleeping::Suspended`], every sleeper suspended) before the first.
pub async fn timers_point(
    dir: &Path,
    count: usize,
    senders: usize,
    window: Duration,
    sleeping: Sleeping,
    suspend_after: Duration,
) -> Result<TimerPoint, String> {
    let (start, _) = watch::channel(None);
    let sleepers = Arc::new(Sleepers {
        count: count as u64,
        window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        stay: sleeping == Sleeping::Staying,
        start,
        parked: AtomicUsize::new(0),
        woke: AtomicUsize::new(0),
        lateness: (0..count).map(|_| AtomicI64::new(i64::MIN)).collect(),
    });
    let shared = sleepers.clone();
    let service = Service::new(SERVICE).handler("sleep", move |ctx: Context, i: u64| {
        let sleepers = shared.clone();
        async move {
            if !ctx.is_replaying() {
                sleepers.parked.fetch_add(1, Ordering::SeqCst);
            }
            let start = *sleepers
                .start
                .subscribe()
                .wait_for(Option::is_some)
                .await
                .map_err(|_| HandlerError::retryable("the bench is gone"))?;
            let deadline_ms = sleepers.deadline_ms(start.unwrap_or(0), i);
            ctx.sleep_until(UNIX_EPOCH + Duration::from_millis(deadline_ms))
                .await?;
            let deadline_ns = i64::try_from(deadline_ms * 1_000_000).unwrap_or(i64::MAX);
            sleepers.woke(i, wall_clock_ns() - deadline_ns);
            if sleepers.stay {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    });
    let inactivity = match sleeping {
        Sleeping::Suspended => suspend_after,
        Sleeping::Live | Sleeping::Staying => NEVER,
    };
    let engine = open(
        Engine::builder()
            .register(service)
            .inactivity_timeout(inactivity),
        dir,
    )
    .await?;
    let client = engine.client();
    let submitting = Instant::now();
    submit(&client, "sleep", count, senders, false).await?;
    drop(client);
    wait_until("every sleeper to start", PATIENCE, || {
        Ok(sleepers.parked.load(Ordering::SeqCst) >= count)
    })
    .await?;
    // Far enough ahead to store every timer (and suspend every sleeper) first. Storing the
    // sleeps, then suspending, each take about as long as creating the invocations did (on a
    // busy machine that is slower, and so is the rest).
    let mut lead = Duration::from_secs(1) + 2 * submitting.elapsed();
    if sleeping == Sleeping::Suspended {
        lead += submitting.elapsed() + 2 * suspend_after;
    }
    let start_ms = SystemClock.now_ms() + u64::try_from(lead.as_millis()).unwrap_or(0);
    let start_ns = i64::try_from(start_ms * 1_000_000).unwrap_or(i64::MAX);
    let before_start =
        || Duration::from_nanos(u64::try_from(start_ns - wall_clock_ns()).unwrap_or(0));
    sleepers.start.send_replace(Some(start_ms));
    wait_until("every timer to be stored", PATIENCE, || {
        let stored = engine
            .timers_stored()
            .map_err(|e| format!("cannot count timers: {e}"))?;
        Ok(stored >= count as u64)
    })
    .await?;
    let stored_ahead = before_start();
    if stored_ahead.is_zero() {
        return Err("the timers were stored after the first deadline; lengthen the lead".into());
    }
    let mut suspended_at_start = 0;
    if sleeping == Sleeping::Suspended {
        // Create, the sleep's entry and the suspension: three commands per sleeper.
        let _ = wait_until("every sleeper to suspend", before_start(), || {
            Ok(engine.writer_statistics().commands >= 3 * count as u64)
        })
        .await;
        suspended_at_start = engine
            .list_invocations(&InvocationFilter {
                status: Some(InvocationStatus::Suspended),
                ..InvocationFilter::default()
            })
            .map_err(|e| format!("cannot list invocations: {e}"))?
            .len();
    }
    tokio::time::sleep(before_start()).await;
    let writer_before = engine.writer_statistics();
    wait_until("every sleeper to wake", window + PATIENCE, || {
        Ok(sleepers.woke.load(Ordering::SeqCst) >= count)
    })
    .await?;
    let writer = engine.writer_statistics().since(&writer_before);
    engine.shutdown().await;
    let mut early = 0;
    let mut last_woke = start_ns;
    let lateness: Vec<Duration> = (0..count)
        .map(|i| {
            let late = sleepers.lateness[i].load(Ordering::SeqCst);
            if late < 0 {
                early += 1;
            }
            let deadline_ms = sleepers.deadline_ms(start_ms, i as u64);
            let deadline_ns = i64::try_from(deadline_ms * 1_000_000).unwrap_or(i64::MAX);
            last_woke = last_woke.max(deadline_ns.saturating_add(late));
            Duration::from_nanos(u64::try_from(late).unwrap_or(0))
        })
        .collect();
    let until_all_woke = Duration::from_nanos(u64::try_from(last_woke - start_ns).unwrap_or(0));
    let tenth = (count / 10).max(1).min(lateness.len());
    let first_tenth_p50 = Latencies::new(lateness[..tenth].to_vec()).p50();
    let last_tenth_p50 = Latencies::new(lateness[lateness.len() - tenth..].to_vec()).p50();
    Ok(TimerPoint {
        sleeping,
        timers: count,
        window,
        stored_ahead,
        suspended_at_start,
        lateness: Latencies::new(lateness),
        early,
        first_tenth_p50,
        last_tenth_p50,
        until_all_woke,
        writer,
    })
}
