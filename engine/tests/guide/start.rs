use zeroapp_engine::prelude::*;

// Each handler's service, name, input and output, declared once: registration and every call
// go through these, and the compiler checks both against the handler.
const GREET: ServiceHandler<String, String> = ServiceHandler::new("Greeter", "greet");
const ADD: ObjectHandler<i64, i64> = ObjectHandler::new("Counter", "add");

async fn greet(ctx: Context, name: String) -> Result<String, HandlerError> {
    let n: u64 = ctx.run("count visitor", || async { Ok(42) }).await?;
    Ok(format!("Hello, {name}! You are visitor {n}."))
}

async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
    let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
    ctx.set("total", &total)?;
    Ok(total)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::builder()
        .register(Service::new("Greeter").handler(GREET, greet))
        .register(VirtualObject::new("Counter").exclusive(ADD, add))
        .open("./data")
        .await?;
    let client = engine.client();
    let hello = client.call(GREET, &"Ada".to_owned()).await?;
    let total = client.call(ADD.key("apples"), &3).await?;
    println!("{hello} {total}");
    // By name, as HTTP callers do: an untyped target, checked when the call is made.
    let again: i64 = client.call(Target::object("Counter", "apples", "add"), &1).await?;
    println!("{again}");
    engine.shutdown().await;
    Ok(())
}
