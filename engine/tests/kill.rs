//! Crash tests with real processes: this test binary re-executes itself as a child that runs the
//! engine, SIGKILLs it at random moments, restarts it on the same data folder, and finally checks
//! the engine's promises against what the child recorded in a side file.
//!
//! * `run_steps_survive_sigkill`: no invocation is lost, each finishes with the result it would
//!   have had without crashes, and a `run` step's journaled result is the last one its closure
//!   produced — a finished step never runs again.
//! * `counter_survives_sigkill_under_100_concurrent_callers`: every acknowledged `add` is counted
//!   once; the totals returned form exactly 1..=n: no lost and no doubled update.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use common::process::{
    DATA, ROLE, SIDE, kill_repeatedly, rand_u64, random_below, record, run_child_to_end, runtime,
    side_lines, spawn_child,
};

use zeroapp_engine::prelude::*;
use zeroapp_engine::{Engine, InvocationStatus};

/// Invocations of `Steps.work` the driver workflow sends.
const STEP_INVOCATIONS: u64 = 120;
/// Concurrent lanes (object keys) the step invocations are spread over.
const LANES: u64 = 3;
/// Kills at least, per test.
const MIN_KILLS: usize = 20;

// ---- the engine the child runs -------------------------------------------------------------

fn engine_builder(side: PathBuf) -> zeroapp_engine::EngineBuilder {
    let work = move |ctx: ObjectContext, i: u64| {
        let side = side.clone();
        async move {
            let mut values = Vec::new();
            for step in 0..3 {
                let side = side.clone();
                let value: u64 = ctx
                    .run(&format!("step{step}"), move || {
                        let side = side.clone();
                        async move {
                            let value = rand_u64();
                            record(&side, &format!("{i} {step} {value}"));
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            Ok(value)
                        }
                    })
                    .await?;
                values.push(value.to_string());
            }
            Ok(format!("{i}:{}", values.join(",")))
        }
    };
    let driver = |ctx: WorkflowContext, n: u64| async move {
        for i in 0..n {
            ctx.send(Target::object("Steps", (i % LANES).to_string(), "work"), &i)
                .await?;
        }
        Ok(n)
    };
    let add = |ctx: ObjectContext, amount: u64| async move {
        let total = ctx.get::<u64>("total").await?.unwrap_or(0) + amount;
        ctx.set("total", &total)?;
        Ok(total)
    };
    common::builder()
        .register(VirtualObject::new("Steps").exclusive("work", work))
        .register(Workflow::new("Driver").run(driver))
        .register(VirtualObject::new("Counter").exclusive("add", add))
}

fn unfinished(engine: &Engine, service: &str) -> usize {
    common::invocations(engine, service)
        .iter()
        .filter(|i| !i.status.is_finished())
        .count()
}

/// The child's entry point: runs only when the parent sets the role.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let data = PathBuf::from(std::env::var(DATA).unwrap());
    let side = PathBuf::from(std::env::var(SIDE).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let engine = common::open(engine_builder(side.clone()), &data).await;
        let client = engine.client();
        match role.as_str() {
            "steps" => {
                client
                    .send(Target::workflow("Driver", "main", "run"), &STEP_INVOCATIONS)
                    .await
                    .unwrap();
                while common::invocations(&engine, "Steps").len() < STEP_INVOCATIONS as usize
                    || unfinished(&engine, "Steps") > 0
                    || unfinished(&engine, "Driver") > 0
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            "counter" => {
                let mut callers = Vec::new();
                for _ in 0..100 {
                    let client = client.clone();
                    let side = side.clone();
                    callers.push(tokio::spawn(async move {
                        loop {
                            let total: u64 = client
                                .call(Target::object("Counter", "hot", "add"), &1u64)
                                .await
                                .unwrap();
                            record(&side, &format!("ack {total}"));
                        }
                    }));
                }
                for caller in callers {
                    let _ = caller.await;
                }
            }
            "drain" => {
                while unfinished(&engine, "Counter") > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            other => panic!("unknown role {other}"),
        }
        engine.shutdown().await;
    });
    println!("CHILD DONE");
}

#[test]
fn run_steps_survive_sigkill() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let side = dir.path().join("side.log");
    let landed = kill_repeatedly("steps", &data, &side, MIN_KILLS + 5, 200);
    assert!(
        landed >= MIN_KILLS,
        "only {landed} kills landed while the child ran"
    );
    run_child_to_end("steps", &data, &side);

    // What each run closure produced, in the order it produced it.
    let mut produced: HashMap<(u64, u32), Vec<u64>> = HashMap::new();
    for line in side_lines(&side) {
        let parts: Vec<u64> = line.split(' ').map(|p| p.parse().unwrap()).collect();
        let step = u32::try_from(parts[1]).unwrap();
        produced.entry((parts[0], step)).or_default().push(parts[2]);
    }
    let reruns = produced.values().map(|v| v.len() - 1).sum::<usize>();

    runtime().block_on(async {
        let engine = common::open(engine_builder(side.clone()), &data).await;
        let driver = common::invocations(&engine, "Driver");
        assert_eq!(driver.len(), 1, "the workflow ran once");
        assert_eq!(driver[0].status, InvocationStatus::Completed);
        let steps = common::invocations(&engine, "Steps");
        assert_eq!(
            steps.len(),
            STEP_INVOCATIONS as usize,
            "no invocation lost or doubled"
        );
        let mut inputs = BTreeSet::new();
        for info in &steps {
            assert_eq!(info.status, InvocationStatus::Completed, "{info:?}");
            let output: String =
                serde_json::from_slice(info.outcome.clone().unwrap().as_ref().unwrap()).unwrap();
            let (i, values) = output.split_once(':').unwrap();
            let i: u64 = i.parse().unwrap();
            assert!(inputs.insert(i), "input {i} ran as two invocations");
            for (step, value) in values.split(',').enumerate() {
                let value: u64 = value.parse().unwrap();
                let tries = &produced[&(i, u32::try_from(step).unwrap())];
                assert_eq!(
                    tries.last(),
                    Some(&value),
                    "invocation {i} step {step}: the journaled result is not the closure's last \
                     output {tries:?} (a finished step ran again, or replay returned another value)"
                );
            }
            let journal = engine.journal(info.id).unwrap().unwrap();
            assert_eq!(journal.iter().filter(|e| e.kind == "run").count(), 3);
        }
        assert_eq!(inputs, (0..STEP_INVOCATIONS).collect());
        println!(
            "kills: {landed}, invocations: {}, lost: 0, steps re-executed after a kill: {reruns}",
            steps.len()
        );
        engine.shutdown().await;
    });
}

#[test]
fn counter_survives_sigkill_under_100_concurrent_callers() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let side = dir.path().join("acks.log");
    let mut kills = 0;
    for _ in 0..3 {
        let mut child = spawn_child("counter", &data, &side, false);
        std::thread::sleep(Duration::from_millis(400 + random_below(600)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the counter child stopped by itself"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    run_child_to_end("drain", &data, &side);

    let acked: Vec<u64> = side_lines(&side)
        .iter()
        .map(|l| l.strip_prefix("ack ").unwrap().parse().unwrap())
        .collect();
    let acked_set: BTreeSet<u64> = acked.iter().copied().collect();
    assert_eq!(
        acked.len(),
        acked_set.len(),
        "two callers were acknowledged the same total"
    );

    runtime().block_on(async {
        let engine = common::open(engine_builder(side.clone()), &data).await;
        let adds = common::invocations(&engine, "Counter");
        let mut totals = BTreeMap::new();
        for info in &adds {
            assert_eq!(info.status, InvocationStatus::Completed, "{info:?}");
            let total: u64 =
                serde_json::from_slice(info.outcome.clone().unwrap().as_ref().unwrap()).unwrap();
            assert!(
                totals.insert(total, info.id).is_none(),
                "total {total} seen twice"
            );
        }
        let count = adds.len() as u64;
        assert_eq!(
            totals.keys().copied().collect::<Vec<_>>(),
            (1..=count).collect::<Vec<_>>(),
            "the totals returned are exactly 1..=n"
        );
        let state = engine.object_state("Counter", "hot").unwrap();
        let total: u64 = serde_json::from_slice(&state[0].1).unwrap();
        assert_eq!(
            total, count,
            "the stored total counts every accepted add once"
        );
        assert!(acked_set.is_subset(&totals.keys().copied().collect()));
        assert!(acked.len() as u64 <= count);
        println!(
            "kills: {kills}, adds accepted: {count}, acknowledged before a kill: {}, lost: 0",
            acked.len()
        );
        engine.shutdown().await;
    });
}
