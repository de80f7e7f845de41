//! Awakeables: completed from outside or from another handler; a completion that arrives before
//! the await is kept; a second completion is refused and changes nothing; forged or malformed ids
//! are refused before anything is written; many waiting invocations suspend and all resume.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use zeroapp_engine::prelude::*;
use zeroapp_engine::{CallError, Engine, InvocationStatus};

/// Publishes an awakeable id in state "id", passes `gate` (a run step that waits for the test),
/// then awaits the awakeable.
fn waiter(gate: Arc<Semaphore>) -> VirtualObject {
    VirtualObject::new("Waiter")
        .exclusive("wait", move |ctx: ObjectContext, (): ()| {
            let gate = gate.clone();
            async move {
                let (id, value) = ctx.awakeable::<String>();
                ctx.set("id", &id)?;
                ctx.run("gate", move || {
                    let gate = gate.clone();
                    async move {
                        gate.acquire().await?.forget();
                        Ok(())
                    }
                })
                .await?;
                Ok(format!("got {}", value.await?))
            }
        })
        .exclusive("wait_now", |ctx: ObjectContext, (): ()| async move {
            let (id, value) = ctx.awakeable::<String>();
            ctx.set("id", &id)?;
            Ok(format!("got {}", value.await?))
        })
}

/// Resolves the awakeable whose id it is given, from a handler.
async fn resolver(ctx: Context, id: String) -> Result<String, HandlerError> {
    match ctx.resolve_awakeable(&id, &"from a handler").await {
        Ok(()) => Ok("resolved".into()),
        Err(e) => Ok(format!("refused: {} {}", e.code(), e.message())),
    }
}

fn builder(gate: &Arc<Semaphore>) -> zeroapp_engine::EngineBuilder {
    common::builder()
        .register(waiter(gate.clone()))
        .register(Service::new("Resolver").handler("resolve", resolver))
}

async fn published_id(engine: &Engine, key: &str) -> String {
    let mut id = None;
    assert!(
        common::eventually(Duration::from_secs(10), || {
            id = engine
                .object_state("Waiter", key)
                .unwrap()
                .into_iter()
                .find(|(k, _)| k == "id")
                .map(|(_, v)| serde_json::from_slice::<String>(&v).unwrap());
            id.is_some()
        })
        .await
    );
    id.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_before_the_await_is_kept_and_a_second_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let engine = common::open(builder(&gate), dir.path()).await;
    let client = engine.client();
    let inv = client
        .send(Target::object("Waiter", "early", "wait"), &())
        .await
        .unwrap();
    let id = published_id(&engine, "early").await;

    client.resolve_awakeable(&id, &"first").await.unwrap();
    match client.resolve_awakeable(&id, &"second").await {
        Err(CallError::AlreadyCompleted(_)) => {}
        other => panic!("a second completion must be refused, got {other:?}"),
    }
    match client.reject_awakeable(&id, "too late").await {
        Err(CallError::AlreadyCompleted(_)) => {}
        other => panic!("a rejection after the resolve must be refused, got {other:?}"),
    }
    gate.add_permits(1); // only now does the handler await
    assert_eq!(client.attach::<String>(inv).await.unwrap(), "got first");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_ids_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let engine = common::open(builder(&gate), dir.path()).await;
    let client = engine.client();
    let inv = client
        .send(Target::object("Waiter", "forged", "wait_now"), &())
        .await
        .unwrap();
    let id = published_id(&engine, "forged").await;
    let journal_before = engine.journal(inv).unwrap().unwrap();

    // Same invocation and index, another secret: one flipped hex digit at the end.
    let mut forged = id.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for bad in [forged.as_str(), "awk_", "not an id", &id[..id.len() - 1]] {
        match client.resolve_awakeable(bad, &"x").await {
            Err(CallError::UnknownAwakeable(_)) => {}
            other => panic!("{bad:?} must be refused, got {other:?}"),
        }
    }
    assert_eq!(engine.journal(inv).unwrap().unwrap(), journal_before);
    assert!(!client.status(inv).unwrap().unwrap().status.is_finished());

    client.resolve_awakeable(&id, &"genuine").await.unwrap();
    assert_eq!(client.attach::<String>(inv).await.unwrap(), "got genuine");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_resolve_awakeables_and_learn_of_a_second_completion() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let engine = common::open(builder(&gate), dir.path()).await;
    let client = engine.client();
    let inv = client
        .send(Target::object("Waiter", "h", "wait_now"), &())
        .await
        .unwrap();
    let id = published_id(&engine, "h").await;
    let resolve = Target::service("Resolver", "resolve");
    assert_eq!(
        client
            .call::<_, String>(resolve.clone(), &id)
            .await
            .unwrap(),
        "resolved"
    );
    assert_eq!(
        client.attach::<String>(inv).await.unwrap(),
        "got from a handler"
    );
    let again: String = client.call(resolve.clone(), &id).await.unwrap();
    assert!(again.starts_with("refused: 409"), "{again}");
    let garbage: String = client.call(resolve, &"awk_nope").await.unwrap();
    assert!(garbage.starts_with("refused: 400"), "{garbage}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiting_invocations_suspend_then_all_resume_when_resolved() {
    const WAITERS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let engine = common::open(
        builder(&gate).inactivity_timeout(Duration::from_millis(50)),
        dir.path(),
    )
    .await;
    let client = engine.client();
    let mut invocations = Vec::new();
    for i in 0..WAITERS {
        let key = format!("k{i}");
        let inv = client
            .send(Target::object("Waiter", key.as_str(), "wait_now"), &())
            .await
            .unwrap();
        invocations.push((key, inv));
    }
    let all_suspended = common::eventually(Duration::from_secs(30), || {
        common::invocations(&engine, "Waiter")
            .iter()
            .all(|i| i.status == InvocationStatus::Suspended)
    })
    .await;
    assert!(all_suspended, "every waiting invocation suspends");

    for (key, _) in &invocations {
        let id = published_id(&engine, key).await;
        client.resolve_awakeable(&id, key).await.unwrap();
    }
    for (key, inv) in invocations {
        let output: String = client.attach(inv).await.unwrap();
        assert_eq!(output, format!("got {key}"));
    }
    engine.shutdown().await;
}
