//! The round-trip point: a handler creates an awakeable and hands its id to the bench, which
//! resolves it at once; closed loop at one concurrency.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use zeroapp_engine::Context;
use zeroapp_engine::prelude::*;

use super::SERVICE;
use super::common::{lock, nanos, open};
use crate::load::{Sample, Window, closed_loop};
use crate::stats::Latencies;

/// What the handlers share with the bench.
struct Exchange {
    started: Instant,
    /// Who waits for the awakeable id of the invocation with this input.
    waiting: Mutex<HashMap<u64, oneshot::Sender<String>>>,
    /// (when the handler resumed, resolve → resume), in nanoseconds since `started`.
    resumes: Mutex<Vec<(u64, u64)>>,
}

/// What one round-trip point measured.
#[derive(Debug, Clone)]
pub struct RoundTripPoint {
    /// Concurrent round trips.
    pub concurrency: usize,
    /// Round trips (send → attach returns) finished inside the measured window.
    pub sample: Sample,
    /// From the call to `resolve_awakeable` to the handler holding the value, in the window.
    pub resume: Latencies,
}

/// Runs round trips from `concurrency` tasks: send, wait for the handler's awakeable id, resolve
/// it, attach for the result.
pub async fn round_trip_point(
    dir: &Path,
    concurrency: usize,
    window: Window,
) -> Result<RoundTripPoint, String> {
    let exchange = Arc::new(Exchange {
        started: Instant::now(),
        waiting: Mutex::new(HashMap::new()),
        resumes: Mutex::new(Vec::new()),
    });
    let shared = exchange.clone();
    let service = Service::new(SERVICE).handler("echo", move |ctx: Context, key: u64| {
        let exchange = shared.clone();
        async move {
            let (id, resolved) = ctx.awakeable::<u64>();
            // A replay publishes the same id again: only the first reaches the bench.
            if let Some(waiter) = lock(&exchange.waiting).remove(&key) {
                let _ = waiter.send(id);
            }
            let called = resolved.await?;
            let now = nanos(exchange.started.elapsed());
            lock(&exchange.resumes).push((now, now.saturating_sub(called)));
            Ok(())
        }
    });
    let engine = open(Engine::builder().register(service), dir).await?;
    let client = engine.client();
    let next = Arc::new(AtomicU64::new(0));
    let shared = exchange.clone();
    let from = nanos(exchange.started.elapsed() + window.warmup);
    let sample = closed_loop(concurrency, window, move || {
        let (client, exchange) = (client.clone(), shared.clone());
        let key = next.fetch_add(1, Ordering::Relaxed);
        async move {
            let (tx, rx) = oneshot::channel();
            lock(&exchange.waiting).insert(key, tx);
            let inv = client
                .send(Target::service(SERVICE, "echo"), &key)
                .await
                .map_err(|e| format!("send failed: {e}"))?;
            let id = rx
                .await
                .map_err(|_| "the handler published no awakeable".to_owned())?;
            let called = nanos(exchange.started.elapsed());
            client
                .resolve_awakeable(&id, &called)
                .await
                .map_err(|e| format!("resolve failed: {e}"))?;
            client
                .attach::<()>(inv)
                .await
                .map_err(|e| format!("attach failed: {e}"))
        }
    })
    .await;
    engine.shutdown().await;
    let until = from + nanos(window.measure);
    let resume = lock(&exchange.resumes)
        .iter()
        .filter(|(at, _)| (from..=until).contains(at))
        .map(|&(_, ns)| Duration::from_nanos(ns))
        .collect();
    Ok(RoundTripPoint {
        concurrency,
        sample: sample?,
        resume: Latencies::new(resume),
    })
}
