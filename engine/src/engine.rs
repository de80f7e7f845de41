//! Opening the engine: registration, configuration, start-up recovery and shutdown.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Client;
use crate::clock::{Clock, SharedClock};
use crate::error::{OpenError, StoreError, panic_message};
use crate::retry::RetryPolicy;
use crate::runtime::clocks::SystemClock;
use crate::runtime::{EngineConfig, Runtime};
use crate::service::{Definition, Registry};
use crate::store::Store;
use crate::store::StoredIdentity;
use crate::store::check::CheckReport;
use crate::store::command::CrashHook;
use crate::store::stats::WriterStatistics;

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
        inner.resume()?;
        Ok(Engine { inner })
    }

    /// The registered definitions, by name; fails if two share a name.
    pub(crate) fn registry(&mut self) -> Result<Registry, OpenError> {
        let mut registry = Registry::default();
        for definition in std::mem::take(&mut self.definitions) {
            registry
                .add(definition)
                .map_err(OpenError::DuplicateService)?;
        }
        Ok(registry)
    }

    async fn open_store(mut self, dir: &Path, read_only: bool) -> Result<Arc<Runtime>, OpenError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(OpenError::NoRuntime);
        }
        let registry = self.registry()?;
        let dir = dir.to_owned();
        let retention_ms = u64::try_from(self.config.retention.as_millis()).unwrap_or(u64::MAX);
        let crash_hook = self.crash_hook;
        let identity = if read_only { None } else { self.identity };
        let store = on_data_file(dir, move |dir| {
            Store::open(dir, retention_ms, crash_hook, identity)
        })
        .await?;
        Ok(Runtime::new(
            registry,
            store,
            self.clock,
            self.config,
            read_only,
            self.random_seed,
        )?)
    }
}

/// An open engine: the owner of its data folder. Dropping it stops its invocations; call
/// [`Engine::shutdown`] to also wait for the writer to finish.
pub struct Engine {
    inner: Arc<Runtime>,
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
        self.inner.shut_down().await;
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

    pub(crate) fn inner(&self) -> &Arc<Runtime> {
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

/// Runs `work` on the data folder `dir` off the runtime (redb blocks). The storage layer panics
/// on some damage it does not expect: that is reported as damage naming the data file, never as
/// the panic.
pub(crate) async fn on_data_file<T: Send + 'static>(
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
