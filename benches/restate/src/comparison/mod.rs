//! The `restate` bench: the engine side by side with a real Restate server, on the same
//! workloads ([`Workload`]), driven by the same closed-loop load generator over the same HTTP
//! paths.
//!
//! Three sides are measured at every point (workload × concurrency), in each repetition, one
//! right after the other, the order of the two HTTP sides alternating between repetitions
//! (A B, then B A) so that drift hits both:
//!
//! * **ZeroApp HTTP**: the engine's Restate-compatible ingress in a child process
//!   (`zeroapp-bench-server`, this crate's binary), its resident memory read from
//!   `/proc/<pid>/status`.
//! * **Restate HTTP**: `restate-server` (npm `@restatedev/restate-server-linux-x64`) with the
//!   handlers written on `restate-sdk` (`benches/restate/services/`) in a second child process;
//!   memory is the sum of both.
//! * **ZeroApp in-process**: the same handlers through the engine's `Client` in the bench's own
//!   process; memory is the bench process's (it includes the load generator).
//!
//! The workloads, the repetition loop (`repeat_points`) and the tables (`workload_table`)
//! also serve the `scale_out` bench ([`crate::scale_out`]).
//!
//! [`markdown`] writes the figures down.
//!
//! Quick mode (tests, `-- --test`) skips Restate (it needs the npm registry and a release
//! build of the SDK project) and says so, unless `ZEROAPP_BENCH_RESTATE=1`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use zeroapp_engine::{Engine, WriterStatistics};
use zeroapp_restate::local::RESTATE_VERSION;

mod markdown;

pub(crate) use self::markdown::{Column, Line, ratio, workload_table};
pub use self::markdown::{json, section, tables, targets, writer_table};
use crate::PACKAGE;
use crate::server::{self, RestateServer, ZeroAppServer};
use crate::services;
pub use crate::workloads::Workload;
use crate::workloads::{ClientWorker, HttpWorker, Keys};
use zeroapp_benches::harness::{Bench, Modes, begin, end, ensure, marked};
use zeroapp_benches::load::{Sample, Window, Worker, closed_loop_workers};
use zeroapp_benches::report::ms;
use zeroapp_benches::report::{machine, today, update_section};
use zeroapp_benches::stats::{median, median_duration};

/// W1 at this concurrency is held to the throughput and p99 targets.
pub const W1_TARGET_AT: usize = 64;
/// W1: ZeroApp's throughput must be at least this multiple of Restate's.
pub const W1_THROUGHPUT_TARGET: f64 = 20.0;
/// W1: ZeroApp's p99 must be at most this fraction of Restate's.
pub const W1_P99_TARGET: f64 = 0.05;
/// W3: ZeroApp's p50 must be at most this fraction of Restate's.
pub const W3_P50_TARGET: f64 = 0.2;
/// Longest time one operation may take before the run fails (a hung server).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How the bench runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Warm-up and measurement of each point.
    pub window: Window,
    /// Repetitions of every point; figures are medians over them.
    pub repetitions: usize,
    /// Numbers of concurrent callers (HTTP: connections).
    pub concurrencies: Vec<usize>,
    /// The workloads, in order.
    pub workloads: Vec<Workload>,
    /// Whether to start Restate and measure it.
    pub restate: bool,
}

impl Modes for Settings {
    /// The real run: 3 s per point after 0.5 s of warm-up, 3 repetitions, Restate included.
    fn full() -> Self {
        Self {
            window: Window::FULL,
            repetitions: 3,
            concurrencies: vec![1, 16, 64],
            workloads: Workload::ALL.to_vec(),
            restate: true,
        }
    }

    /// About 150 ms per point, once; Restate only with `ZEROAPP_BENCH_RESTATE=1` (it needs the
    /// npm registry and a release build of the SDK project).
    fn quick() -> Self {
        Self {
            window: Window::quick(Duration::from_millis(150)),
            repetitions: 1,
            restate: std::env::var("ZEROAPP_BENCH_RESTATE").is_ok_and(|v| v == "1"),
            ..Self::full()
        }
    }
}

/// The `restate` bench.
pub struct Comparison;

impl Bench for Comparison {
    const NAME: &'static str = "restate";
    const PACKAGE: &'static str = PACKAGE;
    type Settings = Settings;
    type Report = Report;

    async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
        run(settings, log).await
    }

    /// Every workload at every concurrency on every side asked for, without an error.
    fn check(settings: &Settings, report: &Report) -> Result<(), String> {
        ensure(
            report.rows.len() == settings.workloads.len() * settings.concurrencies.len(),
            || format!("{} rows", report.rows.len()),
        )?;
        for row in &report.rows {
            for m in [&row.zeroapp, &row.in_process]
                .into_iter()
                .chain(&row.restate)
            {
                m.check(|| format!("{row:?}"))?;
                ensure(m.rss_mib > 0.0, || format!("no memory measured: {row:?}"))?;
            }
            ensure(row.restate.is_some() == settings.restate, || {
                format!("Restate measured or not against the settings: {row:?}")
            })?;
        }
        ensure(settings.restate || report.restate_skipped.is_some(), || {
            "Restate skipped without a reason".to_owned()
        })
    }

    fn summary(report: &Report) -> String {
        format!(
            "{}{}\n{}",
            tables(report),
            writer_table(report),
            targets(report)
        )
    }

    fn section(report: &Report, date: &str, machine: &str) -> String {
        section(report, date, machine)
    }

    /// The section, and the JSON next to it (`docs/benchmarks/restate.json`).
    fn write(report: &Report, doc: &Path) -> std::io::Result<()> {
        let (date, machine) = (today(), machine());
        let body = section(report, &date, &machine);
        update_section(
            doc,
            &begin::<Self>(),
            &end::<Self>(),
            &marked::<Self>(&body),
        )?;
        let path = doc.with_file_name("benchmarks").join("restate.json");
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, json(report, &date, &machine) + "\n")
    }
}

/// Which side a figure is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The engine's ingress in a child process.
    ZeroAppHttp,
    /// Restate's ingress.
    RestateHttp,
    /// The engine's `Client` in the bench's process.
    InProcess,
}

impl Side {
    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Side::ZeroAppHttp => "ZeroApp HTTP",
            Side::RestateHttp => "Restate HTTP",
            Side::InProcess => "ZeroApp in-process",
        }
    }

    /// Every side, in the order of a [`Row`]'s figures.
    const ALL: [Side; 3] = [Side::ZeroAppHttp, Side::RestateHttp, Side::InProcess];
}

/// One run of one point on one side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Successful operations per second.
    pub per_second: f64,
    /// Latency percentiles (less the workload's [`Workload::latency_offset`]).
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Failed operations in the measured window.
    pub errors: u64,
    /// The server's resident memory right after the load, MiB.
    pub rss_mib: f64,
    /// In-process only: what the engine's writer did per operation.
    pub writer: Option<WriterFigures>,
}

/// The engine writer's work per operation (in-process side, warm-up included).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriterFigures {
    /// Transactions committed (each an fsync) per operation.
    pub commits_per_op: f64,
    /// Writer commands per operation.
    pub commands_per_op: f64,
    /// Average time to apply and commit one transaction.
    pub commit_time: Duration,
}

impl WriterFigures {
    fn between(before: &WriterStatistics, after: &WriterStatistics, operations: u64) -> Self {
        let commits = after.commits.saturating_sub(before.commits);
        let commands = after.commands.saturating_sub(before.commands);
        let micros = after.commit_micros.saturating_sub(before.commit_micros);
        let ops = operations.max(1) as f64;
        Self {
            commits_per_op: commits as f64 / ops,
            commands_per_op: commands as f64 / ops,
            commit_time: Duration::from_micros(micros / commits.max(1)),
        }
    }

    fn median_of(runs: &[WriterFigures]) -> Self {
        Self {
            commits_per_op: median(runs.iter().map(|w| w.commits_per_op)),
            commands_per_op: median(runs.iter().map(|w| w.commands_per_op)),
            commit_time: median_duration(runs.iter().map(|w| w.commit_time)),
        }
    }
}

impl Measured {
    /// What a quick run must show of any side's figures: operations done, none failed,
    /// percentiles in order; `what` names the point in the error.
    pub(crate) fn check(&self, what: impl Fn() -> String) -> Result<(), String> {
        ensure(self.per_second > 0.0 && self.errors == 0, || {
            format!("nothing done, or errors: {}", what())
        })?;
        ensure(self.p50 <= self.p90 && self.p90 <= self.p99, || {
            format!("percentiles out of order: {}", what())
        })
    }

    /// The figures of `sample`, its latencies less `offset`, with `rss_kib` of memory.
    pub(crate) fn of(sample: &Sample, offset: Duration, rss_kib: u64) -> Self {
        let at = |p: f64| sample.latencies.percentile(p).saturating_sub(offset);
        Self {
            per_second: sample.per_second(),
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            errors: sample.errors,
            rss_mib: rss_kib as f64 / 1024.0,
            writer: None,
        }
    }

    /// The medians of repetitions (errors: their sum).
    pub fn median_of(runs: &[Measured]) -> Self {
        Self {
            per_second: median(runs.iter().map(|m| m.per_second)),
            p50: median_duration(runs.iter().map(|m| m.p50)),
            p90: median_duration(runs.iter().map(|m| m.p90)),
            p99: median_duration(runs.iter().map(|m| m.p99)),
            errors: runs.iter().map(|m| m.errors).sum(),
            rss_mib: median(runs.iter().map(|m| m.rss_mib)),
            writer: {
                let w: Vec<WriterFigures> = runs.iter().filter_map(|m| m.writer).collect();
                (!w.is_empty()).then(|| WriterFigures::median_of(&w))
            },
        }
    }
}

/// One point's figures, medians over the repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// Concurrent callers.
    pub concurrency: usize,
    /// The engine over HTTP.
    pub zeroapp: Measured,
    /// Restate over HTTP, if it was measured.
    pub restate: Option<Measured>,
    /// The engine in-process.
    pub in_process: Measured,
}

/// ZeroApp HTTP ÷ Restate HTTP for one figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    /// Throughput ratio (higher is better for ZeroApp).
    pub throughput: f64,
    /// p50 ratio (lower is better).
    pub p50: f64,
    /// p99 ratio.
    pub p99: f64,
    /// Memory ratio.
    pub rss: f64,
}

impl Ratios {
    /// `a` ÷ `b` for every figure (NaN where `b`'s is zero).
    pub fn of(a: &Measured, b: &Measured) -> Self {
        let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        Self {
            throughput: div(a.per_second, b.per_second),
            p50: div(a.p50.as_secs_f64(), b.p50.as_secs_f64()),
            p99: div(a.p99.as_secs_f64(), b.p99.as_secs_f64()),
            rss: div(a.rss_mib, b.rss_mib),
        }
    }
}

impl Row {
    /// ZeroApp HTTP ÷ Restate HTTP, if Restate was measured.
    pub fn ratios(&self) -> Option<Ratios> {
        Some(Ratios::of(&self.zeroapp, self.restate.as_ref()?))
    }
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ran.
    pub settings: Settings,
    /// One row per workload and concurrency.
    pub rows: Vec<Row>,
    /// Why Restate was not measured, if it was not.
    pub restate_skipped: Option<String>,
}

/// The servers of one run.
struct Sides {
    zeroapp: ZeroAppServer,
    restate: Option<RestateServer>,
    engine: Engine,
    _engine_dir: tempfile::TempDir,
}

/// Starts both servers and the in-process engine, then runs every point
/// `settings.repetitions` times, interleaved (see the module docs). `log` hears about
/// progress. Every child process is stopped when this returns, also on error.
pub async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
    let restate_skipped = (!settings.restate).then(|| {
        "quick mode: Restate needs the npm registry and a release build of \
         benches/restate/services (set ZEROAPP_BENCH_RESTATE=1 to include it)"
            .to_owned()
    });
    if let Some(why) = &restate_skipped {
        log(format!("Restate skipped — {why}"));
    }
    let restate = if settings.restate {
        let binary = tokio::task::spawn_blocking(zeroapp_restate::local::restate_server_binary)
            .await
            .map_err(|e| format!("fetching Restate died: {e}"))?
            .map_err(|e| e.to_string())?;
        let services = tokio::task::spawn_blocking(server::restate_services_binary)
            .await
            .map_err(|e| format!("building the services died: {e}"))??;
        log(format!("starting restate-server {RESTATE_VERSION}"));
        Some(RestateServer::start(&binary, &services).await?)
    } else {
        None
    };
    log("starting zeroapp-bench-server".to_owned());
    let zeroapp = ZeroAppServer::start().await?;
    let engine_dir = zeroapp_benches::invocations::temp_dir()?;
    let engine = services::open_engine(engine_dir.path()).await?;
    let sides = Sides {
        zeroapp,
        restate,
        engine,
        _engine_dir: engine_dir,
    };
    let rows = measure_all(settings, &sides, log).await;
    sides.engine.shutdown().await;
    Ok(Report {
        settings: settings.clone(),
        rows: rows?,
        restate_skipped,
    })
}

async fn measure_all(
    settings: &Settings,
    sides: &Sides,
    log: &mut dyn FnMut(String),
) -> Result<Vec<Row>, String> {
    let points = points(&settings.workloads, &settings.concurrencies);
    // ZeroApp HTTP and Restate HTTP take turns going first; in-process goes last.
    let order = |repetition: usize| {
        if repetition % 2 == 1 {
            vec![0, 1, 2]
        } else {
            vec![1, 0, 2]
        }
    };
    let runs = repeat_points(
        &points,
        settings.repetitions,
        &Side::ALL.map(Side::name),
        order,
        async |side, workload, concurrency, prefix| {
            measure(
                settings,
                sides,
                Side::ALL[side],
                workload,
                concurrency,
                &prefix,
            )
            .await
        },
        log,
    )
    .await?;
    Ok(points
        .iter()
        .zip(&runs)
        .map(|(&(workload, concurrency), runs)| Row {
            workload,
            concurrency,
            zeroapp: Measured::median_of(&runs[0]),
            restate: (!runs[1].is_empty()).then(|| Measured::median_of(&runs[1])),
            in_process: Measured::median_of(&runs[2]),
        })
        .collect())
}

/// Every point of `workloads` × `concurrencies`, workload by workload.
pub(crate) fn points(workloads: &[Workload], concurrencies: &[usize]) -> Vec<(Workload, usize)> {
    workloads
        .iter()
        .flat_map(|&w| concurrencies.iter().map(move |&c| (w, c)))
        .collect()
}

/// Runs every point `repetitions` times. In each repetition (counted from 1) the sides of a
/// point run one right after the other, in the order `order(repetition)` gives (indices into
/// `names`). `measure(side, workload, concurrency, key prefix)` runs one side once (`None`:
/// that side is not measured); the key prefix is unique to the repetition, concurrency and
/// side. `log` hears one line per point and repetition. Returns every run, by point (in the
/// order of `points`), then by side (index into `names`).
pub(crate) async fn repeat_points(
    points: &[(Workload, usize)],
    repetitions: usize,
    names: &[&str],
    order: impl Fn(usize) -> Vec<usize>,
    mut measure: impl AsyncFnMut(usize, Workload, usize, String) -> Result<Option<Measured>, String>,
    log: &mut dyn FnMut(String),
) -> Result<Vec<Vec<Vec<Measured>>>, String> {
    let mut runs: Vec<Vec<Vec<Measured>>> = vec![vec![Vec::new(); names.len()]; points.len()];
    let total = repetitions * points.len();
    let mut done = 0;
    for repetition in 1..=repetitions {
        for (point, &(workload, concurrency)) in points.iter().enumerate() {
            let mut line = format!(
                "[{}/{total}] rep {repetition} {workload} c={concurrency}:",
                done + 1
            );
            for side in order(repetition) {
                let prefix = format!("r{repetition}c{concurrency}s{side}");
                let Some(m) = measure(side, workload, concurrency, prefix).await? else {
                    continue;
                };
                let _ = write!(
                    line,
                    " | {} {:.0}/s p50 {} p99 {}{}",
                    names[side],
                    m.per_second,
                    ms(m.p50),
                    ms(m.p99),
                    if m.errors > 0 {
                        format!(" ({} errors)", m.errors)
                    } else {
                        String::new()
                    }
                );
                runs[point][side].push(m);
            }
            done += 1;
            log(line);
        }
    }
    Ok(runs)
}

/// Runs `concurrency` closed-loop [`HttpWorker`]s of `workload` for `window`, worker `i` on
/// the ingress `addresses[i % addresses.len()]` (`127.0.0.1:port`), their keys under `prefix`.
pub(crate) async fn http_sample(
    window: Window,
    workload: Workload,
    concurrency: usize,
    addresses: &[String],
    prefix: &str,
) -> Result<Sample, String> {
    if addresses.is_empty() {
        return Err("no ingress to send requests to".to_owned());
    }
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let keys = Keys {
            prefix: prefix.to_owned(),
            worker,
            count: 0,
        };
        let address = &addresses[worker % addresses.len()];
        workers.push(Timed(HttpWorker::open(workload, address, keys).await?));
    }
    closed_loop_workers(window, workers).await
}

/// One side at one point; `None` for Restate when it is not running.
async fn measure(
    settings: &Settings,
    sides: &Sides,
    side: Side,
    workload: Workload,
    concurrency: usize,
    prefix: &str,
) -> Result<Option<Measured>, String> {
    let keys = |worker| Keys {
        prefix: prefix.to_owned(),
        worker,
        count: 0,
    };
    let window = settings.window;
    let offset = workload.latency_offset();
    let (sample, rss) = match side {
        Side::ZeroAppHttp | Side::RestateHttp => {
            let address = match (side, &sides.restate) {
                (Side::ZeroAppHttp, _) => &sides.zeroapp.address,
                (_, Some(restate)) => &restate.address,
                (_, None) => return Ok(None),
            };
            let addresses = [address.clone()];
            let sample = http_sample(window, workload, concurrency, &addresses, prefix).await?;
            let rss = match (side, &sides.restate) {
                (Side::ZeroAppHttp, _) => sides.zeroapp.rss_kib().unwrap_or(0),
                (_, Some(restate)) => {
                    let (server, services) = restate.rss_kib();
                    server.unwrap_or(0) + services.unwrap_or(0)
                }
                (_, None) => 0,
            };
            (sample, rss)
        }
        Side::InProcess => {
            let client = sides.engine.client();
            let workers = (0..concurrency)
                .map(|worker| Timed(ClientWorker::new(workload, client.clone(), keys(worker))))
                .collect();
            let before = sides.engine.writer_statistics();
            let sample = closed_loop_workers(window, workers).await?;
            let after = sides.engine.writer_statistics();
            let rss = server::rss_kib("/proc/self/status").unwrap_or(0);
            return Ok(Some(Measured {
                writer: Some(WriterFigures::between(&before, &after, sample.total)),
                ..Measured::of(&sample, offset, rss)
            }));
        }
    };
    Ok(Some(Measured::of(&sample, offset, rss)))
}

/// A worker whose every operation must finish within [`OPERATION_TIMEOUT`].
struct Timed<W>(W);

impl<W: Worker> Worker for Timed<W> {
    async fn call(&mut self) -> Result<zeroapp_benches::load::Outcome, String> {
        tokio::time::timeout(OPERATION_TIMEOUT, self.0.call())
            .await
            .map_err(|_| format!("an operation took longer than {OPERATION_TIMEOUT:?}"))?
    }
}
