//! The durable store: sole owner of the redb database.
//!
//! Writes go through the single writer thread ([`writer`]), which groups them into shared
//! commits. Reads open their own MVCC read transactions and never wait for the writer.
//! Nothing outside this module opens a redb transaction.

pub(crate) mod check;
pub(crate) mod command;
pub(crate) mod log;
pub(crate) mod records;
mod redb_errors;
pub(crate) mod stats;
pub(crate) mod tables;
pub(crate) mod transition;
pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use std::thread::JoinHandle;
use tokio::sync::watch;

use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata,
};
use tokio::sync::{mpsc, oneshot};

use self::command::{Command, CrashHook, EffectSink, Reply};
use self::records::InvocationRecord;
use self::stats::{STATUSES, StatusCounts, WriterStats, status_index};
use self::tables::{
    FORMAT_VERSION, IDEMPOTENCY, INFLIGHT, INVOCATIONS, JOURNAL, META, OBJECT_LOCKS, OBJECT_QUEUE,
    PROMISE_WAITERS, PROMISES, STATE, TIMERS, WAITERS, WORKFLOWS,
};
use self::writer::{DbSlot, Request};
use crate::counted::Counted;
use crate::error::{OpenError, StoreError};
use crate::journal::entry::decode;
use crate::journal::{Completion, Entry};

/// An invocation's journal entries with their indices, in index order.
pub(crate) type Journal = Vec<(u32, Entry)>;

/// The name of the engine's file inside the data folder.
pub const DATA_FILE: &str = "engine.redb";

/// The open database and the handle of its writer thread.
pub(crate) struct Store {
    /// `None` once closed: the file is released when the writer has stopped, even while clients
    /// of the engine are still alive (their reads then fail with [`StoreError::ShutDown`]). The
    /// writer replaces it when it reopens the file after a failed commit.
    db: DbSlot,
    /// How many times the writer reopened the file after a failed commit.
    generation: Arc<AtomicU64>,
    requests: mpsc::UnboundedSender<Request>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Set by `Store::halt`: the writer commits nothing more, as if the process had died.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))] // only the testing module halts
    halted: Arc<AtomicBool>,
    /// Set by `Store::fail_storage` (tests): the writer's next batch panics.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    fail_storage: Arc<AtomicBool>,
    /// Why the writer thread died, once it has: `None` while it runs (or after a clean stop).
    died: watch::Receiver<Option<String>>,
    pub(crate) stats: Arc<WriterStats>,
    /// Where the writer hands the effects of each commit; set once by [`Store::on_commit`].
    sink: Arc<OnceLock<EffectSink>>,
    /// Commands queued and not yet answered.
    queued: Arc<AtomicUsize>,
}

impl Store {
    /// Opens (or creates) the data file in `dir` and starts the writer thread. Finished
    /// invocations are purged `retention_ms` after they finish.
    ///
    /// `crash_hook` (tests) halts the writer right before the first command it matches: the
    /// commands before it in the batch are committed, that one and everything after are refused.
    pub(crate) fn open(
        dir: &Path,
        retention_ms: u64,
        crash_hook: Option<CrashHook>,
        identity: Option<uuid::Uuid>,
    ) -> Result<Self, OpenError> {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DATA_FILE);
        if !path.exists() {
            create_file(dir, &path)?;
        }
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::Locked(path)),
            Err(DatabaseError::UpgradeRequired(found)) => {
                return Err(OpenError::IncompatibleFormat {
                    path,
                    found: u32::from(found),
                    expected: u32::try_from(FORMAT_VERSION).unwrap_or(u32::MAX),
                });
            }
            Err(DatabaseError::Storage(redb::StorageError::Io(source))) => {
                return Err(OpenError::Io { path, source });
            }
            Err(DatabaseError::Storage(redb::StorageError::Corrupted(message))) => {
                return Err(OpenError::Corrupted { path, message });
            }
            Err(other) => return Err(OpenError::Store(other.into())),
        };
        check_format(&db, path.clone())?;
        if let Some(identity) = identity {
            check_identity(&db, path.clone(), identity)?;
        }
        let log_dir = dir.join(log::LOG_DIR);
        let (log, _) = writer::recover(&db, &log_dir).map_err(|error| match error {
            StoreError::Corrupted(message) => OpenError::Corrupted {
                path: log_dir.clone(),
                message,
            },
            other => OpenError::Store(other),
        })?;
        let statuses = count_statuses(&db, &path)?;
        let db: DbSlot = Arc::new(RwLock::new(Some(Arc::new(db))));
        let generation = Arc::new(AtomicU64::new(0));
        let (requests, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(WriterStats {
            statuses: StatusCounts::from_counts(statuses),
            ..WriterStats::default()
        });
        let halted = Arc::new(AtomicBool::new(false));
        let fail_storage = Arc::new(AtomicBool::new(false));
        let (died_tx, died) = watch::channel(None);
        let sink: Arc<OnceLock<EffectSink>> = Arc::default();
        let writer = {
            let sink = sink.clone();
            let file = writer::File {
                db: db.clone(),
                path,
                log_dir,
                generation: generation.clone(),
            };
            let stats = stats.clone();
            let halt = writer::Halt {
                halted: halted.clone(),
                crash_hook,
                fail_storage: fail_storage.clone(),
                #[cfg(feature = "testing")]
                fault_file: std::env::var_os(writer::FAULT_FILE_VAR).map(PathBuf::from),
                died: died_tx,
            };
            std::thread::Builder::new()
                .name("engine-writer".into())
                .spawn(move || {
                    // The storage layer panics on some damage; the writer then is gone for good
                    // and the engine can commit nothing more: say so, for `Engine::failure`.
                    let run = || writer::run(&file, rx, &stats, retention_ms, &halt, &sink, log);
                    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                    {
                        let reason = crate::error::panic_message(&*panic);
                        tracing::error!(%reason, "the engine's writer stopped");
                        halt.died.send_replace(Some(reason));
                    }
                })
                .map_err(|source| OpenError::Io {
                    path: dir.to_owned(),
                    source,
                })?
        };
        Ok(Self {
            db,
            generation,
            requests,
            writer: Mutex::new(Some(writer)),
            halted,
            fail_storage,
            died,
            stats,
            sink,
            queued: Arc::default(),
        })
    }

    /// Sets where the writer hands each commit's effects (once; later calls change nothing).
    /// Commands committed before it is set have their effects dropped, so it is set before
    /// anything is submitted.
    pub(crate) fn on_commit(&self, sink: EffectSink) {
        let _ = self.sink.set(sink);
    }

    /// Whether every command queued so far has been answered, its effects acted on.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))] // TestEngine's
    pub(crate) fn is_quiet(&self) -> bool {
        self.queued.load(Ordering::SeqCst) == 0
    }

    /// Sends a command to the writer and waits until it is committed (or refused).
    pub(crate) async fn submit(&self, command: Command) -> Reply {
        Self::answer(self.enqueue(command)).await
    }

    /// Like [`Store::submit`], for a command of an invocation attempt that started when the
    /// store was at `generation`: refused if the store was reopened since. A failed commit may
    /// have lost an earlier command of that attempt (a state write it did not wait for), so
    /// nothing more of the attempt may commit; its next attempt replays what was committed.
    pub(crate) async fn submit_as(&self, generation: u64, command: Command) -> Reply {
        Self::answer(self.enqueue_as(generation, command)).await
    }

    async fn answer(answer: oneshot::Receiver<Reply>) -> Reply {
        answer.await.map_err(|_| StoreError::ShutDown)?
    }

    /// Queues a command without waiting. Commands queued by one task are committed in the order
    /// they were queued, each in the same commit as its successors or an earlier one.
    pub(crate) fn enqueue(&self, command: Command) -> oneshot::Receiver<Reply> {
        self.send(None, command)
    }

    /// [`Store::enqueue`] for a command of an attempt; see [`Store::submit_as`].
    pub(crate) fn enqueue_as(&self, generation: u64, command: Command) -> oneshot::Receiver<Reply> {
        self.send(Some(generation), command)
    }

    fn send(&self, generation: Option<u64>, command: Command) -> oneshot::Receiver<Reply> {
        let (reply, answer) = oneshot::channel();
        // If the writer is gone, `reply` is dropped and the receiver reports it.
        let queued = Counted::new(&self.queued);
        let _ = self
            .requests
            .send(Request::Apply(Box::new(command), reply, generation, queued));
        answer
    }

    /// Copies the data file to `dest` (a new file) between two commits of the writer: a
    /// consistent copy, taken while the engine serves. Its size in bytes.
    pub(crate) async fn back_up(&self, dest: PathBuf) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Backup(dest, reply))
            .map_err(|_| StoreError::ShutDown)?;
        answer.await.map_err(|_| StoreError::ShutDown)?
    }

    /// How many times the file was reopened after a failed commit.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Stops the writer after the commands already sent are committed, waits for it, and
    /// releases the file.
    pub(crate) async fn close(&self) {
        let _ = self.requests.send(Request::Stop);
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        self.db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Commits nothing more from now on: what is queued or sent later is refused, as if the
    /// process had been killed. For tests that simulate a crash in-process.
    #[cfg(feature = "testing")]
    pub(crate) fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
    }

    /// Makes the storage layer fail at the writer's next batch, killing the writer thread as a
    /// damaged file can. For tests of what follows.
    #[cfg(feature = "testing")]
    pub(crate) fn fail_storage(&self) {
        self.fail_storage.store(true, Ordering::SeqCst);
    }

    /// Why the writer thread died, if it has.
    pub(crate) fn failure(&self) -> Option<String> {
        self.died.borrow().clone()
    }

    /// Waits until the writer thread dies; its reason.
    pub(crate) async fn failed(&self) -> String {
        let mut died = self.died.clone();
        loop {
            if let Some(reason) = died.borrow_and_update().clone() {
                return reason;
            }
            if died.changed().await.is_err() {
                // The writer stopped cleanly and will not die: wait forever.
                return std::future::pending().await;
            }
        }
    }

    /// A read transaction on the committed state.
    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let db = db.as_ref().ok_or(StoreError::ShutDown)?;
        Ok(db.begin_read()?)
    }

    /// An invocation's record and its journal, read in one transaction.
    pub(crate) fn load(&self, inv: u64) -> Result<Option<(InvocationRecord, Journal)>, StoreError> {
        let txn = self.begin_read()?;
        let invocations = txn.open_table(INVOCATIONS)?;
        let Some(record) = invocations.get(inv)? else {
            return Ok(None);
        };
        let who = crate::ids::InvocationId(inv);
        let record: InvocationRecord = decode(record.value())
            .map_err(|e| StoreError::Corrupted(format!("invocation {who}'s record: {e}")))?;
        let journal = txn.open_table(JOURNAL)?;
        let mut entries = Vec::new();
        for row in journal.range((inv, 0)..=(inv, u32::MAX))? {
            let (key, value) = row?;
            let index = key.value().1;
            let entry = decode(value.value()).map_err(|e| {
                StoreError::Corrupted(format!("invocation {who}'s journal entry {index}: {e}"))
            })?;
            entries.push((index, entry));
        }
        Ok(Some((record, entries)))
    }

    /// One invocation's record.
    pub(crate) fn record(&self, inv: u64) -> Result<Option<InvocationRecord>, StoreError> {
        let txn = self.begin_read()?;
        let invocations = txn.open_table(INVOCATIONS)?;
        invocations
            .get(inv)?
            .map(|bytes| decode(bytes.value()))
            .transpose()
    }

    /// Every invocation, in id order, passed through `keep`.
    pub(crate) fn scan_invocations(
        &self,
        mut keep: impl FnMut(u64, InvocationRecord) -> bool,
    ) -> Result<(), StoreError> {
        let txn = self.begin_read()?;
        let invocations = txn.open_table(INVOCATIONS)?;
        for row in invocations.iter()? {
            let (key, value) = row?;
            if !keep(key.value(), decode(value.value())?) {
                break;
            }
        }
        Ok(())
    }

    /// Invocations to run at start-up.
    pub(crate) fn inflight(&self) -> Result<Vec<u64>, StoreError> {
        let txn = self.begin_read()?;
        let inflight = txn.open_table(INFLIGHT)?;
        inflight
            .iter()?
            .map(|row| Ok(row?.0.value()))
            .collect::<Result<_, StoreError>>()
    }

    /// The highest invocation id ever written, or 0.
    pub(crate) fn last_invocation_id(&self) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        let invocations = txn.open_table(INVOCATIONS)?;
        Ok(invocations.last()?.map_or(0, |(key, _)| key.value()))
    }

    /// One state value of an object or workflow instance.
    pub(crate) fn state_get(
        &self,
        instance: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.begin_read()?;
        let state = txn.open_table(STATE)?;
        state
            .get((instance, key))?
            .map(|v| state_value(instance, key, v.value()))
            .transpose()
    }

    /// All state of an object or workflow instance, ordered by key.
    pub(crate) fn state_all(&self, instance: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.begin_read()?;
        let state = txn.open_table(STATE)?;
        let mut all = Vec::new();
        for row in state.range((instance, "")..)? {
            let (key, value) = row?;
            let (owner, name) = key.value();
            if owner != instance {
                break;
            }
            all.push((name.to_owned(), state_value(instance, name, value.value())?));
        }
        Ok(all)
    }

    /// The deadline of the earliest timer, if any. Reads one row, whatever the number of timers.
    pub(crate) fn first_timer(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.begin_read()?;
        let timers = txn.open_table(TIMERS)?;
        Ok(timers.first()?.map(|(key, _)| key.value().0))
    }

    /// Number of timers stored (sleeps, delayed starts, purges).
    pub(crate) fn timers_len(&self) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        Ok(txn.open_table(TIMERS)?.len()?)
    }

    /// A workflow promise's completion, if it has one.
    pub(crate) fn promise(
        &self,
        instance: &str,
        name: &str,
    ) -> Result<Option<Completion>, StoreError> {
        let txn = self.begin_read()?;
        let promises = txn.open_table(PROMISES)?;
        promises
            .get((instance, name))?
            .map(|bytes| decode(bytes.value()))
            .transpose()
    }

    /// The invocation of a workflow instance's `run`, if it was submitted (and not purged).
    pub(crate) fn workflow_invocation(&self, instance: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.begin_read()?;
        let workflows = txn.open_table(WORKFLOWS)?;
        Ok(workflows.get(instance)?.map(|g| g.value()))
    }

    /// The invocation a request to `target` with idempotency key `key` maps to, if any.
    pub(crate) fn idempotent_invocation(
        &self,
        target: &str,
        key: &str,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.begin_read()?;
        let idempotency = txn.open_table(IDEMPOTENCY)?;
        Ok(idempotency.get((target, key))?.map(|g| g.value()))
    }

    /// Number of rows in the journal table, for tests and statistics.
    pub(crate) fn journal_len(&self) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        Ok(txn.open_table(JOURNAL)?.len()?)
    }
}

/// A stored state value's payload; damage names the instance and key.
fn state_value(instance: &str, key: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    crate::journal::entry::unseal(stored)
        .map(<[u8]>::to_vec)
        .map_err(|e| StoreError::Corrupted(format!("state {key:?} of {instance}: {e}")))
}

/// The folder identity a data file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredIdentity {
    /// There is no data file, or it is empty (0 bytes).
    NoFile,
    /// The file carries no identity (written before identities, or never given one).
    Unnamed,
    /// The file carries this identity.
    Named(uuid::Uuid),
}

/// The halves of the folder identity in [`META`].
const IDENTITY_HIGH: &str = "folder_identity_high";
const IDENTITY_LOW: &str = "folder_identity_low";

fn stored_identity(
    meta: &impl redb::ReadableTable<&'static str, u64>,
) -> Result<Option<uuid::Uuid>, StoreError> {
    let high = meta.get(IDENTITY_HIGH)?.map(|v| v.value());
    let low = meta.get(IDENTITY_LOW)?.map(|v| v.value());
    Ok(match (high, low) {
        (Some(high), Some(low)) => Some(uuid::Uuid::from_u64_pair(high, low)),
        _ => None,
    })
}

/// Opens an existing data file that no process may have open, to read it (and, for a check, to
/// run redb's integrity check): one mapping of redb's refusals for every such reader. The file
/// is first brought up to date with the log beside it, as the next start would: a process
/// killed since its last checkpoint left its latest commits there.
pub(crate) fn open_to_read(path: PathBuf) -> Result<Database, OpenError> {
    let opened = Database::open(&path).map(|db| {
        let log_dir = path.with_file_name(log::LOG_DIR);
        if log_dir.is_dir() {
            writer::recover(&db, &log_dir).map(|_| db)
        } else {
            Ok(db)
        }
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(StoreError::Corrupted(message))) => Err(OpenError::Corrupted {
            path: path.with_file_name(log::LOG_DIR),
            message,
        }),
        Ok(Err(other)) => Err(OpenError::Store(other)),
        Err(DatabaseError::DatabaseAlreadyOpen) => Err(OpenError::Locked(path)),
        Err(DatabaseError::Storage(redb::StorageError::Corrupted(message))) => {
            Err(OpenError::Corrupted { path, message })
        }
        Err(DatabaseError::Storage(redb::StorageError::Io(source))) => {
            Err(OpenError::Io { path, source })
        }
        Err(other) => Err(OpenError::Corrupted {
            path,
            message: other.to_string(),
        }),
    }
}

/// The identity the data file in `dir` carries, read without writing.
pub(crate) fn read_identity(dir: &Path) -> Result<StoredIdentity, OpenError> {
    let path = dir.join(DATA_FILE);
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoredIdentity::NoFile),
        Err(source) => return Err(OpenError::Io { path, source }),
        Ok(meta) if meta.len() == 0 => return Ok(StoredIdentity::NoFile),
        Ok(_) => {}
    }
    let db = open_to_read(path)?;
    let txn = db.begin_read().map_err(StoreError::from)?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(StoredIdentity::Unnamed),
        Err(error) => return Err(OpenError::Store(error.into())),
    };
    Ok(match stored_identity(&meta)? {
        Some(identity) => StoredIdentity::Named(identity),
        None => StoredIdentity::Unnamed,
    })
}

/// The keys of the workflows named `name` the data file in `dir` holds (every workflow that
/// ever ran, finished ones included), read without writing; empty without a file.
pub(crate) fn read_workflow_keys(dir: &Path, name: &str) -> Result<Vec<String>, OpenError> {
    let path = dir.join(DATA_FILE);
    if std::fs::metadata(&path).map_or(true, |m| m.len() == 0) {
        return Ok(Vec::new());
    }
    let db = open_to_read(path)?;
    let txn = db.begin_read().map_err(StoreError::from)?;
    let workflows = match txn.open_table(WORKFLOWS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(error) => return Err(OpenError::Store(error.into())),
    };
    let prefix = format!("{name}/");
    let mut keys = Vec::new();
    for row in workflows
        .range(prefix.as_str()..)
        .map_err(StoreError::from)?
    {
        let (instance, _) = row.map_err(StoreError::from)?;
        let Some(key) = instance.value().strip_prefix(&prefix) else {
            break;
        };
        keys.push(key.to_owned());
    }
    Ok(keys)
}

/// Every invocation in the data file of `dir` that is unfinished, or finished at or after
/// `finished_since_ms`, with its journal, read without opening the file for writing (no process
/// may have it open): what the replay gate replays.
pub(crate) fn read_recorded(
    dir: &Path,
    finished_since_ms: u64,
) -> Result<Vec<(u64, InvocationRecord, Journal)>, OpenError> {
    let path = dir.join(DATA_FILE);
    if std::fs::metadata(&path).map_or(true, |m| m.len() == 0) {
        return Ok(Vec::new());
    }
    let db = open_to_read(path)?;
    let txn = db.begin_read().map_err(StoreError::from)?;
    let (invocations, journal) = match (txn.open_table(INVOCATIONS), txn.open_table(JOURNAL)) {
        (Ok(invocations), Ok(journal)) => (invocations, journal),
        (Err(redb::TableError::TableDoesNotExist(_)), _)
        | (_, Err(redb::TableError::TableDoesNotExist(_))) => return Ok(Vec::new()),
        (Err(error), _) | (_, Err(error)) => return Err(OpenError::Store(error.into())),
    };
    let mut recorded = Vec::new();
    for row in invocations.iter().map_err(StoreError::from)? {
        let (key, value) = row.map_err(StoreError::from)?;
        let inv = key.value();
        let who = crate::ids::InvocationId(inv);
        let record: InvocationRecord = decode(value.value())
            .map_err(|e| StoreError::Corrupted(format!("invocation {who}'s record: {e}")))?;
        if record.status.is_finished() && record.modified_ms < finished_since_ms {
            continue;
        }
        let mut entries = Vec::new();
        for row in journal
            .range((inv, 0)..=(inv, u32::MAX))
            .map_err(StoreError::from)?
        {
            let (key, value) = row.map_err(StoreError::from)?;
            let index = key.value().1;
            let entry = decode(value.value()).map_err(|e| {
                StoreError::Corrupted(format!("invocation {who}'s journal entry {index}: {e}"))
            })?;
            entries.push((index, entry));
        }
        recorded.push((inv, record, entries));
    }
    Ok(recorded)
}

/// Refuses a file that carries another identity; records `identity` in one that has none.
fn check_identity(db: &Database, path: PathBuf, identity: uuid::Uuid) -> Result<(), OpenError> {
    let txn = db.begin_write().map_err(StoreError::from)?;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::from)?;
        match stored_identity(&meta)? {
            Some(found) if found == identity => {}
            Some(found) => {
                drop(meta);
                let _ = txn.abort();
                return Err(OpenError::ForeignFile {
                    path,
                    found,
                    expected: identity,
                });
            }
            None => {
                let (high, low) = identity.as_u64_pair();
                meta.insert(IDENTITY_HIGH, high).map_err(StoreError::from)?;
                meta.insert(IDENTITY_LOW, low).map_err(StoreError::from)?;
            }
        }
    }
    txn.commit().map_err(StoreError::from)?;
    Ok(())
}

/// Creates a new data file under a temporary name, with its tables and format version, and only
/// then renames it into place: a crash during creation leaves no half-written file behind.
fn create_file(dir: &Path, path: &Path) -> Result<(), OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_owned(),
        source,
    };
    let creating = dir.join(format!("{DATA_FILE}.creating"));
    match std::fs::remove_file(&creating) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let db = Database::create(&creating).map_err(|e| OpenError::Store(e.into()))?;
    check_format(&db, creating.clone())?;
    drop(db);
    std::fs::rename(&creating, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// Upgrades format 2 to 3 inside `txn`: every bincode record gets the checksum of its bytes.
fn add_checksums(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    fn with_checksum(payload: &[u8]) -> Vec<u8> {
        let mut bytes = payload.to_vec();
        bytes.extend_from_slice(&crate::journal::entry::checksum(payload));
        bytes
    }
    let mut invocations = txn.open_table(INVOCATIONS)?;
    let rows: Vec<(u64, Vec<u8>)> = invocations
        .iter()?
        .map(|row| row.map(|(k, v)| (k.value(), with_checksum(v.value()))))
        .collect::<Result<_, _>>()?;
    for (key, value) in rows {
        invocations.insert(key, value.as_slice())?;
    }
    let mut journal = txn.open_table(JOURNAL)?;
    let rows: Vec<((u64, u32), Vec<u8>)> = journal
        .iter()?
        .map(|row| row.map(|(k, v)| (k.value(), with_checksum(v.value()))))
        .collect::<Result<_, _>>()?;
    for (key, value) in rows {
        journal.insert(key, value.as_slice())?;
    }
    let mut state = txn.open_table(STATE)?;
    let rows: Vec<((String, String), Vec<u8>)> = state
        .iter()?
        .map(|row| {
            row.map(|(k, v)| {
                let (instance, key) = k.value();
                (
                    (instance.to_owned(), key.to_owned()),
                    with_checksum(v.value()),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    for ((instance, key), value) in rows {
        state.insert((instance.as_str(), key.as_str()), value.as_slice())?;
    }
    let mut promises = txn.open_table(PROMISES)?;
    let rows: Vec<((String, String), Vec<u8>)> = promises
        .iter()?
        .map(|row| {
            row.map(|(k, v)| {
                let (instance, name) = k.value();
                (
                    (instance.to_owned(), name.to_owned()),
                    with_checksum(v.value()),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    for ((instance, name), value) in rows {
        promises.insert((instance.as_str(), name.as_str()), value.as_slice())?;
    }
    Ok(())
}

/// Creates the tables of a new file, or checks the format version of an existing one; a
/// format-2 file is upgraded to the current format.
fn check_format(db: &Database, path: PathBuf) -> Result<(), OpenError> {
    let txn = db.begin_write().map_err(StoreError::from)?;
    let found = {
        let mut meta = txn.open_table(META).map_err(StoreError::from)?;
        let found = meta
            .get("format_version")
            .map_err(StoreError::from)?
            .map(|v| v.value());
        if found.is_none() {
            meta.insert("format_version", FORMAT_VERSION)
                .map_err(StoreError::from)?;
        }
        found
    };
    if found == Some(2) {
        add_checksums(&txn)?;
        let mut meta = txn.open_table(META).map_err(StoreError::from)?;
        meta.insert("format_version", FORMAT_VERSION)
            .map_err(StoreError::from)?;
        tracing::info!(path = %path.display(), "data file upgraded from format 2 to {FORMAT_VERSION}");
    } else if let Some(found) = found.filter(|&v| v != FORMAT_VERSION) {
        let _ = txn.abort();
        return Err(OpenError::IncompatibleFormat {
            path,
            found: u32::try_from(found).unwrap_or(u32::MAX),
            expected: u32::try_from(FORMAT_VERSION).unwrap_or(u32::MAX),
        });
    }
    macro_rules! create {
        ($($table:expr),*) => {$( txn.open_table($table).map_err(StoreError::from)?; )*};
    }
    create!(
        INVOCATIONS,
        JOURNAL,
        INFLIGHT,
        STATE,
        OBJECT_LOCKS,
        OBJECT_QUEUE,
        WORKFLOWS,
        WAITERS,
        TIMERS,
        PROMISES,
        PROMISE_WAITERS,
        IDEMPOTENCY
    );
    txn.commit().map_err(StoreError::from)?;
    Ok(())
}

/// How many stored invocations have each status (by `stats::status_index`): one read of every
/// record, once at open; the writer keeps the counts from then on.
fn count_statuses(db: &Database, path: &Path) -> Result<[u64; STATUSES], OpenError> {
    let mut counts = [0u64; STATUSES];
    let damaged = |error: StoreError| OpenError::Corrupted {
        path: path.to_owned(),
        message: error.to_string(),
    };
    let txn = db.begin_read().map_err(|e| damaged(e.into()))?;
    let invocations = match txn.open_table(INVOCATIONS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(counts),
        Err(error) => return Err(damaged(error.into())),
    };
    for row in invocations.iter().map_err(|e| damaged(e.into()))? {
        let (_, value) = row.map_err(|e| damaged(e.into()))?;
        let record: InvocationRecord = decode(value.value()).map_err(damaged)?;
        counts[status_index(record.status)] += 1;
    }
    Ok(counts)
}
