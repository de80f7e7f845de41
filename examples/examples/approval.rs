//! A human-approval workflow with a deadline: the workflow's `run` races a durable promise
//! ("decision") against a durable timer with `select`. One expense is approved from outside
//! with `Client::resolve_promise`; another gets no answer and is rejected when its deadline
//! passes. Both the promise and the timer survive restarts.
//!
//! Run it: `cargo run --example approval`

use std::error::Error;
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_examples::Log;

/// Waits for a decision for at most `deadline_ms` milliseconds.
async fn run(ctx: WorkflowContext, deadline_ms: u64) -> Result<String, HandlerError> {
    let decision = ctx.promise::<bool>("decision");
    let deadline = ctx.sleep(Duration::from_millis(deadline_ms));
    // Which one won is journaled, so a replay takes the same branch.
    let outcome = match ctx.select(&[&decision, &deadline]).await? {
        0 if decision.await? => "approved",
        0 => "rejected by the manager",
        _ => "rejected: no decision before the deadline",
    };
    Ok(outcome.to_owned())
}

async fn demo(log: &Log) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::builder()
        .register(Workflow::new("Approval").run(run))
        .open(dir.path())
        .await?;
    let client = engine.client();

    client
        .submit_workflow("Approval", "expense-1", &5_000u64)
        .await?;
    log.say("Approval/expense-1 started, deadline 5 s");
    client
        .submit_workflow("Approval", "expense-2", &300u64)
        .await?;
    log.say("Approval/expense-2 started, deadline 300 ms");

    tokio::time::sleep(Duration::from_millis(100)).await;
    client
        .resolve_promise("Approval", "expense-1", "decision", &true)
        .await?;
    log.say("a manager approved expense-1 (resolve_promise)");

    for key in ["expense-1", "expense-2"] {
        let outcome: String = client.attach_workflow("Approval", key).await?;
        log.say(format!("Approval/{key} -> {outcome}"));
    }

    engine.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    demo(&Log::default()).await
}

#[tokio::test]
async fn one_is_approved_the_other_times_out() -> Result<(), Box<dyn Error>> {
    let log = Log::default();
    demo(&log).await?;
    log.assert_said(&[
        "Approval/expense-1 -> approved",
        "Approval/expense-2 -> rejected: no decision before the deadline",
    ]);
    Ok(())
}
