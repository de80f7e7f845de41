//! The `waiting` bench: what waiting costs. Four points, each with a fresh engine in a fresh
//! temporary folder:
//!
//! * [`suspended`] — N invocations each wait on an awakeable until they suspend; the process's
//!   resident memory and the data file once all are suspended; then every awakeable is resolved
//!   at a steady rate, and each completion-to-resume latency is recorded inside the handler.
//! * [`restart`] — N invocations in flight (blocked in a `run` step), the engine shut down and
//!   reopened with a handler that completes at once: the time from `open` to the last result.
//! * [`timers`] — N invocations each sleep until a deadline spread uniformly over one second;
//!   lateness = when the handler wakes − its deadline, by the system clock.
//! * [`round_trip`] — a handler creates an awakeable and hands its id to the bench, which
//!   resolves it at once; closed loop at several concurrencies.
//!
//! Handlers hand ids and timestamps to the bench through in-process tables captured by the
//! handler closures; a replayed handler produces the same awakeable id again, and every table
//! keeps the first value it gets. [`markdown`] writes the tables and the section of
//! `docs/benchmarks.md`.

mod common;
pub mod markdown;
pub mod restart;
pub mod round_trip;
pub mod suspended;
pub mod timers;

use crate::harness::{Bench, Modes, ensure};
use std::time::{Duration, Instant};

pub use self::common::{bytes_written, load_average, memory_status};
pub use self::markdown::{section, table, targets};
pub use self::restart::{RestartPoint, restart_point};
pub use self::round_trip::{RoundTripPoint, round_trip_point};
pub use self::suspended::{SuspendedPoint, suspended_point};
pub use self::timers::{Sleeping, TimerPoint, timers_point};
use crate::load::Window;
use crate::stats::{median, median_duration};

/// The service every point registers.
pub const SERVICE: &str = "W";
/// Resident memory allowed with every invocation of the suspended point suspended.
pub const RSS_TARGET_BYTES: u64 = 1 << 30;
/// Completion-to-resume p99 allowed at a steady rate.
pub const RESUME_P99_TARGET: Duration = Duration::from_millis(50);
/// Time allowed from `open` to the last result of the invocations in flight at a restart.
pub const RESTART_TARGET: Duration = Duration::from_secs(10);
/// Timer lateness p99 allowed.
pub const LATENESS_P99_TARGET: Duration = Duration::from_millis(50);

/// How the bench runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Invocations of the suspended point.
    pub suspended: usize,
    /// Awakeables resolved per second in the suspended point.
    pub resolve_rate: f64,
    /// The inactivity timeout after which an invocation suspends (suspended point, and the
    /// suspended sleepers).
    pub suspend_after: Duration,
    /// Invocations in flight at the restart.
    pub restart: usize,
    /// Timers of the timers point.
    pub timers: usize,
    /// The span their deadlines are spread over.
    pub timer_window: Duration,
    /// Warm-up and measurement of each round-trip point.
    pub window: Window,
    /// Concurrencies of the round-trip point.
    pub concurrencies: Vec<usize>,
    /// Concurrent tasks submitting invocations.
    pub senders: usize,
    /// Repetitions of the suspended point.
    pub suspended_repetitions: usize,
    /// Repetitions of every other point; figures are medians over them.
    pub repetitions: usize,
}

impl Modes for Settings {
    /// The real run: a million suspended invocations resolved at 10,000/s, once; then 100,000
    /// in flight at a restart, 100,000 timers within one second, and 3 s of round trips, each
    /// repeated 3 times.
    fn full() -> Self {
        Self {
            suspended: 1_000_000,
            resolve_rate: 10_000.0,
            suspend_after: Duration::from_millis(200),
            restart: 100_000,
            timers: 100_000,
            timer_window: Duration::from_secs(1),
            window: Window::FULL,
            concurrencies: vec![1, 64],
            senders: 256,
            suspended_repetitions: 1,
            repetitions: 3,
        }
    }

    /// A few thousand invocations per point, once: proves that every point runs.
    fn quick() -> Self {
        Self {
            suspended: 2_000,
            resolve_rate: 2_000.0,
            restart: 2_000,
            timers: 2_000,
            window: Window::quick(Duration::from_millis(200)),
            senders: 64,
            repetitions: 1,
            ..Self::full()
        }
    }
}

/// The `waiting` bench.
pub struct Waiting;

impl Bench for Waiting {
    const NAME: &'static str = "waiting";
    type Settings = Settings;
    type Report = Report;

    async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
        run(settings, log).await
    }

    /// Every point ran with the counts asked for, no timer fired early, sleepers suspended
    /// before their deadline, and resuming is part of a round trip.
    fn check(settings: &Settings, report: &Report) -> Result<(), String> {
        let s = &report.suspended;
        ensure(s.invocations == settings.suspended, || format!("{s:?}"))?;
        ensure(s.rss_suspended > 0 && s.file_suspended > 0, || {
            format!("no memory or file measured: {s:?}")
        })?;
        ensure(
            s.p50 > Duration::ZERO && s.p50 <= s.p99 && s.p99 <= s.max && s.achieved_rate > 0.0,
            || format!("suspended percentiles: {s:?}"),
        )?;
        let r = &report.restart;
        ensure(
            r.in_flight == settings.restart
                && r.open <= r.all_completed
                && r.handlers <= r.all_completed,
            || format!("restart: {r:?}"),
        )?;
        let sleeping: Vec<Sleeping> = report.timers.iter().map(|t| t.sleeping).collect();
        ensure(sleeping == Sleeping::ALL, || {
            format!("timers: {sleeping:?}")
        })?;
        for t in &report.timers {
            ensure(t.timers == settings.timers && t.p50 <= t.p99, || {
                format!("timers: {t:?}")
            })?;
            ensure(t.early == 0, || {
                format!("a timer fired before its deadline: {t:?}")
            })?;
        }
        ensure(
            report.timers.iter().any(|t| t.suspended_at_start > 0),
            || "no sleeper suspended before the first deadline".to_owned(),
        )?;
        ensure(
            report.round_trips.len() == settings.concurrencies.len(),
            || format!("{} round-trip points", report.round_trips.len()),
        )?;
        for t in &report.round_trips {
            ensure(t.per_s > 0.0 && t.p50 <= t.p99, || {
                format!("round trip: {t:?}")
            })?;
            ensure(t.resume_p50 <= t.p50, || {
                format!("resuming is part of the round trip: {t:?}")
            })?;
        }
        Ok(())
    }

    fn summary(report: &Report) -> String {
        format!("{}\n{}", table(report), targets(report))
    }

    fn section(report: &Report, date: &str, machine: &str) -> String {
        section(report, date, machine)
    }
}

/// The suspended point's figures (medians over its repetitions, memory the highest).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SuspendedFigures {
    /// Invocations.
    pub invocations: usize,
    /// Invocations created per second (until every awakeable id was published).
    pub created_per_s: f64,
    /// From the first send until every invocation was suspended.
    pub until_suspended: Duration,
    /// Resident memory once all were suspended (the highest over repetitions: memory the
    /// allocator kept from an earlier repetition can only add to a later one).
    pub rss_suspended: u64,
    /// Resident memory before the engine opened (first repetition).
    pub rss_before: u64,
    /// Peak resident memory when all were suspended (highest over repetitions).
    pub rss_peak: u64,
    /// The bench's own tables, part of the resident memory.
    pub bench_bytes: u64,
    /// Data file with all suspended.
    pub file_suspended: u64,
    /// Data file with all finished.
    pub file_finished: u64,
    /// Bytes written to storage until all were suspended.
    pub written_suspending: u64,
    /// Bytes written to storage while completing them.
    pub written_completing: u64,
    /// One scan that checked none was left running.
    pub scan: Duration,
    /// Resolve rate asked.
    pub rate: f64,
    /// Resolve rate achieved.
    pub achieved_rate: f64,
    /// Resolve call → resume, median.
    pub p50: Duration,
    /// Resolve call → resume, 99th percentile.
    pub p99: Duration,
    /// Resolve call → resume, the slowest.
    pub max: Duration,
    /// Resolve returned → resume, median.
    pub return_p50: Duration,
    /// Resolve returned → resume, 99th percentile.
    pub return_p99: Duration,
    /// `resolve_awakeable`'s own latency, median.
    pub resolve_p50: Duration,
    /// `resolve_awakeable`'s own latency, 99th percentile.
    pub resolve_p99: Duration,
    /// Writer commands per commit while resolving.
    pub batch: f64,
    /// Writer time per commit while resolving.
    pub commit_time: Duration,
}

/// The restart point's figures (medians).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RestartFigures {
    /// Invocations in flight.
    pub in_flight: usize,
    /// The shutdown with them in flight.
    pub shutdown: Duration,
    /// `open` until it returned.
    pub open: Duration,
    /// `open` until the last handler ran.
    pub handlers: Duration,
    /// `open` until the last result was attached.
    pub all_completed: Duration,
    /// Writer commits after the reopen.
    pub commits: u64,
    /// Writer commands per commit after the reopen.
    pub batch: f64,
    /// Writer time in all after the reopen.
    pub writer_busy: Duration,
    /// Reopen attempts refused while the old engine still held the file (total).
    pub locked_retries: usize,
}

/// The timers point's figures for one way of sleeping (medians).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimerFigures {
    /// How the sleepers waited.
    pub sleeping: Sleeping,
    /// Timers.
    pub timers: usize,
    /// The span of their deadlines.
    pub window: Duration,
    /// How long before the first deadline all were stored (the smallest over repetitions).
    pub stored_ahead: Duration,
    /// Sleepers suspended when the first deadline came (the smallest over repetitions).
    pub suspended_at_start: usize,
    /// Lateness, median.
    pub p50: Duration,
    /// Lateness, 99th percentile.
    pub p99: Duration,
    /// Lateness, the latest.
    pub max: Duration,
    /// Timers that fired early, over all repetitions.
    pub early: usize,
    /// Median lateness of the timers due in the first tenth of the window.
    pub first_tenth_p50: Duration,
    /// Median lateness of the timers due in the last tenth of the window.
    pub last_tenth_p50: Duration,
    /// From the first deadline until the last sleeper woke.
    pub until_all_woke: Duration,
    /// Writer commands committed over that span.
    pub commands: u64,
    /// Writer time over that span.
    pub writer_busy: Duration,
}

impl TimerFigures {
    /// Average writer time per command over the span.
    pub fn per_command(&self) -> Duration {
        self.writer_busy / u32::try_from(self.commands.max(1)).unwrap_or(u32::MAX)
    }
}

/// The round-trip point's figures at one concurrency (medians).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoundTripFigures {
    /// Concurrent round trips.
    pub concurrency: usize,
    /// Round trips per second.
    pub per_s: f64,
    /// Send → attach, median.
    pub p50: Duration,
    /// Send → attach, 99th percentile.
    pub p99: Duration,
    /// Resolve call → resume, median.
    pub resume_p50: Duration,
    /// Resolve call → resume, 99th percentile.
    pub resume_p99: Duration,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ran.
    pub settings: Settings,
    /// Suspended invocations.
    pub suspended: SuspendedFigures,
    /// Restart with invocations in flight.
    pub restart: RestartFigures,
    /// Timers, one row per way of sleeping ([`Sleeping::ALL`]).
    pub timers: Vec<TimerFigures>,
    /// Awakeable round trips, one row per concurrency.
    pub round_trips: Vec<RoundTripFigures>,
    /// The 1-minute load average before and after the run (the machine is shared).
    pub load: (f64, f64),
    /// How long the whole run took.
    pub elapsed: Duration,
}

fn temp_dir() -> Result<tempfile::TempDir, String> {
    tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))
}

/// Runs the suspended point first (so that its memory is measured in a process that has run
/// nothing else), then, `settings.repetitions` times, the restart, the timers (each way of
/// sleeping) and the round trips. Every point gets a fresh temporary folder. `log` hears about
/// progress.
pub async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
    let began = Instant::now();
    let load_before = load_average();
    let s = settings;
    let mut suspended = Vec::new();
    for repetition in 1..=s.suspended_repetitions {
        let dir = temp_dir()?;
        let point = suspended_point(
            dir.path(),
            s.suspended,
            s.senders,
            s.suspend_after,
            s.resolve_rate,
        )
        .await?;
        log(format!(
            "[{repetition}/{}] suspended: {} created in {:.1} s, RSS {:.0} MiB, file {:.0} MiB; \
             resume p50 {:.2} ms, p99 {:.2} ms at {:.0}/s",
            s.suspended_repetitions,
            point.invocations,
            point.create.as_secs_f64(),
            markdown::mib(point.rss_suspended),
            markdown::mib(point.file_suspended),
            point.from_call.p50().as_secs_f64() * 1e3,
            point.from_call.p99().as_secs_f64() * 1e3,
            point.achieved_rate,
        ));
        suspended.push(point);
    }
    let mut restarts = Vec::new();
    let mut timers: Vec<Vec<TimerPoint>> = vec![Vec::new(); Sleeping::ALL.len()];
    let mut trips: Vec<Vec<RoundTripPoint>> = vec![Vec::new(); s.concurrencies.len()];
    for repetition in 1..=s.repetitions {
        let dir = temp_dir()?;
        let point = restart_point(dir.path(), s.restart, s.senders).await?;
        log(format!(
            "[{repetition}/{}] restart: {} in flight, open {:.2} s, all completed {:.2} s",
            s.repetitions,
            point.in_flight,
            point.open.as_secs_f64(),
            point.all_completed.as_secs_f64()
        ));
        restarts.push(point);
        for (i, sleeping) in Sleeping::ALL.into_iter().enumerate() {
            let dir = temp_dir()?;
            let point = timers_point(
                dir.path(),
                s.timers,
                s.senders,
                s.timer_window,
                sleeping,
                s.suspend_after,
            )
            .await?;
            log(format!(
                "[{repetition}/{}] timers ({}): {} in {:?}, lateness p50 {:.2} ms, p99 {:.2} ms",
                s.repetitions,
                sleeping.label(),
                point.timers,
                point.window,
                point.lateness.p50().as_secs_f64() * 1e3,
                point.lateness.p99().as_secs_f64() * 1e3,
            ));
            timers[i].push(point);
        }
        for (i, &concurrency) in s.concurrencies.iter().enumerate() {
            let dir = temp_dir()?;
            let point = round_trip_point(dir.path(), concurrency, s.window).await?;
            log(format!(
                "[{repetition}/{}] round trip c={concurrency}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
                s.repetitions,
                point.sample.per_second(),
                point.sample.latencies.p50().as_secs_f64() * 1e3,
                point.sample.latencies.p99().as_secs_f64() * 1e3,
            ));
            trips[i].push(point);
        }
    }
    Ok(Report {
        settings: settings.clone(),
        suspended: suspended_figures(&suspended),
        restart: restart_figures(&restarts),
        timers: timers
            .iter()
            .map(Vec::as_slice)
            .map(timer_figures)
            .collect(),
        round_trips: trips
            .iter()
            .map(Vec::as_slice)
            .map(round_trip_figures)
            .collect(),
        load: (load_before, load_average()),
        elapsed: began.elapsed(),
    })
}

fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    median(values.map(|v| v as f64)) as u64
}

fn suspended_figures(points: &[SuspendedPoint]) -> SuspendedFigures {
    let Some(first) = points.first() else {
        return SuspendedFigures::default();
    };
    let d = |f: fn(&SuspendedPoint) -> Duration| median_duration(points.iter().map(f));
    let u = |f: fn(&SuspendedPoint) -> u64| median_u64(points.iter().map(f));
    let commits = |p: &SuspendedPoint| p.writer.commits.max(1);
    SuspendedFigures {
        invocations: first.invocations,
        created_per_s: median(
            points
                .iter()
                .map(|p| p.invocations as f64 / p.create.as_secs_f64()),
        ),
        until_suspended: d(|p| p.until_suspended),
        rss_suspended: points.iter().map(|p| p.rss_suspended).max().unwrap_or(0),
        rss_before: first.rss_before,
        rss_peak: points.iter().map(|p| p.rss_peak).max().unwrap_or(0),
        bench_bytes: u(|p| p.bench_bytes),
        file_suspended: u(|p| p.file_suspended),
        file_finished: u(|p| p.file_finished),
        written_suspending: u(|p| p.written_suspending),
        written_completing: u(|p| p.written_completing),
        scan: d(|p| p.scan),
        rate: first.rate,
        achieved_rate: median(points.iter().map(|p| p.achieved_rate)),
        p50: d(|p| p.from_call.p50()),
        p99: d(|p| p.from_call.p99()),
        max: d(|p| p.from_call.percentile(100.0)),
        return_p50: d(|p| p.from_return.p50()),
        return_p99: d(|p| p.from_return.p99()),
        resolve_p50: d(|p| p.resolve_call.p50()),
        resolve_p99: d(|p| p.resolve_call.p99()),
        batch: median(
            points
                .iter()
                .map(|p| p.writer.commands as f64 / commits(p) as f64),
        ),
        commit_time: median_duration(
            points
                .iter()
                .map(|p| Duration::from_micros(p.writer.commit_micros / commits(p))),
        ),
    }
}

fn restart_figures(points: &[RestartPoint]) -> RestartFigures {
    let d = |f: fn(&RestartPoint) -> Duration| median_duration(points.iter().map(f));
    RestartFigures {
        in_flight: points.first().map_or(0, |p| p.in_flight),
        shutdown: d(|p| p.shutdown),
        open: d(|p| p.open),
        handlers: d(|p| p.handlers),
        all_completed: d(|p| p.all_completed),
        commits: median_u64(points.iter().map(|p| p.writer.commits)),
        batch: median(
            points
                .iter()
                .map(|p| p.writer.commands as f64 / p.writer.commits.max(1) as f64),
        ),
        writer_busy: d(|p| Duration::from_micros(p.writer.commit_micros)),
        locked_retries: points.iter().map(|p| p.locked_retries).sum(),
    }
}

fn timer_figures(points: &[TimerPoint]) -> TimerFigures {
    let d = |f: fn(&TimerPoint) -> Duration| median_duration(points.iter().map(f));
    let first = points.first();
    TimerFigures {
        sleeping: first.map_or(Sleeping::Live, |p| p.sleeping),
        timers: first.map_or(0, |p| p.timers),
        window: first.map_or(Duration::ZERO, |p| p.window),
        stored_ahead: points
            .iter()
            .map(|p| p.stored_ahead)
            .min()
            .unwrap_or_default(),
        suspended_at_start: points
            .iter()
            .map(|p| p.suspended_at_start)
            .min()
            .unwrap_or(0),
        p50: d(|p| p.lateness.p50()),
        p99: d(|p| p.lateness.p99()),
        max: d(|p| p.lateness.percentile(100.0)),
        early: points.iter().map(|p| p.early).sum(),
        first_tenth_p50: d(|p| p.first_tenth_p50),
        last_tenth_p50: d(|p| p.last_tenth_p50),
        until_all_woke: d(|p| p.until_all_woke),
        commands: median_u64(points.iter().map(|p| p.writer.commands)),
        writer_busy: d(|p| Duration::from_micros(p.writer.commit_micros)),
    }
}

fn round_trip_figures(points: &[RoundTripPoint]) -> RoundTripFigures {
    let d = |f: fn(&RoundTripPoint) -> Duration| median_duration(points.iter().map(f));
    RoundTripFigures {
        concurrency: points.first().map_or(0, |p| p.concurrency),
        per_s: median(points.iter().map(|p| p.sample.per_second())),
        p50: d(|p| p.sample.latencies.p50()),
        p99: d(|p| p.sample.latencies.p99()),
        resume_p50: d(|p| p.resume.p50()),
        resume_p99: d(|p| p.resume.p99()),
    }
}
