//! Workflows and durable promises: `run` once per key under concurrent submits; promises
//! completed at most once, from `run`, from shared handlers and from outside; attach and output
//! by key.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use zeroapp_engine::CallError;
use zeroapp_engine::prelude::*;

/// Counts its runs, announces "started" through a promise, waits for "approval".
fn approval(runs: Arc<AtomicU32>) -> Workflow {
    Workflow::new("Approval")
        .run(move |ctx: WorkflowContext, order: String| {
            let runs = runs.clone();
            async move {
                ctx.run("count", move || {
                    let runs = runs.clone();
                    async move { Ok(runs.fetch_add(1, Ordering::SeqCst)) }
                })
                .await?;
                ctx.set("status", &"waiting for approval")?;
                ctx.resolve_promise("started", &order).await?;
                let approved: bool = ctx.promise("approval").await?;
                ctx.set("status", &if approved { "approved" } else { "declined" })?;
                Ok(format!(
                    "{order}: {}",
                    if approved { "approved" } else { "declined" }
                ))
            }
        })
        .shared(
            "approve",
            |ctx: SharedWorkflowContext, yes: bool| async move {
                match ctx.resolve_promise("approval", &yes).await {
                    Ok(()) => Ok("done".to_owned()),
                    Err(e) => Ok(format!("refused {}", e.code())),
                }
            },
        )
        .shared("started", |ctx: SharedWorkflowContext, (): ()| async move {
            Ok(ctx.promise::<String>("started").await?)
        })
        .shared("peek", |ctx: SharedWorkflowContext, (): ()| async move {
            Ok(ctx.peek_promise::<bool>("approval").await?)
        })
        .shared("status", |ctx: SharedWorkflowContext, (): ()| async move {
            Ok(ctx.get::<String>("status").await?)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_of_one_key_run_once_and_all_attach_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let engine = common::open(
        common::builder().register(approval(runs.clone())),
        dir.path(),
    )
    .await;
    let client = engine.client();

    let submits = (0..16).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.submit_workflow("Approval", "o-1", &"o-1").await })
    });
    let mut ids = Vec::new();
    for submit in submits {
        ids.push(submit.await.unwrap().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every submit maps to the one run: {ids:?}");
    assert_eq!(
        client.workflow_invocation("Approval", "o-1").unwrap(),
        ids[0]
    );

    let started: String = client
        .call(Target::workflow("Approval", "o-1", "started"), &())
        .await
        .unwrap();
    assert_eq!(started, "o-1");
    client
        .resolve_promise("Approval", "o-1", "approval", &true)
        .await
        .unwrap();
    let out: String = client.attach_workflow("Approval", "o-1").await.unwrap();
    assert_eq!(out, "o-1: approved");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "run executed once");

    // Submitting again after it finished attaches to the finished run.
    let again = client
        .submit_workflow("Approval", "o-1", &"o-1")
        .await
        .unwrap();
    assert_eq!(again, ids[0]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promise_is_completed_once_and_the_first_value_stands() {
    let dir = tempfile::tempdir().unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let engine = common::open(common::builder().register(approval(runs)), dir.path()).await;
    let client = engine.client();
    client
        .submit_workflow("Approval", "o-2", &"o-2")
        .await
        .unwrap();

    let peek = Target::workflow("Approval", "o-2", "peek");
    assert_eq!(
        client
            .call::<_, Option<bool>>(peek.clone(), &())
            .await
            .unwrap(),
        None
    );

    // First from a shared handler, then from outside, then from a shared handler again.
    let approve = Target::workflow("Approval", "o-2", "approve");
    assert_eq!(
        client
            .call::<_, String>(approve.clone(), &false)
            .await
            .unwrap(),
        "done"
    );
    match client
        .resolve_promise("Approval", "o-2", "approval", &true)
        .await
    {
        Err(CallError::AlreadyCompleted(_)) => {}
        other => panic!("a second completion must be refused, got {other:?}"),
    }
    assert_eq!(
        client.call::<_, String>(approve, &true).await.unwrap(),
        "refused 409"
    );

    let out: String = client.attach_workflow("Approval", "o-2").await.unwrap();
    assert_eq!(out, "o-2: declined", "the first completion stands");
    assert_eq!(
        client.workflow_output_raw("Approval", "o-2").unwrap(),
        Some(br#""o-2: declined""#.to_vec())
    );
    assert_eq!(
        client.call::<_, Option<bool>>(peek, &()).await.unwrap(),
        Some(false)
    );
    assert_eq!(
        client
            .peek_promise::<bool>("Approval", "o-2", "approval")
            .unwrap(),
        Some(false)
    );
    let status: Option<String> = client
        .call(Target::workflow("Approval", "o-2", "status"), &())
        .await
        .unwrap();
    assert_eq!(status.as_deref(), Some("declined"));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promise_resolved_before_run_awaits_it_is_kept_and_rejections_fail_the_await() {
    let dir = tempfile::tempdir().unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let engine = common::open(common::builder().register(approval(runs)), dir.path()).await;
    let client = engine.client();

    client
        .resolve_promise("Approval", "early", "approval", &true)
        .await
        .unwrap();
    client
        .submit_workflow("Approval", "early", &"early")
        .await
        .unwrap();
    let out: String = client.attach_workflow("Approval", "early").await.unwrap();
    assert_eq!(out, "early: approved");

    client
        .submit_workflow("Approval", "rejected", &"rejected")
        .await
        .unwrap();
    client
        .reject_promise("Approval", "rejected", "approval", "no stock")
        .await
        .unwrap();
    match client
        .attach_workflow::<String>("Approval", "rejected")
        .await
    {
        Err(CallError::Failed(e)) => assert_eq!(e.message(), "no stock"),
        other => panic!("a rejected promise fails the await, got {other:?}"),
    }
    match client
        .attach_workflow::<String>("Approval", "never-submitted")
        .await
    {
        Err(CallError::UnknownWorkflow(_)) => {}
        other => panic!("unknown key, got {other:?}"),
    }
    match client.resolve_promise("NoSuchWorkflow", "k", "p", &1).await {
        Err(CallError::UnknownTarget(_)) => {}
        other => panic!("unknown workflow, got {other:?}"),
    }
    engine.shutdown().await;
}
