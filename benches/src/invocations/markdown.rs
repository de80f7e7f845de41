//! The `invocations` bench's figures as Markdown: tables, the ratios against the targets, and
//! its section of `docs/benchmarks.md`.

use std::fmt::Write as _;

use super::{RawFigures, Report, Row};
use crate::engine::{COMMANDS_PER_INVOCATION, STEPS};
use crate::harness;
use crate::report::{callers, ms, range, verdict};

/// At concurrency 1, an invocation of the bench may wait for at most this many commits.
pub const COMMITS_TARGET: f64 = 4.0;
/// At concurrency 1, a commit may cost at most this many log appends (write + fdatasync).
pub const STEP_TARGET: f64 = 1.5;
/// At concurrency [`CEILING_AT`], the engine must reach this share of the raw log-file ceiling.
pub const CEILING_TARGET: f64 = 0.5;
/// The concurrency at which [`CEILING_TARGET`] applies.
pub const CEILING_AT: usize = 64;

/// The figures as three Markdown tables (engine; each raw ceiling and the ratio to it), one row
/// per concurrency.
pub fn table(report: &Report) -> String {
    let mut out = String::from(
        "| callers | engine inv/s | entries/s | inv p50 | inv p99 | commands/commit \
         | writer time/commit |\n|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in &report.rows {
        let e = &row.engine;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {} | {} | {:.1} | {} |",
            row.concurrency,
            e.invocations_per_s,
            e.entries_per_s,
            ms(e.p50),
            ms(e.p99),
            e.batch,
            ms(e.commit_time),
        );
    }
    for (name, unit, ceiling, ratio) in [
        (
            "raw",
            "commit",
            (|r: &Row| r.raw) as fn(&Row) -> RawFigures,
            Row::ceiling_ratio as fn(&Row) -> f64,
        ),
        ("raw log", "append", |r: &Row| r.log, Row::log_ratio),
    ] {
        let _ = write!(
            out,
            "\n| callers | {name} entries/s | ack p50 | ack p99 | entries/{unit} | writer time/{unit} \
             | engine ÷ {name} entries/s |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in &report.rows {
            let r = ceiling(row);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {:.1} | {} | {:.0}% |",
                row.concurrency,
                r.entries_per_s,
                ms(r.p50),
                ms(r.p99),
                r.batch,
                ms(r.commit_time),
                ratio(row) * 100.0,
            );
        }
    }
    out.push_str(
        "\n| callers | okaywal entries/s | commit p50 | commit p99 | ÷ raw log entries/s |\n\
         |---:|---:|---:|---:|---:|\n",
    );
    for row in &report.rows {
        if let Some(o) = &row.okaywal {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {:.0}% |",
                row.concurrency,
                o.entries_per_s,
                ms(o.p50),
                ms(o.p99),
                o.entries_per_s / row.log.entries_per_s * 100.0,
            );
        }
    }
    out
}

fn row(report: &Report, concurrency: usize) -> Option<&Row> {
    report.rows.iter().find(|r| r.concurrency == concurrency)
}

/// The ratios against the targets, as a Markdown list with a pass/miss word each.
pub fn ratios(report: &Report) -> String {
    let sync = report.sync;
    let mut out = format!(
        "- fdatasync (4 KiB write + `sync_data`): p50 {}, {:.0} syncs/s.\n",
        ms(sync.p50),
        sync.per_s
    );
    if let Some(one) = row(report, 1) {
        let append = one.log.p50;
        let _ = writeln!(
            out,
            "- At 1 caller, one log append + fdatasync (the raw log file's ack p50) = {}.",
            ms(append)
        );
        // With one caller every commit is on the invocation's path: commands ÷ commands per
        // commit, as the writer counted them.
        let commits = one.engine.commands_per_invocation / one.engine.batch.max(1.0);
        let _ = writeln!(
            out,
            "- At 1 caller, commits on an invocation's path (writer commands ÷ commands per \
             commit, counted) = **{commits:.2}**; target ≤ {COMMITS_TARGET}: {}.",
            verdict(commits <= COMMITS_TARGET + 0.005),
        );
        for (what, per) in [("commit", commits), ("`run` step", STEPS as f64)] {
            let cost = one.engine.p50.div_f64(per.max(1.0));
            let ratio = cost.as_secs_f64() / append.as_secs_f64();
            let _ = writeln!(
                out,
                "- At 1 caller, invocation p50 ÷ {per:.2} (per {what}) = {} = **{ratio:.2}×** one \
                 log append; target ≤ {STEP_TARGET}×: {}.",
                ms(cost),
                verdict(ratio <= STEP_TARGET),
            );
        }
        let redb = one.raw.p50.as_secs_f64() / append.as_secs_f64();
        let _ = writeln!(
            out,
            "- For scale, at 1 caller one bare durable redb commit (raw redb ack p50) = {} = \
             {redb:.2}× one log append.",
            ms(one.raw.p50),
        );
    }
    for row in &report.rows {
        let ratio = row.log_ratio();
        let target = if row.concurrency == CEILING_AT {
            format!(
                "; target ≥ {:.0}%: {}",
                CEILING_TARGET * 100.0,
                verdict(ratio >= CEILING_TARGET)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "- At {} {}, engine entries/s ÷ raw log-file entries/s = **{:.0}%**{target} \
             (÷ raw redb: {:.0}%).",
            row.concurrency,
            callers(row.concurrency),
            ratio * 100.0,
            row.ceiling_ratio() * 100.0,
        );
    }
    out
}

/// Counted (not assumed) journal entries and writer commands per invocation, over all points.
pub fn counted(report: &Report) -> String {
    let spread = |f: fn(&Row) -> f64| range(report.rows.iter().map(f));
    format!(
        "Counted per invocation at every point: {} journal entries, {} writer commands.",
        spread(|r| r.engine.entries_per_invocation),
        spread(|r| r.engine.commands_per_invocation),
    )
}

/// The bench's section of `docs/benchmarks.md`.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    format!(
        "## invocations: a handler with three `run` steps\n\n\
Command: `{}` (a quick check of a few seconds: add `-- --test`).\n\
Run on {date}: {machine}. Each point runs {:.1} s after {:.1} s of warm-up; every figure is \
the median of {} repetitions.\n\n\
* **engine**: N tasks in the same process each call `Bench/three_steps` through \
`Client::call`, one call at a time. An invocation is {STEPS} journal entries (one per `run` \
step, each returning a small string) and {COMMANDS_PER_INVOCATION} writer commands (create, \
{STEPS} appends, finish). A step's result reaches the handler once its commit is durable \
(the engine's first promise), so with one caller each command is a commit on the path. Entries/s = \
invocations/s × entries per invocation. Commands/commit is the writer's average group-commit \
batch (`Engine::writer_statistics`).\n\
* **raw redb** and **raw log**: the ceilings. One writer thread takes every pending append \
from a channel, makes them durable at once, then acks each; N tasks each append a {}-byte \
value and wait for the ack. *Raw redb* inserts them under a growing u64 key in one durable \
redb transaction (what the engine did before its log); *raw log* writes them as checksummed \
records to a pre-written log file in one write, then one `fdatasync` (what the engine's log \
does, with nothing else). As an invocation commits {COMMANDS_PER_INVOCATION} commands for \
{STEPS} entries, engine ÷ raw is at most {STEPS}/{COMMANDS_PER_INVOCATION} when both writers \
are bound by commits of the same size.\n\
* **okaywal**: the candidate measured against writing our own log, at 1 and 64 callers: the \
`okaywal` crate (0.3), each append an entry of one chunk committed on a blocking thread (durable \
when `commit` returns; the crate groups concurrent commits into one sync).\n\
* **fdatasync**: 4 KiB rewritten at offset 0 of a pre-written file, then `sync_data`, in a \
loop for {:.1} s.\n\n\
{}\n{}\n\n\
### Against the targets\n\n{}",
        harness::command::<super::Invocations>(),
        s.window.measure.as_secs_f64(),
        s.window.warmup.as_secs_f64(),
        s.repetitions,
        crate::raw::ENTRY_BYTES,
        s.sync_for.as_secs_f64(),
        table(report),
        counted(report),
        ratios(report),
    )
}
