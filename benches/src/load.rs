//! A closed-loop load generator: `concurrency` workers, each doing one operation at a time.
//!
//! [`closed_loop`] shares one operation (a closure) between its workers; [`closed_loop_workers`]
//! takes workers that each own their state, such as one HTTP connection each
//! ([`crate::http_load`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::{Latencies, median, median_duration};

/// How long a point runs: a warm-up whose operations are not counted, then the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Run before measuring.
    pub warmup: Duration,
    /// Measured.
    pub measure: Duration,
}

impl Window {
    /// A full run's point: 3 s measured after 0.5 s of warm-up.
    pub const FULL: Window = Window {
        warmup: Duration::from_millis(500),
        measure: Duration::from_secs(3),
    };

    /// A quick run's point: `measure` after 20 ms of warm-up.
    pub const fn quick(measure: Duration) -> Window {
        Window {
            warmup: Duration::from_millis(20),
            measure,
        }
    }
}

/// What a closed-loop run measured.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Operations that finished with success inside the measured window.
    pub completed: u64,
    /// Operations that finished with an [`Outcome::Error`] inside the measured window.
    pub errors: u64,
    /// Operations that finished at all, with success or an error, warm-up included.
    pub total: u64,
    /// The length of the measured window.
    pub measure: Duration,
    /// The latency of each operation counted in `completed`.
    pub latencies: Latencies,
}

impl Sample {
    /// Successful operations per second over the measured window.
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.measure.as_secs_f64()
    }
}

/// The medians of several samples of the same point.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SampleMedians {
    /// Median of the operations per second.
    pub per_second: f64,
    /// Median of the latency medians.
    pub p50: Duration,
    /// Median of the 99th percentiles.
    pub p99: Duration,
    /// Errors in all the samples together (a sum, so that one error anywhere shows).
    pub errors: u64,
}

impl SampleMedians {
    /// Reduces `samples` (the repetitions of one point) to their medians.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample> + Clone) -> Self {
        Self {
            per_second: median(samples.clone().into_iter().map(Sample::per_second)),
            p50: median_duration(samples.clone().into_iter().map(|s| s.latencies.p50())),
            p99: median_duration(samples.clone().into_iter().map(|s| s.latencies.p99())),
            errors: samples.into_iter().map(|s| s.errors).sum(),
        }
    }
}

/// How an operation ended when it did not stop its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded: counted in [`Sample::completed`], its latency recorded.
    Done,
    /// It was answered with an error (for HTTP, any status but 200): counted in
    /// [`Sample::errors`], its latency not recorded; the worker goes on.
    Error,
}

/// One worker of a closed loop, with state of its own (a connection, say): it does one operation
/// at a time.
pub trait Worker: Send + 'static {
    /// Does one operation. An `Err` stops this worker and fails the run.
    fn call(&mut self) -> impl Future<Output = Result<Outcome, String>> + Send;
}

/// A worker that calls a closure shared by every worker.
struct Shared<F>(Arc<F>);

impl<F, Fut> Worker for Shared<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fn call(&mut self) -> impl Future<Output = Result<Outcome, String>> + Send {
        let op = (self.0)();
        async move { op.await.map(|()| Outcome::Done) }
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
    let workers = (0..concurrency.max(1))
        .map(|_| Shared(op.clone()))
        .collect();
    closed_loop_workers(window, workers).await
}

/// Runs each of `workers` in its own tokio task, each awaiting one call before starting the
/// next, for `window.warmup + window.measure` from now: the concurrency is `workers.len()`. An
/// operation counts when it finishes after the warm-up, in [`Sample::completed`] or
/// [`Sample::errors`] after its [`Outcome`]; a worker that has counted nothing when the window
/// closes (a machine so loaded that one call outlasts the window) goes on until it has, and the
/// measured window stretches to the last operation counted. The first `Err` stops its worker and
/// is returned.
pub async fn closed_loop_workers<W: Worker>(
    window: Window,
    workers: Vec<W>,
) -> Result<Sample, String> {
    let from = Instant::now() + window.warmup;
    let until = from + window.measure;
    let workers: Vec<_> = workers
        .into_iter()
        .map(|w| tokio::spawn(worker(w, from, until)))
        .collect();
    let mut total = 0;
    let mut errors = 0;
    let mut latencies = Vec::new();
    let mut failure = None;
    let mut last = until;
    for worker in workers {
        match worker.await {
            Ok(Ok(mut counts)) => {
                total += counts.done;
                errors += counts.errors;
                latencies.append(&mut counts.measured);
                last = last.max(counts.last);
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
        errors,
        total,
        measure: last - from,
        latencies: Latencies::new(latencies),
    })
}

/// What one worker counted.
struct Counts {
    /// Operations finished, with success or an error, warm-up included.
    done: u64,
    /// Errors inside the measured window.
    errors: u64,
    /// Latencies of the successes inside the measured window.
    measured: Vec<Duration>,
    /// When the last operation counted ended.
    last: Instant,
}

async fn worker<W: Worker>(mut w: W, from: Instant, until: Instant) -> Result<Counts, String> {
    let mut counts = Counts {
        done: 0,
        errors: 0,
        measured: Vec::new(),
        last: from,
    };
    loop {
        let started = Instant::now();
        let counted_any = !counts.measured.is_empty() || counts.errors > 0;
        if started >= until && counted_any {
            return Ok(counts);
        }
        let outcome = w.call().await?;
        let ended = Instant::now();
        counts.done += 1;
        if ended >= from && (ended <= until || !counted_any) {
            counts.last = counts.last.max(ended);
            match outcome {
                Outcome::Done => counts.measured.push(ended - started),
                Outcome::Error => counts.errors += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every `every`-th call with an [`Outcome::Error`].
    struct Flaky {
        calls: u64,
        every: u64,
    }

    impl Worker for Flaky {
        fn call(&mut self) -> impl Future<Output = Result<Outcome, String>> + Send {
            self.calls += 1;
            let failed = self.calls % self.every == 0;
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(if failed {
                    Outcome::Error
                } else {
                    Outcome::Done
                })
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_are_counted_apart_from_successes() {
        let window = Window {
            warmup: Duration::ZERO,
            measure: Duration::from_millis(100),
        };
        let workers = (0..2).map(|_| Flaky { calls: 0, every: 2 }).collect();
        let sample = closed_loop_workers(window, workers).await.unwrap();
        assert!(sample.completed > 0 && sample.errors > 0, "{sample:?}");
        assert!(sample.completed.abs_diff(sample.errors) <= 2, "{sample:?}");
        assert_eq!(sample.latencies.len() as u64, sample.completed);
        assert!(sample.total >= sample.completed + sample.errors);
        let medians = SampleMedians::of([&sample, &sample]);
        assert_eq!(medians.errors, 2 * sample.errors);
        assert_eq!(medians.p50, sample.latencies.p50());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_stops_the_run() {
        let window = Window {
            warmup: Duration::ZERO,
            measure: Duration::from_millis(50),
        };
        let error = closed_loop(2, window, || async { Err::<(), _>("boom".to_owned()) })
            .await
            .unwrap_err();
        assert_eq!(error, "boom");
    }
}
