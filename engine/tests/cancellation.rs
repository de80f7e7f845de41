//! Cancellation and kill: a cancelled invocation's next await fails with "cancelled", so its
//! saga compensations run in reverse order, once; cancellation reaches the callees it waits on; a
//! queued invocation ends at once; a kill stops everything without compensations; a compensation
//! that keeps failing is recorded, not dropped.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::{CallError, Cancellation, Engine, InvocationId, InvocationStatus};

type Log = Arc<Mutex<Vec<String>>>;

fn log(log: &Log, line: impl Into<String>) {
    log.lock().unwrap().push(line.into());
}

/// Three steps with compensations, then a wait on the "go" promise, then a last step.
fn trip(events: Log, failing_compensation: bool) -> Workflow {
    Workflow::new("Trip").run(move |ctx: WorkflowContext, (): ()| {
        let events = events.clone();
        async move {
            let mut saga = Saga::new(&ctx)
                .with_policy(RetryPolicy::exponential(Duration::from_millis(1)).max_attempts(3));
            let result = async {
                for step in ["flight", "hotel", "car"] {
                    let undo = events.clone();
                    saga.compensate(&format!("cancel {step}"), move || {
                        let undo = undo.clone();
                        async move {
                            log(&undo, format!("undo {step}"));
                            if failing_compensation && step == "hotel" {
                                return Err(HandlerError::retryable("the hotel does not answer"));
                            }
                            Ok(())
                        }
                    });
                    let done = events.clone();
                    ctx.run(&format!("book {step}"), move || {
                        let done = done.clone();
                        async move {
                            log(&done, format!("book {step}"));
                            Ok(())
                        }
                    })
                    .await?;
                }
                ctx.promise::<()>("go").await?;
                let last = events.clone();
                ctx.run("pay", move || {
                    let last = last.clone();
                    async move {
                        log(&last, "pay");
                        Ok(())
                    }
                })
                .await?;
                Ok(())
            }
            .await;
            Ok(saga.finish(result).await?)
        }
    })
}

/// Calls `Trip/{key}/run` and returns what it got.
async fn parent(ctx: Context, key: String) -> Result<String, HandlerError> {
    match ctx
        .call::<_, ()>(Target::workflow("Trip", key.as_str(), "run"), &())
        .await
    {
        Ok(()) => Ok("trip done".into()),
        Err(e) => Err(e.into()),
    }
}

/// Calls the trip; when cancelled, compensates with another call, which must not be cancelled.
async fn call_then_undo(ctx: Context, key: String) -> Result<String, HandlerError> {
    match ctx
        .call::<_, ()>(Target::workflow("Trip", key.as_str(), "run"), &())
        .await
    {
        Ok(()) => Ok("trip done".into()),
        Err(e) if e.code() == TerminalError::CANCELLED => {
            let undone: String = ctx.call(Target::service("Parent", "undo"), &()).await?;
            Ok(format!("{}, then {undone}", e.message()))
        }
        Err(e) => Err(e.into()),
    }
}

async fn undo(_ctx: Context, (): ()) -> Result<String, HandlerError> {
    Ok("undone".into())
}

async fn hold(ctx: ObjectContext, (): ()) -> Result<(), HandlerError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

fn engine_builder(events: &Log, failing_compensation: bool) -> zeroapp_engine::EngineBuilder {
    common::builder()
        .register(trip(events.clone(), failing_compensation))
        .register(
            Service::new("Parent")
                .handler("go", parent)
                .handler("call_then_undo", call_then_undo)
                .handler("undo", undo),
        )
        .register(VirtualObject::new("Lock").exclusive("hold", hold))
}

/// The compensations that ran, in order.
fn undone(events: &Log) -> Vec<String> {
    let events = events.lock().unwrap();
    events
        .iter()
        .filter(|l| l.starts_with("undo"))
        .cloned()
        .collect()
}

async fn wait_for(events: &Log, line: &str) {
    let found = common::eventually(Duration::from_secs(10), || {
        events.lock().unwrap().iter().any(|l| l == line)
    })
    .await;
    assert!(found, "never saw {line:?} in {:?}", events.lock().unwrap());
}

fn info(engine: &Engine, id: InvocationId) -> zeroapp_engine::InvocationInfo {
    engine.client().status(id).unwrap().unwrap()
}

fn failure(engine: &Engine, id: InvocationId) -> TerminalError {
    match info(engine, id).outcome {
        Some(Err(e)) => e,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_saga_runs_its_compensations_in_reverse_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let events: Log = Arc::default();
    let engine = common::open(engine_builder(&events, false), dir.path()).await;
    let client = engine.client();
    let id = client.submit_workflow("Trip", "t1", &()).await.unwrap();
    wait_for(&events, "book car").await;

    client.cancel(id).await.unwrap();
    match client.attach::<()>(id).await {
        Err(CallError::Failed(e)) => {
            assert_eq!(e.code(), TerminalError::CANCELLED);
            assert_eq!(e.message(), "cancelled");
        }
        other => panic!("expected cancelled, got {other:?}"),
    }
    assert_eq!(
        *events.lock().unwrap(),
        [
            "book flight",
            "book hotel",
            "book car",
            "undo car",
            "undo hotel",
            "undo flight"
        ]
    );
    assert_eq!(info(&engine, id).cancellation, Cancellation::Delivered);
    // Cancelling again, or a finished invocation, changes nothing.
    client.cancel(id).await.unwrap();
    assert_eq!(failure(&engine, id).message(), "cancelled");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_reaches_the_callee_a_caller_waits_on() {
    let dir = tempfile::tempdir().unwrap();
    let events: Log = Arc::default();
    let engine = common::open(
        engine_builder(&events, false).inactivity_timeout(Duration::from_millis(30)),
        dir.path(),
    )
    .await;
    let client = engine.client();
    let caller = client
        .send(Target::service("Parent", "go"), &"t2")
        .await
        .unwrap();
    wait_for(&events, "book car").await;
    // Let both suspend: cancellation must wake suspended invocations too.
    let suspended = common::eventually(Duration::from_secs(10), || {
        info(&engine, caller).status == InvocationStatus::Suspended
    })
    .await;
    assert!(suspended);

    client.cancel(caller).await.unwrap();
    let callee = client.workflow_invocation("Trip", "t2").unwrap();
    assert!(matches!(
        client.attach::<()>(callee).await,
        Err(CallError::Failed(_))
    ));
    assert!(matches!(
        client.attach::<String>(caller).await,
        Err(CallError::Failed(_))
    ));
    assert_eq!(failure(&engine, callee).code(), TerminalError::CANCELLED);
    assert_eq!(failure(&engine, caller).code(), TerminalError::CANCELLED);
    assert_eq!(info(&engine, callee).cancellation, Cancellation::Delivered);
    let undone = undone(&events);
    assert_eq!(undone, ["undo car", "undo hotel", "undo flight"]);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_gets_one_cancellation_and_can_call_again_to_compensate() {
    let dir = tempfile::tempdir().unwrap();
    let events: Log = Arc::default();
    let engine = common::open(engine_builder(&events, false), dir.path()).await;
    let client = engine.client();
    for round in 0..5 {
        let key = format!("u{round}");
        let caller = client
            .send(Target::service("Parent", "call_then_undo"), &key)
            .await
            .unwrap();
        wait_for(&events, "book car").await;
        events.lock().unwrap().clear();
        client.cancel(caller).await.unwrap();
        let output: String = client.attach(caller).await.unwrap();
        assert_eq!(output, "cancelled, then undone");
        match client.attach_workflow::<()>("Trip", &key).await {
            Err(CallError::Failed(e)) => assert_eq!(e.code(), TerminalError::CANCELLED),
            other => panic!("the callee is cancelled too, got {other:?}"),
        }
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_stops_at_once_without_compensations_and_reaches_callees() {
    let dir = tempfile::tempdir().unwrap();
    let events: Log = Arc::default();
    let engine = common::open(engine_builder(&events, false), dir.path()).await;
    let client = engine.client();
    let caller = client
        .send(Target::service("Parent", "go"), &"t3")
        .await
        .unwrap();
    wait_for(&events, "book car").await;

    client.kill(caller).await.unwrap();
    let callee = client.workflow_invocation("Trip", "t3").unwrap();
    for id in [caller, callee] {
        let error = failure(&engine, id);
        assert_eq!((error.code(), error.message()), (409, "killed"));
        assert_eq!(info(&engine, id).cancellation, Cancellation::Killed);
    }
    // Even once the promise it waited for is resolved, nothing more runs.
    client
        .resolve_promise("Trip", "t3", "go", &())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = events.lock().unwrap().clone();
    assert_eq!(events, ["book flight", "book hotel", "book car"]);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_invocation_cancelled_before_it_starts_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let events: Log = Arc::default();
    let engine = common::open(engine_builder(&events, false), dir.path()).await;
    let client = engine.client();
    let holder = client
        .send(Target::object("Lock", "k", "hold"), &())
        .await
        .unwrap();
    let queued = client
        .send(Target::object("Lock", "k", "hold"), &())
        .await
        .unwrap();
    assert_eq!(info(&engine, queued).status, InvocationStatus::Pending);
    client.cancel(queued).await.unwrap();
    assert_eq!(failure(&engine, queued).code(), TerminalError::CANCELLED);
    assert!(
        !info(&engine, holder).status.is_finished(),
        "the holder runs on"
    );
    match client.cancel("inv_ffffffffffffffff".parse().unwrap()).await {
        Err(CallError::UnknownInvocation(_)) => {}
        other => panic!("unknown invocation, got {other:?}"),
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensation_that_keeps_failing_is_recorded_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let events: Log = Arc::default();
    let engine = common::open(engine_builder(&events, true), dir.path()).await;
    let client = engine.client();
    let id = client.submit_workflow("Trip", "t5", &()).await.unwrap();
    wait_for(&events, "book car").await;
    client
        .reject_promise("Trip", "t5", "go", "trip refused")
        .await
        .unwrap();

    let error = match client.attach::<()>(id).await {
        Err(CallError::Failed(e)) => e,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert!(error.message().starts_with("trip refused"), "{error}");
    assert!(
        error.message().contains("cancel hotel"),
        "names the failed compensation: {error}"
    );
    let undone = undone(&events);
    assert_eq!(
        undone,
        [
            "undo car",
            "undo hotel",
            "undo hotel",
            "undo hotel",
            "undo flight"
        ]
    );
    let journal = engine.journal(id).unwrap().unwrap();
    let hotel = journal
        .iter()
        .find(|e| e.name.as_deref() == Some("cancel hotel"))
        .unwrap();
    assert!(
        matches!(hotel.result, Some(Err(_))),
        "journaled as failed: {hotel:?}"
    );
    engine.shutdown().await;
}
