{
let (id, payment) = ctx.awakeable::<String>();
ctx.run("ask the gateway", move || { let id = id.clone(); async move { /* send id out */ Ok(()) } }).await?;
let receipt = payment.await?; // resolved by client.resolve_awakeable(&id, &"rcpt") or by
                              // POST /restate/awakeables/{id}/resolve on the ingress
}
