//! A closed-loop load generator: `concurrency` workers, each doing one operation at a time.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::Latencies;

/// How long a point runs: a warm-up whose operations are not counted, then the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Run before measuring.
    pub warmup: Duration,
    /// Measured.
    pub measure: Duration,
}

/// What a closed-loop run measured.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Operations that finished inside the measured window.
    pub completed: u64,
    /// Operations that finished at all, warm-up included.
    pub total: u64,
    /// The length of the measured window.
    pub measure: Duration,
    /// The latency of each operation counted in `completed`.
    pub latencies: Latencies,
}

impl Sample {
    /// Operations per second over the measured window.
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.measure.as_secs_f64()
    }
}

/// Runs `op` from `concurrency` tokio tasks, each awaiting one call before starting the next,
/// for `window.warmup + window.measure`. An operation counts when it finishes inside the
/// measured window. The first error stops its worker and is returned.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    window: Window,
    op: F,
) -> Result<Sample, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let from = Instant::now() + window.warmup;
    let until = from + window.measure;
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| tokio::spawn(worker(op.clone(), from, until)))
        .collect();
    let mut total = 0;
    let mut latencies = Vec::new();
    let mut failure = None;
    for worker in workers {
        match worker.await {
            Ok(Ok((done, mut measured))) => {
                total += done;
                latencies.append(&mut measured);
            }
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(join) => failure = failure.or(Some(format!("a worker died: {join}"))),
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(Sample {
        completed: latencies.len() as u64,
        total,
        measure: window.measure,
        latencies: Latencies::new(latencies),
    })
}

async fn worker<F, Fut>(
    op: Arc<F>,
    from: Instant,
    until: Instant,
) -> Result<(u64, Vec<Duration>), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut done = 0;
    let mut measured = Vec::new();
    loop {
        let started = Instant::now();
        if started >= until {
            return Ok((done, measured));
        }
        op().await?;
        let ended = Instant::now();
        done += 1;
        if ended >= from && ended <= until {
            measured.push(ended - started);
        }
    }
}
