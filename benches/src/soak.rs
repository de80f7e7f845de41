//! The `soak` bench: the `invocations` bench's handler (three `run` steps) at 64 callers for ten
//! minutes, with a retention short enough that finished invocations are purged during the run,
//! the data folder's disk use and the process's memory sampled as it goes. Under a steady load
//! the folder must level off: redb reuses the pages of purged invocations, and the log's
//! segments are recycled after each checkpoint.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zeroapp_engine::prelude::*;

use crate::engine::{HANDLER, SERVICE, expected_output, three_steps};
use crate::harness::{Bench, Modes, ensure};
use crate::load::{Window, closed_loop};
use crate::report::{callers, ms, verdict};
use crate::waiting::memory_status;

/// The folder's size at the end may be at most this multiple of its size at half-time.
pub const GROWTH_TARGET: f64 = 1.1;

/// How the bench runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long the load runs.
    pub duration: Duration,
    /// Concurrent callers.
    pub concurrency: usize,
    /// How often the folder and the memory are sampled.
    pub sample_every: Duration,
    /// How long a finished invocation is kept before it is purged.
    pub retention: Duration,
}

impl Modes for Settings {
    /// The real run: 64 callers for 10 minutes, a retention of one minute, a sample every 15 s.
    fn full() -> Self {
        Self {
            duration: Duration::from_secs(600),
            concurrency: 64,
            sample_every: Duration::from_secs(15),
            retention: Duration::from_secs(60),
        }
    }

    /// Three seconds at 8 callers, a retention of half a second: proves it runs and purges.
    fn quick() -> Self {
        Self {
            duration: Duration::from_secs(3),
            concurrency: 8,
            sample_every: Duration::from_millis(250),
            retention: Duration::from_millis(500),
        }
    }
}

/// One sample of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Since the load started.
    pub at: Duration,
    /// Invocations finished so far.
    pub invocations: u64,
    /// Bytes the data folder occupies on disk (allocated blocks, log segments included).
    pub folder: u64,
    /// Of which the log's segments.
    pub log: u64,
    /// The process's resident memory.
    pub rss: u64,
}

/// What the run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ran.
    pub settings: Settings,
    /// The samples, in order, the last one at the end of the load.
    pub samples: Vec<Sample>,
    /// Invocations per second over the whole run.
    pub per_second: f64,
    /// Invocation latency over the whole run.
    pub p50: Duration,
    /// See `p50`.
    pub p99: Duration,
    /// Invocations that failed.
    pub errors: u64,
    /// Timers stored at the end (purges waiting for their deadline, among others).
    pub timers_at_end: u64,
}

impl Report {
    /// The folder's size at the end ÷ its size at the sample nearest half-time.
    pub fn growth(&self) -> f64 {
        let (Some(last), Some(half)) = (self.samples.last(), self.half()) else {
            return f64::NAN;
        };
        last.folder as f64 / half.folder.max(1) as f64
    }

    fn half(&self) -> Option<&Sample> {
        let half = self.settings.duration / 2;
        self.samples.iter().min_by_key(|s| s.at.abs_diff(half))
    }
}

/// The `soak` bench.
pub struct Soak;

impl Bench for Soak {
    const NAME: &'static str = "soak";
    type Settings = Settings;
    type Report = Report;

    async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
        run(settings, log).await
    }

    /// Samples all through the run, no failed invocation, and purges at work: the timers
    /// stored at the end are those of the last retention period, not of the whole run.
    fn check(settings: &Settings, report: &Report) -> Result<(), String> {
        let expected = (settings.duration.as_secs_f64() / settings.sample_every.as_secs_f64())
            .floor() as usize;
        ensure(report.samples.len() >= expected, || {
            format!("{} samples", report.samples.len())
        })?;
        ensure(report.errors == 0 && report.per_second > 0.0, || {
            format!("{} errors, {:.0}/s", report.errors, report.per_second)
        })?;
        ensure(
            report.samples.iter().all(|s| s.folder > 0 && s.rss > 0),
            || format!("a sample measured nothing: {:?}", report.samples),
        )?;
        let total = report.samples.last().map_or(0, |s| s.invocations);
        ensure(report.timers_at_end < total, || {
            format!(
                "{} timers stored after {total} invocations: nothing was purged",
                report.timers_at_end
            )
        })
    }

    fn summary(report: &Report) -> String {
        format!("{}\n{}", table(report), targets(report))
    }

    fn section(report: &Report, date: &str, machine: &str) -> String {
        section(report, date, machine)
    }
}

/// Disk use of every file under `dir` (allocated blocks), and of those under `dir/log`.
fn disk_use(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    fn walk(dir: &Path, total: &mut u64) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => walk(&entry.path(), total),
                Ok(m) => *total += m.blocks() * 512,
                Err(_) => {}
            }
        }
    }
    let (mut folder, mut log) = (0, 0);
    walk(dir, &mut folder);
    walk(&dir.join("log"), &mut log);
    (folder, log)
}

/// Runs the load for `settings.duration` on a fresh engine, sampling as it goes.
pub async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
    let dir = crate::invocations::temp_dir()?;
    let data = dir.path().join("data");
    let engine = Engine::builder()
        .register(Service::new(SERVICE).handler(HANDLER, three_steps))
        .retention(settings.retention)
        .open(&data)
        .await
        .map_err(|e| format!("cannot open the engine: {e}"))?;
    let client = engine.client();
    let finished = Arc::new(AtomicU64::new(0));
    let counter = finished.clone();
    let expected = expected_output("in");
    let load = tokio::spawn(closed_loop(
        settings.concurrency,
        Window {
            warmup: Duration::ZERO,
            measure: settings.duration,
        },
        move || {
            let client = client.clone();
            let expected = expected.clone();
            let counter = counter.clone();
            async move {
                let output: String = client
                    .call(Target::service(SERVICE, HANDLER), &"in")
                    .await
                    .map_err(|e| format!("call failed: {e}"))?;
                counter.fetch_add(1, Ordering::Relaxed);
                if output == expected {
                    Ok(())
                } else {
                    Err(format!("unexpected output {output:?}"))
                }
            }
        },
    ));
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next = settings.sample_every;
    while next <= settings.duration {
        tokio::time::sleep_until((started + next).into()).await;
        let (folder, log_bytes) = disk_use(&data);
        let sample = Sample {
            at: started.elapsed(),
            invocations: finished.load(Ordering::Relaxed),
            folder,
            log: log_bytes,
            rss: memory_status("VmRSS").unwrap_or(0),
        };
        log(format!(
            "{:>5.0} s: {} invocations, folder {:.1} MiB (log {:.1}), RSS {:.1} MiB",
            sample.at.as_secs_f64(),
            sample.invocations,
            mib(sample.folder),
            mib(sample.log),
            mib(sample.rss),
        ));
        samples.push(sample);
        next += settings.sample_every;
    }
    let sample = load
        .await
        .map_err(|e| format!("the load died: {e}"))
        .and_then(|s| s);
    let timers = engine.timers_stored();
    engine.shutdown().await;
    let sample = sample?;
    Ok(Report {
        settings: settings.clone(),
        samples,
        per_second: sample.per_second(),
        p50: sample.latencies.p50(),
        p99: sample.latencies.p99(),
        errors: sample.errors,
        timers_at_end: timers.map_err(|e| format!("cannot count timers: {e}"))?,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// The samples as a Markdown table.
pub fn table(report: &Report) -> String {
    let mut out = String::from(
        "| at | invocations | invocations/s since the last sample | folder on disk | of which log \
         | RSS |\n|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut previous = (Duration::ZERO, 0);
    for s in &report.samples {
        let rate = (s.invocations - previous.1) as f64 / (s.at - previous.0).as_secs_f64();
        previous = (s.at, s.invocations);
        let _ = writeln!(
            out,
            "| {:.0} s | {} | {rate:.0} | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
            s.at.as_secs_f64(),
            s.invocations,
            mib(s.folder),
            mib(s.log),
            mib(s.rss),
        );
    }
    out
}

/// The target with its verdict.
pub fn targets(report: &Report) -> String {
    let growth = report.growth();
    format!(
        "- Over the whole run: {:.0} invocations/s, p50 {}, p99 {}, {} errors; {} timers stored \
         at the end.\n\
         - The folder at the end ÷ the folder at half-time = **{growth:.2}**; target ≤ \
         {GROWTH_TARGET}: {}.\n",
        report.per_second,
        ms(report.p50),
        ms(report.p99),
        report.errors,
        report.timers_at_end,
        verdict(growth <= GROWTH_TARGET),
    )
}

/// The bench's section of `docs/benchmarks.md`.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    format!(
        "## soak: ten minutes of W1, the data folder sampled\n\n\
Command: `{}` (a quick check of three seconds: add `-- --test`).\n\
Run on {date}: {machine}. One run.\n\n\
{} {} in the bench's process call `Bench/three_steps` (the `invocations` bench's handler: three \
`run` steps) through `Client::call`, one call at a time each, for {:.0} s on a fresh engine \
whose retention is {:.0} s: every finished invocation is purged {:.0} s after it ends, so the \
stored invocations level off after the first {:.0} s. Every {:.0} s the bench sums the disk \
blocks of every file in the data folder (the redb file and the log's segments) and reads the \
process's `VmRSS`.\n\n\
{}\n### Against the target\n\n{}",
        crate::harness::command::<Soak>(),
        s.concurrency,
        callers(s.concurrency),
        s.duration.as_secs_f64(),
        s.retention.as_secs_f64(),
        s.retention.as_secs_f64(),
        s.retention.as_secs_f64(),
        s.sample_every.as_secs_f64(),
        table(report),
        targets(report),
    )
}
