{
async fn remind(ctx: Context, hours: u64) -> Result<String, HandlerError> {
    ctx.sleep(Duration::from_secs(hours * 3600)).await?;
    Ok(format!("reminded after {hours} h"))
}

let test = TestEngine::start(|b: EngineBuilder| {
    b.register(Service::new("Reminders").handler("remind", remind))
}).await?;
let id = test.client().send(Target::service("Reminders", "remind"), &5u64).await?;
test.advance(Duration::from_secs(5 * 3600)).await;
let out: String = test.client().attach(id).await?;
assert_eq!(out, "reminded after 5 h");
}
