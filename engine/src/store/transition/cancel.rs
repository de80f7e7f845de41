//! Cancellation and kills, through the tree of callees, and a cancellation delivered to an await.

use super::{Applied, Tables};
use crate::error::TerminalError;
use crate::journal::entry::decode;
use crate::journal::{Completion, Entry, Op};
use crate::store::command::{Effects, Rejected};
use crate::store::records::{Cancel, Status};
use redb::ReadableTable;

impl Tables<'_> {
    /// Cancels (or kills) an invocation and, through its journal, the callees it still waits on.
    pub(super) fn cancel(
        &mut self,
        root: u64,
        at_ms: u64,
        kill: bool,
        fx: &mut Effects,
    ) -> Applied {
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

    pub(super) fn deliver_cancel(
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
}
