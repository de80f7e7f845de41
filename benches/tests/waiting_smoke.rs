//! Runs the `waiting` bench's measuring code in quick mode, so that `cargo test --workspace`
//! keeps the bench working. Figures are not checked against the targets, only that every point
//! ran and measured what the bench assumes.

use std::time::Duration;

use zeroapp_benches::report::Modes;
use zeroapp_benches::waiting::{BEGIN, END, Settings, Sleeping, memory_status, run, section};

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
        .block_on(run(&settings, &mut |line| eprintln!("{line}")))
        .expect("the quick bench runs");

    let s = &report.suspended;
    assert_eq!(s.invocations, settings.suspended);
    assert!(s.rss_suspended > 0 && s.file_suspended > 0, "{s:?}");
    assert!(
        s.p50 > Duration::ZERO && s.p50 <= s.p99 && s.p99 <= s.max,
        "{s:?}"
    );
    assert!(s.achieved_rate > 0.0, "{s:?}");

    let r = &report.restart;
    assert_eq!(r.in_flight, settings.restart);
    assert!(
        r.open <= r.all_completed && r.handlers <= r.all_completed,
        "{r:?}"
    );

    let sleeping: Vec<Sleeping> = report.timers.iter().map(|t| t.sleeping).collect();
    assert_eq!(sleeping, Sleeping::ALL);
    for t in &report.timers {
        assert_eq!(t.timers, settings.timers);
        assert_eq!(t.early, 0, "a timer fired before its deadline: {t:?}");
        assert!(t.p50 <= t.p99, "{t:?}");
    }
    assert!(
        report.timers[1].suspended_at_start > 0,
        "sleepers suspend before the first deadline"
    );

    assert_eq!(report.round_trips.len(), settings.concurrencies.len());
    for t in &report.round_trips {
        assert!(t.per_s > 0.0 && t.p50 <= t.p99, "{t:?}");
        assert!(
            t.resume_p50 <= t.p50,
            "resuming is part of the round trip: {t:?}"
        );
    }

    let section = section(&report, "2000-01-01", "a test machine");
    assert!(section.starts_with(BEGIN) && section.ends_with(&format!("{END}\n")));
    assert!(section.contains("| 64 |"));
    assert_eq!(
        section.matches("**pass**").count() + section.matches("**miss**").count(),
        5
    );
}

#[test]
fn resident_memory_is_read_from_proc() {
    let rss = memory_status("VmRSS").expect("Linux reports VmRSS");
    assert!(rss > 1 << 20, "{rss} bytes");
    assert!(memory_status("VmHWM").expect("and VmHWM") >= rss);
    assert_eq!(memory_status("NoSuchField"), None);
}

#[test]
fn only_cargo_bench_runs_in_full() {
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let full = Settings::from_args(&args(&["x", "--bench"]), None);
    assert!(!full.quick && full.suspended == 1_000_000 && full.restart == 100_000);
    assert!(Settings::from_args(&args(&["x", "--bench", "--test"]), None).quick);
    assert!(Settings::from_args(&args(&["x", "--bench"]), Some("1")).quick);
    assert!(Settings::from_args(&args(&["x"]), None).quick);
}
