//! Latency percentiles and medians.

use std::time::Duration;

/// The latencies of one measured run, sorted.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sorts `values` once so that percentiles are cheap.
    pub fn new(mut values: Vec<Duration>) -> Self {
        values.sort_unstable();
        Self(values)
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none were recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nearest-rank percentile `p` (0–100); zero when nothing was recorded.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p.clamp(0.0, 100.0) / 100.0 * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    /// The median latency.
    pub fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }
}

/// The median of `values` (the lower middle one for an even count); zero for none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

/// The median of durations, like [`median`].
pub fn median_duration(values: impl IntoIterator<Item = Duration>) -> Duration {
    Duration::from_secs_f64(median(values.into_iter().map(|d| d.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.p50(), Duration::from_millis(50));
        assert_eq!(l.p99(), Duration::from_millis(99));
        assert_eq!(l.percentile(100.0), Duration::from_millis(100));
        assert_eq!(Latencies::default().p99(), Duration::ZERO);
    }

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0]), 1.0);
        assert_eq!(median([]), 0.0);
    }
}
