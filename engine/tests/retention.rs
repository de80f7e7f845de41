//! Idempotency keys and retention: one invocation per (target, key) while it is retained; a
//! reused key with another input is a conflict; after the retention period the invocation, its
//! journal, its idempotency key and a finished workflow's state are purged; under a steady load
//! the data file stops growing.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::{CallError, DATA_FILE, Engine, ManualClock, SendOptions};

const RETENTION: Duration = Duration::from_secs(3600);

fn builder(clock: &ManualClock, charges: &Arc<AtomicU32>) -> zeroapp_engine::EngineBuilder {
    let charges = charges.clone();
    common::builder()
        .clock(clock.clone())
        .retention(RETENTION)
        .register(
            Service::new("Payments").handler("charge", move |ctx: Context, cents: u32| {
                let charges = charges.clone();
                async move {
                    let n = ctx
                        .run("charge", move || {
                            let charges = charges.clone();
                            async move { Ok(charges.fetch_add(1, Ordering::SeqCst) + 1) }
                        })
                        .await?;
                    Ok(format!("charge #{n}: {cents}"))
                }
            }),
        )
        .register(
            Service::new("Steps").handler("three", |ctx: Context, i: u64| async move {
                let mut sum = 0;
                for step in 0..3u64 {
                    sum += ctx
                        .run(&format!("step {step}"), move || async move { Ok(i + step) })
                        .await?;
                }
                Ok(sum)
            }),
        )
        .register(
            Workflow::new("Once").run(|ctx: WorkflowContext, (): ()| async move {
                let n = ctx.get::<u32>("runs").await?.unwrap_or(0) + 1;
                ctx.set("runs", &n)?;
                Ok(n)
            }),
        )
}

fn key(k: &str) -> SendOptions {
    SendOptions::default().idempotency_key(k)
}

/// Moves the clock past the retention and waits until the purge timers have fired.
async fn expire(engine: &Engine, clock: &ManualClock) {
    clock.advance(RETENTION + Duration::from_millis(1));
    let purged = common::eventually(Duration::from_secs(20), || {
        engine.timers_stored().unwrap() == 0
    })
    .await;
    assert!(purged, "{} timers left", engine.timers_stored().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_maps_to_one_invocation_and_rejects_another_input() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let charges = Arc::new(AtomicU32::new(0));
    let engine = common::open(builder(&clock, &charges), dir.path()).await;
    let client = engine.client();
    let charge = Target::service("Payments", "charge");

    let first: String = client
        .call_with(charge.clone(), &500u32, key("order-1"))
        .await
        .unwrap();
    let second: String = client
        .call_with(charge.clone(), &500u32, key("order-1"))
        .await
        .unwrap();
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("charge #1: 500", "charge #1: 500")
    );
    let a = client
        .send_with(charge.clone(), &500u32, key("order-1"))
        .await
        .unwrap();
    let b = client
        .send_with(charge.clone(), &500u32, key("order-1"))
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(charges.load(Ordering::SeqCst), 1, "one execution");

    match client
        .send_with(charge.clone(), &999u32, key("order-1"))
        .await
    {
        Err(CallError::Conflict(message)) => assert!(message.contains("order-1"), "{message}"),
        other => panic!("another input under the same key must conflict, got {other:?}"),
    }
    let other: String = client
        .call_with(charge.clone(), &500u32, key("order-2"))
        .await
        .unwrap();
    assert_eq!(other, "charge #2: 500");
    assert_eq!(charges.load(Ordering::SeqCst), 2);

    // After the retention period the key is free again: a new invocation runs.
    expire(&engine, &clock).await;
    assert!(client.status(a).unwrap().is_none(), "purged");
    let again: String = client
        .call_with(charge, &999u32, key("order-1"))
        .await
        .unwrap();
    assert_eq!(again, "charge #3: 999");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_invocations_are_kept_for_the_retention_period_then_purged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let charges = Arc::new(AtomicU32::new(0));
    let engine = common::open(builder(&clock, &charges), dir.path()).await;
    let client = engine.client();
    let id = client
        .send(Target::service("Steps", "three"), &1u64)
        .await
        .unwrap();
    assert_eq!(client.attach::<u64>(id).await.unwrap(), 6);
    assert_eq!(
        client.submit_workflow("Once", "w", &()).await.unwrap(),
        client.workflow_invocation("Once", "w").unwrap()
    );
    assert_eq!(client.attach_workflow::<u32>("Once", "w").await.unwrap(), 1);

    clock.advance(RETENTION - Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        engine.journal(id).unwrap().unwrap().len(),
        3,
        "kept within the period"
    );
    assert_eq!(client.attach_workflow::<u32>("Once", "w").await.unwrap(), 1);

    expire(&engine, &clock).await;
    assert!(engine.journal(id).unwrap().is_none(), "journal purged");
    assert!(client.status(id).unwrap().is_none(), "record purged");
    assert_eq!(engine.journal_entries_stored().unwrap(), 0);
    assert!(
        engine.object_state("Once", "w").unwrap().is_empty(),
        "workflow state purged"
    );
    // The workflow key can run again, from empty state.
    client.submit_workflow("Once", "w", &()).await.unwrap();
    assert_eq!(client.attach_workflow::<u32>("Once", "w").await.unwrap(), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_steady_load_the_data_file_stops_growing() {
    const ROUNDS: usize = 10;
    const PER_ROUND: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let charges = Arc::new(AtomicU32::new(0));
    let engine = common::open(builder(&clock, &charges), dir.path()).await;
    let client = engine.client();
    let mut sizes = Vec::new();
    for round in 0..ROUNDS {
        let calls = (0..PER_ROUND).map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call::<_, u64>(Target::service("Steps", "three"), &i)
                    .await
            })
        });
        for call in calls {
            call.await.unwrap().unwrap();
        }
        expire(&engine, &clock).await;
        sizes.push(std::fs::metadata(dir.path().join(DATA_FILE)).unwrap().len());
        println!("round {round}: {} bytes", sizes[round]);
    }
    // redb reuses the pages purges free: the second half of the rounds needs no more room than
    // the first (give or take page-allocation noise). Without purging it would grow every round.
    let first_half = sizes[..ROUNDS / 2].iter().max().unwrap();
    let second_half = sizes[ROUNDS / 2..].iter().max().unwrap();
    assert!(
        *second_half <= first_half + first_half / 2,
        "the file kept growing: {sizes:?}"
    );
    engine.shutdown().await;
}
