//! Opening the engine: registration, configuration, start-up recovery and shutdown.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::Client;
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::counted::Counted;
use crate::error::{OpenError, StoreError};
use crate::invoker::{self, Fatal, Live};
use crate::retry::RetryPolicy;
use crate::service::{Definition, Registry};
use crate::store::Store;
use crate::store::StoredIdentity;
use crate::store::check::CheckReport;
use crate::store::command::{CrashHook, Effects};
use crate::store::records::Outcome;
use crate::store::stats::WriterStatistics;
use crate::timers::{self, TimerSignal};

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

/// Collects definitions and settings, then opens a data folder.
pub struct EngineBuilder {
    definitions: Vec<Definition>,
    config: EngineConfig,
    clock: SharedClock,
    /// Halts the writer before the first command it matches (the testing module's crashes).
    pub(crate) crash_hook: Option<CrashHook>,
    /// Makes `rand_u64` and `uuid` a function of (seed, invocation, index) (the testing module).
    pub(crate) random_seed: Option<u64>,
    /// The data folder's identity the file must carry (recorded if it carries none).
    identity: Option<uuid::Uuid>,
}

impl EngineBuilder {
    /// Registers a [`Service`](crate::Service), [`VirtualObject`](crate::VirtualObject) or
    /// [`Workflow`](crate::Workflow).
    #[must_use]
    pub fn register(mut self, definition: impl Into<Definition>) -> Self {
        self.definitions.push(definition.into());
        self
    }

    /// Replaces the whole configuration.
    #[must_use]
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the inactivity timeout after which a waiting invocation suspends.
    #[must_use]
    pub fn inactivity_timeout(mut self, timeout: Duration) -> Self {
        self.config.inactivity_timeout = timeout;
        self
    }

    /// Sets how failed invocation attempts are retried.
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config.retry_policy = policy;
        self
    }

    /// Sets how long finished invocations are kept before they are purged.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.config.retention = retention;
        self
    }

    /// The identity of the data folder, shared with whatever else the program keeps in it (an
    /// application's own database): the data file records it when it carries none yet, and an
    /// open of a file that carries another one fails with [`OpenError::ForeignFile`]. So a file
    /// copied in from another folder is refused instead of served beside data it does not
    /// belong with.
    #[must_use]
    pub fn folder_identity(mut self, identity: uuid::Uuid) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Uses another clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Opens (or creates) the data folder `dir`, then resumes every unfinished invocation.
    ///
    /// Must be called inside a tokio runtime. Fails if another process has the folder open or
    /// if its file has an incompatible format.
    pub async fn open(self, dir: impl AsRef<Path>) -> Result<Engine, OpenError> {
        let inner = self.open_store(dir.as_ref(), false).await?;
        let inflight = inner.store.inflight()?;
        tracing::info!(resuming = inflight.len(), "engine open");
        for id in inflight {
            inner.start(id);
        }
        inner.tasks.spawn(timers::run(inner.clone()));
        Ok(Engine { inner })
    }

    async fn open_store(self, dir: &Path, read_only: bool) -> Result<Arc<EngineInner>, OpenError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(OpenError::NoRuntime);
        }
        let mut registry = Registry::default();
        for definition in self.definitions {
            registry
                .add(definition)
                .map_err(OpenError::DuplicateService)?;
        }
        let dir = dir.to_owned();
        let retention_ms = u64::try_from(self.config.retention.as_millis()).unwrap_or(u64::MAX);
        let crash_hook = self.crash_hook;
        let identity = if read_only { None } else { self.identity };
        let store = on_data_file(dir, move |dir| {
            Store::open(dir, retention_ms, crash_hook, identity)
        })
        .await?;
        let next_id = store.last_invocation_id()? + 1;
        let inner = Arc::new(EngineInner {
            registry,
            store,
            clock: self.clock,
            config: self.config,
            live: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(next_id),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            timers: TimerSignal::default(),
            read_only,
            random_seed: self.random_seed,
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
}

/// An open engine: the owner of its data folder. Dropping it stops its invocations; call
/// [`Engine::shutdown`] to also wait for the writer to finish.
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl Engine {
    /// Starts describing an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            definitions: Vec::new(),
            config: EngineConfig::default(),
            clock: Arc::new(SystemClock),
            crash_hook: None,
            random_seed: None,
            identity: None,
        }
    }

    /// The keys of every workflow named `name` in the data file of `dir` (finished ones
    /// included), read without opening the file for writing (no process may have it open):
    /// for a program to check, before the engine opens and resumes anything, that its own data
    /// still has what the engine's workflows are about.
    pub async fn read_workflow_keys(
        dir: impl AsRef<Path>,
        name: &str,
    ) -> Result<Vec<String>, OpenError> {
        let name = name.to_owned();
        on_data_file(dir.as_ref().to_owned(), move |dir| {
            crate::store::read_workflow_keys(dir, &name)
        })
        .await
    }

    /// The identity recorded in the data file of `dir`, read without opening the file for
    /// writing (no process may have it open); see [`EngineBuilder::folder_identity`].
    pub async fn read_identity(dir: impl AsRef<Path>) -> Result<StoredIdentity, OpenError> {
        on_data_file(dir.as_ref().to_owned(), crate::store::read_identity).await
    }

    /// Checks the data file in `dir`, which no process may be using: redb's integrity check,
    /// then every invocation record, journal entry and promise read back and decoded, and
    /// journal entries matched with their invocations. Writes nothing. A file the storage
    /// layer cannot open at all is an [`OpenError`] (damage as [`OpenError::Corrupted`], never
    /// a panic); anything else it finds is in the report's `problems`.
    pub async fn check(dir: impl AsRef<Path>) -> Result<CheckReport, OpenError> {
        on_data_file(dir.as_ref().to_owned(), crate::store::check::check).await
    }

    /// Opens an existing data folder for introspection only: nothing is resumed, no timer
    /// fires, and every request through a [`Client`] is refused with
    /// [`StoreError::ReadOnly`]. For looking into the folder of a stopped server.
    pub async fn inspect(dir: impl AsRef<Path>) -> Result<Engine, OpenError> {
        let dir = dir.as_ref();
        let file = dir.join(crate::store::DATA_FILE);
        if !file.is_file() {
            return Err(OpenError::Io {
                path: file,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no data file"),
            });
        }
        let inner = Self::builder().open_store(dir, true).await?;
        Ok(Engine { inner })
    }

    /// A client to call, send to and attach to invocations.
    pub fn client(&self) -> Client {
        Client::new(self.inner.clone())
    }

    /// Stops running invocations (they resume from their journal at the next open), commits
    /// what was already sent to the writer and releases the data file: the folder can be opened
    /// again at once, even in the same process. [`Client`]s made from this engine then answer
    /// [`StoreError::ShutDown`].
    pub async fn shutdown(self) {
        self.inner.cancel.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.store.close().await;
    }

    /// Copies the engine's data file while it serves: see [`Client::back_up`].
    pub async fn back_up(&self, dest: impl AsRef<Path>) -> Result<u64, StoreError> {
        self.client().back_up(dest).await
    }

    /// Why the engine can commit nothing more, if so: its writer thread died (the storage layer
    /// failed on a damaged file). Every write then fails; a supervisor should restart the
    /// process, whose start-up reports the damage.
    pub fn failure(&self) -> Option<String> {
        self.inner.store.failure()
    }

    /// Waits until the engine can commit nothing more ([`Engine::failure`]); its reason.
    pub async fn failed(&self) -> String {
        self.inner.store.failed().await
    }

    pub(crate) fn inner(&self) -> &Arc<EngineInner> {
        &self.inner
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
    }
}

impl Engine {
    /// Counters of the single writer: commits, commands, time spent.
    pub fn writer_statistics(&self) -> WriterStatistics {
        self.inner.writer_statistics()
    }
}

impl EngineInner {
    pub(crate) fn writer_statistics(&self) -> WriterStatistics {
        self.store.stats.statistics()
    }
}

pub(crate) struct EngineInner {
    pub(crate) registry: Registry,
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) config: EngineConfig,
    live: Mutex<HashMap<u64, Arc<Live>>>,
    watchers: Mutex<HashMap<u64, Vec<oneshot::Sender<Outcome>>>>,
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

impl EngineInner {
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
    /// `attach` watchers. Called by the writer thread for every commit, before it answers.
    fn act_on(self: &Arc<Self>, effects: &mut Effects) {
        for id in std::mem::take(&mut effects.start) {
            self.start(id);
        }
        if let Some(due_ms) = effects.earliest_timer.take() {
            self.timers.added(due_ms);
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

/// Runs `work` on the data folder `dir` off the runtime (redb blocks). The storage layer panics
/// on some damage it does not expect: that is reported as damage naming the data file, never as
/// the panic.
async fn on_data_file<T: Send + 'static>(
    dir: std::path::PathBuf,
    work: impl FnOnce(&Path) -> Result<T, OpenError> + Send + 'static,
) -> Result<T, OpenError> {
    let path = dir.join(crate::store::DATA_FILE);
    tokio::task::spawn_blocking(move || work(&dir))
        .await
        .map_err(|error| match error.try_into_panic() {
            Ok(panic) => OpenError::Corrupted {
                path,
                message: panic_message(&*panic),
            },
            Err(_cancelled) => OpenError::NoRuntime,
        })?
}

/// The message of a panic payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
