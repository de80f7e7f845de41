//! Runs the `restate` bench's measuring code in quick mode, so that `cargo test --workspace`
//! keeps the bench working: every workload on the engine over HTTP (its server in a child
//! process) and in-process. Restate itself is skipped, with the reason in the report, since it
//! needs the npm registry; `ZEROAPP_BENCH_RESTATE=1` includes it.

use zeroapp_benches::restate::{BEGIN, END, Settings, Workload, json, run, section, targets};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn quick_run_measures_every_workload_on_the_engine() {
    let with_restate = std::env::var("ZEROAPP_BENCH_RESTATE").ok();
    let settings = Settings::from_args(
        &[],
        None,
        with_restate.as_deref(),
        env!("CARGO_BIN_EXE_zeroapp-bench-server").into(),
    );
    assert!(settings.quick);
    let report = runtime()
        .block_on(run(&settings, &mut |line| eprintln!("{line}")))
        .expect("the quick bench runs");
    assert_eq!(
        report.rows.len(),
        Workload::ALL.len() * settings.concurrencies.len()
    );
    for row in &report.rows {
        for m in [&row.zeroapp, &row.in_process] {
            assert!(m.per_second > 0.0, "{row:?}");
            assert!(m.p50 <= m.p90 && m.p90 <= m.p99, "{row:?}");
            assert_eq!(m.errors, 0, "{row:?}");
            assert!(m.rss_mib > 0.0, "{row:?}");
        }
        assert_eq!(row.restate.is_some(), settings.restate, "{row:?}");
    }
    if !settings.restate {
        assert!(report.restate_skipped.is_some());
        assert!(targets(&report).contains("not measured"));
    }
    let section = section(&report, "2000-01-01", "a test machine");
    assert!(section.starts_with(BEGIN) && section.ends_with(&format!("{END}\n")));
    assert!(section.contains("W5 sleep"));
    let json = json(&report, "2000-01-01", "a test machine");
    assert!(json.contains("\"zeroapp_http\""));
}

#[test]
fn only_cargo_bench_runs_in_full_and_quick_mode_skips_restate() {
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let exe = std::path::PathBuf::from("x");
    let full = Settings::from_args(&args(&["x", "--bench"]), None, None, exe.clone());
    assert!(!full.quick && full.restate && full.concurrencies == [1, 16, 64]);
    assert!(full.repetitions >= 3);
    let quick = Settings::from_args(&args(&["x", "--bench", "--test"]), None, None, exe.clone());
    assert!(quick.quick && !quick.restate);
    assert!(Settings::from_args(&args(&["x"]), None, Some("1"), exe).restate);
}
