async fn fulfil(ctx: WorkflowContext, order: String) -> Result<String, HandlerError> {
    // Version 2 charges tax. Invocations that charged before the deployment replay their
    // journal, where `charge` follows: `patched` answers false and they keep that path.
    // Those that reach this point for the first time now take the new one.
    let receipt: String = if ctx.patched("charge-with-tax").await? {
        ctx.run("charge with tax", || async { Ok("charged 120".to_owned()) }).await?
    } else {
        ctx.run("charge", || async { Ok("charged 100".to_owned()) }).await?
    };
    let _: String = ctx.promise("shipped").await?;
    Ok(format!("{order}: {receipt}, shipped"))
}
