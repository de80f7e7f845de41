//! Durable timers under an injected clock: a sleep never completes before its deadline, a
//! delayed send never starts early, an overdue timer fires at once after a reopen, and a timer
//! raced against a promise decides a timeout.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::time::{Duration, UNIX_EPOCH};

use zeroapp_engine::prelude::*;
use zeroapp_engine::{Engine, InvocationId, InvocationStatus, ManualClock, SendOptions};

const START_MS: u64 = 1_800_000_000_000;

/// Sleeps `ms` (clock time) and returns the clock's time after waking.
async fn nap(ctx: Context, ms: u64) -> Result<u64, HandlerError> {
    ctx.sleep(Duration::from_millis(ms)).await?;
    let now = ctx.now().await?;
    Ok(u64::try_from(now.duration_since(UNIX_EPOCH)?.as_millis())?)
}

async fn ping(_ctx: Context, (): ()) -> Result<&'static str, HandlerError> {
    Ok("pong")
}

/// Waits for the "answer" promise for at most `ms`; "timed out" otherwise.
async fn ask(ctx: WorkflowContext, ms: u64) -> Result<String, HandlerError> {
    let answer = ctx.promise::<String>("answer");
    match ctx.timeout(answer, Duration::from_millis(ms)).await {
        Ok(answer) => Ok(answer),
        Err(e) if e.code() == TerminalError::TIMED_OUT => Ok("timed out".into()),
        Err(e) => Err(e.into()),
    }
}

fn builder(clock: &ManualClock) -> zeroapp_engine::EngineBuilder {
    common::builder()
        .clock(clock.clone())
        .register(
            Service::new("Timers")
                .handler("nap", nap)
                .handler("ping", ping),
        )
        .register(Workflow::new("Ask").run(ask))
}

fn status(engine: &Engine, id: InvocationId) -> InvocationStatus {
    engine.client().status(id).unwrap().unwrap().status
}

/// Lets the engine act on what it was told (real time, briefly).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_completes_at_its_deadline_and_never_before() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let engine = common::open(builder(&clock), dir.path()).await;
    let client = engine.client();
    let id = client
        .send(Target::service("Timers", "nap"), &10_000u64)
        .await
        .unwrap();
    settle().await;
    assert_eq!(engine.timers_stored().unwrap(), 1, "one durable timer");

    clock.advance(Duration::from_millis(9_999));
    settle().await;
    assert!(!status(&engine, id).is_finished(), "woke 1 ms early");

    clock.advance(Duration::from_millis(1));
    let woke_at: u64 = client.attach(id).await.unwrap();
    assert!(woke_at >= START_MS + 10_000, "woke at {woke_at}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_send_is_scheduled_and_starts_at_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let engine = common::open(builder(&clock), dir.path()).await;
    let client = engine.client();
    let id = client
        .send_with(
            Target::service("Timers", "ping"),
            &(),
            SendOptions::default().delay(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    settle().await;
    assert_eq!(status(&engine, id), InvocationStatus::Scheduled);
    clock.advance(Duration::from_millis(4_999));
    settle().await;
    assert_eq!(status(&engine, id), InvocationStatus::Scheduled);
    clock.advance(Duration::from_millis(1));
    let answer: String = client.attach(id).await.unwrap();
    assert_eq!(answer, "pong");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_timer_fires_at_once_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let engine = common::open(builder(&clock), dir.path()).await;
    let id = engine
        .client()
        .send(Target::service("Timers", "nap"), &60_000u64)
        .await
        .unwrap();
    settle().await;
    engine.shutdown().await;

    // Closed for two minutes of clock time: the timer is overdue when the engine comes back.
    clock.advance(Duration::from_secs(120));
    let engine = common::open(builder(&clock), dir.path()).await;
    let woke_at: u64 = tokio::time::timeout(Duration::from_secs(10), engine.client().attach(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(woke_at, START_MS + 120_000);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_a_timer_raced_against_a_promise() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START_MS);
    let engine = common::open(builder(&clock), dir.path()).await;
    let client = engine.client();

    let answered = client
        .submit_workflow("Ask", "answered", &1_000u64)
        .await
        .unwrap();
    let silent = client
        .submit_workflow("Ask", "silent", &1_000u64)
        .await
        .unwrap();
    settle().await;
    client
        .resolve_promise("Ask", "answered", "answer", &"yes")
        .await
        .unwrap();
    assert_eq!(client.attach::<String>(answered).await.unwrap(), "yes");
    assert!(!status(&engine, silent).is_finished());

    clock.advance(Duration::from_millis(1_000));
    assert_eq!(client.attach::<String>(silent).await.unwrap(), "timed out");

    // The winner is journaled: after the promise is resolved late, a replay still times out.
    assert!(
        client
            .resolve_promise("Ask", "silent", "answer", &"late")
            .await
            .is_ok()
    );
    let journal = engine.journal(silent).unwrap().unwrap();
    let select = journal.iter().find(|e| e.kind == "select").unwrap();
    assert_eq!(
        select.result,
        Some(Ok(b"1".to_vec())),
        "the timer (position 1) won"
    );
    engine.shutdown().await;
}
