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

/// The greeter: counts visitors in a `run` step (a side effect outside the engine).
fn greeter(log: Log) -> Service {
    let visitors = Arc::new(AtomicU64::new(0));
    Service::new("Greeter").handler("greet", move |ctx: Context, name: String| {
        let (log, visitors) = (log.clone(), visitors.clone());
        async move {
            let number: u64 = ctx
                .run("count visitor", move || {
                    let (log, visitors) = (log.clone(), visitors.clone());
                    async move {
                        let n = visitors.fetch_add(1, Ordering::SeqCst) + 1;
                        log.say(format!("  [run step] counted visitor #{n}"));
                        Ok(n)
                    }
                })
                .await?;
            Ok(format!("Hello, {name}! You are visitor #{number}."))
        }
    })
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
        let greeting: String = client
            .call(Target::service("Greeter", "greet"), &name)
            .await?;
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
