//! The `restate` bench's handlers (benches/restate/src/comparison.rs), written with Restate's Rust SDK, served
//! over HTTP/2 to a real Restate server. Each one does what its twin in
//! `zeroapp_benches_restate::services` does on the engine, on the same paths:
//!
//! * `Bench/three_steps` (W1): three `run` steps returning small strings.
//! * `Counter/{key}/add` (W2): adds its input to the key's state `total` and returns it.
//! * `AwakeFlow/{key}/run` (W3): creates an awakeable, publishes its id in the durable promise
//!   `id`, and returns the awakeable's value; `AwakeFlow/{key}/awakeable_id` (shared) awaits
//!   that promise, so a client learns the id without polling.
//! * `Approval/{key}/run` (W4): returns the value of the durable promise `approval`;
//!   `Approval/{key}/approve` (shared) resolves it.
//! * `Sleeper/sleep` (W5): a durable 100 ms sleep.
//!
//! Usage: `zeroapp-restate-services 127.0.0.1:PORT`; it serves until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use restate_sdk::prelude::*;

/// W1.
struct Bench;

#[service]
impl Bench {
    #[handler]
    async fn three_steps(&self, ctx: Context<'_>, input: String) -> HandlerResult<String> {
        let a: String = ctx
            .run(|| async { Ok("alpha".to_owned()) })
            .name("a")
            .await?;
        let b: String = ctx
            .run(|| async { Ok("bravo".to_owned()) })
            .name("b")
            .await?;
        let c: String = ctx
            .run(|| async { Ok("charlie".to_owned()) })
            .name("c")
            .await?;
        Ok(format!("{input}:{a}-{b}-{c}"))
    }
}

/// W2.
struct Counter;

#[object]
impl Counter {
    #[handler]
    async fn add(&self, ctx: ObjectContext<'_>, amount: i64) -> HandlerResult<i64> {
        let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
        ctx.set("total", total);
        Ok(total)
    }
}

/// W3.
struct AwakeFlow;

#[workflow]
impl AwakeFlow {
    #[handler]
    async fn run(&self, ctx: WorkflowContext<'_>, _input: String) -> HandlerResult<String> {
        let (id, value) = ctx.awakeable::<String>();
        ctx.resolve_promise::<String>("id", id);
        Ok(value.await?)
    }

    #[handler]
    async fn awakeable_id(
        &self,
        ctx: SharedWorkflowContext<'_>,
        _input: String,
    ) -> HandlerResult<String> {
        Ok(ctx.promise::<String>("id").await?)
    }
}

/// W4.
struct Approval;

#[workflow]
impl Approval {
    #[handler]
    async fn run(&self, ctx: WorkflowContext<'_>, _input: String) -> HandlerResult<String> {
        Ok(ctx.promise::<String>("approval").await?)
    }

    #[handler]
    async fn approve(
        &self,
        ctx: SharedWorkflowContext<'_>,
        value: String,
    ) -> HandlerResult<String> {
        ctx.resolve_promise::<String>("approval", value);
        Ok("ok".to_owned())
    }
}

/// W5.
struct Sleeper;

#[service]
impl Sleeper {
    #[handler]
    async fn sleep(&self, ctx: Context<'_>, input: String) -> HandlerResult<String> {
        ctx.sleep(Duration::from_millis(100)).await?;
        Ok(input)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9080".to_owned())
        .parse()?;
    let endpoint = Endpoint::builder()
        .bind(Bench)
        .bind(Counter)
        .bind(AwakeFlow)
        .bind(Approval)
        .bind(Sleeper)
        .build();
    HttpServer::new(endpoint).listen_and_serve(address).await;
    Ok(())
}
