//! The timer service: one task that fires durable timers (sleeps, delayed sends, purges of
//! finished invocations) when the engine's clock reaches their deadline.
//!
//! Timers live in redb ordered by deadline; the service only ever reads the first one, so a
//! million pending timers cost disk, not memory. It fires by the engine's [`Clock`], never early:
//! a timer is fired only by a commit that read the clock at or after its deadline.
//!
//! [`Clock`]: crate::Clock

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::sleep_for;
use crate::runtime::Runtime;
use crate::store::command::Command;

/// Timers fired per commit; more due timers are fired by the commits that follow at once. Large,
/// so that one command fires everything that came due while the previous batch was applied:
/// under a burst the writer is busy for tens of milliseconds per batch, and a small limit made
/// the service fall behind the deadlines (docs/benchmarks.md).
const FIRE_BATCH: usize = 16_384;

/// How running code tells the timer service that an earlier timer was added.
#[derive(Debug)]
pub(crate) struct TimerSignal {
    /// The deadline the service sleeps towards (`u64::MAX` when there is none).
    sleeping_until: AtomicU64,
    wake: Notify,
}

impl Default for TimerSignal {
    fn default() -> Self {
        Self {
            sleeping_until: AtomicU64::new(u64::MAX),
            wake: Notify::new(),
        }
    }
}

impl TimerSignal {
    /// A timer due at `due_ms` was committed.
    pub(crate) fn added(&self, due_ms: u64) {
        if due_ms < self.sleeping_until.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }
}

/// The service's loop; ends when the engine shuts down.
pub(crate) async fn run(engine: Arc<Runtime>) {
    let signal = &engine.timers;
    loop {
        if engine.cancel.is_cancelled() {
            return;
        }
        // While awake, every added timer leaves a wake-up, so none added after the read of the
        // first timer below is missed.
        signal.sleeping_until.store(u64::MAX, Ordering::SeqCst);
        let woken = signal.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if let Err(error) = fire_due(&engine).await {
            tracing::error!(%error, "firing timers failed; trying again in a second");
            tokio::select! {
                () = sleep_for(&*engine.clock, Duration::from_secs(1)) => continue,
                () = engine.cancel.cancelled() => return,
            }
        }
        let next = match engine.store.first_timer() {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "cannot read the timers; trying again in a second");
                Some(engine.clock.now_ms().saturating_add(1000))
            }
        };
        signal
            .sleeping_until
            .store(next.unwrap_or(u64::MAX), Ordering::SeqCst);
        // A timer added between the read and the store above saw `u64::MAX` and left a wake-up
        // in `woken`, so the select returns at once.
        tokio::select! {
            () = &mut woken => {}
            () = sleep_until(&engine, next) => {}
            () = engine.cancel.cancelled() => return,
        }
    }
}

async fn sleep_until(engine: &Runtime, deadline_ms: Option<u64>) {
    match deadline_ms {
        Some(deadline_ms) => engine.clock.sleep_until(deadline_ms).await,
        None => std::future::pending().await,
    }
}

/// Fires every timer due now, a batch per commit.
async fn fire_due(engine: &Arc<Runtime>) -> Result<(), crate::StoreError> {
    loop {
        let now_ms = engine.clock.now_ms();
        let command = Command::FireTimers {
            now_ms,
            limit: FIRE_BATCH,
        };
        let Ok(effects) = engine.store.submit(command).await? else {
            return Ok(());
        };
        if effects.fired < FIRE_BATCH {
            return Ok(());
        }
    }
}
