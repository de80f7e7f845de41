//! A saga: booking a trip (flight, hotel, car), each step paired with a compensation. The car
//! rental fails with a terminal error, so the compensations registered so far run in reverse
//! order (car, hotel, flight) and the invocation fails with the car's error.
//!
//! Each compensation is registered *before* its step, so a step that took effect but crashed
//! before being journaled is undone too; compensations must tolerate undoing nothing.
//!
//! Run it: `cargo run --example saga`

use std::error::Error;
use std::future::{Ready, ready};

use zeroapp_engine::prelude::*;
use zeroapp_examples::Log;

/// A step or compensation for the demo: it only prints what it would do.
fn print(
    log: &Log,
    line: &str,
) -> impl FnMut() -> Ready<Result<(), HandlerError>> + Send + 'static {
    let (log, line) = (log.clone(), line.to_owned());
    move || {
        log.say(line.clone());
        ready(Ok(()))
    }
}

fn trips(log: Log) -> Service {
    Service::new("Trips").handler("book", move |ctx: Context, trip: String| {
        let log = log.clone();
        async move {
            let mut saga = Saga::new(&ctx);
            let booked = async {
                saga.compensate(
                    "cancel flight",
                    print(&log, "  compensate: cancel the flight"),
                );
                ctx.run("book flight", print(&log, "  step: flight booked"))
                    .await?;

                saga.compensate(
                    "cancel hotel",
                    print(&log, "  compensate: cancel the hotel"),
                );
                ctx.run("book hotel", print(&log, "  step: hotel booked"))
                    .await?;

                saga.compensate(
                    "cancel car",
                    print(&log, "  compensate: cancel the car (none was booked)"),
                );
                ctx.run("book car", || async {
                    // A terminal error: retrying cannot help, so the saga unwinds.
                    Err::<(), _>(TerminalError::new("no cars left").into())
                })
                .await?;
                Ok(format!("{trip} booked"))
            }
            .await;
            // On a terminal error (or a cancellation), run the compensations last-first.
            Ok(saga.finish(booked).await?)
        }
    })
}

async fn demo(log: &Log) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::builder()
        .register(trips(log.clone()))
        .open(dir.path())
        .await?;

    log.say("booking a trip to Lisbon");
    let outcome: Result<String, _> = engine
        .client()
        .call(Target::service("Trips", "book"), &"Lisbon")
        .await;
    match outcome {
        Ok(done) => log.say(format!("-> {done}")),
        Err(error) => log.say(format!("-> {error}")),
    }

    engine.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    demo(&Log::default()).await
}

#[tokio::test]
async fn a_failed_car_unwinds_the_trip_in_reverse() -> Result<(), Box<dyn Error>> {
    let log = Log::default();
    demo(&log).await?;
    let expected = [
        "booking a trip to Lisbon",
        "  step: flight booked",
        "  step: hotel booked",
        "  compensate: cancel the car (none was booked)",
        "  compensate: cancel the hotel",
        "  compensate: cancel the flight",
        "-> invocation failed: [500] no cars left",
    ];
    assert_eq!(log.lines(), expected);
    Ok(())
}
