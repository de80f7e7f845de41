//! Runs the `scale_out` bench's measuring code in quick mode, so that `cargo test --workspace`
//! keeps the bench working: W1 and W3 on the embedded engine (its server in a child process),
//! on one Restate node and on a 3-node cluster, the bench's handlers served to both by
//! `zeroapp_restate::Deployment`. Needs `npm` the first time (`zeroapp_restate::local`).

use zeroapp_benches::scale_out::{BEGIN, END, Settings, Side, WORKLOADS, run, section, tables};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn quick_run_measures_every_side() {
    let settings =
        Settings::from_args(&[], None, env!("CARGO_BIN_EXE_zeroapp-bench-server").into());
    assert!(settings.quick);
    let report = runtime()
        .block_on(run(&settings, &mut |line| eprintln!("{line}")))
        .expect("the quick bench runs");
    assert_eq!(
        report.rows.len(),
        WORKLOADS.len() * settings.concurrencies.len()
    );
    for row in &report.rows {
        for side in Side::ALL {
            let m = row.side(side);
            assert!(m.per_second > 0.0, "{side:?} {row:?}");
            assert!(m.p50 <= m.p90 && m.p90 <= m.p99, "{side:?} {row:?}");
            assert_eq!(m.errors, 0, "{side:?} {row:?}");
        }
        assert!(row.one_node_over_embedded().throughput > 0.0, "{row:?}");
        assert!(row.cluster_over_one_node().throughput > 0.0, "{row:?}");
    }
    let tables = tables(&report);
    assert!(tables.contains("| 64 | Restate, 3 nodes |"), "{tables}");
    let section = section(&report, "2000-01-01", "a test machine");
    assert!(section.starts_with(BEGIN) && section.ends_with(&format!("{END}\n")));
    assert!(section.contains("W3 awakeable"));
}

#[test]
fn only_cargo_bench_runs_in_full() {
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let exe = std::path::PathBuf::from("x");
    let full = Settings::from_args(&args(&["x", "--bench"]), None, exe.clone());
    assert!(!full.quick && full.concurrencies == [1, 16, 64]);
    assert!(full.repetitions >= 3);
    assert!(Settings::from_args(&args(&["x", "--bench", "--test"]), None, exe.clone()).quick);
    assert!(Settings::from_args(&args(&["x", "--bench"]), Some("1"), exe.clone()).quick);
    assert!(Settings::from_args(&args(&["x"]), None, exe).quick);
}
