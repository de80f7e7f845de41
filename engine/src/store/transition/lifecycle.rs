//! The end of an attempt: an outcome recorded and delivered, the object key passed on, a retry scheduled, a suspension.

use super::{Applied, Tables};
use crate::error::StoreError;
use crate::ids::HandlerKind;
use crate::store::command::Effects;
use crate::store::records::{Cancel, Outcome, Status, completion_of};
use crate::store::tables::{PURGE_SLOT, timer};
use redb::ReadableTable;

impl Tables<'_> {
    pub(super) fn suspend(
        &mut self,
        inv: u64,
        awaiting: &[u32],
        at_ms: u64,
        fx: &mut Effects,
    ) -> Applied {
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

    pub(super) fn finish(
        &mut self,
        inv: u64,
        outcome: &Outcome,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Applied {
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
    pub(super) fn release(
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

    /// Records a retryable failure: the invocation backs off until `retry_at_ms`.
    pub(super) fn back_off(
        &mut self,
        inv: u64,
        failed_attempts: u32,
        retry_at_ms: u64,
        error: &str,
        at_ms: u64,
    ) -> Applied {
        let mut record = match self.unfinished(inv)? {
            Ok(record) => record,
            Err(rejected) => return Ok(Err(rejected)),
        };
        record.status = Status::BackingOff { retry_at_ms };
        record.attempt = failed_attempts;
        record.last_error = Some(error.to_owned());
        record.modified_ms = at_ms;
        self.put_record(inv, &record)?;
        Ok(Ok(()))
    }
}
