{
let mut saga = Saga::new(&ctx);
let result = async {
    saga.compensate("cancel hotel", || async { Ok(()) });  // before the step it undoes
    ctx.run("book hotel", || async { Ok(()) }).await?;
    saga.compensate_call("cancel shipment", Target::service("Shipping", "cancel"), &"order-17");
    Ok(())
}
.await;
saga.finish(result).await?;
}
