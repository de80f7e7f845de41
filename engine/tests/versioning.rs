//! Changing code with invocations in flight, with real processes: a child runs version 1 of a
//! workflow until an invocation waits on a promise past its `charge` step, and is SIGKILLed.
//! Then, on that data folder:
//!
//! * the replay gate refuses version 2 written as a plain rename of the step (the recorded
//!   invocation would meet another operation at entry 0), and accepts version 2 written with
//!   `ctx.patched`;
//! * a child runs the patched version 2: the invocation from version 1 finishes the old way,
//!   one started after the change the new way;
//! * the gate then refuses going back to version 1, whose code cannot replay the marker.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::{DATA, ROLE, SIDE, record, run_child_to_end, side_lines, spawn_child};
use zeroapp_engine::prelude::*;
use zeroapp_engine::{Engine, RecordedInvocation, ReplayReport};

const ORDER: WorkflowHandler<String, String> = WorkflowHandler::run("Order");

/// Version 1: charge, then wait to ship.
async fn order_v1(ctx: WorkflowContext, item: String) -> Result<String, HandlerError> {
    ctx.run("charge", || async { Ok(100u32) }).await?;
    let _: String = ctx.promise("ship").await?;
    Ok(format!("{item}: charged without tax"))
}

/// Version 2, unsafe: the step renamed outright.
async fn order_renamed(ctx: WorkflowContext, item: String) -> Result<String, HandlerError> {
    ctx.run("charge with tax", || async { Ok(120u32) }).await?;
    let _: String = ctx.promise("ship").await?;
    Ok(format!("{item}: charged with tax"))
}

/// Version 2, safe: the new step behind a version marker.
async fn order_v2(ctx: WorkflowContext, item: String) -> Result<String, HandlerError> {
    let how = if ctx.patched("tax").await? {
        ctx.run("charge with tax", || async { Ok(120u32) }).await?;
        "with tax"
    } else {
        ctx.run("charge", || async { Ok(100u32) }).await?;
        "without tax"
    };
    let _: String = ctx.promise("ship").await?;
    Ok(format!("{item}: charged {how}"))
}

fn version(name: &str) -> EngineBuilder {
    let workflow = Workflow::new("Order");
    let workflow = match name {
        "v1" => workflow.run(order_v1),
        "renamed" => workflow.run(order_renamed),
        "v2" => workflow.run(order_v2),
        other => panic!("no version {other}"),
    };
    common::builder().register(workflow)
}

/// The child's entry point: runs only when the parent sets the role.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let data = PathBuf::from(std::env::var(DATA).unwrap());
    let side = PathBuf::from(std::env::var(SIDE).unwrap());
    common::process::runtime().block_on(async move {
        match role.as_str() {
            // Starts the old order and waits to be killed once it waits to ship.
            "v1" => {
                let engine = common::open(version("v1"), &data).await;
                let id = engine
                    .client()
                    .send(ORDER.key("old"), &"lamp".to_owned())
                    .await
                    .unwrap();
                loop {
                    let journal = engine.client().journal(id).unwrap().unwrap_or_default();
                    if journal.len() >= 2 {
                        record(&side, "waiting");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            // Starts a new order, ships both, reports how each was charged.
            "v2" => {
                let engine = common::open(version("v2"), &data).await;
                let client = engine.client();
                client
                    .send(ORDER.key("new"), &"desk".to_owned())
                    .await
                    .unwrap();
                for key in ["old", "new"] {
                    loop {
                        let shipped = client
                            .resolve_promise("Order", key, "ship", &"now".to_owned())
                            .await;
                        // The new order's promise exists once its run has been created.
                        if shipped.is_ok() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let out: String = client.attach_workflow("Order", key).await.unwrap();
                    record(&side, &format!("{key}={out}"));
                }
                engine.shutdown().await;
                println!("CHILD DONE");
            }
            other => panic!("unknown role {other}"),
        }
    });
}

async fn gate(data: &Path, build: &str) -> ReplayReport {
    let recorded = Engine::read_recorded(data, Duration::from_secs(3600))
        .await
        .unwrap();
    // The exported form carries everything the gate needs.
    let exported = serde_json::to_string(&recorded).unwrap();
    let imported: Vec<RecordedInvocation> = serde_json::from_str(&exported).unwrap();
    version(build).check_replay(&imported).await.unwrap()
}

#[test]
fn a_patched_change_ships_while_older_invocations_finish_the_old_way() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let side = dir.path().join("side.log");

    // Version 1 runs until the order waits to ship, then dies.
    let mut child = spawn_child("v1", &data, &side, false);
    let started = Instant::now();
    while !side_lines(&side).contains(&"waiting".to_owned()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "v1 never reached the promise"
        );
        assert!(child.try_wait().unwrap().is_none(), "v1 exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let runtime = common::process::runtime();
    let renamed = runtime.block_on(gate(&data, "renamed"));
    assert_eq!(renamed.checked, 1);
    let finding = &renamed.incompatible[..];
    assert_eq!(finding.len(), 1, "{finding:?}");
    assert_eq!(finding[0].target.to_string(), "Order/old/run");
    assert_eq!(finding[0].entry, Some(0));
    assert_eq!(finding[0].expected, "run(\"charge\")");
    assert_eq!(finding[0].found, "run(\"charge with tax\")");
    assert!(
        finding[0].to_string().ends_with(
            "at journal entry 0: expected run(\"charge\"), found run(\"charge with tax\")"
        ),
        "{}",
        finding[0]
    );
    let patched = runtime.block_on(gate(&data, "v2"));
    assert!(patched.is_compatible(), "{:?}", patched.incompatible);

    // Version 2 takes over the folder.
    run_child_to_end("v2", &data, &side);
    let lines = side_lines(&side);
    eprintln!(
        "side file: {lines:?}; the gate refused the rename: {}",
        finding[0]
    );
    assert!(
        lines.contains(&"old=lamp: charged without tax".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"new=desk: charged with tax".to_owned()),
        "{lines:?}"
    );

    // Both finished recently: version 2 replays both; version 1 cannot replay the new one.
    let v2 = runtime.block_on(gate(&data, "v2"));
    assert_eq!((v2.checked, v2.is_compatible()), (2, true), "{v2:?}");
    let back = runtime.block_on(gate(&data, "v1"));
    assert_eq!(back.incompatible.len(), 1, "{back:?}");
    assert_eq!(back.incompatible[0].target.to_string(), "Order/new/run");
    assert_eq!(back.incompatible[0].expected, "patch(\"tax\")");
}
