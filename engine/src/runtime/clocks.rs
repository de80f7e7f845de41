//! The engine's clocks: [`SystemClock`], the wall clock (the only code that reads it), and
//! [`ManualClock`], which moves only when a test says so.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::clock::{Clock, ClockSleep};

/// A clock that moves only when told to, for tests of timers and retention that must not wait
/// in real time. Clones share the same time. It knows the deadlines of everything sleeping on
/// it ([`ManualClock::next_deadline`]), so a test can skip straight to the next one.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    now_ms: AtomicU64,
    moved: Notify,
    /// Deadlines of the sleeps in progress, with how many sleep until each.
    sleepers: Mutex<BTreeMap<u64, usize>>,
}

impl ManualInner {
    fn sleepers(&self) -> MutexGuard<'_, BTreeMap<u64, usize>> {
        self.sleepers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A sleep on a [`ManualClock`], counted in its deadlines while it exists.
struct Sleeper<'a> {
    inner: &'a ManualInner,
    deadline_ms: u64,
}

impl<'a> Sleeper<'a> {
    fn new(inner: &'a ManualInner, deadline_ms: u64) -> Self {
        *inner.sleepers().entry(deadline_ms).or_default() += 1;
        Self { inner, deadline_ms }
    }
}

impl Drop for Sleeper<'_> {
    fn drop(&mut self) {
        let mut sleepers = self.inner.sleepers();
        if let Some(count) = sleepers.get_mut(&self.deadline_ms) {
            *count -= 1;
            if *count == 0 {
                sleepers.remove(&self.deadline_ms);
            }
        }
    }
}

impl ManualClock {
    /// A clock showing `start_ms` milliseconds since the Unix epoch.
    pub fn new(start_ms: u64) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                now_ms: AtomicU64::new(start_ms),
                moved: Notify::new(),
                sleepers: Mutex::default(),
            }),
        }
    }

    /// The earliest deadline anything is sleeping towards on this clock right now (a durable
    /// timer the engine waits for, a retry's backoff, an inactivity timeout), if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.inner.sleepers().keys().next().copied()
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
            let _sleeper = Sleeper::new(&self.inner, deadline_ms);
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

    /// Sleeps on tokio's timer.
    fn sleep_until(&self, deadline_ms: u64) -> ClockSleep<'_> {
        let wait = deadline_ms.saturating_sub(self.now_ms());
        #[allow(clippy::disallowed_methods)] // the real clock's sleep
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}
