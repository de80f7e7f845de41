//! Retry policies: how long to wait before the next attempt, and when to give up.

use std::time::Duration;

/// Exponential backoff: `initial_delay`, then multiplied by `factor` each attempt, capped at
/// `max_delay`; gives up after `max_attempts` attempts or once `max_duration` has passed since
/// the first one, whichever comes first (`None` means no limit).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the second attempt.
    pub initial_delay: Duration,
    /// Multiplier applied to the delay after each attempt (at least 1).
    pub factor: f64,
    /// Upper bound of any one delay.
    pub max_delay: Duration,
    /// Total attempts allowed, the first included. `None`: unbounded.
    pub max_attempts: Option<u32>,
    /// Time allowed since the first attempt. `None`: unbounded.
    pub max_duration: Option<Duration>,
}

impl Default for RetryPolicy {
    /// 50 ms, doubling, at most 10 s apart, forever: the engine's default for invocations.
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(50),
            factor: 2.0,
            max_delay: Duration::from_secs(10),
            max_attempts: None,
            max_duration: None,
        }
    }
}

impl RetryPolicy {
    /// No retries at all: the first failure is final.
    pub fn none() -> Self {
        Self {
            max_attempts: Some(1),
            ..Self::default()
        }
    }

    /// Exponential backoff with the given first delay, doubling up to 10 s, without a limit.
    pub fn exponential(initial_delay: Duration) -> Self {
        Self {
            initial_delay,
            ..Self::default()
        }
    }

    /// Sets the attempt limit.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Sets the time limit.
    #[must_use]
    pub fn max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = Some(duration);
        self
    }

    /// Sets the cap on one delay.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the growth factor.
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// The delay before attempt `failed_attempts + 1`, or `None` if the policy gives up after
    /// `failed_attempts` failures spanning `elapsed`.
    pub fn next_delay(&self, failed_attempts: u32, elapsed: Duration) -> Option<Duration> {
        if self.max_attempts.is_some_and(|max| failed_attempts >= max) {
            return None;
        }
        let exponent = i32::try_from(failed_attempts.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.factor.max(1.0).powi(exponent);
        let delay = self
            .initial_delay
            .mul_f64(factor.min(1e9))
            .min(self.max_delay);
        if self
            .max_duration
            .is_some_and(|max| elapsed.saturating_add(delay) > max)
        {
            return None;
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stop_at_the_limits() {
        let policy = RetryPolicy::exponential(Duration::from_millis(100))
            .max_delay(Duration::from_millis(350))
            .max_attempts(5);
        let delays: Vec<_> = (1..=5)
            .map(|n| policy.next_delay(n, Duration::ZERO))
            .collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(350)),
                Some(Duration::from_millis(350)),
                None
            ]
        );
        let timed =
            RetryPolicy::exponential(Duration::from_secs(1)).max_duration(Duration::from_secs(2));
        assert!(timed.next_delay(1, Duration::from_millis(500)).is_some());
        assert!(timed.next_delay(2, Duration::from_millis(1500)).is_none());
        assert_eq!(RetryPolicy::none().next_delay(1, Duration::ZERO), None);
    }
}
