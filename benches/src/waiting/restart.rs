//! The restart point: N invocations in flight when the engine shuts down; reopened with a handler
//! that completes at once, how long until every invocation has its result.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zeroapp_engine::prelude::*;
use zeroapp_engine::{Context, OpenError, WriterStatistics};

use super::SERVICE;
use super::common::{PATIENCE, nanos, open, submit, wait_until};

/// Long enough that no invocation suspends while the point runs.
const NEVER: Duration = Duration::from_secs(3600);

/// Counters the handlers keep.
#[derive(Default)]
struct Held {
    entered: AtomicUsize,
    finished: AtomicUsize,
    /// Nanoseconds from the reopen until the last handler ran.
    last_ns: AtomicU64,
}

/// What the restart point measured.
#[derive(Debug, Clone)]
pub struct RestartPoint {
    /// Invocations in flight at the shutdown.
    pub in_flight: usize,
    /// How long `shutdown` took.
    pub shutdown: Duration,
    /// `open` attempts refused because the previous engine still held the file.
    pub locked_retries: usize,
    /// From calling `open` until it returned (file opened, in-flight list read, tasks started).
    pub open: Duration,
    /// From calling `open` until the last handler ran.
    pub handlers: Duration,
    /// From calling `open` until `attach` returned the last result.
    pub all_completed: Duration,
    /// The writer after the reopen.
    pub writer: WriterStatistics,
}

/// Puts `count` invocations in flight (each blocked in a `run` step, with an inactivity timeout
/// long enough that none suspends), shuts the engine down, reopens it with a handler that
/// completes at once, and measures until every invocation has its result.
pub async fn restart_point(
    dir: &Path,
    count: usize,
    senders: usize,
) -> Result<RestartPoint, String> {
    let held = Arc::new(Held::default());
    let counters = held.clone();
    let blocked = Service::new(SERVICE).handler("hold", move |ctx: Context, _: u64| {
        let held = counters.clone();
        async move {
            held.entered.fetch_add(1, Ordering::SeqCst);
            ctx.run("hold", std::future::pending::<Result<u64, HandlerError>>)
                .await?;
            Ok(())
        }
    });
    let engine = open(
        Engine::builder()
            .register(blocked)
            .inactivity_timeout(NEVER),
        dir,
    )
    .await?;
    let client = engine.client();
    let ids = submit(&client, "hold", count, senders, true).await?;
    drop(client);
    wait_until("every handler to block", PATIENCE, || {
        Ok(held.entered.load(Ordering::SeqCst) >= count)
    })
    .await?;
    let stopping = Instant::now();
    engine.shutdown().await;
    let shutdown = stopping.elapsed();

    let (engine, started, locked_retries) = reopen(dir, &held).await?;
    let open = started.elapsed();
    let client = engine.client();
    let ids = Arc::new(ids);
    let workers = 64.min(count.max(1));
    let attaches: Vec<_> = (0..workers)
        .map(|w| {
            let (client, ids) = (client.clone(), ids.clone());
            tokio::spawn(async move {
                for id in ids.iter().skip(w).step_by(workers) {
                    client
                        .attach::<()>(*id)
                        .await
                        .map_err(|e| format!("attach to {id} failed: {e}"))?;
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for attach in attaches {
        attach
            .await
            .map_err(|e| format!("an attach task died: {e}"))??;
    }
    let all_completed = started.elapsed();
    let finished = held.finished.load(Ordering::SeqCst);
    if finished != count {
        return Err(format!(
            "{finished} of {count} handlers ran after the restart"
        ));
    }
    let writer = engine.writer_statistics();
    drop(client);
    engine.shutdown().await;
    Ok(RestartPoint {
        in_flight: count,
        shutdown,
        locked_retries,
        open,
        handlers: Duration::from_nanos(held.last_ns.load(Ordering::SeqCst)),
        all_completed,
        writer,
    })
}

/// Opens the folder again with a handler that completes at once. An engine that was just shut
/// down could hold the file a moment longer (its aborted handler tasks are dropped by the runtime
/// soon after): such attempts are counted and not timed.
async fn reopen(dir: &Path, held: &Arc<Held>) -> Result<(Engine, Instant, usize), String> {
    let mut locked = 0;
    loop {
        let counters = held.clone();
        let started = Instant::now();
        let service = Service::new(SERVICE).handler("hold", move |_: Context, _: u64| {
            let held = counters.clone();
            async move {
                held.last_ns
                    .fetch_max(nanos(started.elapsed()), Ordering::SeqCst);
                held.finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let builder = Engine::builder()
            .register(service)
            .inactivity_timeout(NEVER);
        match builder.open(dir).await {
            Ok(engine) => return Ok((engine, started, locked)),
            Err(OpenError::Locked(_)) if locked < 200 => {
                locked += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(format!("cannot reopen the engine: {e}")),
        }
    }
}
