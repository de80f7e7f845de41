{
use zeroapp_engine::prelude::*;

const ADD: ObjectHandler<i64, i64> = ObjectHandler::new("Counter", "add");

async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
    let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
    ctx.set("total", &total)?;
    Ok(total)
}

let engine = Engine::builder()
    .register(VirtualObject::new("Counter").exclusive(ADD, add))
    .open("./data")
    .await?;
let total = engine.client().call(ADD.key("apples"), &3).await?; // an i64, checked
}
