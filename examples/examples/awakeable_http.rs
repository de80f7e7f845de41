//! An awakeable completed by an outside HTTP call. A handler creates an awakeable, hands its id
//! to "the bank" in a `run` step, and waits; the engine's HTTP ingress (cargo feature `http`)
//! runs on a local port, and the bank answers with a real
//! `POST /restate/awakeables/{id}/resolve` whose JSON body becomes the awaited value.
//!
//! Run it: `cargo run --example awakeable_http`

use std::error::Error;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeroapp_engine::http::{self, HttpLimits};
use zeroapp_engine::prelude::*;
use zeroapp_examples::Log;

/// Asks the bank to confirm a payment and waits for the bank's answer.
fn payments(log: Log, bank: mpsc::UnboundedSender<String>) -> Service {
    Service::new("Payments").handler("pay", move |ctx: Context, amount: u64| {
        let (log, bank) = (log.clone(), bank.clone());
        async move {
            let (id, confirmation) = ctx.awakeable::<String>();
            // Handing the id out is a side effect: in a `run` step, so a replay does not repeat it.
            ctx.run("ask the bank", move || {
                let (log, bank, id) = (log.clone(), bank.clone(), id.clone());
                async move {
                    log.say(format!(
                        "handler: asking the bank to confirm {amount} EUR, awakeable {id}"
                    ));
                    bank.send(id)?;
                    Ok(())
                }
            })
            .await?;
            let receipt = confirmation.await?;
            Ok(format!("paid {amount} EUR, receipt {receipt}"))
        }
    })
}

/// POSTs a JSON `body` to `path` with hyper; returns the status.
async fn post(addr: SocketAddr, path: &str, body: &str) -> Result<u16, Box<dyn Error>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

async fn demo(log: &Log) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let (bank, mut bank_inbox) = mpsc::unbounded_channel();
    let engine = Engine::builder()
        .register(payments(log.clone(), bank))
        .open(dir.path())
        .await?;

    // Serve the ingress on a free local port.
    let limits = HttpLimits::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        listener,
        http::ingress(&engine, &limits),
        limits,
        stop.clone(),
    ));
    log.say(format!("ingress listening on http://{addr}"));

    let client = engine.client();
    let payment = client
        .send(Target::service("Payments", "pay"), &42u64)
        .await?;
    log.say(format!("started {payment}; it waits for the bank"));

    // The bank, outside the engine, gets the id and answers over HTTP.
    let id = bank_inbox
        .recv()
        .await
        .ok_or("the handler never asked the bank")?;
    let status = post(
        addr,
        &format!("/restate/awakeables/{id}/resolve"),
        r#""rcpt-7""#,
    )
    .await?;
    log.say(format!(
        "bank: POST /restate/awakeables/{{id}}/resolve -> {status}"
    ));

    let outcome: String = client.attach(payment).await?;
    log.say(format!("-> {outcome}"));

    stop.cancel();
    server.await??;
    engine.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    demo(&Log::default()).await
}

#[tokio::test]
async fn an_http_post_wakes_the_handler() -> Result<(), Box<dyn Error>> {
    let log = Log::default();
    demo(&log).await?;
    log.assert_said(&[
        "bank: POST /restate/awakeables/{id}/resolve -> 202",
        "-> paid 42 EUR, receipt rcpt-7",
    ]);
    Ok(())
}
