//! The `micro` bench: the engine's three basic costs, each through its public API on a fresh
//! data folder.
//!
//! * **append**: a handler with N `run` steps; each step's entry is committed (fsync) before
//!   the handler goes on. At one caller, wall time ÷ N is the cost of one append; at several,
//!   group commit shares each fsync.
//! * **replay**: a workflow runs N `run` steps, then waits for a durable promise. The engine is
//!   shut down and opened again; the time from `open` until the resumed run has finished (the
//!   promise resolved right after `open`) includes re-executing the handler over N journaled
//!   steps. The same with N = 0 is the fixed cost; the difference ÷ N is the cost of replaying
//!   one entry.
//! * **timers**: M invocations sleep until one common deadline; the figures are how late after
//!   the deadline each completed (its `attach` returned), and the last.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zeroapp_engine::prelude::*;
use zeroapp_engine::{Context, InvocationId};

use crate::harness::{Bench, Modes, ensure};
use crate::report::ms;
use crate::stats::{Latencies, median, median_duration};

/// How the bench runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `run` steps per invocation in the append and replay benches.
    pub steps: u64,
    /// Concurrent invocations in the append bench.
    pub append_concurrencies: Vec<usize>,
    /// Timers due at once.
    pub timers: usize,
    /// How far ahead of the submissions the timers' deadline lies.
    pub timer_lead: Duration,
    /// Repetitions; figures are medians.
    pub repetitions: usize,
}

impl Modes for Settings {
    /// The real run: 1,000 steps, 2,000 timers, 3 repetitions.
    fn full() -> Self {
        Self {
            steps: 1_000,
            append_concurrencies: vec![1, 16],
            timers: 2_000,
            timer_lead: Duration::from_secs(3),
            repetitions: 3,
        }
    }

    /// A second or so: 20 steps, 50 timers, once.
    fn quick() -> Self {
        Self {
            steps: 20,
            timers: 50,
            timer_lead: Duration::from_millis(500),
            repetitions: 1,
            ..Self::full()
        }
    }
}

/// `Micro/steps`: `n` `run` steps each returning a small string; returns how many ran.
async fn steps(ctx: Context, n: u64) -> Result<u64, HandlerError> {
    for i in 0..n {
        let _: String = ctx
            .run("step", move || async move { Ok(format!("s{i}")) })
            .await?;
    }
    Ok(n)
}

/// `Replay/{key}/run`: `n` `run` steps, then the promise `go`.
async fn replay_run(ctx: WorkflowContext, n: u64) -> Result<u64, HandlerError> {
    for i in 0..n {
        let _: String = ctx
            .run("step", move || async move { Ok(format!("s{i}")) })
            .await?;
    }
    let _: bool = ctx.promise("go").await?;
    Ok(n)
}

/// `Micro/sleep_until`: a durable timer due at `deadline_ms` (ms since the Unix epoch).
async fn sleep_until(ctx: Context, deadline_ms: u64) -> Result<u64, HandlerError> {
    ctx.sleep_until(UNIX_EPOCH + Duration::from_millis(deadline_ms))
        .await?;
    Ok(deadline_ms)
}

async fn open(dir: &Path) -> Result<Engine, String> {
    Engine::builder()
        .register(
            Service::new("Micro")
                .handler("steps", steps)
                .handler("sleep_until", sleep_until),
        )
        .register(Workflow::new("Replay").run(replay_run))
        .open(dir)
        .await
        .map_err(|e| format!("cannot open the engine: {e}"))
}

fn wall_clock() -> SystemTime {
    #[allow(
        clippy::disallowed_methods,
        reason = "the bench compares timer deadlines with the wall clock the engine uses"
    )]
    SystemTime::now()
}

/// One append measurement: `concurrency` invocations of `steps` steps at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Append {
    /// Invocations at once.
    pub concurrency: usize,
    /// Entries appended per second, all invocations together.
    pub entries_per_s: f64,
    /// Wall time ÷ steps: one append's cost within one invocation.
    pub per_append: Duration,
}

/// Runs `concurrency` invocations of `steps` steps on a fresh engine.
pub async fn append(steps: u64, concurrency: usize) -> Result<Append, String> {
    let dir = crate::invocations::temp_dir()?;
    let engine = open(dir.path()).await?;
    let client = engine.client();
    let started = Instant::now();
    let calls: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call::<_, u64>(Target::service("Micro", "steps"), &steps)
                    .await
            })
        })
        .collect();
    let mut result = Ok(());
    for call in calls {
        match call.await {
            Ok(Ok(n)) if n == steps => {}
            Ok(Ok(n)) => result = Err(format!("{n} steps ran, {steps} expected")),
            Ok(Err(e)) => result = Err(e.to_string()),
            Err(e) => result = Err(format!("a call died: {e}")),
        }
    }
    let elapsed = started.elapsed();
    let entries = engine.journal_entries_stored();
    engine.shutdown().await;
    result?;
    let entries = entries.map_err(|e| format!("cannot count entries: {e}"))?;
    let expected = steps * concurrency as u64;
    if entries != expected {
        return Err(format!(
            "{entries} journal entries stored, {expected} expected"
        ));
    }
    Ok(Append {
        concurrency,
        entries_per_s: expected as f64 / elapsed.as_secs_f64(),
        per_append: elapsed / u32::try_from(steps.max(1)).unwrap_or(u32::MAX),
    })
}

/// Runs `Replay/{key}/run` with `steps` steps up to its promise, shuts the engine down, and
/// returns the time from opening it again until the resumed run has finished.
pub async fn replay(steps: u64) -> Result<Duration, String> {
    let dir = crate::invocations::temp_dir()?;
    let engine = open(dir.path()).await?;
    let client = engine.client();
    let key = "r";
    client
        .submit_workflow("Replay", key, &steps)
        .await
        .map_err(|e| e.to_string())?;
    // Wait until every step is journaled and the run waits for its promise.
    let deadline = Instant::now() + Duration::from_secs(120);
    while engine.journal_entries_stored().unwrap_or(0) < steps + 1 {
        if Instant::now() > deadline {
            engine.shutdown().await;
            return Err("the run did not reach its promise in time".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    engine.shutdown().await;

    let started = Instant::now();
    let engine = open(dir.path()).await?;
    let client = engine.client();
    let outcome = async {
        client
            .resolve_promise("Replay", key, "go", &true)
            .await
            .map_err(|e| e.to_string())?;
        client
            .attach_workflow::<u64>("Replay", key)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    let elapsed = started.elapsed();
    engine.shutdown().await;
    match outcome? {
        n if n == steps => Ok(elapsed),
        n => Err(format!("the replayed run returned {n}, expected {steps}")),
    }
}

/// What the timer bench measured.
#[derive(Debug, Clone)]
pub struct Timers {
    /// How late each invocation completed after the deadline.
    pub lateness: Latencies,
    /// The deadline to the last completion.
    pub last: Duration,
}

/// Submits `count` invocations sleeping until `lead` from now, then waits for all of them.
pub async fn timers(count: usize, lead: Duration) -> Result<Timers, String> {
    let dir = crate::invocations::temp_dir()?;
    let engine = open(dir.path()).await?;
    let client = engine.client();
    let deadline = wall_clock() + lead;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("a clock before 1970: {e}"))?
        .as_millis() as u64;
    let sends: Vec<_> = (0..count)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .send(Target::service("Micro", "sleep_until"), &deadline_ms)
                    .await
            })
        })
        .collect();
    let mut ids: Vec<InvocationId> = Vec::with_capacity(count);
    let mut result = Ok(());
    for send in sends {
        match send.await {
            Ok(Ok(id)) => ids.push(id),
            Ok(Err(e)) => result = Err(e.to_string()),
            Err(e) => result = Err(format!("a send died: {e}")),
        }
    }
    if result.is_ok() && wall_clock() >= deadline {
        result = Err(format!(
            "submitting {count} timers took longer than the lead of {lead:?}"
        ));
    }
    let attaches: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let client = client.clone();
            tokio::spawn(async move {
                let out = client.attach::<u64>(id).await;
                (out, wall_clock())
            })
        })
        .collect();
    let mut lateness = Vec::with_capacity(count);
    for attach in attaches {
        match attach.await {
            Ok((Ok(_), at)) => {
                lateness.push(at.duration_since(deadline).unwrap_or(Duration::ZERO));
            }
            Ok((Err(e), _)) => result = Err(e.to_string()),
            Err(e) => result = Err(format!("an attach died: {e}")),
        }
    }
    engine.shutdown().await;
    result?;
    let lateness = Latencies::new(lateness);
    Ok(Timers {
        last: lateness.percentile(100.0),
        lateness,
    })
}

/// The medians of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ran.
    pub settings: Settings,
    /// One append figure per concurrency.
    pub append: Vec<Append>,
    /// Reopen-to-finished with N steps journaled.
    pub replay_full: Duration,
    /// The same with no step.
    pub replay_empty: Duration,
    /// Timer lateness p50.
    pub timer_p50: Duration,
    /// Timer lateness p99.
    pub timer_p99: Duration,
    /// Deadline to the last timer's completion.
    pub timer_last: Duration,
}

impl Report {
    /// (Reopen with N steps − reopen with none) ÷ N.
    pub fn per_replayed_entry(&self) -> Duration {
        self.replay_full.saturating_sub(self.replay_empty)
            / u32::try_from(self.settings.steps.max(1)).unwrap_or(u32::MAX)
    }
}

/// The `micro` bench.
pub struct Micro;

impl Bench for Micro {
    const NAME: &'static str = "micro";
    type Settings = Settings;
    type Report = Report;

    async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
        run(settings, log).await
    }

    /// Appends at every concurrency, a replay, and timers in order of their percentiles.
    fn check(settings: &Settings, report: &Report) -> Result<(), String> {
        ensure(
            report.append.len() == settings.append_concurrencies.len()
                && report.append.iter().all(|a| a.entries_per_s > 0.0),
            || format!("appends: {:?}", report.append),
        )?;
        ensure(report.replay_full > Duration::ZERO, || {
            "no replay".to_owned()
        })?;
        ensure(
            report.timer_p50 <= report.timer_p99 && report.timer_p99 <= report.timer_last,
            || format!("timer percentiles: {report:?}"),
        )
    }

    fn summary(report: &Report) -> String {
        table(report)
    }

    fn section(report: &Report, date: &str, machine: &str) -> String {
        section(report, date, machine)
    }
}

/// Runs every measurement `settings.repetitions` times; `log` hears about progress.
pub async fn run(settings: &Settings, log: &mut dyn FnMut(String)) -> Result<Report, String> {
    let reps = settings.repetitions;
    let mut appends = vec![Vec::new(); settings.append_concurrencies.len()];
    let (mut full, mut empty, mut p50, mut p99, mut last) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=reps {
        for (i, &c) in settings.append_concurrencies.iter().enumerate() {
            let a = append(settings.steps, c).await?;
            log(format!(
                "[{rep}/{reps}] append, {c} × {} steps: {:.0} entries/s, {} per append",
                settings.steps,
                a.entries_per_s,
                ms(a.per_append)
            ));
            appends[i].push(a);
        }
        let (f, e) = (replay(settings.steps).await?, replay(0).await?);
        log(format!(
            "[{rep}/{reps}] replay: reopen to finished {} with {} steps, {} with none",
            ms(f),
            settings.steps,
            ms(e)
        ));
        full.push(f);
        empty.push(e);
        let t = timers(settings.timers, settings.timer_lead).await?;
        log(format!(
            "[{rep}/{reps}] {} timers: p50 {} late, p99 {}, last {}",
            settings.timers,
            ms(t.lateness.p50()),
            ms(t.lateness.p99()),
            ms(t.last)
        ));
        p50.push(t.lateness.p50());
        p99.push(t.lateness.p99());
        last.push(t.last);
    }
    let append = settings
        .append_concurrencies
        .iter()
        .zip(&appends)
        .map(|(&concurrency, runs)| Append {
            concurrency,
            entries_per_s: median(runs.iter().map(|a| a.entries_per_s)),
            per_append: median_duration(runs.iter().map(|a| a.per_append)),
        })
        .collect();
    Ok(Report {
        settings: settings.clone(),
        append,
        replay_full: median_duration(full),
        replay_empty: median_duration(empty),
        timer_p50: median_duration(p50),
        timer_p99: median_duration(p99),
        timer_last: median_duration(last),
    })
}

/// The figures as Markdown tables.
pub fn table(report: &Report) -> String {
    let s = &report.settings;
    let mut out = String::from(
        "| append: invocations × steps | entries/s | wall time ÷ steps |\n|---|---:|---:|\n",
    );
    for a in &report.append {
        let _ = writeln!(
            out,
            "| {} × {} | {:.0} | {} |",
            a.concurrency,
            s.steps,
            a.entries_per_s,
            ms(a.per_append)
        );
    }
    let _ = write!(
        out,
        "\n| replay | reopen to finished |\n|---|---:|\n\
         | {} journaled steps | {} |\n| no step | {} |\n| per replayed entry | {:.1} µs |\n",
        s.steps,
        ms(report.replay_full),
        ms(report.replay_empty),
        report.per_replayed_entry().as_secs_f64() * 1e6,
    );
    let _ = write!(
        out,
        "\n| {} timers due at once | lateness p50 | p99 | last |\n|---|---:|---:|---:|\n\
         | deadline → `attach` returned | {} | {} | {} |\n",
        s.timers,
        ms(report.timer_p50),
        ms(report.timer_p99),
        ms(report.timer_last),
    );
    out
}

/// The bench's section of `docs/benchmarks.md`.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    format!(
        "## micro: journal append, replay, timer firing\n\n\
Command: `{}` (a quick check of a second: add `-- --test`).\n\
Run on {date}: {machine}. Every figure is the median of {} repetitions, each on a fresh \
engine in a fresh temporary folder.\n\n\
* **append**: `Micro/steps` runs {} `run` steps, each returning a small string and committed \
(fsync) before the next; N invocations at once share commits.\n\
* **replay**: the workflow `Replay` runs {} steps, then awaits a durable promise; the engine \
is shut down and opened again, the promise resolved, and the time is `open` until `attach` \
returns (recovery, re-executing the handler over its journal, finishing). The same with no \
step gives the fixed part; the difference ÷ {} is the cost of one replayed entry.\n\
* **timers**: {} invocations of `Micro/sleep_until` all due at one deadline {:.1} s after \
submission; lateness is from the deadline to each one's `attach` returning.\n\n\
{}",
        crate::harness::command::<Micro>(),
        s.repetitions,
        s.steps,
        s.steps,
        s.steps,
        s.timers,
        s.timer_lead.as_secs_f64(),
        table(report),
    )
}
