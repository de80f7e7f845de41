//! Runs the `ingress` bench's measuring code in quick mode, so that `cargo test --workspace`
//! keeps the bench working. Figures are not checked, only that every point ran, that HTTP did
//! the same work as the in-process calls, and that the load generator counts errors.

use zeroapp_benches::engine::{COMMANDS_PER_INVOCATION, STEPS, open_engine};
use zeroapp_benches::http_load::{self, Connection, HttpTarget};
use zeroapp_benches::ingress::{
    BEGIN, END, IngressServer, Settings, bench_target, ingress_point, run, section,
};
use zeroapp_benches::load::Window;
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
        .block_on(run(&settings, &mut |line| eprintln!("{line}")))
        .expect("the quick bench runs");
    assert_eq!(report.rows.len(), settings.concurrencies.len());
    for row in &report.rows {
        assert!(row.http.invocations_per_s > 0.0, "{row:?}");
        assert!(row.in_process.invocations_per_s > 0.0, "{row:?}");
        assert!(row.http.p50 <= row.http.p99, "{row:?}");
        assert!(row.in_process.p50 <= row.in_process.p99, "{row:?}");
        assert_eq!(row.http_errors, 0, "{row:?}");
        assert!(row.throughput_ratio() > 0.0, "{row:?}");
    }
    let section = section(&report, "2000-01-01", "a test machine");
    assert!(section.starts_with(BEGIN) && section.ends_with(&format!("{END}\n")));
    assert!(section.contains("| 64 |"));
}

#[test]
fn an_http_invocation_is_three_entries_and_five_commands() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let point = runtime()
        .block_on(ingress_point(dir.path(), 4, Settings::quick().window))
        .expect("the HTTP point runs");
    assert!(point.sample.total > 0 && point.sample.errors == 0);
    assert_eq!(point.journal_entries, STEPS * point.sample.total);
    // Plus the timer service's few `FireTimers` commands (see bench_smoke.rs).
    let per_invocation = COMMANDS_PER_INVOCATION * point.sample.total;
    assert!(
        (per_invocation..=per_invocation + 8).contains(&point.writer.commands),
        "{} commands for {} invocations",
        point.writer.commands,
        point.sample.total
    );
}

#[test]
fn non_200_answers_are_counted_and_wrong_answers_fail() {
    let window = Window {
        warmup: std::time::Duration::ZERO,
        measure: std::time::Duration::from_millis(50),
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    runtime().block_on(async {
        let engine = open_engine(dir.path()).await.expect("the engine opens");
        let server = IngressServer::start(&engine)
            .await
            .expect("the ingress serves");
        let base = server.base_url().to_owned();

        let mut one = Connection::open(&bench_target(&base))
            .await
            .expect("connects");
        let (status, body) = one.post().await.expect("an answer");
        assert_eq!(status, 200);
        assert_eq!(body, "\"in:alpha-bravo-charlie\"");

        // No such service: 404, counted as errors, the connections kept.
        let missing = HttpTarget::post_json(&base, "/Nobody/nothing", "1");
        let sample = http_load::closed_loop(&missing, 2, window)
            .await
            .expect("errors do not stop the run");
        assert!(sample.errors > 0 && sample.completed == 0, "{sample:?}");

        // A 200 with another body than expected fails the run.
        let wrong = bench_target(&base).expecting("\"something else\"");
        let error = http_load::closed_loop(&wrong, 1, window)
            .await
            .expect_err("a wrong answer fails the run");
        assert!(error.contains("unexpected answer"), "{error}");

        drop(one);
        server.stop().await.expect("the ingress stops");
        engine.shutdown().await;
    });
}

#[test]
fn only_cargo_bench_runs_in_full() {
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let full = Settings::from_args(&args(&["x", "--bench"]), None);
    assert!(!full.quick && full.concurrencies == [1, 16, 64]);
    assert!(Settings::from_args(&args(&["x", "--bench", "--test"]), None).quick);
    assert!(Settings::from_args(&args(&["x", "--bench"]), Some("1")).quick);
    assert!(Settings::from_args(&args(&["x"]), None).quick);
}
