{
let decision = ctx.promise::<bool>("decision");
let deadline = ctx.sleep(Duration::from_secs(24 * 3600));
let approved = match ctx.select(&[&decision, &deadline]).await? {
    0 => decision.await?,
    _ => false, // no answer in time
};
}
