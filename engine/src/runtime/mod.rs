//! The runtime: what runs invocations in an open engine. [`Runtime`] holds the live invocations
//! and the `attach` watchers, allocates ids, and acts on the effects of every commit (the writer
//! hands them over before it answers); [`invoker`] drives one invocation through its attempts;
//! [`invocation`] is the embedded engine's `Backend` behind a handler's context; [`timers`]
//! fires durable timers by the clock.

pub(crate) mod clocks;
pub(crate) mod invocation;
pub(crate) mod invoker;
pub(crate) mod read_only;
pub(crate) mod timers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::invoker::{Fatal, Live};
use self::read_only::{PromiseWatchers, ReadOnlyCalls};
use self::timers::TimerSignal;
use crate::clock::SharedClock;
use crate::counted::Counted;
use crate::error::StoreError;
use crate::retry::RetryPolicy;
use crate::service::Registry;
use crate::store::Store;
use crate::store::command::Effects;
use crate::store::records::Outcome;
use crate::store::stats::WriterStatistics;

/// Settings of an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long an invocation may wait (for a call's result, a timer, an awakeable) before its
    /// memory is given back; it resumes by replay when what it waits for completes.
    pub inactivity_timeout: Duration,
    /// How failed invocation attempts are retried.
    pub retry_policy: RetryPolicy,
    /// How long a finished invocation keeps its journal and result (for introspection, attach
    /// and idempotency) before it is purged. A finished workflow's state and promises go with
    /// it, and its key can run again.
    pub retention: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            inactivity_timeout: Duration::from_secs(60),
            retry_policy: RetryPolicy::default(),
            retention: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl Runtime {
    /// The writer's counters.
    pub(crate) fn writer_statistics(&self) -> WriterStatistics {
        self.store.stats.statistics()
    }
}

pub(crate) struct Runtime {
    pub(crate) registry: Registry,
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) config: EngineConfig,
    live: Mutex<HashMap<u64, Arc<Live>>>,
    watchers: Mutex<HashMap<u64, Vec<oneshot::Sender<Outcome>>>>,
    /// Read-only calls waiting for a workflow promise.
    promises: PromiseWatchers,
    /// Read-only calls: the handlers that write, and the counts.
    pub(crate) read_only_calls: ReadOnlyCalls,
    next_id: AtomicU64,
    pub(crate) cancel: CancellationToken,
    tasks: TaskTracker,
    pub(crate) timers: TimerSignal,
    /// Opened by [`Engine::inspect`]: refuses every request.
    read_only: bool,
    pub(crate) random_seed: Option<u64>,
    /// Where invocations run: the runtime the engine was opened in (the writer thread, which
    /// acts on each commit's effects, starts them there).
    runtime: tokio::runtime::Handle,
    /// Invocations being driven: running an attempt, or between attempts.
    drives: Arc<AtomicUsize>,
    /// Of those, the ones between attempts, waiting on the clock for their retry.
    retrying: Arc<AtomicUsize>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Runtime {
    /// The runtime of an engine whose store is open; it acts on every commit from now on.
    pub(crate) fn new(
        registry: Registry,
        store: Store,
        clock: SharedClock,
        config: EngineConfig,
        read_only: bool,
        random_seed: Option<u64>,
    ) -> Result<Arc<Self>, StoreError> {
        let next_id = store.last_invocation_id()? + 1;
        let inner = Arc::new(Runtime {
            registry,
            store,
            clock,
            config,
            live: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            promises: PromiseWatchers::default(),
            read_only_calls: ReadOnlyCalls::default(),
            next_id: AtomicU64::new(next_id),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            timers: TimerSignal::default(),
            read_only,
            random_seed,
            runtime: tokio::runtime::Handle::current(),
            drives: Arc::default(),
            retrying: Arc::default(),
        });
        let runtime = Arc::downgrade(&inner);
        inner.store.on_commit(Box::new(move |effects| {
            if let Some(runtime) = runtime.upgrade() {
                runtime.act_on(effects);
            }
        }));
        Ok(inner)
    }

    /// Stops every task (invocations resume from their journal at the next open), then the
    /// writer once it has committed what it was sent, and releases the file.
    pub(crate) async fn shut_down(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.store.close().await;
    }

    /// Starts every unfinished invocation and the timer service.
    pub(crate) fn resume(self: &Arc<Self>) -> Result<(), StoreError> {
        let inflight = self.store.inflight()?;
        tracing::info!(resuming = inflight.len(), "engine open");
        for id in inflight {
            self.start(id);
        }
        self.tasks.spawn(timers::run(self.clone()));
        Ok(())
    }

    /// A fresh invocation id. Ids of invocations that never got committed are simply skipped.
    pub(crate) fn allocate_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs an invocation in the background.
    pub(crate) fn start(self: &Arc<Self>, id: u64) {
        if self.cancel.is_cancelled() {
            return;
        }
        let driving = Counted::new(&self.drives);
        let drive = invoker::drive(self.clone(), id);
        self.tasks.spawn_on(
            async move {
                let _driving = driving;
                drive.await;
            },
            &self.runtime,
        );
    }

    /// Counts an invocation between two attempts, waiting on the clock, until the guard drops.
    pub(crate) fn sleeping_on_clock(&self) -> Counted {
        Counted::new(&self.retrying)
    }

    /// Whether the engine is idle: nothing is being committed, no timer is due, and every
    /// invocation in memory waits (for a completion, or for the clock) rather than works.
    /// Only moving the clock or input from outside can make anything happen.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))] // TestEngine's
    pub(crate) fn is_idle(&self) -> bool {
        if !self.store.is_quiet() {
            return false;
        }
        {
            let live = lock(&self.live);
            let retrying = self.retrying.load(Ordering::SeqCst);
            if live.len() + retrying != self.drives.load(Ordering::SeqCst)
                || live.values().any(|live| live.is_busy())
            {
                return false;
            }
        }
        match self.store.first_timer() {
            Ok(Some(due)) => due > self.clock.now_ms(),
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Acts on what a commit changed: starts what became runnable, wakes the timer service,
    /// delivers completions, cancellations and kills to running invocations, and answers
    /// `attach` watchers and read-only calls waiting for a promise. Called by the writer thread for every commit, before it answers.
    fn act_on(self: &Arc<Self>, effects: &mut Effects) {
        for id in std::mem::take(&mut effects.start) {
            self.start(id);
        }
        if let Some(due_ms) = effects.earliest_timer.take() {
            self.timers.added(due_ms);
        }
        if !effects.promises.is_empty() {
            self.promises
                .completed(std::mem::take(&mut effects.promises));
        }
        let effects = Effects {
            deliver: std::mem::take(&mut effects.deliver),
            cancel: std::mem::take(&mut effects.cancel),
            killed: std::mem::take(&mut effects.killed),
            finished: std::mem::take(&mut effects.finished),
            ..Effects::default()
        };
        if !effects.deliver.is_empty() || !effects.cancel.is_empty() || !effects.killed.is_empty() {
            let live = lock(&self.live);
            for (id, index, completion) in effects.deliver {
                if let Some(live) = live.get(&id) {
                    live.deliver(index, completion);
                }
            }
            for id in effects.cancel {
                if let Some(live) = live.get(&id) {
                    live.request_cancel();
                }
            }
            for id in effects.killed {
                if let Some(live) = live.get(&id) {
                    live.fail(Fatal::Killed);
                }
            }
        }
        if !effects.finished.is_empty() {
            let mut watchers = lock(&self.watchers);
            for (id, outcome) in effects.finished {
                for watcher in watchers.remove(&id).unwrap_or_default() {
                    let _ = watcher.send(outcome.clone());
                }
            }
        }
    }

    pub(crate) fn register_live(&self, id: u64) -> Arc<Live> {
        let live = Arc::new(Live::new(self.store.generation()));
        lock(&self.live).insert(id, live.clone());
        live
    }

    pub(crate) fn unregister_live(&self, id: u64, live: &Arc<Live>) {
        let mut map = lock(&self.live);
        if map
            .get(&id)
            .is_some_and(|current| Arc::ptr_eq(current, live))
        {
            map.remove(&id);
        }
    }

    /// Whether an invocation is executing in this process now.
    /// How many `attach`es wait for an outcome right now.
    #[cfg(feature = "http")]
    pub(crate) fn attaches_waiting(&self) -> usize {
        lock(&self.watchers).values().map(Vec::len).sum()
    }

    /// The invocations with an attempt in memory.
    pub(crate) fn live_ids(&self) -> Vec<u64> {
        lock(&self.live).keys().copied().collect()
    }

    pub(crate) fn is_live(&self, id: u64) -> bool {
        lock(&self.live).contains_key(&id)
    }

    /// Registers interest in an invocation's outcome; see [`Client::attach`].
    pub(crate) fn watch(&self, id: u64) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        lock(&self.watchers).entry(id).or_default().push(tx);
        rx
    }

    pub(crate) fn unwatch_closed(&self, id: u64) {
        let mut watchers = lock(&self.watchers);
        if let Some(list) = watchers.get_mut(&id) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                watchers.remove(&id);
            }
        }
    }

    pub(crate) fn check_open(&self) -> Result<(), StoreError> {
        if self.read_only {
            Err(StoreError::ReadOnly)
        } else if self.cancel.is_cancelled() {
            Err(StoreError::ShutDown)
        } else {
            Ok(())
        }
    }
}
