//! The `restate` bench's figures as Markdown and JSON: one side-by-side table per workload
//! (also the `scale_out` bench's), the writer's table, the targets with their verdicts, and the
//! section of `docs/benchmarks.md`.

use std::fmt::Write as _;

use zeroapp_restate::local::RESTATE_VERSION;

use super::{
    Comparison, Measured, Report, Row, Side, W1_P99_TARGET, W1_TARGET_AT, W1_THROUGHPUT_TARGET,
    W3_P50_TARGET, Workload,
};
use crate::server;
use zeroapp_benches::harness;
use zeroapp_benches::report::{ms, verdict};

fn mib(m: f64) -> String {
    format!("{m:.0} MiB")
}

/// A figure column of the side-by-side tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    /// Operations per second.
    PerSecond,
    /// Median latency.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// Failed operations.
    Errors,
    /// Resident memory.
    Rss,
}

impl Column {
    /// Every column, as the `restate` bench shows them.
    pub(crate) const ALL: [Column; 6] = [
        Column::PerSecond,
        Column::P50,
        Column::P90,
        Column::P99,
        Column::Errors,
        Column::Rss,
    ];

    fn header(self) -> &'static str {
        match self {
            Column::PerSecond => "ops/s",
            Column::P50 => "p50",
            Column::P90 => "p90",
            Column::P99 => "p99",
            Column::Errors => "errors",
            Column::Rss => "RSS",
        }
    }

    fn cell(self, m: &Measured) -> String {
        match self {
            Column::PerSecond => format!("{:.0}", m.per_second),
            Column::P50 => ms(m.p50),
            Column::P90 => ms(m.p90),
            Column::P99 => ms(m.p99),
            Column::Errors => m.errors.to_string(),
            Column::Rss => mib(m.rss_mib),
        }
    }
}

/// One row of a side-by-side table: one side at one concurrency.
pub(crate) struct Line<'a> {
    /// Concurrent callers.
    pub(crate) callers: usize,
    /// The side's name.
    pub(crate) side: &'a str,
    /// Its figures.
    pub(crate) measured: &'a Measured,
    /// The cells of the extra columns (ratios), one per extra header.
    pub(crate) extra: Vec<String>,
}

/// One workload's table in Markdown: a heading (the workload, and whether its figures are
/// latency or lateness), then a row per line: callers, side, `columns`, then the `extra`
/// columns.
pub(crate) fn workload_table(
    workload: Workload,
    columns: &[Column],
    extra: &[&str],
    lines: &[Line<'_>],
) -> String {
    let latency = if workload == Workload::Sleep {
        "lateness"
    } else {
        "latency"
    };
    let headers: Vec<&str> = ["callers", "side"]
        .into_iter()
        .chain(columns.iter().map(|c| c.header()))
        .chain(extra.iter().copied())
        .collect();
    let alignment: Vec<&str> = (0..headers.len())
        .map(|i| if i == 1 { "---" } else { "---:" })
        .collect();
    let mut out = format!(
        "**{workload}** ({latency})\n\n| {} |\n|{}|\n",
        headers.join(" | "),
        alignment.join("|")
    );
    for line in lines {
        let cells: Vec<String> = [line.callers.to_string(), line.side.to_owned()]
            .into_iter()
            .chain(columns.iter().map(|c| c.cell(line.measured)))
            .chain(line.extra.iter().cloned())
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
    out
}

/// `r` as a factor (`0.25×`), or a dash when it is not a number.
pub(crate) fn ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "–".to_owned()
    }
}

/// The figures as Markdown: one table per workload (a row per concurrency and side), then the
/// ratios.
pub fn tables(report: &Report) -> String {
    let extra = [
        "ops/s ZeroApp ÷ Restate",
        "p50 ZeroApp ÷ Restate",
        "p99 ZeroApp ÷ Restate",
    ];
    let mut out = String::new();
    for &workload in &report.settings.workloads {
        let mut lines = Vec::new();
        for row in report.rows.iter().filter(|r| r.workload == workload) {
            let ratios = row.ratios();
            let sides = [
                (Side::ZeroAppHttp, Some(&row.zeroapp)),
                (Side::RestateHttp, row.restate.as_ref()),
                (Side::InProcess, Some(&row.in_process)),
            ];
            for (side, m) in sides {
                let Some(measured) = m else { continue };
                let extra = match (side, ratios) {
                    (Side::ZeroAppHttp, Some(r)) => [r.throughput, r.p50, r.p99]
                        .map(|r| format!("**{}**", ratio(r)))
                        .to_vec(),
                    _ => vec![String::new(); extra.len()],
                };
                lines.push(Line {
                    callers: row.concurrency,
                    side: side.name(),
                    measured,
                    extra,
                });
            }
        }
        out.push_str(&workload_table(workload, &Column::ALL, &extra, &lines));
    }
    out
}

/// The engine's writer per operation, in-process, at every point: commits (each an fsync)
/// and writer commands per operation, and the time of one commit, next to the p50.
pub fn writer_table(report: &Report) -> String {
    let mut out = String::from(
        "| workload | callers | in-process p50 | commits/op | writer commands/op | time/commit \
         |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for row in &report.rows {
        let Some(w) = row.in_process.writer else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.2} | {} |",
            row.workload,
            row.concurrency,
            ms(row.in_process.p50),
            w.commits_per_op,
            w.commands_per_op,
            ms(w.commit_time),
        );
    }
    out
}

/// The targets, as a Markdown list with a pass/miss word each (or why there is no verdict).
pub fn targets(report: &Report) -> String {
    let mut out = String::new();
    if let Some(why) = &report.restate_skipped {
        let _ = writeln!(out, "- No verdicts: Restate was not measured ({why}).");
        return out;
    }
    let find = |w: Workload, c: usize| {
        report
            .rows
            .iter()
            .find(|r| r.workload == w && r.concurrency == c)
    };
    if let Some(r) = find(Workload::ThreeSteps, W1_TARGET_AT).and_then(Row::ratios) {
        let _ = writeln!(
            out,
            "- W1 at {W1_TARGET_AT} callers over HTTP: throughput ZeroApp ÷ Restate = \
             **{:.2}×**; target ≥ {W1_THROUGHPUT_TARGET}×: {}.",
            r.throughput,
            verdict(r.throughput >= W1_THROUGHPUT_TARGET)
        );
        let _ = writeln!(
            out,
            "- W1 at {W1_TARGET_AT} callers over HTTP: p99 ZeroApp ÷ Restate = **{:.3}×**; \
             target ≤ {W1_P99_TARGET}×: {}.",
            r.p99,
            verdict(r.p99 <= W1_P99_TARGET)
        );
    }
    for &c in &report.settings.concurrencies {
        if let Some(r) = find(Workload::Awakeable, c).and_then(Row::ratios) {
            let _ = writeln!(
                out,
                "- W3 at {c} {}: p50 ZeroApp ÷ Restate = **{:.3}×**; target ≤ {W3_P50_TARGET}×: \
                 {}.",
                zeroapp_benches::report::callers(c),
                r.p50,
                verdict(r.p50 <= W3_P50_TARGET)
            );
        }
    }
    out
}

/// The report as JSON (every median, per workload, concurrency and side).
pub fn json(report: &Report, date: &str, machine: &str) -> String {
    let side = |m: &Measured| {
        serde_json::json!({
            "ops_per_s": m.per_second,
            "p50_ms": m.p50.as_secs_f64() * 1e3,
            "p90_ms": m.p90.as_secs_f64() * 1e3,
            "p99_ms": m.p99.as_secs_f64() * 1e3,
            "errors": m.errors,
            "rss_mib": m.rss_mib,
            "writer": m.writer.map(|w| serde_json::json!({
                "commits_per_op": w.commits_per_op,
                "commands_per_op": w.commands_per_op,
                "commit_ms": w.commit_time.as_secs_f64() * 1e3,
            })),
        })
    };
    let rows: Vec<_> = report
        .rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "workload": r.workload.id(),
                "concurrency": r.concurrency,
                "zeroapp_http": side(&r.zeroapp),
                "restate_http": r.restate.as_ref().map(side),
                "zeroapp_in_process": side(&r.in_process),
                "zeroapp_over_restate": r.ratios().map(|x| serde_json::json!({
                    "throughput": x.throughput,
                    "p50": x.p50,
                    "p99": x.p99,
                    "rss": x.rss,
                })),
            })
        })
        .collect();
    let s = &report.settings;
    let value = serde_json::json!({
        "command": harness::command::<Comparison>(),
        "date": date,
        "machine": machine,
        "restate_version": RESTATE_VERSION,
        "restate_settings": server::RESTATE_SETTINGS,
        "restate_skipped": report.restate_skipped,
        "warmup_s": s.window.warmup.as_secs_f64(),
        "measure_s": s.window.measure.as_secs_f64(),
        "repetitions": s.repetitions,
        "rows": rows,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// The bench's section of `docs/benchmarks.md`.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    format!(
        "## restate: the engine side by side with Restate {RESTATE_VERSION}\n\n\
Command: `{}` (a quick check without Restate: add `-- --test`). It fetches \
`@restatedev/restate-server-linux-x64@{RESTATE_VERSION}` with `npm pack` into \
`target/restate-server/` and builds `benches/restate/services/` (the same handlers on \
`restate-sdk` 0.13) the first time. Figures also in `docs/benchmarks/restate.json`.\n\
Run on {date}: {machine}. Each point runs {:.1} s after {:.1} s of warm-up; every figure is \
the median of {} repetitions (errors: the sum over them). In each repetition the three sides \
of a point run back to back, ZeroApp HTTP and Restate HTTP alternating which goes first.\n\n\
* **ZeroApp HTTP**: the engine's ingress (`zeroapp_engine::http`, default limits) in a child \
process, `zeroapp-bench-server` (this crate's binary), on 127.0.0.1; RSS is that process's \
`VmRSS` right after the point.\n\
* **Restate HTTP**: `restate-server` {RESTATE_VERSION}: {}. The handlers run in a second \
child process (`benches/restate/services`, restate-sdk's HTTP/2 server), registered with \
`POST /deployments`; RSS is the sum of both processes.\n\
* **ZeroApp in-process**: the same handlers through `Client` in the bench's process; RSS is \
the bench process's own (load generator included).\n\
* Durability: both sides fsync before answering — the engine appends each group of writer \
commands to its write-ahead log and fsyncs it (redb commits without durability, checkpointed \
every 250 ms); Restate acknowledges once its log-server's RocksDB WAL write is \
fsynced.\n\
* Load: N workers, each with one keep-alive HTTP/1.1 connection (hyper client, \
`TCP_NODELAY`), one operation at a time; the same requests on the same paths for both HTTP \
sides. Servers and load generator share the machine's cores. Both servers run for the whole \
bench, so their data grows from point to point.\n\
* Workloads: **W1** `POST /Bench/three_steps` (three `run` steps returning small strings); \
**W2** `POST /Counter/{{key}}/add` (an exclusive handler reading and writing the key's state) \
on one key, and on 1,000 keys in turn; **W3** an awakeable round trip in four requests: \
`POST /AwakeFlow/{{key}}/run/send` (the workflow creates an awakeable and resolves its \
durable promise `id` with the awakeable's id), `POST /AwakeFlow/{{key}}/awakeable_id` (a \
shared handler awaiting that promise: the client learns the id as soon as it exists, without \
polling), `POST /restate/awakeables/{{id}}/resolve`, then `GET \
/restate/workflow/AwakeFlow/{{key}}/attach` for the result; **W4** `POST \
/Approval/{{key}}/run/send` (the workflow awaits its promise `approval`), `POST \
/Approval/{{key}}/approve` (a shared handler resolving it), then attach; **W5** `POST \
/Sleeper/sleep` (a durable 100 ms sleep): its figures are lateness, the latency less 100 ms. \
Latency is one whole operation, all its requests included; workflow keys are fresh for each \
operation.\n\n\
{}\
### Where the engine's time goes\n\n\
The engine's writer during each in-process point (warm-up included): transactions committed \
per operation — each one fsync, and an operation waits for the ones on its path — writer \
commands per operation, and the average time to apply and commit one transaction.\n\n\
{}\n\
### Against the targets\n\n{}",
        harness::command::<Comparison>(),
        s.window.measure.as_secs_f64(),
        s.window.warmup.as_secs_f64(),
        s.repetitions,
        server::RESTATE_SETTINGS,
        tables(report),
        writer_table(report),
        targets(report),
    )
}
