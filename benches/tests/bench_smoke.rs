//! Runs the `invocations` bench's measuring code in quick mode, so that `cargo test --workspace`
//! keeps the bench working. Figures are not checked, only that every point ran and counted what
//! the bench assumes.

use zeroapp_benches::engine::{COMMANDS_PER_INVOCATION, STEPS, engine_point};
use zeroapp_benches::invocations::{Settings, run};
use zeroapp_benches::report;
use zeroapp_benches::report::Modes;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn quick_run_measures_every_point() {
    let settings = Settings::quick();
    let report = runtime()
        .block_on(run(&settings, &mut |_| {}))
        .expect("the quick bench runs");
    assert_eq!(report.rows.len(), settings.concurrencies.len());
    assert!(report.sync.per_s > 0.0);
    for row in &report.rows {
        assert!(row.engine.invocations_per_s > 0.0, "{row:?}");
        assert!(row.raw.entries_per_s > 0.0, "{row:?}");
        assert!(row.engine.p50 <= row.engine.p99, "{row:?}");
        assert!(row.raw.p50 <= row.raw.p99, "{row:?}");
    }
    let section = report::section(&report, "2000-01-01", "a test machine");
    assert!(section.starts_with(report::BEGIN) && section.ends_with(&format!("{}\n", report::END)));
    assert!(section.contains("| 256 |"));
}

#[test]
fn an_invocation_is_three_entries_and_five_commands() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let point = runtime()
        .block_on(engine_point(dir.path(), 4, Settings::quick().window))
        .expect("the engine point runs");
    assert!(point.sample.total > 0);
    assert_eq!(point.journal_entries, STEPS * point.sample.total);
    // Plus the timer service's few `FireTimers` commands: it wakes when the first purge timer
    // is added, then sleeps until that deadline, a day away.
    let per_invocation = COMMANDS_PER_INVOCATION * point.sample.total;
    assert!(
        (per_invocation..=per_invocation + 8).contains(&point.writer.commands),
        "{} commands for {} invocations",
        point.writer.commands,
        point.sample.total
    );
}

#[test]
fn only_cargo_bench_runs_in_full() {
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert!(!Settings::from_args(&args(&["x", "--bench"]), None).quick);
    assert!(Settings::from_args(&args(&["x", "--bench", "--test"]), None).quick);
    assert!(Settings::from_args(&args(&["x", "--bench"]), Some("1")).quick);
    assert!(Settings::from_args(&args(&["x"]), None).quick);
}
