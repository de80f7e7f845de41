//! The single writer thread: the only code that opens redb write transactions.
//!
//! Requests arrive on a channel from any number of invocations. The writer thread takes every
//! request waiting in the channel, applies them all in one write transaction (the state
//! transitions of [`super::transition`]), appends the batch to the log ([`super::log`]: one
//! `fdatasync` of an append), commits the transaction without durability, hands each
//! command's effects to the runtime, and only then answers each request. Four times a
//! second it commits durably (a checkpoint) and recycles the log before it. Throughput therefore
//! grows with concurrency instead of being capped by the disk's sync rate, and each batch costs
//! one small append's sync rather than redb's durable commit. It also replays the log after a
//! crash or a failed commit ([`recover`]), reopens the file after a failed commit, copies it
//! for a backup between two commits, and halts or fails on purpose for tests.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase};
use tokio::sync::{mpsc, oneshot, watch};

use super::command::{Command, CrashHook, EffectSink, Effects, Reply};
use super::log::{Kind, Log};
use super::stats::{WriterStats, record_commit};
use super::tables::META;
use super::transition::{LOG_SEQ, apply_uncommitted};
use crate::counted::Counted;
use crate::error::StoreError;
use crate::journal::entry::{decode, encode};

/// The most requests committed in one transaction.
const MAX_BATCH: usize = 1024;

/// What the writer thread is sent.
pub(crate) enum Request {
    /// A command, where to answer, and for a command of an invocation attempt the store
    /// generation the attempt started in.
    Apply(Box<Command>, oneshot::Sender<Reply>, Option<u64>, Counted),
    /// Copy the data file, between two commits, to this new file; answer its size.
    Backup(PathBuf, oneshot::Sender<Result<u64, StoreError>>),
    Stop,
}

/// The shared handle on the open database: the store reads through it, the writer replaces it
/// when it reopens the file after a failed commit. `None` once the store is closed.
pub(crate) type DbSlot = Arc<RwLock<Option<Arc<Database>>>>;

/// The data file, as the writer sees it.
pub(crate) struct File {
    pub(crate) db: DbSlot,
    pub(crate) path: PathBuf,
    /// The log's folder.
    pub(crate) log_dir: PathBuf,
    /// Counts reopenings; attempts that started before one may commit nothing more.
    pub(crate) generation: Arc<AtomicU64>,
}

/// How often at most the writer commits durably (a checkpoint), while batches come. A
/// checkpoint stalls the writer for as long as redb takes to make what was committed since the
/// last one durable, so shorter intervals make shorter stalls: measured under load, every
/// second made checkpoints of up to 95 ms (p90 19 ms), every 250 ms of up to 9 ms (p90 6 ms),
/// for the same total time and throughput (docs/architecture.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// How many batches at most the writer commits between two checkpoints.
const CHECKPOINT_BATCHES: u64 = 4096;

/// [`CHECKPOINT_BATCHES`], or in builds with the `testing` feature the number
/// [`CHECKPOINT_BATCHES_VAR`] names — frequent checkpoints, so that kill tests land on them.
fn checkpoint_batches() -> u64 {
    #[cfg(feature = "testing")]
    if let Some(batches) = std::env::var(CHECKPOINT_BATCHES_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return batches.max(1);
    }
    CHECKPOINT_BATCHES
}

/// The environment variable that sets how many batches at most go between two checkpoints in
/// builds with the `testing` feature.
#[cfg(feature = "testing")]
pub(crate) const CHECKPOINT_BATCHES_VAR: &str = "ZEROAPP_TESTING_CHECKPOINT_BATCHES";

/// What a batch record holds: the retention the commands were applied with (purge timers
/// depend on it) and the commands.
type Logged<'c> = (u64, Vec<&'c Command>);

/// Brings `db` up to date with the log in `log_dir`: every batch after the last durable
/// commit's is applied again, in order, each in its own transaction, then one durable commit
/// covers them all. The open log, ready for the next append, and how many batches it replayed.
pub(crate) fn recover(db: &Database, log_dir: &Path) -> Result<(Log, usize), StoreError> {
    let durable = {
        let txn = db.begin_read()?;
        match txn.open_table(META) {
            Ok(meta) => meta.get(LOG_SEQ)?.map_or(0, |v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(error) => return Err(error.into()),
        }
    };
    let (mut log, records) = Log::open(log_dir, durable)?;
    let voided: std::collections::HashSet<u64> = records
        .iter()
        .filter(|r| r.kind == Kind::Void)
        .filter_map(|r| Some(u64::from_le_bytes(r.payload.get(..8)?.try_into().ok()?)))
        .collect();
    let mut replayed = 0;
    let mut last = durable;
    for record in &records {
        last = record.seq;
        if record.kind != Kind::Batch || voided.contains(&record.seq) {
            continue;
        }
        let (retention_ms, commands): (u64, Vec<Command>) =
            decode(&record.payload).map_err(|e| {
                StoreError::Corrupted(format!("log record {} cannot be read: {e}", record.seq))
            })?;
        let commands: Vec<&Command> = commands.iter().collect();
        let (mut txn, _) = apply_uncommitted(db, &commands, retention_ms, Some(record.seq))?;
        txn.set_durability(Durability::None)
            .map_err(|e| StoreError::Redb(e.to_string()))?;
        txn.commit()?;
        replayed += 1;
    }
    if last > durable {
        checkpoint(db, last)?;
        log.checkpointed(last);
        tracing::info!(replayed, up_to = last, "log replayed into the data file");
    }
    Ok((log, replayed))
}

/// Commits durably, recording `seq` as the last log record applied: everything committed
/// before is durable in redb from now on.
fn checkpoint(db: &Database, seq: u64) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(META)?.insert(LOG_SEQ, seq)?;
    txn.commit()?;
    Ok(())
}

/// The log, and how much of it the last checkpoint left to replay.
struct LogState {
    log: Log,
    /// Batches committed since the last checkpoint.
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl LogState {
    fn new(log: Log) -> Self {
        Self {
            log,
            since_checkpoint: 0,
            last_checkpoint: disk_time(),
        }
    }

    fn checkpoint_due(&self) -> bool {
        self.since_checkpoint > 0
            && (self.since_checkpoint >= checkpoint_batches()
                || self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY)
    }

    /// Commits durably and recycles the log before: everything committed is in redb for good.
    fn checkpoint(&mut self, db: &Database) -> Result<(), StoreError> {
        let seq = self.log.next_seq().saturating_sub(1);
        checkpoint(db, seq)?;
        self.log.checkpointed(seq);
        self.since_checkpoint = 0;
        self.last_checkpoint = disk_time();
        Ok(())
    }
}

/// How long the writer refuses commands after a failed commit before it reopens the file.
const REOPEN_AFTER: Duration = Duration::from_millis(250);

impl File {
    fn current(&self) -> Option<Arc<Database>> {
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes and reopens the file: redb refuses every write after a failed commit until then.
    /// Reads wait for the swap. Readers still holding a transaction keep the old file open for
    /// a moment, so an "already open" answer is retried.
    fn reopen(&self, held: Arc<Database>) -> Result<(), StoreError> {
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        slot.take();
        drop(held);
        let mut tries = 0;
        let db = loop {
            match Database::create(&self.path) {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if tries < 200 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(error) => return Err(error.into()),
            }
        };
        *slot = Some(Arc::new(db));
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A command waiting in the writer's queue.
struct Pending {
    command: Command,
    reply: oneshot::Sender<Reply>,
    /// For a command of an invocation attempt: the store generation the attempt started in.
    generation: Option<u64>,
    /// Counts the command from the moment it is queued until it is answered, its effects acted
    /// on (see `Store::is_quiet`): dropped after the answer is sent.
    _queued: Counted,
}

impl Pending {
    /// Answers with `error`; a barrier is answered Ok, as what precedes it is settled.
    fn refuse(self, error: StoreError) {
        let answer = match self.command {
            Command::Barrier => Ok(Ok(Effects::default())),
            _ => Err(error),
        };
        let _ = self.reply.send(answer);
    }
}

/// Why the writer refuses commands for now.
struct Failure {
    error: String,
    /// The disk (or the file-size limit) is full.
    full: bool,
    since: Instant,
}

impl Failure {
    fn of(error: &StoreError) -> Self {
        Self {
            error: match error {
                StoreError::StorageFull(message) => message.clone(),
                other => other.to_string(),
            },
            full: matches!(error, StoreError::StorageFull(_)),
            since: disk_time(),
        }
    }

    fn error(&self) -> StoreError {
        if self.full {
            StoreError::StorageFull(self.error.clone())
        } else {
            StoreError::Redb(format!(
                "a commit failed ({}); the data file is being reopened",
                self.error
            ))
        }
    }
}

/// The writer thread's loop. Returns when a `Stop` arrives or every sender is gone.
///
/// After a failed batch — a full disk, an I/O error — redb refuses every later write until the
/// file is reopened. The writer refuses everything for [`REOPEN_AFTER`], then reopens the file
/// (reads go on meanwhile) and takes commands again. A failed commit may have lost a command
/// that a later command of the same invocation attempt depends on (a state write the handler
/// did not wait for), so commands of attempts that started before the reopening are refused:
/// those attempts end, and their invocations replay what was committed.
pub(crate) fn run(
    file: &File,
    mut rx: mpsc::UnboundedReceiver<Request>,
    stats: &Arc<WriterStats>,
    retention_ms: u64,
    halt: &Halt,
    sink: &OnceLock<EffectSink>,
    log: Log,
) {
    let mut log = LogState::new(log);
    let mut stop = false;
    let mut failure: Option<Failure> = None;
    // Everything received and not yet applied, in arrival order.
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let pending = |command: Box<Command>, reply, generation, queued| Pending {
        command: *command,
        reply,
        generation,
        _queued: queued,
    };
    while !stop || !queue.is_empty() {
        if queue.is_empty() {
            match rx.blocking_recv() {
                Some(Request::Apply(command, reply, generation, queued)) => {
                    queue.push_back(pending(command, reply, generation, queued));
                }
                Some(Request::Backup(dest, reply)) => {
                    let _ = reply.send(back_up(file, &mut log, &dest));
                }
                Some(Request::Stop) | None => break,
            }
        }
        // Nothing sent after `Stop` is taken.
        while !stop {
            match rx.try_recv() {
                Ok(Request::Apply(command, reply, generation, queued)) => {
                    queue.push_back(pending(command, reply, generation, queued));
                }
                Ok(Request::Backup(dest, reply)) => {
                    let _ = reply.send(back_up(file, &mut log, &dest));
                }
                Ok(Request::Stop) => stop = true,
                Err(_) => break,
            }
        }
        let batch = next_batch(&mut queue);
        if batch.is_empty() {
            continue;
        }
        if batch.iter().all(|p| matches!(p.command, Command::Barrier)) {
            // Everything before them is settled: no transaction needed.
            for barrier in batch {
                let _ = barrier.reply.send(Ok(Ok(Effects::default())));
            }
            continue;
        }
        if halt.halted.load(Ordering::SeqCst) {
            for refused in batch {
                refused.refuse(StoreError::Redb(HALTED.to_owned()));
            }
            continue;
        }
        let Some(db) = file.current() else {
            for refused in batch {
                refused.refuse(StoreError::ShutDown);
            }
            continue;
        };
        let db = match failure.take() {
            None => db,
            Some(failed) if failed.since.elapsed() < REOPEN_AFTER => {
                for refused in batch {
                    refused.refuse(failed.error());
                }
                failure = Some(failed);
                continue;
            }
            // Reopened, the file is as of its last durable commit: the log brings back what
            // was committed since.
            Some(failed) => match file.reopen(db).map(|()| file.current()).and_then(|db| {
                let db = db.ok_or(StoreError::ShutDown)?;
                let (recovered, _) = recover(&db, &file.log_dir)?;
                Ok((db, recovered))
            }) {
                Ok((db, recovered)) => {
                    log = LogState::new(recovered);
                    tracing::info!(after = %failed.error, "data file reopened; writes resume");
                    db
                }
                Err(_) => {
                    for refused in batch {
                        refused.refuse(failed.error());
                    }
                    failure = Some(Failure {
                        since: disk_time(),
                        ..failed
                    });
                    continue;
                }
            },
        };
        let current = file.generation.load(Ordering::SeqCst);
        let (batch, stale): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|p| p.generation.is_none_or(|g| g == current));
        for refused in stale {
            refused.refuse(StoreError::Redb(
                "the invocation attempt started before the data file was reopened after a failed \
                 commit; it is retried from its journal"
                    .to_owned(),
            ));
        }
        // A crash point in the batch: commit what precedes it, then halt.
        let mut batch = batch;
        let crashed = match halt.crash_at(&batch) {
            Some(at) => batch.split_off(at),
            None => Vec::new(),
        };
        if !batch.is_empty() {
            let started = disk_time();
            let commands: Vec<&Command> = batch.iter().map(|p| &p.command).collect();
            // The storage layer panics on some damage. Caught here, the writer says it died
            // before it answers anyone, so no caller sees a refusal while the engine still
            // looks healthy; then it stops for good.
            let seq = log.log.next_seq();
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                #[cfg(feature = "testing")]
                if halt.storage_fails() {
                    panic!("injected storage failure (a test)");
                }
                apply_uncommitted(&db, &commands, retention_ms, Some(seq))
            }));
            let applied = match applied {
                Ok(applied) => applied,
                Err(panic) => {
                    let reason = crate::error::panic_message(&*panic);
                    tracing::error!(%reason, "the engine's writer stopped");
                    halt.died.send_replace(Some(reason.clone()));
                    // As for every request sent to a writer that is gone (its `/health` says why).
                    for refused in batch.into_iter().chain(crashed).chain(queue.drain(..)) {
                        refused.refuse(StoreError::ShutDown);
                    }
                    return;
                }
            };
            let committed = applied.and_then(|(txn, applied)| {
                // Durable once logged; the transaction is dropped (nothing written) if the log
                // refuses the batch.
                let logged: Logged<'_> = (retention_ms, commands.clone());
                log.log.append(Kind::Batch, &encode(&logged))?;
                commit_logged(txn, seq, &mut log.log, halt)?;
                Ok(applied)
            });
            match committed {
                Ok(applied) => {
                    log.since_checkpoint += 1;
                    record_commit(stats, batch.len(), started);
                    stats.statuses.apply(&applied.statuses);
                    let mut results = applied.results;
                    if let Some(sink) = sink.get() {
                        for effects in results.iter_mut().flatten() {
                            sink(effects);
                        }
                    }
                    for (done, result) in batch.into_iter().zip(results) {
                        let _ = done.reply.send(Ok(result));
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "commit failed; {} requests get the error", batch.len());
                    let failed = Failure::of(&error);
                    for refused in batch {
                        refused.refuse(failed.error());
                    }
                    failure = Some(failed);
                }
            }
            if failure.is_none() && log.checkpoint_due() {
                if let Err(error) = log.checkpoint(&db) {
                    tracing::error!(%error, "checkpoint failed");
                    failure = Some(Failure::of(&error));
                }
            }
        }
        if !crashed.is_empty() {
            halt.halted.store(true, Ordering::SeqCst);
            for refused in crashed {
                refused.refuse(StoreError::Redb(HALTED.to_owned()));
            }
        }
    }
    // A clean stop leaves the file whole without the log.
    if failure.is_none() && !halt.halted.load(Ordering::SeqCst) && log.since_checkpoint > 0 {
        if let Some(db) = file.current() {
            if let Err(error) = log.checkpoint(&db) {
                tracing::warn!(%error, "the last checkpoint failed: the next start replays the log");
            }
        }
    }
}

const HALTED: &str = "the engine was halted (a simulated crash)";

/// Commits a transaction whose batch the log holds as record `seq`, without durability. If the
/// commit fails, the log says so (a void record), so that recovery does not apply a batch its
/// submitters were told failed; if that cannot be written either, the writer stops for good —
/// the next start replays the batch — rather than answer something the log contradicts.
fn commit_logged(
    mut txn: redb::WriteTransaction,
    seq: u64,
    log: &mut Log,
    halt: &Halt,
) -> Result<(), StoreError> {
    let committed = txn
        .set_durability(Durability::None)
        .map_err(|e| StoreError::Redb(e.to_string()))
        .and_then(|()| txn.commit().map_err(StoreError::from));
    if let Err(error) = committed {
        if let Err(void) = log.append(Kind::Void, &seq.to_le_bytes()) {
            let reason = format!(
                "a commit failed ({error}) and the log cannot record it ({void}): the next start \
                 applies the batch from the log"
            );
            halt.halted.store(true, Ordering::SeqCst);
            halt.died.send_replace(Some(reason.clone()));
            return Err(StoreError::Redb(reason));
        }
        return Err(error);
    }
    Ok(())
}

/// Real time, for what concerns the disk alone: how long a commit took, how long since a
/// failed commit before the file is reopened. Workflow time is the engine's `Clock`.
#[allow(clippy::disallowed_methods)]
fn disk_time() -> Instant {
    Instant::now()
}

/// How the writer is stopped as if its process had died.
pub(crate) struct Halt {
    /// Set: nothing more is committed.
    pub(crate) halted: Arc<AtomicBool>,
    pub(crate) crash_hook: Option<CrashHook>,
    /// Set (tests): the storage layer fails at the next batch the way a damaged file makes it
    /// fail, by panicking on the writer thread.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fail_storage: Arc<AtomicBool>,
    /// Builds with the `testing` feature only: once a file exists at the path named by
    /// [`FAULT_FILE_VAR`], the storage fails as `fail_storage` makes it fail. It reaches the
    /// writer of a real server process, for the test that a dead writer ends `zeroapp serve`.
    #[cfg(feature = "testing")]
    pub(crate) fault_file: Option<PathBuf>,
    /// Told why, when the storage layer fails for good (see `Store::failed`).
    pub(crate) died: watch::Sender<Option<String>>,
}

/// The environment variable naming the fault file of [`Halt::fault_file`].
#[cfg(feature = "testing")]
pub(crate) const FAULT_FILE_VAR: &str = "ZEROAPP_TESTING_STORAGE_FAULT_FILE";

impl Halt {
    /// Whether a test asked the storage layer to fail now.
    #[cfg(feature = "testing")]
    fn storage_fails(&self) -> bool {
        self.fail_storage.load(Ordering::SeqCst)
            || self.fault_file.as_ref().is_some_and(|file| file.exists())
    }

    /// The position of the first command of `batch` the crash hook halts before.
    fn crash_at(&self, batch: &[Pending]) -> Option<usize> {
        let hook = self.crash_hook.as_ref()?;
        batch.iter().position(|p| hook(&p.command))
    }
}

/// Copies the data file to `dest` (a new file) on the writer thread, between two commits, right
/// after a checkpoint: everything committed is durable in the file and no commit is in
/// progress, so the copy is the file as of the last commit, whole without the log. Written
/// under a temporary name, synced, then renamed into place.
fn back_up(file: &File, log: &mut LogState, dest: &Path) -> Result<u64, StoreError> {
    let db = file.current().ok_or(StoreError::ShutDown)?;
    log.checkpoint(&db)?;
    let source = file.path.as_path();
    let failed = |what: &str, e: std::io::Error| {
        StoreError::Backup(format!("{what} {}: {e}", dest.display()))
    };
    if dest.exists() {
        return Err(StoreError::Backup(format!(
            "{} exists already",
            dest.display()
        )));
    }
    let partial = dest.with_extension("partial");
    let bytes = std::fs::copy(source, &partial).map_err(|e| failed("cannot write", e))?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| failed("cannot sync", e))?;
    std::fs::rename(&partial, dest).map_err(|e| failed("cannot rename into", e))?;
    Ok(bytes)
}

/// Takes the next batch: every queued `FireTimers` first, then the oldest other commands, up to
/// [`MAX_BATCH`]. Firing timers may overtake other commands — it only touches timers already
/// committed — so a deadline is never late by more than the batch being applied when it came due.
fn next_batch(queue: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut batch = Vec::with_capacity(queue.len().min(MAX_BATCH));
    let is_timers = |p: &Pending| matches!(p.command, Command::FireTimers { .. });
    if queue.iter().any(is_timers) {
        let (timers, rest): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(queue).into_iter().partition(is_timers);
        batch.extend(timers);
        *queue = rest;
    }
    while batch.len() < MAX_BATCH {
        let Some(next) = queue.pop_front() else {
            break;
        };
        batch.push(next);
    }
    batch
}
