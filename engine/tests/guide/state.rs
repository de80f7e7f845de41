/// What the handlers need from outside the engine, shared by every invocation.
#[derive(Clone)]
struct Mailer {
    outbox: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn welcome(mailer: Mailer, ctx: Context, email: String) -> Result<(), HandlerError> {
    ctx.run("send the welcome mail", move || {
        // A step may run again (a retry): each execution takes its own handle.
        let (mailer, email) = (mailer.clone(), email.clone());
        async move {
            mailer.outbox.lock().unwrap().push(email);
            Ok(())
        }
    })
    .await?;
    Ok(())
}

fn signup(mailer: Mailer) -> Service {
    Service::new("Signup").handler("welcome", with_state(mailer, welcome))
}
