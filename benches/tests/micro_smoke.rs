//! Runs the `micro` bench in quick mode, so that `cargo test --workspace` keeps it working:
//! appends, a replay after a reopen, and timers firing at once.

use zeroapp_benches::micro::{BEGIN, END, Settings, run, section};
use zeroapp_benches::report::Modes;

#[test]
fn quick_run_measures_append_replay_and_timers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let settings = Settings::quick();
    let report = runtime
        .block_on(run(&settings, &mut |line| eprintln!("{line}")))
        .expect("the quick bench runs");
    assert_eq!(report.append.len(), settings.append_concurrencies.len());
    for a in &report.append {
        assert!(a.entries_per_s > 0.0, "{a:?}");
    }
    assert!(report.replay_full > std::time::Duration::ZERO);
    assert!(report.timer_p50 <= report.timer_p99 && report.timer_p99 <= report.timer_last);
    let section = section(&report, "2000-01-01", "a test machine");
    assert!(section.starts_with(BEGIN) && section.ends_with(&format!("{END}\n")));
}

#[test]
fn only_cargo_bench_runs_in_full() {
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert!(!Settings::from_args(&args(&["x", "--bench"]), None).quick);
    assert!(Settings::from_args(&args(&["x", "--bench", "--test"]), None).quick);
    assert!(Settings::from_args(&args(&["x"]), Some("1")).quick);
}
