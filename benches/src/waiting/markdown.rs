//! The `waiting` bench's tables, its targets with a pass/miss word each (and, for a miss, where
//! the time went), and its section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::time::Duration;

use super::{
    LATENESS_P99_TARGET, RESTART_TARGET, RESUME_P99_TARGET, RSS_TARGET_BYTES, Report, Sleeping,
    TimerFigures,
};
use crate::report::{ms, verdict};

/// Bytes in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1_u64 << 30) as f64)
    } else if bytes >= 1 << 20 {
        format!("{:.0} MiB", mib(bytes))
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The figures as Markdown tables: the suspended point (memory and disk, then latency), the
/// restart, the timers, the round trips.
pub fn table(report: &Report) -> String {
    let s = &report.suspended;
    let r = &report.restart;
    let mut out = format!(
        "| suspended | created/s | all suspended after | RSS before open | RSS all suspended \
         | of which bench tables | peak RSS | data file suspended | data file finished | \
         written to disk suspending | completing |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {:.0} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} |\n\n",
        thousands(s.invocations),
        s.created_per_s,
        secs(s.until_suspended),
        size(s.rss_before),
        size(s.rss_suspended),
        size(s.bench_bytes),
        size(s.rss_peak),
        size(s.file_suspended),
        size(s.file_finished),
        size(s.written_suspending),
        size(s.written_completing),
    );
    let _ = write!(
        out,
        "| resolves/s asked | achieved | resume p50 | resume p99 | resume max | from return \
         p50 | from return p99 | `resolve_awakeable` p50 | `resolve_awakeable` p99 | \
         commands/commit | writer time/commit |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {:.0} | {:.0} | {} | **{}** | {} | {} | {} | {} | {} | {:.1} | {} |\n\n",
        s.rate,
        s.achieved_rate,
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        ms(s.return_p50),
        ms(s.return_p99),
        ms(s.resolve_p50),
        ms(s.resolve_p99),
        s.batch,
        ms(s.commit_time),
    );
    let _ = write!(
        out,
        "| in flight at restart | shutdown | `open` returned | last handler ran | all results \
         attached | commits | commands/commit | writer busy |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} | {} | **{}** | {} | {:.1} | {} |\n\n",
        thousands(r.in_flight),
        secs(r.shutdown),
        secs(r.open),
        secs(r.handlers),
        secs(r.all_completed),
        r.commits,
        r.batch,
        secs(r.writer_busy),
    );
    out.push_str(
        "| timers | sleepers | deadlines over | all stored ahead by | suspended at first \
         deadline | lateness p50 | lateness p99 | lateness max | early | p50 first tenth | \
         p50 last tenth | last woke after first deadline | writer commands | writer busy | \
         writer time/command |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for t in &report.timers {
        let suspended = match t.sleeping {
            Sleeping::Suspended => thousands(t.suspended_at_start),
            Sleeping::Live | Sleeping::Staying => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {suspended} | {} | **{}** | {} | {} | {} | {} | {} | {} | {} \
             | {:.1} µs |",
            thousands(t.timers),
            t.sleeping.label(),
            secs(t.window),
            secs(t.stored_ahead),
            ms(t.p50),
            ms(t.p99),
            ms(t.max),
            t.early,
            ms(t.first_tenth_p50),
            ms(t.last_tenth_p50),
            secs(t.until_all_woke),
            t.commands,
            secs(t.writer_busy),
            t.per_command().as_secs_f64() * 1e6,
        );
    }
    out.push_str(
        "\n| concurrency | round trips/s | send → result p50 | send → result p99 | resolve → \
         resume p50 | resolve → resume p99 |\n|---:|---:|---:|---:|---:|---:|\n",
    );
    for t in &report.round_trips {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} |",
            t.concurrency,
            t.per_s,
            ms(t.p50),
            ms(t.p99),
            ms(t.resume_p50),
            ms(t.resume_p99),
        );
    }
    out
}

/// Each target with its figure and a pass/miss word, as a Markdown list; a miss says where the
/// time (or the memory) went.
pub fn targets(report: &Report) -> String {
    let s = &report.suspended;
    let r = &report.restart;
    let pass = s.rss_suspended <= RSS_TARGET_BYTES;
    let mut out = format!(
        "- {} suspended invocations: resident memory **{}**; target ≤ {}: {}. Of it, {} was \
         resident before the engine opened and {} is the bench's own tables (awakeable ids and \
         timestamps), which leaves {} for the engine (with the data file at {}).\n",
        thousands(s.invocations),
        size(s.rss_suspended),
        size(RSS_TARGET_BYTES),
        verdict(pass),
        size(s.rss_before),
        size(s.bench_bytes),
        size(
            s.rss_suspended
                .saturating_sub(s.rss_before)
                .saturating_sub(s.bench_bytes)
        ),
        size(s.file_suspended),
    );
    let pass = s.p99 <= RESUME_P99_TARGET;
    let _ = writeln!(
        out,
        "- Completion → resume at a steady {:.0} resolves/s: p99 **{}** (p50 {}); target p99 \
         ≤ {}: {}.{}",
        s.achieved_rate,
        ms(s.p99),
        ms(s.p50),
        ms(RESUME_P99_TARGET),
        verdict(pass),
        if pass {
            String::new()
        } else {
            format!(
                " Where the time goes: `resolve_awakeable` itself (it returns once the \
                 completion is committed) has p99 {}; the writer committed {:.1} commands per \
                 commit at {} each.",
                ms(s.resolve_p99),
                s.batch,
                ms(s.commit_time)
            )
        },
    );
    let pass = r.all_completed <= RESTART_TARGET;
    let _ = writeln!(
        out,
        "- Restart with {} in flight: all completed **{}** after `open` was called; target ≤ \
         {}: {}.{}",
        thousands(r.in_flight),
        secs(r.all_completed),
        secs(RESTART_TARGET),
        verdict(pass),
        if pass {
            String::new()
        } else {
            format!(
                " Where the time goes: `open` returned after {}, the last handler ran at {}, and \
                 the writer was busy {} over {} commits.",
                secs(r.open),
                secs(r.handlers),
                secs(r.writer_busy),
                r.commits
            )
        },
    );
    for t in &report.timers {
        let target = if t.sleeping.has_target() {
            format!(
                "target p99 ≤ {}: {}",
                ms(LATENESS_P99_TARGET),
                verdict(t.p99 <= LATENESS_P99_TARGET)
            )
        } else {
            "no target: it shows the timer service alone".to_owned()
        };
        let _ = writeln!(
            out,
            "- {} timers due within {} (sleepers {}): lateness p99 **{}** (p50 {}, {} early); \
             {target}.",
            thousands(t.timers),
            secs(t.window),
            t.sleeping.label(),
            ms(t.p99),
            ms(t.p50),
            t.early,
        );
    }
    for t in &report.round_trips {
        let _ = writeln!(
            out,
            "- Awakeable round trip at concurrency {}: {:.0}/s, p50 {}, p99 {} (no target).",
            t.concurrency,
            t.per_s,
            ms(t.p50),
            ms(t.p99),
        );
    }
    out.push_str(&timer_miss(report));
    out
}

/// Where the time goes when a timer target is missed, from the figures of every way of sleeping.
fn timer_miss(report: &Report) -> String {
    let missed: Vec<&TimerFigures> = report
        .timers
        .iter()
        .filter(|t| t.sleeping.has_target() && t.p99 > LATENESS_P99_TARGET)
        .collect();
    let staying = report
        .timers
        .iter()
        .find(|t| t.sleeping == Sleeping::Staying);
    let (Some(staying), Some(first)) = (staying, missed.first()) else {
        return String::new();
    };
    let mut out = String::from("\nWhere the time goes (timers): ");
    if staying.p99 > LATENESS_P99_TARGET {
        let _ = write!(
            out,
            "even sleepers that never finish, so that nothing but the timer service writes, \
             are woken with p99 {}: firing {} timers within {} is itself too slow here; the \
             writer spent {} on {} commands for it.",
            ms(staying.p99),
            thousands(staying.timers),
            secs(staying.window),
            secs(staying.writer_busy),
            staying.commands,
        );
        out.push('\n');
        return out;
    }
    let _ = write!(
        out,
        "sleepers that never finish, so that nothing but the timer service writes, are woken \
         with p99 {} (within the target): firing the timers is not what is slow. Finishing is: \
         each woken sleeper then commits its outcome, one more command for the single writer.",
        ms(staying.p99),
    );
    for t in &missed {
        let _ = write!(
            out,
            " With the sleepers {}, from the first deadline until the last one woke ({}) the \
             writer committed {} commands in {} of writer time ({:.1} µs each), and lateness \
             grew across the window: median {} for the first tenth of the deadlines, {} for the \
             last tenth.",
            t.sleeping.label(),
            secs(t.until_all_woke),
            t.commands,
            secs(t.writer_busy),
            t.per_command().as_secs_f64() * 1e6,
            ms(t.first_tenth_p50),
            ms(t.last_tenth_p50),
        );
    }
    let budget = first.window / u32::try_from(first.timers.max(1)).unwrap_or(u32::MAX);
    let _ = writeln!(
        out,
        " The writer takes the timer service's `FireTimers` commands ahead of queued outcomes, \
         but each still waits for the batch being applied, and the outcomes compete with it for \
         the two cores. To finish {} sleepers within {} the writer may spend at most {:.1} µs \
         per outcome, {:.1}× less than measured: what would reach the target is an outcome \
         commit that cheap (an outcome rewrites the whole invocation record and adds a purge \
         timer), or outcomes applied in bulk.",
        thousands(first.timers),
        secs(first.window),
        budget.as_secs_f64() * 1e6,
        first.per_command().as_secs_f64() / budget.as_secs_f64().max(1e-9),
    );
    out
}

/// The bench's section of `docs/benchmarks.md`.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    format!(
        "## waiting: suspended invocations, restarts, timers, awakeables\n\n\
Command: `{}` (a quick check with a few thousand invocations per point: add \
`-- --test`).\n\
Run on {date}: {machine}. The run took {:.0} s; the 1-minute load average was {:.2} before and \
{:.2} after (the machine is shared). The suspended point ran {}, first in the process, its \
percentiles over every completion; every other figure is the median of {} repetitions. \
Each point opens a fresh engine in a fresh temporary folder; handlers hand ids and timestamps \
to the bench through in-process tables.\n\n\
* **suspended**: {} invocations of a handler that creates an awakeable, publishes its id and \
awaits it, sent by {} concurrent tasks, with an inactivity timeout of {} ms so that each \
suspends (its future dropped; it lives on disk only). Once the writer has committed every \
suspension and a scan of every record finds none running, the process's `VmRSS` and the data \
file are read. Then the bench resolves every awakeable in an open loop at a steady rate (each \
`resolve_awakeable` in its own task, at its scheduled time); the handler, replayed, records when \
its `await` returns the value. Resume latency = that moment − the call to `resolve_awakeable`; \
\"from return\" counts from when the call returned instead (zero when the handler was first). \
\"Written to disk\" is the process's `write_bytes` (/proc/self/io).\n\
* **restart**: {} invocations blocked in a `run` step (inactivity timeout 1 h: none suspends) \
when the engine is shut down; it is reopened with a handler that returns at once. Timed from \
calling `open` until 64 tasks attaching to every invocation have every result.\n\
* **timers**: {} invocations each sleep (`sleep_until`) until a deadline spread uniformly over \
{}; the deadlines are chosen once every handler has started, so that every timer is stored \
before the first is due. Lateness = the system clock when the handler's `await` returns − its \
deadline. The sleepers wait in memory (inactivity timeout 1 h) or suspended ({} ms: a fired \
timer then starts a replay) and finish once woken; a third run, whose sleepers stay in memory \
and never finish, shows the timer service alone.\n\
* **round trip**: a handler creates an awakeable and hands its id to the bench, which resolves \
it as soon as it has it; round trip = from `send` to `attach` returning (the creation, the \
awakeable's entry, the completion and the outcome are each committed on the way); resolve → \
resume as above. {:.1} s measured after {:.1} s of warm-up.\n\n\
{}\n\
### Against the targets\n\n{}",
        crate::harness::command::<super::Waiting>(),
        report.elapsed.as_secs_f64(),
        report.load.0,
        report.load.1,
        match s.suspended_repetitions {
            1 => "once".to_owned(),
            n => format!("{n} times (memory: the highest)"),
        },
        s.repetitions,
        thousands(s.suspended),
        s.senders,
        s.suspend_after.as_millis(),
        thousands(s.restart),
        thousands(s.timers),
        secs(s.timer_window),
        s.suspend_after.as_millis(),
        s.window.measure.as_secs_f64(),
        s.window.warmup.as_secs_f64(),
        table(report),
        targets(report),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn sizes_switch_to_gib() {
        assert_eq!(size(5 << 20), "5 MiB");
        assert_eq!(size(3 << 29), "1.50 GiB");
        assert_eq!(size(2048), "2 KiB");
    }
}
