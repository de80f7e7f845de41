//! The `invocations` bench: the engine against the raw ceiling and the disk's fdatasync rate, at
//! several concurrencies, each point repeated and reduced to its median.

mod markdown;

use std::time::Duration;

pub use self::markdown::{
    CEILING_AT, CEILING_TARGET, COMMITS_TARGET, STEP_TARGET, counted, ratios, section, table,
};
use crate::engine::{COMMANDS_PER_INVOCATION, STEPS};
use crate::harness::{Bench, Modes, ensure};

use crate::engine::{EnginePoint, engine_point};
use crate::fsync::measure_fdatasync;
use crate::load::{SampleMedians, Window};
use crate::raw::{RawPoint, Storage, okaywal_point, raw_point};
use crate::stats::{median, median_duration};

/// How the bench runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Warm-up and measurement of each engine and raw point.
    pub window: Window,
    /// How long the fdatasync loop runs.
    pub sync_for: Duration,
    /// Repetitions of every point; figures are medians over them.
    pub repetitions: usize,
    /// Numbers of concurrent callers.
    pub concurrencies: Vec<usize>,
}

impl Modes for Settings {
    /// The real run: 3 s per point after 0.5 s of warm-up, 3 repetitions.
    fn full() -> Self {
        Self {
            window: Window::FULL,
            sync_for: Duration::from_secs(1),
            repetitions: 3,
            concurrencies: vec![1, 16, 64, 256],
        }
    }

    /// About 100 ms per point, once: proves that every point runs.
    fn quick() -> Self {
        Self {
            window: Window::quick(Duration::from_millis(100)),
            sync_for: Duration::from_millis(100),
            repetitions: 1,
            ..Self::full()
        }
    }
}

/// The engine at one concurrency (medians over repetitions).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineFigures {
    /// Invocations per second.
    pub invocations_per_s: f64,
    /// Journal entries per second: invocations/s × entries per invocation.
    pub entries_per_s: f64,
    /// Median invocation latency (call to result).
    pub p50: Duration,
    /// 99th percentile invocation latency.
    pub p99: Duration,
    /// Writer commands per commit.
    pub batch: f64,
    /// Writer commands per invocation, counted.
    pub commands_per_invocation: f64,
    /// Journal entries per invocation, counted.
    pub entries_per_invocation: f64,
    /// Average writer time per commit (apply + commit).
    pub commit_time: Duration,
}

/// The raw ceiling at one concurrency (medians over repetitions).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RawFigures {
    /// Entries appended per second.
    pub entries_per_s: f64,
    /// Median ack latency.
    pub p50: Duration,
    /// 99th percentile ack latency.
    pub p99: Duration,
    /// Entries per commit.
    pub batch: f64,
    /// Average writer time per commit (insert + commit).
    pub commit_time: Duration,
}

/// The disk's fdatasync rate (medians over repetitions).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SyncFigures {
    /// Median latency of a 4 KiB write + fdatasync.
    pub p50: Duration,
    /// Syncs per second.
    pub per_s: f64,
}

/// One concurrency's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Concurrent callers.
    pub concurrency: usize,
    /// The engine.
    pub engine: EngineFigures,
    /// The raw redb ceiling.
    pub raw: RawFigures,
    /// The raw log-file ceiling.
    pub log: RawFigures,
    /// The `okaywal` crate with the same load, at 1 and 64 callers (the candidate measured
    /// against writing our own log).
    pub okaywal: Option<RawFigures>,
}

impl Row {
    /// Engine entries/s ÷ raw redb ceiling entries/s.
    pub fn ceiling_ratio(&self) -> f64 {
        self.engine.entries_per_s / self.raw.entries_per_s
    }

    /// Engine entries/s ÷ raw log-file ceiling entries/s.
    pub fn log_ratio(&self) -> f64 {
        self.engine.entries_per_s / self.log.entries_per_s
    }
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ran.
    pub settings: Settings,
    /// The disk.
    pub sync: SyncFigures,
    /// One row per concurrency, in the order of `settings.concurrencies`.
    pub rows: Vec<Row>,
}

/// The `invocations` bench.
pub struct Invocations;

impl Bench for Invocations {
    const NAME: &'static str = "invocations";
    type Settings = Settings;
    type Report = Report;

    async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
        run(settings, log).await
    }

    /// Every point measured, and an invocation counted as the bench assumes: [`STEPS`]
    /// entries and [`COMMANDS_PER_INVOCATION`] writer commands (plus the timer service's few).
    fn check(settings: &Settings, report: &Report) -> Result<(), String> {
        ensure(report.rows.len() == settings.concurrencies.len(), || {
            format!("{} rows", report.rows.len())
        })?;
        ensure(report.sync.per_s > 0.0, || {
            "no fdatasync measured".to_owned()
        })?;
        for row in &report.rows {
            ensure(
                row.engine.invocations_per_s > 0.0
                    && row.raw.entries_per_s > 0.0
                    && row.log.entries_per_s > 0.0,
                || format!("a point measured nothing: {row:?}"),
            )?;
            ensure(
                row.engine.p50 <= row.engine.p99 && row.raw.p50 <= row.raw.p99,
                || format!("p50 above p99: {row:?}"),
            )?;
            ensure(
                (row.engine.entries_per_invocation - STEPS as f64).abs() < 1e-9,
                || format!("not {STEPS} entries per invocation: {row:?}"),
            )?;
            let commands = row.engine.commands_per_invocation;
            ensure(
                (COMMANDS_PER_INVOCATION as f64..COMMANDS_PER_INVOCATION as f64 + 1.0)
                    .contains(&commands),
                || format!("not {COMMANDS_PER_INVOCATION} commands per invocation: {row:?}"),
            )?;
        }
        Ok(())
    }

    fn summary(report: &Report) -> String {
        format!(
            "{}\n{}\n\n{}",
            table(report),
            counted(report),
            ratios(report)
        )
    }

    fn section(report: &Report, date: &str, machine: &str) -> String {
        section(report, date, machine)
    }
}

/// Runs every point `settings.repetitions` times. Each repetition measures fdatasync, then, for
/// each concurrency, the engine and the raw ceiling back to back (so that a ratio compares
/// neighbours in time), each in a fresh temporary folder. `log` hears about progress.
pub async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
    let count = settings.concurrencies.len();
    let mut syncs = Vec::new();
    let mut engines: Vec<Vec<EnginePoint>> = vec![Vec::new(); count];
    let mut raws: Vec<Vec<RawPoint>> = vec![Vec::new(); count];
    let mut logs: Vec<Vec<RawPoint>> = vec![Vec::new(); count];
    let mut okaywals: Vec<Vec<RawPoint>> = vec![Vec::new(); count];
    for repetition in 1..=settings.repetitions {
        let dir = temp_dir()?;
        let sync_for = settings.sync_for;
        let path = dir.path().to_owned();
        let sync = tokio::task::spawn_blocking(move || measure_fdatasync(&path, sync_for))
            .await
            .map_err(|e| format!("fdatasync loop died: {e}"))?
            .map_err(|e| format!("fdatasync loop failed: {e}"))?;
        log(format!(
            "[{repetition}/{}] fdatasync: {:.0}/s, p50 {:?}",
            settings.repetitions,
            sync.per_second(),
            sync.latencies.p50()
        ));
        syncs.push(sync);
        for (i, &concurrency) in settings.concurrencies.iter().enumerate() {
            let (engine_dir, raw_dir, log_dir) = (temp_dir()?, temp_dir()?, temp_dir()?);
            let engine = engine_point(engine_dir.path(), concurrency, settings.window).await?;
            let raw =
                raw_point(raw_dir.path(), concurrency, settings.window, Storage::Redb).await?;
            let file = raw_point(
                log_dir.path(),
                concurrency,
                settings.window,
                Storage::LogFile,
            )
            .await?;
            log(format!(
                "[{repetition}/{}] c={concurrency}: engine {:.0} inv/s (batch {:.1}), raw redb {:.0} entries/s (batch {:.1}), raw log {:.0} entries/s (batch {:.1})",
                settings.repetitions,
                engine.sample.per_second(),
                engine.batch(),
                raw.sample.per_second(),
                raw.batch(),
                file.sample.per_second(),
                file.batch(),
            ));
            engines[i].push(engine);
            raws[i].push(raw);
            logs[i].push(file);
            if [1, 64].contains(&concurrency) {
                let candidate_dir = temp_dir()?;
                let candidate =
                    okaywal_point(candidate_dir.path(), concurrency, settings.window).await?;
                log(format!(
                    "[{repetition}/{}] c={concurrency}: okaywal {:.0} entries/s",
                    settings.repetitions,
                    candidate.sample.per_second(),
                ));
                okaywals[i].push(candidate);
            }
        }
    }
    let sync = SyncFigures {
        p50: median_duration(syncs.iter().map(|s| s.latencies.p50())),
        per_s: median(syncs.iter().map(|s| s.per_second())),
    };
    let rows = settings
        .concurrencies
        .iter()
        .zip(
            engines
                .iter()
                .zip(raws.iter().zip(logs.iter().zip(&okaywals))),
        )
        .map(|(&concurrency, (engine, (raw, (file, okaywal))))| Row {
            concurrency,
            engine: engine_figures(engine),
            raw: raw_figures(raw),
            log: raw_figures(file),
            okaywal: (!okaywal.is_empty()).then(|| raw_figures(okaywal)),
        })
        .collect();
    Ok(Report {
        settings: settings.clone(),
        sync,
        rows,
    })
}

/// A fresh temporary folder, removed when dropped.
pub fn temp_dir() -> Result<tempfile::TempDir, String> {
    tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))
}

/// The engine's figures at one concurrency: the medians over `points`, its repetitions.
pub fn engine_figures(points: &[EnginePoint]) -> EngineFigures {
    let sample = SampleMedians::of(points.iter().map(|p| &p.sample));
    let entries_per_invocation = median(points.iter().map(EnginePoint::entries_per_invocation));
    EngineFigures {
        invocations_per_s: sample.per_second,
        entries_per_s: sample.per_second * entries_per_invocation,
        p50: sample.p50,
        p99: sample.p99,
        batch: median(points.iter().map(EnginePoint::batch)),
        commands_per_invocation: median(points.iter().map(EnginePoint::commands_per_invocation)),
        entries_per_invocation,
        commit_time: median_duration(points.iter().map(EnginePoint::commit_time)),
    }
}

fn raw_figures(points: &[RawPoint]) -> RawFigures {
    let sample = SampleMedians::of(points.iter().map(|p| &p.sample));
    RawFigures {
        entries_per_s: sample.per_second,
        p50: sample.p50,
        p99: sample.p99,
        batch: median(points.iter().map(RawPoint::batch)),
        commit_time: median_duration(points.iter().map(RawPoint::commit_time)),
    }
}
