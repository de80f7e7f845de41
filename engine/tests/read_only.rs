//! Read-only calls: a shared handler called from outside that only reads state and promises
//! answers without becoming a durable invocation (nothing written, nothing listed); one that
//! writes becomes a durable invocation, run from its start, before its write does anything; a
//! long wait becomes durable too, and still answers.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::{InvocationStatus, SharedWorkflowContext};

const RUN: WorkflowHandler<(), String> = WorkflowHandler::new("Doc", "run");
const TITLE: WorkflowHandler<(), Option<String>> = WorkflowHandler::new("Doc", "title");
const KEYS: WorkflowHandler<(), Vec<String>> = WorkflowHandler::new("Doc", "keys");
const READY: WorkflowHandler<(), String> = WorkflowHandler::new("Doc", "ready");
const STAMP: WorkflowHandler<(), u32> = WorkflowHandler::new("Doc", "stamp");

/// A document workflow: `run` sets its title, waits for the promise `go`, then resolves
/// `ready`. Its shared handlers read the title and the state keys, await `ready`, or stamp the
/// document in a `run` step (counted in `stamps`: a write).
fn doc(stamps: Arc<AtomicU32>) -> Workflow {
    Workflow::new("Doc")
        .run(|ctx: WorkflowContext, (): ()| async move {
            ctx.set("title", &"draft")?;
            let go: String = ctx.promise("go").await?;
            ctx.resolve_promise("ready", &format!("ready after {go}"))
                .await?;
            Ok("done".to_owned())
        })
        .shared("title", |ctx: SharedWorkflowContext, (): ()| async move {
            Ok(ctx.get::<String>("title").await?)
        })
        .shared("keys", |ctx: SharedWorkflowContext, (): ()| async move {
            Ok(ctx.state_keys().await?)
        })
        .shared("ready", |ctx: SharedWorkflowContext, (): ()| async move {
            Ok(ctx.promise::<String>("ready").await?)
        })
        .shared("stamp", move |ctx: SharedWorkflowContext, (): ()| {
            let stamps = stamps.clone();
            async move {
                let n = ctx
                    .run("stamp", move || {
                        let stamps = stamps.clone();
                        async move { Ok(stamps.fetch_add(1, Ordering::SeqCst) + 1) }
                    })
                    .await?;
                Ok(n)
            }
        })
}

async fn open(dir: &std::path::Path, stamps: Arc<AtomicU32>, timeout: Duration) -> Engine {
    common::open(
        common::builder()
            .register(doc(stamps))
            .inactivity_timeout(timeout),
        dir,
    )
    .await
}

/// The invocations of `Doc`'s handler `handler`.
fn invocations_of(engine: &Engine, handler: &str) -> usize {
    common::invocations(engine, "Doc")
        .iter()
        .filter(|i| i.target.handler == handler)
        .count()
}

type Waiting = tokio::task::JoinHandle<Result<String, zeroapp_engine::CallError>>;

/// Starts `Doc/d1/run`, then calls `Doc/d1/ready` in a task of its own.
async fn start_and_ask_ready(client: &Client) -> Waiting {
    client.send(RUN.key("d1"), &()).await.unwrap();
    let client = client.clone();
    tokio::spawn(async move { client.call(READY.key("d1"), &()).await })
}

/// Resolves `Doc/d1`'s promise `go` with `value`; the answer `waiting` then gets.
async fn go(client: &Client, value: &str, waiting: Waiting) -> String {
    client
        .resolve_promise("Doc", "d1", "go", &value)
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    answer.unwrap().unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_shared_handler_answers_without_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), Arc::default(), Duration::from_secs(60)).await;
    let client = engine.client();
    client.send(RUN.key("d1"), &()).await.unwrap();
    assert!(
        common::eventually(Duration::from_secs(5), || {
            engine.object_state("Doc", "d1").unwrap().len() == 1
        })
        .await
    );
    let before = engine.writer_statistics().commands;
    for _ in 0..20 {
        let title = client.call(TITLE.key("d1"), &()).await.unwrap();
        assert_eq!(title.as_deref(), Some("draft"));
        assert_eq!(client.call(KEYS.key("d1"), &()).await.unwrap(), ["title"]);
    }
    // Another key: nothing there, and still nothing written.
    assert_eq!(client.call(TITLE.key("d2"), &()).await.unwrap(), None);
    assert_eq!(engine.writer_statistics().commands, before);
    assert_eq!(invocations_of(&engine, "title"), 0);
    assert_eq!(invocations_of(&engine, "keys"), 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_call_waits_for_a_promise_and_gets_it_when_completed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), Arc::default(), Duration::from_secs(60)).await;
    let client = engine.client();
    // Asked before `ready` exists: the call waits in memory.
    let waiting = start_and_ask_ready(&client).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished());
    assert_eq!(go(&client, "review", waiting).await, "ready after review");
    // Asked after: answered at once.
    assert_eq!(
        client.call(READY.key("d1"), &()).await.unwrap(),
        "ready after review"
    );
    assert_eq!(invocations_of(&engine, "ready"), 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_handler_that_writes_becomes_durable_before_its_write_runs() {
    let dir = tempfile::tempdir().unwrap();
    let stamps = Arc::new(AtomicU32::new(0));
    let engine = open(dir.path(), stamps.clone(), Duration::from_secs(60)).await;
    let client = engine.client();
    // The read-only attempt ends at the `run`, before its closure: the durable invocation runs
    // it, once.
    assert_eq!(client.call(STAMP.key("d1"), &()).await.unwrap(), 1);
    assert_eq!(stamps.load(Ordering::SeqCst), 1);
    let durable = common::invocations(&engine, "Doc");
    assert_eq!(durable.len(), 1);
    assert_eq!(durable[0].status, InvocationStatus::Completed);
    // Known to write now: the next call goes durable at once.
    assert_eq!(client.call(STAMP.key("d1"), &()).await.unwrap(), 2);
    assert_eq!(invocations_of(&engine, "stamp"), 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_longer_than_the_inactivity_timeout_becomes_durable_and_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), Arc::default(), Duration::from_millis(100)).await;
    let client = engine.client();
    let waiting = start_and_ask_ready(&client).await;
    // Past the timeout the wait is a durable invocation, on disk.
    assert!(
        common::eventually(Duration::from_secs(5), || invocations_of(&engine, "ready")
            == 1)
        .await
    );
    assert_eq!(go(&client, "a while", waiting).await, "ready after a while");
    engine.shutdown().await;
}
