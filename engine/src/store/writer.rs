//! The single writer: the only code that opens redb write transactions.
//!
//! Requests arrive on a channel from any number of invocations. The writer thread takes every
//! request waiting in the channel, applies them all in one write transaction, commits it (one
//! fsync), and only then answers each request. Throughput therefore grows with concurrency
//! instead of being capped by the disk's fsync rate.
//!
//! Each command is applied atomically: it checks everything it needs before it writes, so a
//! command that is rejected leaves no trace in the shared transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use redb::{Database, ReadableTable, Table, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::records::{InvocationRecord, Outcome, Status, completion_of};
use super::tables::{
    INFLIGHT, INVOCATIONS, JOURNAL, OBJECT_LOCKS, OBJECT_QUEUE, STATE, WAITERS, WORKFLOWS,
};
use crate::error::StoreError;
use crate::ids::{HandlerKind, Target};
use crate::journal::entry::{decode, encode};
use crate::journal::{Completion, Entry};

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

/// What can be asked of the writer.
#[derive(Debug)]
pub(crate) enum Command {
    /// Create invocations submitted from outside.
    Create(Vec<NewInvocation>),
    /// Record a journal entry, with the state changes and invocations it implies.
    Append {
        inv: u64,
        index: u32,
        entry: Entry,
        state: Vec<StateOp>,
        spawn: Vec<NewInvocation>,
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
}

/// What a committed command changed that running code must act on.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// For `Create`: the invocation each request maps to (an existing one for a workflow key
    /// that already ran).
    pub(crate) ids: Vec<u64>,
    /// Invocations that became runnable.
    pub(crate) start: Vec<u64>,
    /// Completions for invocations that are running: (invocation, index, completion).
    pub(crate) deliver: Vec<(u64, u32, Completion)>,
    /// Invocations that finished.
    pub(crate) finished: Vec<(u64, Outcome)>,
    /// For `Suspend`: whether the invocation is now suspended.
    pub(crate) suspended: bool,
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
}

pub(crate) type Reply = Result<Result<Effects, Rejected>, StoreError>;

pub(crate) enum Request {
    Apply(Box<Command>, oneshot::Sender<Reply>),
    Stop,
}

/// Counters the writer keeps about itself.
#[derive(Debug, Default)]
pub(crate) struct WriterStats {
    pub(crate) commits: AtomicU64,
    pub(crate) commands: AtomicU64,
    pub(crate) commit_micros: AtomicU64,
}

/// The writer thread's loop. Returns when a `Stop` arrives or every sender is gone.
///
/// After a failed batch the writer refuses everything that follows, as redb refuses further
/// write transactions after a failed commit: commands queued after a lost one must never commit
/// without it. Reopening the engine recovers.
pub(crate) fn run(
    db: &Database,
    mut rx: mpsc::UnboundedReceiver<Request>,
    stats: &Arc<WriterStats>,
) {
    let mut stop = false;
    let mut poisoned: Option<String> = None;
    while !stop {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut batch = Vec::with_capacity(64);
        for request in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match request {
                Request::Apply(command, reply) => batch.push((*command, reply)),
                Request::Stop => {
                    stop = true;
                    break;
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Some(reason) = &poisoned {
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Redb(format!(
                    "the writer stopped after an earlier failure ({reason}); reopen the engine"
                ))));
            }
            continue;
        }
        let started = Instant::now();
        let commands: Vec<&Command> = batch.iter().map(|(c, _)| c).collect();
        match apply_batch(db, &commands) {
            Ok(results) => {
                record_commit(stats, batch.len(), started);
                for ((_, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) => {
                tracing::error!(%error, "commit failed; {} requests get the error", batch.len());
                poisoned = Some(error.to_string());
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Redb(error.to_string())));
                }
            }
        }
    }
}

fn record_commit(stats: &WriterStats, commands: usize, started: Instant) {
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.commands.fetch_add(
        u64::try_from(commands).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    stats.commit_micros.fetch_add(micros, Ordering::Relaxed);
}

fn apply_batch(
    db: &Database,
    commands: &[&Command],
) -> Result<Vec<Result<Effects, Rejected>>, StoreError> {
    let txn = db.begin_write()?;
    let results = {
        let mut tables = Tables::open(&txn)?;
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            results.push(tables.apply(command)?);
        }
        results
    };
    txn.commit()?;
    Ok(results)
}

/// The tables of one write transaction.
struct Tables<'t> {
    invocations: Table<'t, u64, &'static [u8]>,
    journal: Table<'t, (u64, u32), &'static [u8]>,
    inflight: Table<'t, u64, ()>,
    state: Table<'t, (&'static str, &'static str), &'static [u8]>,
    locks: Table<'t, &'static str, u64>,
    queue: Table<'t, (&'static str, u64), ()>,
    workflows: Table<'t, &'static str, u64>,
    waiters: Table<'t, (u64, u64, u32), ()>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            invocations: txn.open_table(INVOCATIONS)?,
            journal: txn.open_table(JOURNAL)?,
            inflight: txn.open_table(INFLIGHT)?,
            state: txn.open_table(STATE)?,
            locks: txn.open_table(OBJECT_LOCKS)?,
            queue: txn.open_table(OBJECT_QUEUE)?,
            workflows: txn.open_table(WORKFLOWS)?,
            waiters: txn.open_table(WAITERS)?,
        })
    }

    fn apply(&mut self, command: &Command) -> Result<Result<Effects, Rejected>, StoreError> {
        let mut fx = Effects::default();
        match command {
            Command::Create(news) => {
                for new in news {
                    self.create(new, &mut fx)?;
                }
            }
            Command::Append {
                inv,
                index,
                entry,
                state,
                spawn,
            } => {
                if self.journal.get((*inv, *index))?.is_some() {
                    return Ok(Err(Rejected::IndexTaken {
                        inv: *inv,
                        index: *index,
                    }));
                }
                self.journal
                    .insert((*inv, *index), encode(entry).as_slice())?;
                for op in state {
                    self.apply_state(op)?;
                }
                for new in spawn {
                    self.create(new, &mut fx)?;
                }
            }
            Command::Finish {
                inv,
                outcome,
                at_ms,
            } => {
                if let Err(rejected) = self.finish(*inv, outcome, *at_ms, &mut fx)? {
                    return Ok(Err(rejected));
                }
            }
            Command::BackOff {
                inv,
                failed_attempts,
                retry_at_ms,
                error,
                at_ms,
            } => {
                let Some(mut record) = self.record(*inv)? else {
                    return Ok(Err(Rejected::UnknownInvocation(*inv)));
                };
                if record.status.is_finished() {
                    return Ok(Err(Rejected::AlreadyFinished(*inv)));
                }
                record.status = Status::BackingOff {
                    retry_at_ms: *retry_at_ms,
                };
                record.attempt = *failed_attempts;
                record.last_error = Some(error.clone());
                record.modified_ms = *at_ms;
                self.put_record(*inv, &record)?;
            }
            Command::Suspend {
                inv,
                awaiting,
                at_ms,
            } => {
                let Some(mut record) = self.record(*inv)? else {
                    return Ok(Err(Rejected::UnknownInvocation(*inv)));
                };
                if record.status.is_finished() {
                    return Ok(Err(Rejected::AlreadyFinished(*inv)));
                }
                for index in awaiting {
                    if self
                        .entry(*inv, *index)?
                        .is_some_and(|e| e.completion.is_some())
                    {
                        return Ok(Ok(fx));
                    }
                }
                record.status = Status::Suspended;
                record.modified_ms = *at_ms;
                self.put_record(*inv, &record)?;
                self.inflight.remove(*inv)?;
                fx.suspended = true;
            }
        }
        Ok(Ok(fx))
    }

    fn record(&self, inv: u64) -> Result<Option<InvocationRecord>, StoreError> {
        self.invocations
            .get(inv)?
            .map(|bytes| decode(bytes.value()))
            .transpose()
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

    fn create(&mut self, new: &NewInvocation, fx: &mut Effects) -> Result<(), StoreError> {
        let instance = new.target.instance().unwrap_or_default();
        if new.kind == HandlerKind::WorkflowRun {
            let existing = self.workflows.get(instance.as_str())?.map(|g| g.value());
            if let Some(existing) = existing {
                fx.ids.push(existing);
                if let Some(waiter) = new.waiter {
                    self.add_waiter(existing, waiter, new.created_ms, fx)?;
                }
                return Ok(());
            }
            self.workflows.insert(instance.as_str(), new.id)?;
        }
        let status =
            if new.kind == HandlerKind::Exclusive && self.locks.get(instance.as_str())?.is_some() {
                self.queue.insert((instance.as_str(), new.id), ())?;
                Status::Pending
            } else {
                if new.kind == HandlerKind::Exclusive {
                    self.locks.insert(instance.as_str(), new.id)?;
                }
                self.inflight.insert(new.id, ())?;
                fx.start.push(new.id);
                Status::Ready
            };
        let record = InvocationRecord {
            target: new.target.clone(),
            kind: new.kind,
            input: new.input.clone(),
            status,
            attempt: 0,
            created_ms: new.created_ms,
            modified_ms: new.created_ms,
            last_error: None,
            outcome: None,
        };
        self.put_record(new.id, &record)?;
        if let Some((caller, index)) = new.waiter {
            self.waiters.insert((new.id, caller, index), ())?;
        }
        fx.ids.push(new.id);
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

    /// Writes a completion into a waiting journal entry and wakes its invocation.
    fn complete_entry(
        &mut self,
        inv: u64,
        index: u32,
        completion: Completion,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        let Some(mut entry) = self.entry(inv, index)? else {
            tracing::warn!(
                inv,
                index,
                "completion for a journal entry that does not exist"
            );
            return Ok(());
        };
        if entry.completion.is_some() {
            return Ok(());
        }
        entry.completion = Some(completion.clone());
        self.journal
            .insert((inv, index), encode(&entry).as_slice())?;
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

    fn finish(
        &mut self,
        inv: u64,
        outcome: &Outcome,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Result<Result<(), Rejected>, StoreError> {
        let Some(mut record) = self.record(inv)? else {
            return Ok(Err(Rejected::UnknownInvocation(inv)));
        };
        if record.status.is_finished() {
            return Ok(Err(Rejected::AlreadyFinished(inv)));
        }
        record.status = if outcome.is_ok() {
            Status::Completed
        } else {
            Status::Failed
        };
        record.outcome = Some(outcome.clone());
        record.modified_ms = at_ms;
        self.put_record(inv, &record)?;
        self.inflight.remove(inv)?;

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
                self.state
                    .insert((instance.as_str(), key.as_str()), value.as_slice())?;
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
