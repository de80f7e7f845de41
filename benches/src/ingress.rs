//! The `ingress` bench: what HTTP costs. The `invocations` bench's handler
//! ([`three_steps`](crate::engine::three_steps)),
//! called through the engine's HTTP ingress on 127.0.0.1 by [`crate::http_load`], against the
//! same handler called in-process ([`engine_point`]) in the same run, at several concurrencies,
//! each point repeated and reduced to its median.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroapp_engine::Engine;
use zeroapp_engine::http::{self, HttpLimits};

use crate::engine::{
    COMMANDS_PER_INVOCATION, EnginePoint, HANDLER, SERVICE, STEPS, engine_point, expected_output,
    finish, open_engine,
};
use crate::harness::{Bench, Modes, ensure};
use crate::http_load::{self as load, HttpTarget};
use crate::invocations::{EngineFigures, engine_figures, temp_dir};
use crate::load::{SampleMedians, Window};
use crate::report::{callers, ms, range};

/// The input every call sends, and its JSON body over HTTP.
pub const INPUT: &str = "in";

/// How the bench runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Warm-up and measurement of each point.
    pub window: Window,
    /// Repetitions of every point; figures are medians over them.
    pub repetitions: usize,
    /// Numbers of concurrent callers (HTTP: connections).
    pub concurrencies: Vec<usize>,
}

impl Modes for Settings {
    /// The real run: 3 s per point after 0.5 s of warm-up, 5 repetitions (about two minutes).
    fn full() -> Self {
        Self {
            window: Window::FULL,
            repetitions: 5,
            concurrencies: vec![1, 16, 64],
        }
    }

    /// About 100 ms per point, once: proves that every point runs.
    fn quick() -> Self {
        Self {
            window: Window::quick(Duration::from_millis(100)),
            repetitions: 1,
            ..Self::full()
        }
    }
}

/// The bench's request against the server at `base_url`: `POST /Bench/three_steps` with the
/// JSON string [`INPUT`], whose 200 answer must be the handler's output as a JSON string.
pub fn bench_target(base_url: &str) -> HttpTarget {
    HttpTarget::post_json(
        base_url,
        format!("/{SERVICE}/{HANDLER}"),
        format!("\"{INPUT}\""),
    )
    .expecting(format!("\"{}\"", expected_output(INPUT)))
}

/// The engine's ingress, served on 127.0.0.1 (a port the system picks) in this process.
pub struct IngressServer {
    base_url: String,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl IngressServer {
    /// Serves `http::ingress(engine)` with the default limits (but a one-second shutdown grace).
    pub async fn start(engine: &Engine) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?;
        let limits = HttpLimits {
            shutdown_grace: Duration::from_secs(1),
            ..HttpLimits::default()
        };
        let routes = http::ingress(engine, &limits);
        let stop = CancellationToken::new();
        let task = tokio::spawn(http::serve(listener, routes, limits, stop.clone()));
        Ok(Self {
            base_url: format!("http://{address}"),
            stop,
            task,
        })
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops accepting, lets the requests in flight finish, and waits for the server to end.
    pub async fn stop(self) -> Result<(), String> {
        self.stop.cancel();
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the ingress failed: {e}")),
            Err(e) => Err(format!("the ingress died: {e}")),
        }
    }
}

/// Opens a fresh engine in `dir`, serves its ingress, and POSTs [`bench_target`] from
/// `concurrency` keep-alive connections, each waiting for its answer before the next request.
pub async fn ingress_point(
    dir: &std::path::Path,
    concurrency: usize,
    window: Window,
) -> Result<EnginePoint, String> {
    let engine = open_engine(dir).await?;
    let sample = match IngressServer::start(&engine).await {
        Ok(server) => {
            let sample =
                load::closed_loop(&bench_target(server.base_url()), concurrency, window).await;
            match server.stop().await {
                Ok(()) => sample,
                Err(e) => sample.and(Err(e)),
            }
        }
        Err(e) => Err(e),
    };
    finish(engine, sample).await
}

/// One concurrency's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Concurrent callers.
    pub concurrency: usize,
    /// Through the ingress (invocations/s counts 200 answers).
    pub http: EngineFigures,
    /// Answers other than 200, summed over the repetitions' measured windows.
    pub http_errors: u64,
    /// In-process, through `Client::call`.
    pub in_process: EngineFigures,
}

impl Row {
    /// HTTP invocations/s ÷ in-process invocations/s.
    pub fn throughput_ratio(&self) -> f64 {
        self.http.invocations_per_s / self.in_process.invocations_per_s
    }

    /// HTTP p50 ÷ in-process p50.
    pub fn p50_ratio(&self) -> f64 {
        self.http.p50.as_secs_f64() / self.in_process.p50.as_secs_f64()
    }

    /// HTTP p99 ÷ in-process p99.
    pub fn p99_ratio(&self) -> f64 {
        self.http.p99.as_secs_f64() / self.in_process.p99.as_secs_f64()
    }

    /// HTTP p50 − in-process p50, in seconds (negative if HTTP was faster).
    pub fn p50_added(&self) -> f64 {
        self.http.p50.as_secs_f64() - self.in_process.p50.as_secs_f64()
    }
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ran.
    pub settings: Settings,
    /// One row per concurrency, in the order of `settings.concurrencies`.
    pub rows: Vec<Row>,
}

/// The `ingress` bench.
pub struct Ingress;

impl Bench for Ingress {
    const NAME: &'static str = "ingress";
    type Settings = Settings;
    type Report = Report;

    async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
        run(settings, log).await
    }

    /// Every point measured both ways, without an error.
    fn check(settings: &Settings, report: &Report) -> Result<(), String> {
        ensure(report.rows.len() == settings.concurrencies.len(), || {
            format!("{} rows", report.rows.len())
        })?;
        for row in &report.rows {
            ensure(
                row.http.invocations_per_s > 0.0
                    && row.in_process.invocations_per_s > 0.0
                    && row.http_errors == 0,
                || format!("{row:?}"),
            )?;
        }
        Ok(())
    }

    fn summary(report: &Report) -> String {
        format!(
            "{}\n{}\n\n{}",
            table(report),
            counted(report),
            overhead(report)
        )
    }

    fn section(report: &Report, date: &str, machine: &str) -> String {
        section(report, date, machine)
    }
}

/// Runs every point `settings.repetitions` times. Each repetition measures, for each
/// concurrency, the HTTP point and the in-process point back to back (so that a ratio compares
/// neighbours in time; which goes first alternates between repetitions), each with a fresh
/// engine in a fresh temporary folder. `log` hears about progress.
pub async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
    let count = settings.concurrencies.len();
    let mut https: Vec<Vec<EnginePoint>> = vec![Vec::new(); count];
    let mut in_processes: Vec<Vec<EnginePoint>> = vec![Vec::new(); count];
    for repetition in 1..=settings.repetitions {
        for (i, &concurrency) in settings.concurrencies.iter().enumerate() {
            let (http_dir, in_process_dir) = (temp_dir()?, temp_dir()?);
            let window = settings.window;
            let (http, in_process) = if repetition % 2 == 1 {
                let http = ingress_point(http_dir.path(), concurrency, window).await?;
                (
                    http,
                    engine_point(in_process_dir.path(), concurrency, window).await?,
                )
            } else {
                let in_process = engine_point(in_process_dir.path(), concurrency, window).await?;
                (
                    ingress_point(http_dir.path(), concurrency, window).await?,
                    in_process,
                )
            };
            log(format!(
                "[{repetition}/{}] c={concurrency}: HTTP {:.0} inv/s (p50 {}, {} errors), \
                 in-process {:.0} inv/s (p50 {})",
                settings.repetitions,
                http.sample.per_second(),
                ms(http.sample.latencies.p50()),
                http.sample.errors,
                in_process.sample.per_second(),
                ms(in_process.sample.latencies.p50()),
            ));
            https[i].push(http);
            in_processes[i].push(in_process);
        }
    }
    let rows = settings
        .concurrencies
        .iter()
        .zip(https.iter().zip(&in_processes))
        .map(|(&concurrency, (http, in_process))| Row {
            concurrency,
            http: engine_figures(http),
            http_errors: SampleMedians::of(http.iter().map(|p| &p.sample)).errors,
            in_process: engine_figures(in_process),
        })
        .collect();
    Ok(Report {
        settings: settings.clone(),
        rows,
    })
}

/// The figures as a Markdown table, one row per concurrency: HTTP, in-process, and the ratios.
pub fn table(report: &Report) -> String {
    let mut out = String::from(
        "| callers | HTTP inv/s | HTTP p50 | HTTP p99 | HTTP errors | in-process inv/s \
         | in-process p50 | in-process p99 | HTTP ÷ in-process inv/s | HTTP ÷ in-process p50 \
         | HTTP ÷ in-process p99 | p50 added by HTTP |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in &report.rows {
        let (h, i) = (&row.http, &row.in_process);
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {:.0} | {} | {} | **{:.0}%** | {:.2}× | {:.2}× | {:+.2} ms |",
            row.concurrency,
            h.invocations_per_s,
            ms(h.p50),
            ms(h.p99),
            row.http_errors,
            i.invocations_per_s,
            ms(i.p50),
            ms(i.p99),
            row.throughput_ratio() * 100.0,
            row.p50_ratio(),
            row.p99_ratio(),
            row.p50_added() * 1e3,
        );
    }
    out
}

/// Counted (not assumed) journal entries and writer commands per invocation, over all points:
/// the HTTP path does the same work as the in-process one.
pub fn counted(report: &Report) -> String {
    let spread = |f: &dyn Fn(&Row) -> f64| range(report.rows.iter().map(f));
    format!(
        "Counted per invocation at every point: HTTP {} journal entries and {} writer commands, \
         in-process {} and {}.",
        spread(&|r| r.http.entries_per_invocation),
        spread(&|r| r.http.commands_per_invocation),
        spread(&|r| r.in_process.entries_per_invocation),
        spread(&|r| r.in_process.commands_per_invocation),
    )
}

/// What HTTP costs at each concurrency, as a Markdown list (there is no target).
pub fn overhead(report: &Report) -> String {
    let mut out = String::new();
    for row in &report.rows {
        let _ = writeln!(
            out,
            "- At {} {}, HTTP reaches **{:.0}%** of the in-process invocations/s ({:.0} vs \
             {:.0}); its p50 is {:.2}× ({:+.2} ms) and its p99 {:.2}× the in-process ones.",
            row.concurrency,
            callers(row.concurrency),
            row.throughput_ratio() * 100.0,
            row.http.invocations_per_s,
            row.in_process.invocations_per_s,
            row.p50_ratio(),
            row.p50_added() * 1e3,
            row.p99_ratio(),
        );
    }
    let errors: u64 = report.rows.iter().map(|r| r.http_errors).sum();
    let _ = writeln!(
        out,
        "- Answers other than 200, over every measured window: **{errors}**."
    );
    out
}

/// The bench's section of `docs/benchmarks.md`.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    format!(
        "## ingress: the same handler over HTTP\n\n\
Command: `{}` (a quick check of a few seconds: add `-- --test`).\n\
Run on {date}: {machine}. Each point runs {:.1} s after {:.1} s of warm-up; every figure is \
the median of {} repetitions (errors: the sum over them).\n\n\
* **HTTP**: a fresh engine with `{SERVICE}/{HANDLER}` registered (the `invocations` bench's \
handler: {STEPS} `run` steps, {COMMANDS_PER_INVOCATION} writer commands) serves its ingress \
(`zeroapp_engine::http::ingress` and `serve`, default limits) on 127.0.0.1, a random port, \
in the bench's own process and tokio runtime. N workers each hold one keep-alive HTTP/1.1 \
connection (hyper 1.x client connection over a `TcpStream`, `TCP_NODELAY`) and send \
`POST /{SERVICE}/{HANDLER}` with the body `\"{INPUT}\"`, waiting for each whole answer before \
the next request. A 200 must carry `\"{}\"` (else the run fails); any other status counts as \
an error, not as an invocation. Latency is from building the request to the answer's last \
byte, so it includes the client's HTTP work as well as the server's; client and server share \
the machine's cores. The load generator (`benches/src/http_load.rs`) takes a base URL, a path \
and a body, so the same load can be aimed at a Restate server.\n\
* **in-process**: the same handler through `Client::call` (the `invocations` bench's engine \
point), measured in the same repetition right before or after the HTTP point (which goes \
first alternates between repetitions), with a fresh engine in a fresh temporary folder.\n\
* **HTTP ÷ in-process**: the ratio of the two medians; p50 added = HTTP p50 − in-process \
p50.\n\n\
{}\n{}\n\n\
### What HTTP costs\n\n{}",
        crate::harness::command::<Ingress>(),
        s.window.measure.as_secs_f64(),
        s.window.warmup.as_secs_f64(),
        s.repetitions,
        expected_output(INPUT),
        table(report),
        counted(report),
        overhead(report),
    )
}
