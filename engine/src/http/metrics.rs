//! Prometheus text exposition of the engine's numbers.

use std::fmt::Write;

use crate::error::StoreError;
use crate::runtime::Runtime;
use crate::store::stats::Histogram;

/// The metrics page: invocations by status, pending timers, and the writer's commits.
pub(crate) fn render(engine: &Runtime) -> Result<String, StoreError> {
    let mut out = String::new();
    let counts = engine.count_invocations()?;
    header(
        &mut out,
        "zeroapp_invocations",
        "gauge",
        "Invocations stored, by status.",
    );
    for (status, count) in counts {
        line(
            &mut out,
            &format!("zeroapp_invocations{{status=\"{status}\"}}"),
            count,
        );
    }
    header(
        &mut out,
        "zeroapp_timers_pending",
        "gauge",
        "Durable timers stored: sleeps, delayed sends and scheduled purges.",
    );
    line(&mut out, "zeroapp_timers_pending", engine.timers_stored()?);
    header(
        &mut out,
        "zeroapp_attach_waiting",
        "gauge",
        "Attach requests waiting for an invocation's outcome.",
    );
    let waiting = u64::try_from(engine.attaches_waiting()).unwrap_or(u64::MAX);
    line(&mut out, "zeroapp_attach_waiting", waiting);
    header(
        &mut out,
        "zeroapp_read_only_calls_total",
        "counter",
        "Calls to shared handlers answered without an invocation, or handed over to one.",
    );
    let (answered, handed_over) = engine.read_only_calls.counts();
    line(
        &mut out,
        "zeroapp_read_only_calls_total{outcome=\"answered\"}",
        answered,
    );
    line(
        &mut out,
        "zeroapp_read_only_calls_total{outcome=\"durable\"}",
        handed_over,
    );
    let stats = engine.writer_statistics();
    header(
        &mut out,
        "zeroapp_writer_commits_total",
        "counter",
        "Transactions committed by the writer.",
    );
    line(&mut out, "zeroapp_writer_commits_total", stats.commits);
    header(
        &mut out,
        "zeroapp_writer_commands_total",
        "counter",
        "Commands applied by the writer.",
    );
    line(&mut out, "zeroapp_writer_commands_total", stats.commands);
    histogram(
        &mut out,
        "zeroapp_writer_batch_size",
        "Commands per commit.",
        &stats.batch_sizes,
        1.0,
    );
    histogram(
        &mut out,
        "zeroapp_writer_commit_seconds",
        "Time to apply and commit one batch.",
        &stats.commit_latency_micros,
        1e-6,
    );
    Ok(out)
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn line(out: &mut String, series: &str, value: u64) {
    let _ = writeln!(out, "{series} {value}");
}

/// A histogram with cumulative buckets; `scale` converts the recorded unit to the metric's.
fn histogram(out: &mut String, name: &str, help: &str, histogram: &Histogram, scale: f64) {
    header(out, name, "histogram", help);
    let mut cumulative = 0;
    for (i, count) in histogram.counts.iter().enumerate() {
        cumulative += count;
        let le = histogram
            .bounds
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| format!("{}", *b as f64 * scale));
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum {}", histogram.sum as f64 * scale);
    let _ = writeln!(out, "{name}_count {cumulative}");
}
