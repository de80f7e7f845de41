//! Durable timers: a handler that `sleep`s, a `send_after` from a handler, and a delayed send
//! from the client (`SendOptions::delay`). Each timer is journaled with its deadline, so it
//! survives a restart (firing at once if overdue) and never fires early.
//!
//! Run it: `cargo run --example reminders`

use std::error::Error;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use zeroapp_engine::SendOptions;
use zeroapp_engine::prelude::*;
use zeroapp_examples::Log;

fn reminders(log: Log, start: Instant, fired: mpsc::UnboundedSender<()>) -> Service {
    let log2 = log.clone();
    Service::new("Reminders")
        // Prints the reminder it is given, with the time since the example started.
        .handler("remind", move |_ctx: Context, text: String| {
            let (log, fired) = (log.clone(), fired.clone());
            async move {
                let ms = start.elapsed().as_millis();
                log.say(format!("[{ms:>5} ms] reminder: {text}"));
                fired.send(())?;
                Ok(())
            }
        })
        // Sleeps 200 ms, then schedules a reminder 300 ms later.
        .handler("schedule", move |ctx: Context, (): ()| {
            let log = log2.clone();
            async move {
                ctx.sleep(Duration::from_millis(200)).await?;
                let ms = start.elapsed().as_millis();
                log.say(format!("[{ms:>5} ms] sleep(200 ms) finished"));
                let target = Target::service("Reminders", "remind");
                let text = "send_after(300 ms) from a handler";
                ctx.send_after(target, &text, Duration::from_millis(300))
                    .await?;
                Ok(())
            }
        })
}

async fn demo(log: &Log) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    let (fired, mut reminders_fired) = mpsc::unbounded_channel();
    let engine = Engine::builder()
        .register(reminders(log.clone(), start, fired))
        .open(dir.path())
        .await?;
    let client = engine.client();

    client
        .send(Target::service("Reminders", "schedule"), &())
        .await?;
    let delayed = SendOptions::default().delay(Duration::from_millis(800));
    let text = "a client send delayed by 800 ms";
    client
        .send_with(Target::service("Reminders", "remind"), &text, delayed)
        .await?;
    log.say("[    0 ms] scheduled; waiting for the timers");

    for _ in 0..2 {
        reminders_fired.recv().await.ok_or("engine stopped")?;
    }
    engine.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    demo(&Log::default()).await
}

#[tokio::test]
async fn timers_fire_in_deadline_order_and_never_early() -> Result<(), Box<dyn Error>> {
    let log = Log::default();
    demo(&log).await?;
    let lines = log.lines();
    let events: Vec<(u128, &str)> = lines[1..]
        .iter()
        .map(|line| {
            let (ms, event) = line
                .trim_start_matches('[')
                .split_once(" ms] ")
                .unwrap_or_default();
            (ms.trim().parse().unwrap_or(0), event)
        })
        .collect();
    assert_eq!(events.len(), 3, "{lines:?}");
    assert_eq!(events[0].1, "sleep(200 ms) finished");
    assert_eq!(events[1].1, "reminder: send_after(300 ms) from a handler");
    assert_eq!(events[2].1, "reminder: a client send delayed by 800 ms");
    assert!(
        events[0].0 >= 200 && events[1].0 >= 500 && events[2].0 >= 800,
        "{lines:?}"
    );
    Ok(())
}
