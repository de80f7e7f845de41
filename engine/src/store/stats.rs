//! Counters the writer keeps about itself: commits, commands, batch sizes and commit latency.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use super::records::Status;

/// Counters the writer keeps: about its commits, and how many stored invocations have each
/// status.
#[derive(Debug)]
pub(crate) struct WriterStats {
    /// Stored invocations by status, as of the last commit.
    pub(crate) statuses: StatusCounts,
    pub(crate) commits: AtomicU64,
    pub(crate) commands: AtomicU64,
    pub(crate) commit_micros: AtomicU64,
    /// Commands per commit.
    pub(crate) batch_sizes: Buckets,
    /// Microseconds per commit, applying included.
    pub(crate) commit_latency: Buckets,
}

impl WriterStats {
    /// A reading of every counter.
    pub(crate) fn statistics(&self) -> WriterStatistics {
        WriterStatistics {
            commits: self.commits.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
            commit_micros: self.commit_micros.load(Ordering::Relaxed),
            batch_sizes: self.batch_sizes.snapshot(),
            commit_latency_micros: self.commit_latency.snapshot(),
        }
    }
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            statuses: StatusCounts::default(),
            commits: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            batch_sizes: Buckets::new(&[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]),
            commit_latency: Buckets::new(&[
                100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
                1_000_000,
            ]),
        }
    }
}

/// Counts of observations in fixed buckets: one per bound (inclusive), then an unbounded one.
#[derive(Debug)]
pub(crate) struct Buckets {
    bounds: &'static [u64],
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
}

impl Buckets {
    fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        Histogram {
            bounds: self.bounds,
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// Counts one commit of `commands` commands that started at `started`.
pub(crate) fn record_commit(stats: &WriterStats, commands: usize, started: Instant) {
    let commands = u64::try_from(commands).unwrap_or(u64::MAX);
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.commands.fetch_add(commands, Ordering::Relaxed);
    stats.commit_micros.fetch_add(micros, Ordering::Relaxed);
    stats.batch_sizes.observe(commands);
    stats.commit_latency.observe(micros);
}

/// Statistics of the writer, for benchmarks and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStatistics {
    /// Transactions committed.
    pub commits: u64,
    /// Commands applied in them.
    pub commands: u64,
    /// Time spent applying and committing, in microseconds.
    pub commit_micros: u64,
    /// Commands per commit.
    pub batch_sizes: Histogram,
    /// Microseconds per commit, applying included.
    pub commit_latency_micros: Histogram,
}

impl WriterStatistics {
    /// What accumulated between an `earlier` reading and this one.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            commits: self.commits.saturating_sub(earlier.commits),
            commands: self.commands.saturating_sub(earlier.commands),
            commit_micros: self.commit_micros.saturating_sub(earlier.commit_micros),
            batch_sizes: self.batch_sizes.since(&earlier.batch_sizes),
            commit_latency_micros: self
                .commit_latency_micros
                .since(&earlier.commit_latency_micros),
        }
    }
}

/// Observations counted in fixed buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Inclusive upper bounds of the buckets; one unbounded bucket follows the last.
    pub bounds: &'static [u64],
    /// Observations per bucket (`bounds.len() + 1` of them), not cumulative.
    pub counts: Vec<u64>,
    /// The sum of all observations.
    pub sum: u64,
}

impl Histogram {
    /// What was observed between an `earlier` snapshot and this one.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            bounds: self.bounds,
            counts: self
                .counts
                .iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(earlier.counts.get(i).copied().unwrap_or(0)))
                .collect(),
            sum: self.sum.saturating_sub(earlier.sum),
        }
    }
}

/// How many stored invocations have each status, kept up to date by the writer as its commits
/// change them (so reading them costs the same at ten invocations as at ten million); counted
/// once when the store opens.
#[derive(Debug, Default)]
pub(crate) struct StatusCounts([AtomicI64; STATUSES]);

/// How many stored statuses there are (see [`status_index`]).
pub(crate) const STATUSES: usize = 7;

/// The position of a stored status in [`StatusCounts`] and [`StatusDelta`].
pub(crate) fn status_index(status: Status) -> usize {
    match status {
        Status::Pending => 0,
        Status::Scheduled { .. } => 1,
        Status::Ready => 2,
        Status::BackingOff { .. } => 3,
        Status::Suspended => 4,
        Status::Completed => 5,
        Status::Failed => 6,
    }
}

/// How one transaction changed the count of each stored status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusDelta(pub(crate) [i64; STATUSES]);

impl StatusDelta {
    /// A record with `status` was stored (`+1`) or removed or changed from it (`-1`).
    pub(crate) fn count(&mut self, status: Status, by: i64) {
        self.0[status_index(status)] += by;
    }
}

impl StatusCounts {
    /// Counts as a scan found them, by [`status_index`].
    pub(crate) fn from_counts(counts: [u64; STATUSES]) -> Self {
        Self(counts.map(|n| AtomicI64::new(i64::try_from(n).unwrap_or(i64::MAX))))
    }

    /// Adds what a committed transaction changed.
    pub(crate) fn apply(&self, delta: &StatusDelta) {
        for (count, change) in self.0.iter().zip(delta.0) {
            if change != 0 {
                count.fetch_add(change, Ordering::Relaxed);
            }
        }
    }

    /// The counts, by [`status_index`].
    pub(crate) fn snapshot(&self) -> [u64; STATUSES] {
        std::array::from_fn(|i| u64::try_from(self.0[i].load(Ordering::Relaxed)).unwrap_or(0))
    }
}
