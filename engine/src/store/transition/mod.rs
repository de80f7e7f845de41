//! The state transitions of the store: each [`Command`] applied to the tables of one write
//! transaction, synchronously — commands in, rows and [`Effects`] out, or a refusal that leaves
//! nothing written. Grouped by family, one file each: [`create`], [`journal`], [`timers`],
//! [`lifecycle`], [`cancel`], [`purge`]. No threads, no I/O beyond the transaction: the unit
//! tests run them against redb's in-memory backend.

mod cancel;
mod create;
mod journal;
mod lifecycle;
mod purge;
#[cfg(test)]
mod testkit;
mod timers;

use redb::{Database, ReadableTable, Table, WriteTransaction};

use std::cell::RefCell;
use std::collections::HashMap;

use super::command::{Command, Effects, Rejected};
use super::records::{InvocationRecord, Status};
use super::stats::StatusDelta;
use super::tables::{
    IDEMPOTENCY, INFLIGHT, INVOCATIONS, JOURNAL, META, OBJECT_LOCKS, OBJECT_QUEUE, PROMISE_WAITERS,
    PROMISES, STATE, TIMERS, WAITERS, WORKFLOWS,
};
use crate::error::StoreError;
use crate::journal::Entry;
use crate::journal::entry::{decode, encode};

/// Applies `commands` in one write transaction and commits it: each command's effects or
/// refusal, in order. An error means nothing was committed.
#[cfg(test)]
pub(crate) fn apply_batch(
    db: &Database,
    commands: &[&Command],
    retention_ms: u64,
) -> Result<Batch, StoreError> {
    let (txn, batch) = apply_uncommitted(db, commands, retention_ms, None)?;
    txn.commit()?;
    Ok(batch)
}

/// Applies `commands` in one write transaction, and records `log_seq` as the log record they
/// came from ([`LOG_SEQ`]): the transaction, for the caller to commit (once the log holds the
/// batch) or drop, and each command's effects or refusal, in order.
pub(crate) fn apply_uncommitted(
    db: &Database,
    commands: &[&Command],
    retention_ms: u64,
    log_seq: Option<u64>,
) -> Result<(WriteTransaction, Batch), StoreError> {
    let txn = db.begin_write()?;
    let batch = {
        let mut tables = Tables::open(&txn, retention_ms)?;
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            results.push(tables.apply(command)?);
        }
        Batch {
            results,
            statuses: tables.delta,
        }
    };
    if let Some(seq) = log_seq {
        txn.open_table(META)?.insert(LOG_SEQ, seq)?;
    }
    Ok((txn, batch))
}

/// The key in [`META`] of the sequence number of the last log record applied: with a durable
/// commit, what recovery need not apply again.
pub(crate) const LOG_SEQ: &str = "log_seq";

/// What a committed batch did: each command's effects or refusal, in order, and how the count
/// of each stored status changed.
pub(crate) struct Batch {
    pub(crate) results: Vec<Result<Effects, Rejected>>,
    pub(crate) statuses: StatusDelta,
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
    /// The stored status of every invocation this transaction read or wrote.
    statuses: RefCell<HashMap<u64, Status>>,
    /// How the count of each stored status changed.
    delta: StatusDelta,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t WriteTransaction, retention_ms: u64) -> Result<Self, StoreError> {
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
            statuses: RefCell::default(),
            delta: StatusDelta::default(),
        })
    }

    pub(super) fn apply(
        &mut self,
        command: &Command,
    ) -> Result<Result<Effects, Rejected>, StoreError> {
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
            } => self.back_off(*inv, *failed_attempts, *retry_at_ms, error, *at_ms)?,
            Command::Suspend {
                inv,
                awaiting,
                at_ms,
            } => self.suspend(*inv, awaiting, *at_ms, &mut fx)?,
            Command::Purge { inv } => self.purge_finished(*inv)?,
        };
        Ok(outcome.map(|()| fx))
    }

    pub(super) fn record(&self, inv: u64) -> Result<Option<InvocationRecord>, StoreError> {
        let record: Option<InvocationRecord> = self
            .invocations
            .get(inv)?
            .map(|bytes| decode(bytes.value()))
            .transpose()?;
        if let Some(record) = &record {
            self.statuses.borrow_mut().insert(inv, record.status);
        }
        Ok(record)
    }

    /// The record of an invocation that exists and has not finished.
    pub(super) fn unfinished(
        &self,
        inv: u64,
    ) -> Result<Result<InvocationRecord, Rejected>, StoreError> {
        Ok(match self.record(inv)? {
            None => Err(Rejected::UnknownInvocation(inv)),
            Some(record) if record.status.is_finished() => Err(Rejected::AlreadyFinished(inv)),
            Some(record) => Ok(record),
        })
    }

    /// Whether `inv` may write its journal entry `index`: it exists, has not finished (a killed
    /// invocation's late appends are refused), and the index is still empty.
    pub(super) fn writable(&self, inv: u64, index: u32) -> Applied {
        if let Err(rejected) = self.unfinished(inv)? {
            return Ok(Err(rejected));
        }
        if self.journal.get((inv, index))?.is_some() {
            return Ok(Err(Rejected::IndexTaken { inv, index }));
        }
        Ok(Ok(()))
    }

    pub(super) fn put_record(
        &mut self,
        inv: u64,
        record: &InvocationRecord,
    ) -> Result<(), StoreError> {
        let known = self.statuses.borrow().get(&inv).copied();
        let before = match known {
            Some(status) => Some(status),
            // Not read in this transaction: a new invocation, or one to look up.
            None => self.record(inv)?.map(|old| old.status),
        };
        self.invocations.insert(inv, encode(record).as_slice())?;
        if let Some(before) = before {
            self.delta.count(before, -1);
        }
        self.delta.count(record.status, 1);
        self.statuses.borrow_mut().insert(inv, record.status);
        Ok(())
    }

    /// Removes an invocation's record (the caller read it: its status is `status`).
    pub(super) fn remove_record(&mut self, inv: u64, status: Status) -> Result<(), StoreError> {
        if self.invocations.remove(inv)?.is_some() {
            self.delta.count(status, -1);
        }
        self.statuses.borrow_mut().remove(&inv);
        Ok(())
    }

    pub(super) fn entry(&self, inv: u64, index: u32) -> Result<Option<Entry>, StoreError> {
        self.journal
            .get((inv, index))?
            .map(|bytes| decode(bytes.value()))
            .transpose()
    }

    pub(super) fn put_entry(
        &mut self,
        inv: u64,
        index: u32,
        entry: &Entry,
    ) -> Result<(), StoreError> {
        self.journal
            .insert((inv, index), encode(entry).as_slice())?;
        Ok(())
    }
}
