//! Crash tests of the waiting primitives with real processes (see `common::process`): a sleep
//! interrupted by SIGKILLs fires after the restart and never before its deadline; an invocation
//! killed while waiting on an awakeable completes when the awakeable is resolved after the
//! restart; a cancelled saga runs its compensations in reverse order exactly once although the
//! process is killed while they run.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::process::{
    DATA, ROLE, SIDE, kill_repeatedly, record, run_child_to_end, runtime, side_lines, spawn_child,
};
use zeroapp_engine::prelude::*;
use zeroapp_engine::{Clock, Engine, InvocationStatus, SendOptions, SystemClock};

/// Sleeping invocations, and awakeable waiters.
const SLEEPERS: u64 = 20;
const WAITERS: usize = 10;

/// Sleeps `ms`, then reports (deadline, the wall-clock time a step ran after waking).
async fn nap(ctx: Context, ms: u64) -> Result<(u64, u64), HandlerError> {
    let start = ctx
        .run("start", || async { Ok(SystemClock.now_ms()) })
        .await?;
    ctx.sleep(Duration::from_millis(ms)).await?;
    let woke = ctx
        .run("woke", || async { Ok(SystemClock.now_ms()) })
        .await?;
    Ok((start + ms, woke))
}

fn engine_builder(side: PathBuf) -> zeroapp_engine::EngineBuilder {
    let publish = side.clone();
    let trip_side = side;
    common::builder()
        .inactivity_timeout(Duration::from_millis(100))
        .register(Service::new("Sleeper").handler("nap", nap))
        .register(VirtualObject::new("Waiter").exclusive(
            "wait",
            move |ctx: ObjectContext, (): ()| {
                let side = publish.clone();
                async move {
                    let (id, value) = ctx.awakeable::<String>();
                    let key = ctx.key().to_owned();
                    // Published through a step so that the id is journaled before it leaves.
                    ctx.run("publish", move || {
                        let line = format!("id {key} {id}");
                        let side = side.clone();
                        async move {
                            record(&side, &line);
                            Ok(())
                        }
                    })
                    .await?;
                    Ok(format!("got {}", value.await?))
                }
            },
        ))
        .register(
            Workflow::new("Trip").run(move |ctx: WorkflowContext, (): ()| {
                let side = trip_side.clone();
                async move {
                    let mut saga = Saga::new(&ctx);
                    let result = async {
                        for step in ["flight", "hotel", "car"] {
                            let undo = side.clone();
                            saga.compensate(&format!("undo {step}"), move || {
                                let undo = undo.clone();
                                async move {
                                    record(&undo, &format!("undo {step}"));
                                    // Long enough for kills to land while compensating.
                                    tokio::time::sleep(Duration::from_millis(150)).await;
                                    Ok(())
                                }
                            });
                            let done = side.clone();
                            ctx.run(&format!("book {step}"), move || {
                                let done = done.clone();
                                async move {
                                    record(&done, &format!("book {step}"));
                                    Ok(())
                                }
                            })
                            .await?;
                        }
                        ctx.promise::<()>("go").await?;
                        Ok(())
                    }
                    .await;
                    Ok(saga.finish(result).await?)
                }
            }),
        )
}

fn all_finished(engine: &Engine, service: &str, expected: usize) -> bool {
    let all = common::invocations(engine, service);
    all.len() == expected && all.iter().all(|i| i.status.is_finished())
}

async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The child's entry point: runs only when the parent sets the role.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let data = PathBuf::from(std::env::var(DATA).unwrap());
    let side = PathBuf::from(std::env::var(SIDE).unwrap());
    runtime().block_on(async move {
        let engine = common::open(engine_builder(side.clone()), &data).await;
        let client = engine.client();
        match role.as_str() {
            "sleepers" => {
                // Every run submits all of them: the idempotency keys make the repeats (and the
                // rest of a submission a kill cut short) map to one invocation each.
                for i in 0..SLEEPERS {
                    let ms = 300 + i * 100;
                    let options = SendOptions::default().idempotency_key(format!("nap-{i}"));
                    client
                        .send_with(Target::service("Sleeper", "nap"), &ms, options)
                        .await
                        .unwrap();
                }
                until(|| all_finished(&engine, "Sleeper", SLEEPERS as usize)).await;
            }
            "waiters" => {
                for i in 0..WAITERS {
                    let target = Target::object("Waiter", format!("w{i}"), "wait");
                    client.send(target, &()).await.unwrap();
                }
                // Wait forever: the parent kills this process once every id is published.
                std::future::pending::<()>().await;
            }
            "resolve" => {
                for line in side_lines(&side) {
                    let mut parts = line.split(' ').skip(1);
                    let (key, id) = (parts.next().unwrap(), parts.next().unwrap());
                    // A re-run of the publishing step may have written the line twice.
                    match client.resolve_awakeable(id, &key).await {
                        Ok(()) | Err(zeroapp_engine::CallError::AlreadyCompleted(_)) => {}
                        Err(e) => panic!("resolving {id}: {e}"),
                    }
                }
                until(|| all_finished(&engine, "Waiter", WAITERS)).await;
            }
            "saga" => {
                let id = client.submit_workflow("Trip", "t", &()).await.unwrap();
                until(|| side_lines(&side).iter().any(|l| l == "book car")).await;
                client.cancel(id).await.unwrap();
                until(|| all_finished(&engine, "Trip", 1)).await;
            }
            other => panic!("unknown role {other}"),
        }
        engine.shutdown().await;
    });
    println!("CHILD DONE");
}

fn is_parent() -> bool {
    std::env::var(ROLE).is_err()
}

#[test]
fn a_sleep_survives_sigkills_and_never_fires_early() {
    if !is_parent() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let side = dir.path().join("side.log");
    let landed = kill_repeatedly("sleepers", &data, &side, 6, 600);
    assert!(landed >= 4, "only {landed} kills landed");
    run_child_to_end("sleepers", &data, &side);

    runtime().block_on(async {
        let engine = common::open(engine_builder(side.clone()), &data).await;
        let naps = common::invocations(&engine, "Sleeper");
        assert_eq!(naps.len(), SLEEPERS as usize);
        for info in naps {
            assert_eq!(info.status, InvocationStatus::Completed, "{info:?}");
            let (deadline, woke): (u64, u64) =
                serde_json::from_slice(info.outcome.unwrap().as_ref().unwrap()).unwrap();
            assert!(
                woke >= deadline,
                "{}: woke {} ms early",
                info.id,
                deadline - woke
            );
        }
        println!("kills: {landed}, sleepers: {SLEEPERS}, early: 0");
        engine.shutdown().await;
    });
}

#[test]
fn an_awakeable_resolved_after_a_sigkill_completes_its_invocation() {
    if !is_parent() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let side = dir.path().join("ids.log");
    let mut child = spawn_child("waiters", &data, &side, false);
    let started = std::time::Instant::now();
    while side_lines(&side).len() < WAITERS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ids never published"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the waiters child stopped by itself"
    );
    child.kill().unwrap(); // SIGKILL while every invocation waits on its awakeable
    child.wait().unwrap();

    run_child_to_end("resolve", &data, &side);
    runtime().block_on(async {
        let engine = common::open(engine_builder(side.clone()), &data).await;
        for info in common::invocations(&engine, "Waiter") {
            let key = info.target.key.clone().unwrap();
            let output: String =
                serde_json::from_slice(info.outcome.unwrap().as_ref().unwrap()).unwrap();
            assert_eq!(output, format!("got {key}"));
        }
        engine.shutdown().await;
    });
}

#[test]
fn a_cancelled_saga_compensates_in_reverse_order_once_across_sigkills() {
    if !is_parent() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let side = dir.path().join("saga.log");
    let mut landed = 0;
    // Kill the saga child again and again, later each time, through booking and compensating.
    for round in 0..8 {
        landed += kill_repeatedly("saga", &data, &side, 1, 150 + round * 60);
    }
    run_child_to_end("saga", &data, &side);

    // A closure cut off by a kill before its result was journaled runs again: collapse repeats.
    let mut effects: Vec<String> = side_lines(&side);
    effects.dedup();
    assert_eq!(
        effects,
        [
            "book flight",
            "book hotel",
            "book car",
            "undo car",
            "undo hotel",
            "undo flight"
        ],
        "kills landed: {landed}; raw side file: {:?}",
        side_lines(&side)
    );
    runtime().block_on(async {
        let engine = common::open(engine_builder(side.clone()), &data).await;
        let trip = common::invocations(&engine, "Trip").pop().unwrap();
        match &trip.outcome {
            Some(Err(e)) => assert_eq!(e.code(), TerminalError::CANCELLED),
            other => panic!("expected cancelled, got {other:?}"),
        }
        let journal = engine.journal(trip.id).unwrap().unwrap();
        let undos: Vec<&str> = journal
            .iter()
            .filter_map(|e| e.name.as_deref())
            .filter(|n| n.starts_with("undo"))
            .collect();
        assert_eq!(
            undos,
            ["undo car", "undo hotel", "undo flight"],
            "each journaled once"
        );
        println!(
            "kills: {landed}, compensation closures run: {}",
            side_lines(&side)
                .iter()
                .filter(|l| l.starts_with("undo"))
                .count()
        );
        engine.shutdown().await;
    });
}
