//! The single writer: the only code that opens redb write transactions.
//!
//! Requests arrive on a channel from any number of invocations. The writer thread takes every
//! request waiting in the channel, applies them all in one write transaction, commits it (one
//! fsync), and only then answers each request. Throughput therefore grows with concurrency
//! instead of being capped by the disk's fsync rate.
//!
//! Each command is applied atomically: it checks everything it needs before it writes, so a
//! command that is rejected leaves no trace in the shared transaction.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, Table, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::records::{Cancel, InvocationRecord, Outcome, Status, completion_of};
use super::tables::{
    IDEMPOTENCY, INFLIGHT, INVOCATIONS, JOURNAL, OBJECT_LOCKS, OBJECT_QUEUE, PROMISE_WAITERS,
    PROMISES, PURGE_SLOT, START_SLOT, STATE, TIMERS, WAITERS, WORKFLOWS, timer,
};
use crate::counted::Counted;
use crate::error::{StoreError, TerminalError};
use crate::ids::{HandlerKind, Target};
use crate::journal::entry::{decode, encode};
use crate::journal::{Completion, Entry, Op};

/// The most requests committed in one transaction.
const MAX_BATCH: usize = 1024;

/// A new invocation to create.
#[derive(Debug, Clone)]
pub(crate) struct NewInvocation {
    pub(crate) id: u64,
    pub(crate) target: Target,
    pub(crate) kind: HandlerKind,
    pub(crate) input: Vec<u8>,
    /// The caller's (invocation, journal index) awaiting the result, for calls.
    pub(crate) waiter: Option<(u64, u32)>,
    pub(crate) created_ms: u64,
    /// Maps the request to one invocation per (target, key) for the retention period.
    pub(crate) idempotency_key: Option<String>,
    /// A delayed send: start no earlier than this.
    pub(crate) start_at_ms: Option<u64>,
}

/// A state change committed with a journal entry.
#[derive(Debug, Clone)]
pub(crate) enum StateOp {
    Set {
        instance: String,
        key: String,
        value: Vec<u8>,
    },
    Clear {
        instance: String,
        key: String,
    },
    ClearAll {
        instance: String,
    },
}

/// What else a journal entry sets in motion, in the same transaction.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// A state change.
    State(StateOp),
    /// A callee created by a call or send.
    Spawn(NewInvocation),
    /// Complete the entry (with no value) once the clock reaches `due_ms`.
    Timer { due_ms: u64 },
    /// Complete the entry with the promise's completion, now if it has one, else when it gets one.
    AwaitPromise { instance: String, name: String },
}

/// Something completed from outside its invocation.
#[derive(Debug, Clone)]
pub(crate) enum Completable {
    /// The awakeable journaled at (invocation, index), if `secret` matches its id.
    Awakeable { inv: u64, index: u32, secret: u128 },
    /// A workflow's durable promise.
    Promise { instance: String, name: String },
}

/// What can be asked of the writer.
#[derive(Debug)]
pub(crate) enum Command {
    /// Create an invocation submitted from outside.
    Create(NewInvocation),
    /// Record a journal entry, with what it sets in motion.
    Append {
        inv: u64,
        index: u32,
        entry: Entry,
        actions: Vec<Action>,
    },
    /// Complete an awakeable or a promise. With `by`, a handler does it: its journal entry
    /// records the result (a refusal becomes a failure in that entry, not a rejected command).
    Complete {
        what: Completable,
        completion: Completion,
        by: Option<(u64, u32, Entry)>,
        at_ms: u64,
    },
    /// Fire up to `limit` timers due at `now_ms`.
    FireTimers { now_ms: u64, limit: usize },
    /// Ask an invocation (and its pending callees) to stop at its next await.
    Cancel { inv: u64, at_ms: u64 },
    /// Stop an invocation (and its pending callees) without running anything more.
    Kill { inv: u64, at_ms: u64 },
    /// Fail the await at `index` with "cancelled" if the invocation has a cancellation to
    /// deliver and the entry has no completion yet. `entry` is written if the index is empty.
    DeliverCancel {
        inv: u64,
        index: u32,
        entry: Option<Entry>,
        at_ms: u64,
    },
    /// Record an invocation's outcome, deliver it to its callers, release its object key.
    Finish {
        inv: u64,
        outcome: Outcome,
        at_ms: u64,
    },
    /// Record a retryable failure.
    BackOff {
        inv: u64,
        failed_attempts: u32,
        retry_at_ms: u64,
        error: String,
        at_ms: u64,
    },
    /// Give the invocation's memory back until one of `awaiting` completes.
    Suspend {
        inv: u64,
        awaiting: Vec<u32>,
        at_ms: u64,
    },
    /// Remove a finished invocation now, as its retention timer would.
    Purge { inv: u64 },
    /// Write nothing; answered once every command sent before it is committed or refused, so a
    /// read after it sees them (the queue is FIFO).
    Barrier,
}

/// What a committed command changed that running code must act on. The writer hands each
/// commit's effects to the [`EffectSink`] before it answers anyone, which takes what concerns
/// the runtime (`start`, `deliver`, `finished`, `cancel`, `killed`, `earliest_timer`); the
/// submitter gets the rest in its answer.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// For `Create`: the invocation the request maps to (an existing one for a workflow key that
    /// already ran or a repeated idempotency key).
    pub(crate) invocation: Option<u64>,
    /// Invocations that became runnable.
    pub(crate) start: Vec<u64>,
    /// Completions for invocations that are running: (invocation, index, completion).
    pub(crate) deliver: Vec<(u64, u32, Completion)>,
    /// Invocations that finished.
    pub(crate) finished: Vec<(u64, Outcome)>,
    /// For `Suspend`: whether the invocation is now suspended.
    pub(crate) suspended: bool,
    /// Running invocations that were asked to stop at their next await.
    pub(crate) cancel: Vec<u64>,
    /// Running invocations that were killed.
    pub(crate) killed: Vec<u64>,
    /// The earliest deadline of the timers this command added.
    pub(crate) earliest_timer: Option<u64>,
    /// For `Complete` by a handler and `DeliverCancel`: what the entry now records.
    pub(crate) journaled: Option<Completion>,
    /// For `FireTimers`: how many timers fired.
    pub(crate) fired: usize,
    /// For `DeliverCancel`: whether the cancellation was journaled now.
    pub(crate) cancel_delivered: bool,
}

impl Effects {
    fn timer_at(&mut self, due_ms: u64) {
        self.earliest_timer = Some(self.earliest_timer.map_or(due_ms, |t| t.min(due_ms)));
    }
}

/// Why a command was refused. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    #[error("journal index {index} of invocation {inv} is already written")]
    IndexTaken { inv: u64, index: u32 },
    #[error("invocation {0} has already finished")]
    AlreadyFinished(u64),
    #[error("no invocation {0}")]
    UnknownInvocation(u64),
    #[error("the idempotency key {0:?} was used with another request")]
    IdempotencyConflict(String),
    #[error("no such awakeable")]
    UnknownAwakeable,
    #[error("already completed")]
    AlreadyCompleted,
    #[error("invocation {0} has not finished")]
    NotFinished(u64),
}

pub(crate) type Reply = Result<Result<Effects, Rejected>, StoreError>;

/// Where the writer hands each committed command's effects, in commit order and before the
/// command is answered: so a submitter that gets its answer finds them acted on already, and no
/// submitter has to remember to act on them.
pub(crate) type EffectSink = Box<dyn Fn(&mut Effects) + Send + Sync>;

pub(crate) enum Request {
    /// A command, where to answer, and for a command of an invocation attempt the store
    /// generation the attempt started in.
    Apply(Box<Command>, oneshot::Sender<Reply>, Option<u64>, Counted),
    /// Copy the data file, between two commits, to this new file; answer its size.
    Backup(PathBuf, oneshot::Sender<Result<u64, StoreError>>),
    Stop,
}

/// Counters the writer keeps about itself.
#[derive(Debug)]
pub(crate) struct WriterStats {
    pub(crate) commits: AtomicU64,
    pub(crate) commands: AtomicU64,
    pub(crate) commit_micros: AtomicU64,
    /// Commands per commit.
    pub(crate) batch_sizes: Buckets,
    /// Microseconds per commit, applying included.
    pub(crate) commit_latency: Buckets,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            commits: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            batch_sizes: Buckets::new(&[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]),
            commit_latency: Buckets::new(&[
                100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
                1_000_000,
            ]),
        }
    }
}

/// Counts of observations in fixed buckets: one per bound (inclusive), then an unbounded one.
#[derive(Debug)]
pub(crate) struct Buckets {
    bounds: &'static [u64],
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
}

impl Buckets {
    fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> crate::engine::Histogram {
        crate::engine::Histogram {
            bounds: self.bounds,
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// The shared handle on the open database: the store reads through it, the writer replaces it
/// when it reopens the file after a failed commit. `None` once the store is closed.
pub(crate) type DbSlot = Arc<RwLock<Option<Arc<Database>>>>;

/// The data file, as the writer sees it.
pub(crate) struct File {
    pub(crate) db: DbSlot,
    pub(crate) path: PathBuf,
    /// Counts reopenings; attempts that started before one may commit nothing more.
    pub(crate) generation: Arc<AtomicU64>,
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
) {
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
                    let _ = reply.send(back_up(&file.path, &dest));
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
                    let _ = reply.send(back_up(&file.path, &dest));
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
        #[cfg(feature = "testing")]
        if halt.fail_storage.load(Ordering::SeqCst)
            || halt.fault_file.as_ref().is_some_and(|file| file.exists())
        {
            panic!("injected storage failure (a test)");
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
            Some(failed) => match file.reopen(db).map(|()| file.current()) {
                Ok(Some(db)) => {
                    tracing::info!(after = %failed.error, "data file reopened; writes resume");
                    db
                }
                Ok(None) | Err(_) => {
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
            match apply_batch(&db, &commands, retention_ms) {
                Ok(mut results) => {
                    record_commit(stats, batch.len(), started);
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
        }
        if !crashed.is_empty() {
            halt.halted.store(true, Ordering::SeqCst);
            for refused in crashed {
                refused.refuse(StoreError::Redb(HALTED.to_owned()));
            }
        }
    }
}

const HALTED: &str = "the engine was halted (a simulated crash)";

/// Real time, for what concerns the disk alone: how long a commit took, how long since a
/// failed commit before the file is reopened. Workflow time is the engine's `Clock`.
#[allow(clippy::disallowed_methods)]
fn disk_time() -> Instant {
    Instant::now()
}

/// Decides, for tests, whether the writer halts before a command. Called on the writer thread
/// for each command in commit order, until it first answers `true`.
pub(crate) type CrashHook = Arc<dyn Fn(&Command) -> bool + Send + Sync>;

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
}

/// The environment variable naming the fault file of [`Halt::fault_file`].
#[cfg(feature = "testing")]
pub(crate) const FAULT_FILE_VAR: &str = "ZEROAPP_TESTING_STORAGE_FAULT_FILE";

impl Halt {
    /// The position of the first command of `batch` the crash hook halts before.
    fn crash_at(&self, batch: &[Pending]) -> Option<usize> {
        let hook = self.crash_hook.as_ref()?;
        batch.iter().position(|p| hook(&p.command))
    }
}

impl Command {
    /// The journal entry (invocation, index) this command writes, if it writes one.
    #[cfg(feature = "testing")]
    pub(crate) fn journal_entry(&self) -> Option<(u64, u32)> {
        match self {
            Command::Append { inv, index, .. } => Some((*inv, *index)),
            Command::Complete {
                by: Some((inv, index, _)),
                ..
            } => Some((*inv, *index)),
            Command::DeliverCancel {
                inv,
                index,
                entry: Some(_),
                ..
            } => Some((*inv, *index)),
            _ => None,
        }
    }
}

/// Takes the next batch: every queued `FireTimers` first, then the oldest other commands, up to
/// [`MAX_BATCH`]. Firing timers may overtake other commands — it only touches timers already
/// committed — so a deadline is never late by more than the batch being applied when it came due.
/// Copies the data file to `dest` (a new file) on the writer thread, between two commits: every
/// commit is durable when it returns and none is in progress, so the copy is the file as of
/// the last commit — what a crash at that moment would leave. Written under a temporary name,
/// synced, then renamed into place.
fn back_up(source: &Path, dest: &Path) -> Result<u64, StoreError> {
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

fn record_commit(stats: &WriterStats, commands: usize, started: Instant) {
    let commands = u64::try_from(commands).unwrap_or(u64::MAX);
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.commands.fetch_add(commands, Ordering::Relaxed);
    stats.commit_micros.fetch_add(micros, Ordering::Relaxed);
    stats.batch_sizes.observe(commands);
    stats.commit_latency.observe(micros);
}

fn apply_batch(
    db: &Database,
    commands: &[&Command],
    retention_ms: u64,
) -> Result<Vec<Result<Effects, Rejected>>, StoreError> {
    let txn = db.begin_write()?;
    let results = {
        let mut tables = Tables::open(&txn, retention_ms)?;
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            results.push(tables.apply(command)?);
        }
        results
    };
    txn.commit()?;
    Ok(results)
}

/// A command step that may be refused (with nothing written) or fail.
type Applied = Result<Result<(), Rejected>, StoreError>;

/// The tables of one write transaction.
struct Tables<'t> {
    retention_ms: u64,
    invocations: Table<'t, u64, &'static [u8]>,
    journal: Table<'t, (u64, u32), &'static [u8]>,
    inflight: Table<'t, u64, ()>,
    state: Table<'t, (&'static str, &'static str), &'static [u8]>,
    locks: Table<'t, &'static str, u64>,
    queue: Table<'t, (&'static str, u64), ()>,
    workflows: Table<'t, &'static str, u64>,
    waiters: Table<'t, (u64, u64, u32), ()>,
    timers: Table<'t, (u64, u64, u32), u8>,
    promises: Table<'t, (&'static str, &'static str), &'static [u8]>,
    promise_waiters: Table<'t, (&'static str, &'static str, u64, u32), ()>,
    idempotency: Table<'t, (&'static str, &'static str), u64>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction, retention_ms: u64) -> Result<Self, StoreError> {
        Ok(Self {
            retention_ms,
            invocations: txn.open_table(INVOCATIONS)?,
            journal: txn.open_table(JOURNAL)?,
            inflight: txn.open_table(INFLIGHT)?,
            state: txn.open_table(STATE)?,
            locks: txn.open_table(OBJECT_LOCKS)?,
            queue: txn.open_table(OBJECT_QUEUE)?,
            workflows: txn.open_table(WORKFLOWS)?,
            waiters: txn.open_table(WAITERS)?,
            timers: txn.open_table(TIMERS)?,
            promises: txn.open_table(PROMISES)?,
            promise_waiters: txn.open_table(PROMISE_WAITERS)?,
            idempotency: txn.open_table(IDEMPOTENCY)?,
        })
    }

    fn apply(&mut self, command: &Command) -> Result<Result<Effects, Rejected>, StoreError> {
        let mut fx = Effects::default();
        let outcome = match command {
            Command::Barrier => Ok(()),
            Command::Create(new) => self.create_checked(new, &mut fx)?,
            Command::Append {
                inv,
                index,
                entry,
                actions,
            } => self.append(*inv, *index, entry, actions, &mut fx)?,
            Command::Complete {
                what,
                completion,
                by,
                at_ms,
            } => self.complete(what, completion, by.as_ref(), *at_ms, &mut fx)?,
            Command::FireTimers { now_ms, limit } => {
                self.fire_timers(*now_ms, *limit, &mut fx)?;
                Ok(())
            }
            Command::Cancel { inv, at_ms } => self.cancel(*inv, *at_ms, false, &mut fx)?,
            Command::Kill { inv, at_ms } => self.cancel(*inv, *at_ms, true, &mut fx)?,
            Command::DeliverCancel {
                inv,
                index,
                entry,
                at_ms,
            } => self.deliver_cancel(*inv, *index, entry, *at_ms, &mut fx)?,
            Command::Finish {
                inv,
                outcome,
                at_ms,
            } => self.finish(*inv, outcome, *at_ms, &mut fx)?,
            Command::BackOff {
                inv,
                failed_attempts,
                retry_at_ms,
                error,
                at_ms,
            } => match self.unfinished(*inv)? {
                Err(rejected) => Err(rejected),
                Ok(mut record) => {
                    record.status = Status::BackingOff {
                        retry_at_ms: *retry_at_ms,
                    };
                    record.attempt = *failed_attempts;
                    record.last_error = Some(error.clone());
                    record.modified_ms = *at_ms;
                    self.put_record(*inv, &record)?;
                    Ok(())
                }
            },
            Command::Suspend {
                inv,
                awaiting,
                at_ms,
            } => self.suspend(*inv, awaiting, *at_ms, &mut fx)?,
            Command::Purge { inv } => match self.record(*inv)? {
                None => Err(Rejected::UnknownInvocation(*inv)),
                Some(record) if !record.status.is_finished() => Err(Rejected::NotFinished(*inv)),
                Some(_) => {
                    self.purge(*inv)?;
                    Ok(())
                }
            },
        };
        Ok(outcome.map(|()| fx))
    }

    fn record(&self, inv: u64) -> Result<Option<InvocationRecord>, StoreError> {
        self.invocations
            .get(inv)?
            .map(|bytes| decode(bytes.value()))
            .transpose()
    }

    /// The record of an invocation that exists and has not finished.
    fn unfinished(&self, inv: u64) -> Result<Result<InvocationRecord, Rejected>, StoreError> {
        Ok(match self.record(inv)? {
            None => Err(Rejected::UnknownInvocation(inv)),
            Some(record) if record.status.is_finished() => Err(Rejected::AlreadyFinished(inv)),
            Some(record) => Ok(record),
        })
    }

    /// Whether `inv` may write its journal entry `index`: it exists, has not finished (a killed
    /// invocation's late appends are refused), and the index is still empty.
    fn writable(&self, inv: u64, index: u32) -> Applied {
        if let Err(rejected) = self.unfinished(inv)? {
            return Ok(Err(rejected));
        }
        if self.journal.get((inv, index))?.is_some() {
            return Ok(Err(Rejected::IndexTaken { inv, index }));
        }
        Ok(Ok(()))
    }

    fn put_record(&mut self, inv: u64, record: &InvocationRecord) -> Result<(), StoreError> {
        self.invocations.insert(inv, encode(record).as_slice())?;
        Ok(())
    }

    fn entry(&self, inv: u64, index: u32) -> Result<Option<Entry>, StoreError> {
        self.journal
            .get((inv, index))?
            .map(|bytes| decode(bytes.value()))
            .transpose()
    }

    fn put_entry(&mut self, inv: u64, index: u32, entry: &Entry) -> Result<(), StoreError> {
        self.journal
            .insert((inv, index), encode(entry).as_slice())?;
        Ok(())
    }

    fn add_timer(
        &mut self,
        due_ms: u64,
        inv: u64,
        slot: u32,
        kind: u8,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        self.timers.insert((due_ms, inv, slot), kind)?;
        fx.timer_at(due_ms);
        Ok(())
    }

    fn append(
        &mut self,
        inv: u64,
        index: u32,
        entry: &Entry,
        actions: &[Action],
        fx: &mut Effects,
    ) -> Applied {
        if let Err(rejected) = self.writable(inv, index)? {
            return Ok(Err(rejected));
        }
        let mut entry = entry.clone();
        for action in actions {
            match action {
                Action::State(op) => self.apply_state(op)?,
                Action::Spawn(new) => self.create(new, fx)?,
                Action::Timer { due_ms } => self.add_timer(*due_ms, inv, index, timer::WAKE, fx)?,
                Action::AwaitPromise { instance, name } => {
                    let done = self.promises.get((instance.as_str(), name.as_str()))?;
                    match done
                        .map(|bytes| decode::<Completion>(bytes.value()))
                        .transpose()?
                    {
                        Some(completion) => {
                            fx.deliver.push((inv, index, completion.clone()));
                            entry.completion = Some(completion);
                        }
                        None => {
                            self.promise_waiters
                                .insert((instance.as_str(), name.as_str(), inv, index), ())?;
                        }
                    }
                }
            }
        }
        self.put_entry(inv, index, &entry)?;
        Ok(Ok(()))
    }

    /// Creates an invocation submitted from outside, honouring its idempotency key.
    fn create_checked(&mut self, new: &NewInvocation, fx: &mut Effects) -> Applied {
        if let Some(key) = &new.idempotency_key {
            let target = new.target.to_string();
            let existing = self
                .idempotency
                .get((target.as_str(), key.as_str()))?
                .map(|g| g.value());
            if let Some(existing) = existing {
                if let Some(record) = self.record(existing)? {
                    if record.input != new.input {
                        return Ok(Err(Rejected::IdempotencyConflict(key.clone())));
                    }
                    fx.invocation = Some(existing);
                    return Ok(Ok(()));
                }
            }
            self.idempotency
                .insert((target.as_str(), key.as_str()), new.id)?;
        }
        self.create(new, fx)?;
        Ok(Ok(()))
    }

    fn create(&mut self, new: &NewInvocation, fx: &mut Effects) -> Result<(), StoreError> {
        let instance = new.target.instance().unwrap_or_default();
        if new.kind == HandlerKind::WorkflowRun {
            let existing = self.workflows.get(instance.as_str())?.map(|g| g.value());
            if let Some(existing) = existing {
                fx.invocation = Some(existing);
                if let Some(waiter) = new.waiter {
                    self.add_waiter(existing, waiter, new.created_ms, fx)?;
                }
                return Ok(());
            }
            self.workflows.insert(instance.as_str(), new.id)?;
        }
        let mut record = InvocationRecord {
            target: new.target.clone(),
            kind: new.kind,
            input: new.input.clone(),
            status: Status::Ready,
            attempt: 0,
            created_ms: new.created_ms,
            modified_ms: new.created_ms,
            last_error: None,
            outcome: None,
            idempotency_key: new.idempotency_key.clone(),
            cancel: Cancel::None,
        };
        match new.start_at_ms {
            Some(start_at_ms) if start_at_ms > new.created_ms => {
                record.status = Status::Scheduled { start_at_ms };
                self.add_timer(start_at_ms, new.id, START_SLOT, timer::START, fx)?;
            }
            _ => self.admit(new.id, &mut record, fx)?,
        }
        self.put_record(new.id, &record)?;
        if let Some((caller, index)) = new.waiter {
            self.waiters.insert((new.id, caller, index), ())?;
        }
        fx.invocation = Some(new.id);
        Ok(())
    }

    /// Makes an invocation runnable, or queues it behind the exclusive holder of its object key.
    /// The caller stores the record.
    fn admit(
        &mut self,
        id: u64,
        record: &mut InvocationRecord,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        let instance = record.target.instance().unwrap_or_default();
        if record.kind == HandlerKind::Exclusive {
            if self.locks.get(instance.as_str())?.is_some() {
                self.queue.insert((instance.as_str(), id), ())?;
                record.status = Status::Pending;
                return Ok(());
            }
            self.locks.insert(instance.as_str(), id)?;
        }
        self.inflight.insert(id, ())?;
        fx.start.push(id);
        record.status = Status::Ready;
        Ok(())
    }

    /// Makes `waiter` receive `callee`'s outcome, now if it has one.
    fn add_waiter(
        &mut self,
        callee: u64,
        (caller, index): (u64, u32),
        at_ms: u64,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        match self.record(callee)?.and_then(|r| r.outcome) {
            Some(outcome) => self.complete_entry(caller, index, completion_of(&outcome), at_ms, fx),
            None => {
                self.waiters.insert((callee, caller, index), ())?;
                Ok(())
            }
        }
    }

    /// Writes a completion into a waiting journal entry and wakes its invocation. An entry that
    /// is already complete keeps its first completion.
    fn complete_entry(
        &mut self,
        inv: u64,
        index: u32,
        completion: Completion,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        let Some(mut entry) = self.entry(inv, index)? else {
            tracing::debug!(inv, index, "completion for a journal entry that is gone");
            return Ok(());
        };
        if entry.completion.is_some() {
            return Ok(());
        }
        entry.completion = Some(completion.clone());
        self.put_entry(inv, index, &entry)?;
        if let Some(mut record) = self.record(inv)? {
            if record.status == Status::Suspended {
                record.status = Status::Ready;
                record.modified_ms = at_ms;
                self.put_record(inv, &record)?;
                self.inflight.insert(inv, ())?;
                fx.start.push(inv);
            } else if !record.status.is_finished() {
                fx.deliver.push((inv, index, completion));
            }
        }
        Ok(())
    }

    fn complete(
        &mut self,
        what: &Completable,
        completion: &Completion,
        by: Option<&(u64, u32, Entry)>,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Applied {
        if let Some((inv, index, _)) = by {
            if let Err(rejected) = self.writable(*inv, *index)? {
                return Ok(Err(rejected));
            }
        }
        let result = match what {
            Completable::Awakeable { inv, index, secret } => match self.entry(*inv, *index)? {
                Some(Entry {
                    op: Op::Awakeable { secret: recorded },
                    completion: done,
                    ..
                }) if recorded == *secret => {
                    if done.is_some() {
                        Err(Rejected::AlreadyCompleted)
                    } else {
                        self.complete_entry(*inv, *index, completion.clone(), at_ms, fx)?;
                        Ok(())
                    }
                }
                _ => Err(Rejected::UnknownAwakeable),
            },
            Completable::Promise { instance, name } => {
                if self
                    .promises
                    .get((instance.as_str(), name.as_str()))?
                    .is_some()
                {
                    Err(Rejected::AlreadyCompleted)
                } else {
                    self.promises.insert(
                        (instance.as_str(), name.as_str()),
                        encode(completion).as_slice(),
                    )?;
                    let mut waiting = Vec::new();
                    for row in self.promise_waiters.range(
                        (instance.as_str(), name.as_str(), 0, 0)
                            ..=(instance.as_str(), name.as_str(), u64::MAX, u32::MAX),
                    )? {
                        let (key, _) = row?;
                        let (_, _, inv, index) = key.value();
                        waiting.push((inv, index));
                    }
                    for (inv, index) in waiting {
                        self.promise_waiters.remove((
                            instance.as_str(),
                            name.as_str(),
                            inv,
                            index,
                        ))?;
                        self.complete_entry(inv, index, completion.clone(), at_ms, fx)?;
                    }
                    Ok(())
                }
            }
        };
        let Some((inv, index, entry)) = by else {
            return Ok(result);
        };
        let recorded = match result {
            Ok(()) => Completion::Empty,
            Err(rejected) => Completion::Failure(TerminalError::with_code(
                TerminalError::CONFLICT,
                rejected.to_string(),
            )),
        };
        let mut entry = entry.clone();
        entry.completion = Some(recorded.clone());
        self.put_entry(*inv, *index, &entry)?;
        fx.journaled = Some(recorded);
        Ok(Ok(()))
    }

    fn fire_timers(
        &mut self,
        now_ms: u64,
        limit: usize,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        let mut due = Vec::new();
        for row in self.timers.range(..=(now_ms, u64::MAX, u32::MAX))? {
            let (key, kind) = row?;
            due.push((key.value(), kind.value()));
            if due.len() >= limit {
                break;
            }
        }
        fx.fired = due.len();
        for ((due_ms, inv, slot), kind) in due {
            self.timers.remove((due_ms, inv, slot))?;
            match kind {
                timer::WAKE => self.complete_entry(inv, slot, Completion::Empty, now_ms, fx)?,
                timer::START => {
                    if let Some(mut record) = self.record(inv)? {
                        if matches!(record.status, Status::Scheduled { .. }) {
                            self.admit(inv, &mut record, fx)?;
                            record.modified_ms = now_ms;
                            self.put_record(inv, &record)?;
                        }
                    }
                }
                timer::PURGE => self.purge(inv)?,
                other => tracing::warn!(inv, kind = other, "unknown timer kind; dropped"),
            }
        }
        Ok(())
    }

    /// Removes a finished invocation: its record, journal, idempotency key, and for a workflow
    /// its key, state and promises, so the key can run again.
    fn purge(&mut self, inv: u64) -> Result<(), StoreError> {
        let Some(record) = self.record(inv)? else {
            return Ok(());
        };
        if !record.status.is_finished() {
            return Ok(());
        }
        self.invocations.remove(inv)?;
        let mut indices = Vec::new();
        for row in self.journal.range((inv, 0)..=(inv, u32::MAX))? {
            indices.push(row?.0.value().1);
        }
        for index in indices {
            self.journal.remove((inv, index))?;
        }
        if let Some(key) = &record.idempotency_key {
            let target = record.target.to_string();
            if self
                .idempotency
                .get((target.as_str(), key.as_str()))?
                .map(|g| g.value())
                == Some(inv)
            {
                self.idempotency.remove((target.as_str(), key.as_str()))?;
            }
        }
        if record.kind == HandlerKind::WorkflowRun {
            if let Some(instance) = record.target.instance() {
                if self.workflows.get(instance.as_str())?.map(|g| g.value()) == Some(inv) {
                    self.workflows.remove(instance.as_str())?;
                    self.apply_state(&StateOp::ClearAll {
                        instance: instance.clone(),
                    })?;
                    let mut names = Vec::new();
                    for row in self.promises.range((instance.as_str(), "")..)? {
                        let (key, _) = row?;
                        let (owner, name) = key.value();
                        if owner != instance {
                            break;
                        }
                        names.push(name.to_owned());
                    }
                    for name in names {
                        self.promises.remove((instance.as_str(), name.as_str()))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Cancels (or kills) an invocation and, through its journal, the callees it still waits on.
    fn cancel(&mut self, root: u64, at_ms: u64, kill: bool, fx: &mut Effects) -> Applied {
        if self.record(root)?.is_none() {
            return Ok(Err(Rejected::UnknownInvocation(root)));
        }
        let mut todo = vec![root];
        while let Some(inv) = todo.pop() {
            let Some(mut record) = self.record(inv)? else {
                continue;
            };
            if record.status.is_finished()
                || record.cancel == Cancel::Killed
                || (!kill && record.cancel != Cancel::None)
            {
                continue;
            }
            let mut pending_calls = Vec::new();
            for row in self.journal.range((inv, 0)..=(inv, u32::MAX))? {
                let (key, bytes) = row?;
                let entry: Entry = decode(bytes.value())?;
                if let (Op::Call { callee, .. }, None) = (&entry.op, &entry.completion) {
                    todo.push(*callee);
                    pending_calls.push(key.value().1);
                }
            }
            let not_started = matches!(record.status, Status::Pending | Status::Scheduled { .. });
            if kill || not_started {
                if record.status == Status::Pending {
                    if let Some(instance) = record.target.instance() {
                        self.queue.remove((instance.as_str(), inv))?;
                    }
                }
                let message = if kill { "killed" } else { "cancelled" };
                record.cancel = if kill {
                    Cancel::Killed
                } else {
                    Cancel::Delivered
                };
                self.put_record(inv, &record)?;
                let error = TerminalError::with_code(TerminalError::CANCELLED, message);
                // Cannot be refused: the record exists and has not finished.
                self.finish(inv, &Err(error), at_ms, fx)?.ok();
                if kill {
                    fx.killed.push(inv);
                }
                continue;
            }
            record.modified_ms = at_ms;
            if !pending_calls.is_empty() {
                // It is blocked on these calls: they fail with "cancelled" now, so the callees'
                // own (cancelled) results cannot take the cancellation's place and leave it
                // pending for an await in the compensations.
                record.cancel = Cancel::Delivered;
                self.put_record(inv, &record)?;
                let cancelled = Completion::Failure(TerminalError::with_code(
                    TerminalError::CANCELLED,
                    "cancelled",
                ));
                for index in pending_calls {
                    self.complete_entry(inv, index, cancelled.clone(), at_ms, fx)?;
                }
                continue;
            }
            record.cancel = Cancel::Requested;
            if record.status == Status::Suspended {
                record.status = Status::Ready;
                self.inflight.insert(inv, ())?;
                fx.start.push(inv);
            } else {
                fx.cancel.push(inv);
            }
            self.put_record(inv, &record)?;
        }
        Ok(Ok(()))
    }

    fn deliver_cancel(
        &mut self,
        inv: u64,
        index: u32,
        entry: &Option<Entry>,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Applied {
        let mut record = match self.unfinished(inv)? {
            Ok(record) => record,
            Err(rejected) => return Ok(Err(rejected)),
        };
        let existing = self.entry(inv, index)?;
        if let Some(done) = existing.as_ref().and_then(|e| e.completion.clone()) {
            fx.journaled = Some(done);
            return Ok(Ok(()));
        }
        if record.cancel != Cancel::Requested {
            return Ok(Ok(()));
        }
        let failure = Completion::Failure(TerminalError::with_code(
            TerminalError::CANCELLED,
            "cancelled",
        ));
        let Some(mut entry) = existing.or_else(|| entry.clone()) else {
            return Ok(Ok(()));
        };
        entry.completion = Some(failure.clone());
        self.put_entry(inv, index, &entry)?;
        record.cancel = Cancel::Delivered;
        record.modified_ms = at_ms;
        self.put_record(inv, &record)?;
        fx.journaled = Some(failure);
        fx.cancel_delivered = true;
        Ok(Ok(()))
    }

    fn suspend(&mut self, inv: u64, awaiting: &[u32], at_ms: u64, fx: &mut Effects) -> Applied {
        let mut record = match self.unfinished(inv)? {
            Ok(record) => record,
            Err(rejected) => return Ok(Err(rejected)),
        };
        if record.cancel == Cancel::Requested {
            return Ok(Ok(()));
        }
        for index in awaiting {
            if self
                .entry(inv, *index)?
                .is_some_and(|e| e.completion.is_some())
            {
                return Ok(Ok(()));
            }
        }
        record.status = Status::Suspended;
        record.modified_ms = at_ms;
        self.put_record(inv, &record)?;
        self.inflight.remove(inv)?;
        fx.suspended = true;
        Ok(Ok(()))
    }

    fn finish(&mut self, inv: u64, outcome: &Outcome, at_ms: u64, fx: &mut Effects) -> Applied {
        let mut record = match self.unfinished(inv)? {
            Ok(record) => record,
            Err(rejected) => return Ok(Err(rejected)),
        };
        record.status = if outcome.is_ok() {
            Status::Completed
        } else {
            Status::Failed
        };
        record.outcome = Some(outcome.clone());
        record.modified_ms = at_ms;
        self.put_record(inv, &record)?;
        self.inflight.remove(inv)?;
        self.add_timer(
            at_ms.saturating_add(self.retention_ms),
            inv,
            PURGE_SLOT,
            timer::PURGE,
            fx,
        )?;

        let mut waiters = Vec::new();
        for row in self
            .waiters
            .range((inv, 0, 0)..=(inv, u64::MAX, u32::MAX))?
        {
            let (key, _) = row?;
            waiters.push(key.value());
        }
        for (callee, caller, index) in waiters {
            self.waiters.remove((callee, caller, index))?;
            self.complete_entry(caller, index, completion_of(outcome), at_ms, fx)?;
        }

        if record.kind == HandlerKind::Exclusive {
            if let Some(instance) = record.target.instance() {
                self.release(&instance, inv, at_ms, fx)?;
            }
        }
        fx.finished.push((inv, outcome.clone()));
        Ok(Ok(()))
    }

    /// Hands an object key from `holder` to the next queued exclusive invocation.
    fn release(
        &mut self,
        instance: &str,
        holder: u64,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        if self.locks.get(instance)?.map(|g| g.value()) != Some(holder) {
            return Ok(());
        }
        let next = self
            .queue
            .range((instance, 0)..=(instance, u64::MAX))?
            .next()
            .transpose()?
            .map(|(key, _)| key.value().1);
        let Some(next) = next else {
            self.locks.remove(instance)?;
            return Ok(());
        };
        self.queue.remove((instance, next))?;
        self.locks.insert(instance, next)?;
        if let Some(mut record) = self.record(next)? {
            record.status = Status::Ready;
            record.modified_ms = at_ms;
            self.put_record(next, &record)?;
        }
        self.inflight.insert(next, ())?;
        fx.start.push(next);
        Ok(())
    }

    fn apply_state(&mut self, op: &StateOp) -> Result<(), StoreError> {
        match op {
            StateOp::Set {
                instance,
                key,
                value,
            } => {
                let sealed = crate::journal::entry::seal(value);
                self.state
                    .insert((instance.as_str(), key.as_str()), sealed.as_slice())?;
            }
            StateOp::Clear { instance, key } => {
                self.state.remove((instance.as_str(), key.as_str()))?;
            }
            StateOp::ClearAll { instance } => {
                let mut keys = Vec::new();
                for row in self.state.range((instance.as_str(), "")..)? {
                    let (key, _) = row?;
                    let (owner, name) = key.value();
                    if owner != instance {
                        break;
                    }
                    keys.push(name.to_owned());
                }
                for key in keys {
                    self.state.remove((instance.as_str(), key.as_str()))?;
                }
            }
        }
        Ok(())
    }
}
