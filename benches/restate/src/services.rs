//! The `restate` bench's handlers on the engine: the twins of the ones in
//! `benches/restate/services/src/main.rs` (Restate's Rust SDK), on the same paths, doing the
//! same durable steps. The `scale_out` bench serves these very definitions to Restate clusters
//! through `zeroapp_restate::Deployment`.

use std::path::Path;
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::{Context, Definition, SharedWorkflowContext};

use zeroapp_benches::engine::three_steps;

/// W1's service (its handler is the `invocations` bench's [`three_steps`]).
pub const BENCH: &str = "Bench";
/// W2's virtual object.
pub const COUNTER: &str = "Counter";
/// W3's workflow.
pub const AWAKE_FLOW: &str = "AwakeFlow";
/// W4's workflow.
pub const APPROVAL: &str = "Approval";
/// W5's service.
pub const SLEEPER: &str = "Sleeper";
/// How long W5's handler sleeps.
pub const SLEEP: Duration = Duration::from_millis(100);

/// W2: adds `amount` to the key's state `total` and returns the new total.
pub async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
    let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
    ctx.set("total", &total)?;
    Ok(total)
}

/// W3's `run`: creates an awakeable, publishes its id in the durable promise `id`, and returns
/// the value the awakeable is resolved with.
pub async fn awake_run(ctx: WorkflowContext, _input: String) -> Result<String, HandlerError> {
    let (id, value) = ctx.awakeable::<String>();
    ctx.resolve_promise("id", &id).await?;
    Ok(value.await?)
}

/// W3's shared handler: waits for the awakeable's id (the promise `id`) and returns it.
pub async fn awakeable_id(
    ctx: SharedWorkflowContext,
    _input: String,
) -> Result<String, HandlerError> {
    Ok(ctx.promise::<String>("id").await?)
}

/// W4's `run`: returns the value of the durable promise `approval`.
pub async fn approval_run(ctx: WorkflowContext, _input: String) -> Result<String, HandlerError> {
    Ok(ctx.promise::<String>("approval").await?)
}

/// W4's shared handler: resolves the promise `approval` with `value`.
pub async fn approve(ctx: SharedWorkflowContext, value: String) -> Result<String, HandlerError> {
    ctx.resolve_promise("approval", &value).await?;
    Ok("ok".to_owned())
}

/// W5: a durable sleep of [`SLEEP`], then its input back.
pub async fn sleep(ctx: Context, input: String) -> Result<String, HandlerError> {
    ctx.sleep(SLEEP).await?;
    Ok(input)
}

/// Every handler of the bench, as registered with the engine ([`open_engine`]) and served to
/// Restate by the `scale_out` bench (`zeroapp_restate::Deployment`).
pub fn definitions() -> Vec<Definition> {
    vec![
        Service::new(BENCH)
            .handler(zeroapp_benches::engine::HANDLER, three_steps)
            .into(),
        VirtualObject::new(COUNTER).exclusive("add", add).into(),
        Workflow::new(AWAKE_FLOW)
            .run(awake_run)
            .shared("awakeable_id", awakeable_id)
            .into(),
        Workflow::new(APPROVAL)
            .run(approval_run)
            .shared("approve", approve)
            .into(),
        Service::new(SLEEPER).handler("sleep", sleep).into(),
    ]
}

/// Opens an engine in `dir` with every handler of the bench ([`definitions`]) registered.
pub async fn open_engine(dir: &Path) -> Result<Engine, String> {
    definitions()
        .into_iter()
        .fold(Engine::builder(), |builder, definition| {
            builder.register(definition)
        })
        .open(dir)
        .await
        .map_err(|e| format!("cannot open the engine: {e}"))
}
