//! Creating invocations and admitting them: idempotency keys, workflow keys, object queues, callers waiting on a callee.

use super::{Applied, Tables};
use crate::error::StoreError;
use crate::ids::HandlerKind;
use crate::store::command::{Effects, NewInvocation, Rejected};
use crate::store::records::{Cancel, InvocationRecord, Status, completion_of};
use crate::store::tables::{START_SLOT, timer};
use redb::ReadableTable;

impl Tables<'_> {
    /// Creates an invocation submitted from outside, honouring its idempotency key.
    pub(super) fn create_checked(&mut self, new: &NewInvocation, fx: &mut Effects) -> Applied {
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

    pub(super) fn create(
        &mut self,
        new: &NewInvocation,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
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
    pub(super) fn admit(
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
    pub(super) fn add_waiter(
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
}
