//! Time as the engine sees it. Only this module reads the wall clock: handlers get time through
//! the journal (`now()`), and tests can substitute their own [`Clock`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// A future returned by [`Clock::sleep_until`].
pub type ClockSleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of wall-clock time in milliseconds since the Unix epoch. Durable timers fire by
/// this clock, never before it reaches their deadline.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Completes once [`now_ms`](Clock::now_ms) has reached `deadline_ms` (or soon before: the
    /// caller checks the time again). The default sleeps on tokio's timer.
    fn sleep_until(&self, deadline_ms: u64) -> ClockSleep<'_> {
        let wait = deadline_ms.saturating_sub(self.now_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that moves only when told to, for tests of timers and retention that must not wait
/// in real time. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    now_ms: AtomicU64,
    moved: Notify,
}

impl ManualClock {
    /// A clock showing `start_ms` milliseconds since the Unix epoch.
    pub fn new(start_ms: u64) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                now_ms: AtomicU64::new(start_ms),
                moved: Notify::new(),
            }),
        }
    }

    /// Moves the clock forward and wakes everything sleeping on it.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.inner.now_ms.fetch_add(by, Ordering::SeqCst);
        self.inner.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline_ms: u64) -> ClockSleep<'_> {
        Box::pin(async move {
            loop {
                let moved = self.inner.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.now_ms() >= deadline_ms {
                    return;
                }
                moved.await;
            }
        })
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now_ms(&self) -> u64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }
}

pub(crate) type SharedClock = Arc<dyn Clock>;

/// Converts a journaled millisecond timestamp back into a `SystemTime`.
pub(crate) fn to_system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
