//! Time as the engine sees it: the [`Clock`] everything waits on. Handlers get time through
//! the journal (`now()`); the engine's two clocks, the system's and a manual one for tests, are
//! in `runtime::clocks`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future returned by [`Clock::sleep_until`].
pub type ClockSleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of wall-clock time in milliseconds since the Unix epoch. Everything the engine waits
/// on waits on this clock: durable timers (never fired before it reaches their deadline), retry
/// backoff of invocations and of `run` steps, and the inactivity timeout before suspension.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Completes once [`now_ms`](Clock::now_ms) has reached `deadline_ms` (or soon before: the
    /// caller checks the time again).
    fn sleep_until(&self, deadline_ms: u64) -> ClockSleep<'_>;
}

/// Sleeps by `clock` for `duration` from now.
pub(crate) fn sleep_for(clock: &dyn Clock, duration: Duration) -> ClockSleep<'_> {
    clock.sleep_until(clock.now_ms().saturating_add(millis(duration)))
}

/// A duration in whole milliseconds (saturating).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) type SharedClock = Arc<dyn Clock>;

/// Converts a journaled millisecond timestamp back into a `SystemTime`.
pub(crate) fn to_system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The latest time RFC 3339 can write: 9999-12-31T23:59:59.999Z.
const LAST_WRITABLE: Duration = Duration::from_millis(253_402_300_799_999);

/// `at` as RFC 3339 with milliseconds (`2026-12-07T14:29:46.123Z`). A time RFC 3339 cannot
/// write — before 1970 or after 9999, as only a damaged record holds — is shown as what it is
/// instead of panicking: `out of range (N ms since 1970)`.
pub fn format_time(at: SystemTime) -> String {
    match at.duration_since(UNIX_EPOCH) {
        Ok(since) if since <= LAST_WRITABLE => humantime::format_rfc3339_millis(at).to_string(),
        Ok(since) => format!("out of range ({} ms since 1970)", since.as_millis()),
        Err(before) => format!(
            "out of range (-{} ms since 1970)",
            before.duration().as_millis()
        ),
    }
}
