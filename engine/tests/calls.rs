//! Calls and sends between handlers, workflows once per key, and introspection.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::{InvocationFilter, InvocationStatus};

async fn double(_ctx: Context, n: i64) -> Result<i64, HandlerError> {
    Ok(n * 2)
}

async fn refuse(_ctx: Context, (): ()) -> Result<(), HandlerError> {
    Err(TerminalError::with_code(422, "refused").into())
}

async fn record(ctx: ObjectContext, n: i64) -> Result<(), HandlerError> {
    let mut seen = ctx.get::<Vec<i64>>("seen").await?.unwrap_or_default();
    seen.push(n);
    ctx.set("seen", &seen)?;
    Ok(())
}

async fn orchestrate(ctx: Context, n: i64) -> Result<(i64, String), HandlerError> {
    let doubled: i64 = ctx.call(Target::service("Math", "double"), &n).await?;
    ctx.send(Target::object("Log", "main", "record"), &doubled)
        .await?;
    let refused = ctx
        .call::<_, ()>(Target::service("Math", "refuse"), &())
        .await
        .unwrap_err();
    Ok((doubled, refused.message().to_owned()))
}

fn services() -> zeroapp_engine::EngineBuilder {
    common::builder()
        .register(
            Service::new("Math")
                .handler("double", double)
                .handler("refuse", refuse),
        )
        .register(VirtualObject::new("Log").exclusive("record", record))
        .register(Service::new("Orchestrator").handler("go", orchestrate))
        .register(
            Workflow::new("Signup")
                .run(|ctx: WorkflowContext, email: String| async move {
                    let n = ctx.rand_u64().await?;
                    ctx.set("email", &email)?;
                    Ok(n)
                })
                .shared("email", |ctx: SharedWorkflowContext, (): ()| async move {
                    Ok(ctx.get::<String>("email").await?)
                }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_return_results_and_errors_and_sends_run_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(services(), dir.path()).await;
    let (doubled, refused): (i64, String) = engine
        .client()
        .call(Target::service("Orchestrator", "go"), &21)
        .await
        .unwrap();
    assert_eq!((doubled, refused.as_str()), (42, "refused"));
    assert!(
        common::eventually(Duration::from_secs(10), || {
            engine.object_state("Log", "main").unwrap().len() == 1
        })
        .await
    );
    let log = engine.object_state("Log", "main").unwrap();
    assert_eq!(
        serde_json::from_slice::<Vec<i64>>(&log[0].1).unwrap(),
        vec![42]
    );

    let orchestrator = &common::invocations(&engine, "Orchestrator")[0];
    let journal = engine.journal(orchestrator.id).unwrap().unwrap();
    let kinds: Vec<_> = journal.iter().map(|e| (e.kind, e.name.clone())).collect();
    assert_eq!(
        kinds,
        vec![
            ("call", Some("Math/double".to_owned())),
            ("send", Some("Log/main/record".to_owned())),
            ("call", Some("Math/refuse".to_owned())),
        ]
    );
    assert_eq!(journal[0].result, Some(Ok(b"42".to_vec())));
    let completed = engine
        .list_invocations(&InvocationFilter {
            status: Some(InvocationStatus::Completed),
            ..InvocationFilter::default()
        })
        .unwrap();
    assert_eq!(completed.len(), 3, "orchestrator, double, record");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_once_per_key_and_later_submits_attach() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(services(), dir.path()).await;
    let client = engine.client();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .call::<_, u64>(
                    Target::workflow("Signup", "ada", "run"),
                    &format!("ada{i}@example.org"),
                )
                .await
                .unwrap()
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "one run, one result: {results:?}"
    );
    assert_eq!(common::invocations(&engine, "Signup").len(), 1);
    let email: Option<String> = client
        .call(Target::workflow("Signup", "ada", "email"), &())
        .await
        .unwrap();
    assert!(email.is_some_and(|e| e.starts_with("ada")));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_waiting_on_a_call_suspends_and_resumes_when_the_result_lands() {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let g = gate.clone();
    let slow = Service::new("Slow").handler("wait", move |_ctx: Context, (): ()| {
        let gate = g.clone();
        async move {
            let _permit = gate
                .acquire()
                .await
                .map_err(|e| HandlerError::retryable(e.to_string()))?;
            Ok(7)
        }
    });
    let caller = Service::new("Caller").handler("go", |ctx: Context, (): ()| async move {
        let n: i64 = ctx.call(Target::service("Slow", "wait"), &()).await?;
        Ok(n + 1)
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(
        common::builder()
            .register(slow)
            .register(caller)
            .inactivity_timeout(Duration::from_millis(20)),
        dir.path(),
    )
    .await;
    let id = engine
        .client()
        .send(Target::service("Caller", "go"), &())
        .await
        .unwrap();
    assert!(
        common::eventually(Duration::from_secs(10), || {
            engine.client().status(id).unwrap().unwrap().status == InvocationStatus::Suspended
        })
        .await,
        "the waiting caller suspends"
    );
    gate.add_permits(1);
    let n: i64 = engine.client().attach(id).await.unwrap();
    assert_eq!(n, 8);
    engine.shutdown().await;
}
