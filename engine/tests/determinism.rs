//! Replay and non-determinism: changed handler code meets an old journal.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use zeroapp_engine::InvocationStatus;
use zeroapp_engine::prelude::*;

/// Version 1 runs step "a", then fails retryably forever, so the invocation stays in flight.
fn version_one() -> Service {
    Service::new("Evolving").handler("go", |ctx: Context, (): ()| async move {
        ctx.run("a", || async { Ok(1u32) }).await?;
        Err::<u32, _>(HandlerError::retryable("stuck until the next deploy"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_code_on_replay_fails_with_a_journal_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(version_one()), dir.path()).await;
    let id = engine
        .client()
        .send(Target::service("Evolving", "go"), &())
        .await
        .unwrap();
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || {
            engine.journal(id).unwrap().is_some_and(|j| !j.is_empty())
        })
        .await
    );
    engine.shutdown().await;

    // Version 2 renamed the step: the journal says "a", the code says "b".
    let version_two = Service::new("Evolving").handler("go", |ctx: Context, (): ()| async move {
        Ok(ctx.run("b", || async { Ok(2u32) }).await?)
    });
    let engine = common::open(common::builder().register(version_two), dir.path()).await;
    let error = engine.client().attach::<u32>(id).await.unwrap_err();
    let terminal = error.as_terminal().expect("terminal");
    assert_eq!(terminal.code(), TerminalError::JOURNAL_MISMATCH);
    assert!(terminal.message().contains("run(\"b\")"), "{terminal}");
    assert!(terminal.message().contains("run(\"a\")"), "{terminal}");
    let info = engine.client().status(id).unwrap().unwrap();
    assert_eq!(info.status, InvocationStatus::Failed);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_code_resumes_after_a_restart_without_rerunning_finished_steps() {
    let runs = Arc::new(AtomicU32::new(0));
    let make = |fail_after_step: bool, runs: Arc<AtomicU32>| {
        Service::new("Resumable").handler("go", move |ctx: Context, (): ()| {
            let runs = runs.clone();
            async move {
                let first: u32 = ctx
                    .run("first", move || {
                        let runs = runs.clone();
                        async move { Ok(runs.fetch_add(1, Ordering::SeqCst)) }
                    })
                    .await?;
                if fail_after_step {
                    return Err(HandlerError::retryable("crash stand-in"));
                }
                let id = ctx.uuid().await?;
                let again = ctx.uuid().await?;
                assert_ne!(id, again);
                Ok(first)
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(
        common::builder().register(make(true, runs.clone())),
        dir.path(),
    )
    .await;
    let id = engine
        .client()
        .send(Target::service("Resumable", "go"), &())
        .await
        .unwrap();
    // Wait for the step's result to be committed, not just for its closure to have run: a
    // shutdown between the two would rightly run the step again.
    let client = engine.client();
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || {
            client.journal(id).unwrap().is_some_and(|journal| {
                journal
                    .iter()
                    .any(|entry| entry.kind == "run" && entry.result.is_some())
            })
        })
        .await
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    engine.shutdown().await;

    let engine = common::open(
        common::builder().register(make(false, runs.clone())),
        dir.path(),
    )
    .await;
    let first: u32 = engine.client().attach(id).await.unwrap();
    assert_eq!(first, 0);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the journaled step did not run again"
    );
    let kinds: Vec<_> = engine
        .journal(id)
        .unwrap()
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["run", "uuid", "uuid"]);
    engine.shutdown().await;
}
