//! Virtual objects: one exclusive handler per key at a time, in arrival order; shared handlers
//! read committed state; state operations.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use zeroapp_engine::prelude::*;

async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
    let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
    ctx.set("total", &total)?;
    Ok(total)
}

async fn total(ctx: SharedObjectContext, (): ()) -> Result<i64, HandlerError> {
    Ok(ctx.get::<i64>("total").await?.unwrap_or(0))
}

fn counter() -> VirtualObject {
    VirtualObject::new("Counter")
        .exclusive("add", add)
        .shared("total", total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_on_one_key_are_serialized() {
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(counter()), dir.path()).await;
    let client = engine.client();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .call::<_, i64>(Target::object("Counter", "hot", "add"), &1)
                .await
                .unwrap()
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=100).collect::<Vec<i64>>(),
        "every add saw a distinct total"
    );
    let total: i64 = client
        .call(Target::object("Counter", "hot", "total"), &())
        .await
        .unwrap();
    assert_eq!(total, 100);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_handlers_run_in_arrival_order_and_keys_are_independent() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let (o, r) = (order.clone(), running.clone());
    let object =
        VirtualObject::new("Log").exclusive("append", move |ctx: ObjectContext, n: u32| {
            let (order, running) = (o.clone(), r.clone());
            async move {
                assert_eq!(
                    running.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two exclusive handlers at once"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
                order.lock().unwrap().push(n);
                running.fetch_sub(1, Ordering::SeqCst);
                let mut log = ctx.get::<Vec<u32>>("log").await?.unwrap_or_default();
                log.push(n);
                ctx.set("log", &log)?;
                Ok(())
            }
        });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(object), dir.path()).await;
    let client = engine.client();
    let mut ids = Vec::new();
    for n in 0..20u32 {
        ids.push(
            client
                .send(Target::object("Log", "k", "append"), &n)
                .await
                .unwrap(),
        );
    }
    for id in ids {
        client.attach::<()>(id).await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    let state = engine.object_state("Log", "k").unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].0, "log");
    let log: Vec<u32> = serde_json::from_slice(&state[0].1).unwrap();
    assert_eq!(log, (0..20).collect::<Vec<_>>());
    assert!(engine.object_state("Log", "other").unwrap().is_empty());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_keys_clear_and_clear_all() {
    async fn fill(ctx: ObjectContext, (): ()) -> Result<Vec<String>, HandlerError> {
        ctx.set("b", &2)?;
        ctx.set("a", &1)?;
        ctx.set("c", &3)?;
        ctx.clear("b");
        let keys = ctx.state_keys().await?;
        Ok(keys)
    }
    async fn wipe(ctx: ObjectContext, (): ()) -> Result<Option<i32>, HandlerError> {
        ctx.clear_all();
        Ok(ctx.get::<i32>("a").await?)
    }
    let object = VirtualObject::new("Bag")
        .exclusive("fill", fill)
        .exclusive("wipe", wipe);
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(object), dir.path()).await;
    let client = engine.client();
    let keys: Vec<String> = client
        .call(Target::object("Bag", "x", "fill"), &())
        .await
        .unwrap();
    assert_eq!(keys, vec!["a", "c"]);
    let after: Option<i32> = client
        .call(Target::object("Bag", "x", "wipe"), &())
        .await
        .unwrap();
    assert_eq!(after, None);
    assert!(engine.object_state("Bag", "x").unwrap().is_empty());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_handlers_run_while_an_exclusive_one_holds_the_key() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let object = VirtualObject::new("Door")
        .exclusive("hold", move |ctx: ObjectContext, (): ()| {
            let gate = g.clone();
            async move {
                ctx.set("state", &"held")?;
                gate.notified().await;
                Ok(())
            }
        })
        .shared("peek", |ctx: SharedObjectContext, (): ()| async move {
            Ok(ctx.get::<String>("state").await?)
        });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(object), dir.path()).await;
    let client = engine.client();
    let hold = client
        .send(Target::object("Door", "d", "hold"), &())
        .await
        .unwrap();
    // The shared handler answers while `hold` is still running, and sees committed state only.
    let peeked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let seen: Option<String> = client
                .call(Target::object("Door", "d", "peek"), &())
                .await
                .unwrap();
            if seen.is_some() {
                return seen;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(peeked.as_deref(), Some("held"));
    gate.notify_one();
    client.attach::<()>(hold).await.unwrap();
    engine.shutdown().await;
}
