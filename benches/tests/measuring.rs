//! The benches' measuring instruments: an invocation (in-process or over HTTP) does the work the
//! benches assume, the HTTP load generator counts errors and fails on wrong answers, and
//! resident memory is read from /proc. (Every bench's quick run: `smoke.rs`.)

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use zeroapp_benches::engine::{
    COMMANDS_PER_INVOCATION, EnginePoint, STEPS, engine_point, open_engine,
};
use zeroapp_benches::harness::Modes;
use zeroapp_benches::http_load::{self, Connection, HttpTarget};
use zeroapp_benches::ingress::{IngressServer, Settings, bench_target, ingress_point};
use zeroapp_benches::load::Window;
use zeroapp_benches::waiting::memory_status;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Every invocation of `point` was three journal entries and five writer commands, plus the
/// timer service's few `FireTimers` commands: it wakes when the first purge timer is added,
/// then sleeps until that deadline, a day away.
fn assert_counted(point: &EnginePoint) {
    assert!(
        point.sample.total > 0 && point.sample.errors == 0,
        "{point:?}"
    );
    assert_eq!(point.journal_entries, STEPS * point.sample.total);
    let per_invocation = COMMANDS_PER_INVOCATION * point.sample.total;
    assert!(
        (per_invocation..=per_invocation + 8).contains(&point.writer.commands),
        "{} commands for {} invocations",
        point.writer.commands,
        point.sample.total
    );
}

#[test]
fn an_invocation_is_three_entries_and_five_commands_in_process_and_over_http() {
    let window = Settings::quick().window;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    runtime().block_on(async {
        assert_counted(&engine_point(a.path(), 4, window).await.unwrap());
        assert_counted(&ingress_point(b.path(), 4, window).await.unwrap());
    });
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
fn resident_memory_is_read_from_proc() {
    let rss = memory_status("VmRSS").expect("Linux reports VmRSS");
    assert!(rss > 1 << 20, "{rss} bytes");
    assert!(memory_status("VmHWM").expect("and VmHWM") >= rss);
    assert_eq!(memory_status("NoSuchField"), None);
}
