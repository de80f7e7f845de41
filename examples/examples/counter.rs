//! A virtual object: state per key, an exclusive `add` (one at a time per key) and a shared
//! `get` (reads committed state), several keys, and state that survives closing and reopening
//! the same data folder.
//!
//! Run it: `cargo run --example counter`

use std::error::Error;
use std::path::Path;

use zeroapp_engine::prelude::*;
use zeroapp_examples::Log;

/// The counter's handlers, typed: callers name them through these, and the compiler checks
/// what they send and what they read back.
const ADD: ObjectHandler<i64, i64> = ObjectHandler::new("Counter", "add");
const GET: ObjectHandler<(), i64> = ObjectHandler::new("Counter", "get");

/// Exclusive: at most one `add` runs per key at a time, so read-modify-write is safe.
async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
    let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
    ctx.set("total", &total)?;
    Ok(total)
}

/// Shared: reads the committed state, concurrently with anything else; cannot write.
async fn get(ctx: SharedObjectContext, (): ()) -> Result<i64, HandlerError> {
    Ok(ctx.get::<i64>("total").await?.unwrap_or(0))
}

async fn open(dir: &Path) -> Result<Engine, Box<dyn Error>> {
    let counter = VirtualObject::new("Counter")
        .exclusive(ADD, add)
        .shared(GET, get);
    Ok(Engine::builder().register(counter).open(dir).await?)
}

async fn demo(log: &Log) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;

    log.say(format!("opening the engine on {}", dir.path().display()));
    let engine = open(dir.path()).await?;
    let client = engine.client();
    for (key, amount) in [("apples", 3), ("pears", 10), ("apples", 4)] {
        let total = client.call(ADD.key(key), &amount).await?;
        log.say(format!("Counter/{key}/add({amount}) -> {total}"));
    }
    // Shutting down releases the data file: the folder can be opened again at once.
    engine.shutdown().await;
    log.say("shut down; reopening the same folder");

    let engine = open(dir.path()).await?;
    let client = engine.client();
    for key in ["apples", "pears", "plums"] {
        let total = client.call(GET.key(key), &()).await?;
        log.say(format!("after reopen: Counter/{key}/get -> {total}"));
    }
    engine.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    demo(&Log::default()).await
}

#[tokio::test]
async fn totals_are_per_key_and_survive_a_reopen() -> Result<(), Box<dyn Error>> {
    let log = Log::default();
    demo(&log).await?;
    log.assert_said(&[
        "Counter/apples/add(4) -> 7",
        "after reopen: Counter/apples/get -> 7",
        "after reopen: Counter/pears/get -> 10",
        "after reopen: Counter/plums/get -> 0",
    ]);
    Ok(())
}
