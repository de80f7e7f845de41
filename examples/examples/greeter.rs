//! A service with a durable `run` step, called through the in-process `Client`.
//!
//! `run` executes its closure once and journals the result; if the invocation were replayed
//! (after a crash, or a retry), the journaled value would be returned and the closure skipped.
//!
//! Run it: `cargo run --example greeter`

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroapp_engine::prelude::*;
use zeroapp_examples::Log;

/// The handler, typed: its callers and its registration name it through this.
const GREET: ServiceHandler<String, String> = ServiceHandler::new("Greeter", "greet");

/// What the greeter needs from outside the engine, shared by every invocation.
#[derive(Clone)]
struct Visitors {
    log: Log,
    count: Arc<AtomicU64>,
}

/// Counts visitors in a `run` step (a side effect outside the engine).
async fn greet(visitors: Visitors, ctx: Context, name: String) -> Result<String, HandlerError> {
    let number: u64 = ctx
        .run("count visitor", move || {
            // The step may run again (a retry): each execution takes its own handle.
            let visitors = visitors.clone();
            async move {
                let n = visitors.count.fetch_add(1, Ordering::SeqCst) + 1;
                visitors
                    .log
                    .say(format!("  [run step] counted visitor #{n}"));
                Ok(n)
            }
        })
        .await?;
    Ok(format!("Hello, {name}! You are visitor #{number}."))
}

fn greeter(log: Log) -> Service {
    let visitors = Visitors {
        log,
        count: Arc::default(),
    };
    // `with_state` hands each invocation its own clone of the dependencies.
    Service::new("Greeter").handler(GREET, with_state(visitors, greet))
}

async fn demo(log: &Log) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::builder()
        .register(greeter(log.clone()))
        .open(dir.path())
        .await?;
    let client = engine.client();

    for name in ["Ada", "Grace"] {
        log.say(format!("calling Greeter/greet with {name:?}"));
        let greeting = client.call(GREET, &name.to_owned()).await?;
        log.say(format!("-> {greeting}"));
    }

    engine.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    demo(&Log::default()).await
}

#[tokio::test]
async fn greets_each_caller_with_a_journaled_number() -> Result<(), Box<dyn Error>> {
    let log = Log::default();
    demo(&log).await?;
    log.assert_said(&[
        "-> Hello, Ada! You are visitor #1.",
        "-> Hello, Grace! You are visitor #2.",
    ]);
    Ok(())
}
