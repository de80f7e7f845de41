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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::testkit::{Mem, cart, instance, invocation, order};
    use crate::ids::{HandlerKind, Target};
    use crate::store::command::{Command, Rejected};
    use crate::store::records::Status;
    use crate::store::tables::{START_SLOT, timer};

    #[test]
    fn a_repeated_idempotency_key_maps_to_the_first_invocation() {
        let mem = Mem::new();
        let target = Target::service("Payments", "charge");
        let keyed = |id, input: &[u8]| {
            let mut new = invocation(id, target.clone(), HandlerKind::Shared);
            new.idempotency_key = Some("k-1".into());
            new.input = input.to_vec();
            Command::Create(new)
        };
        let first = mem.apply(keyed(1, b"10")).unwrap();
        assert_eq!((first.invocation, first.start), (Some(1), vec![1]));

        let again = mem.apply(keyed(2, b"10")).unwrap();
        assert_eq!(
            again.invocation,
            Some(1),
            "the same request maps to the first"
        );
        assert!(again.start.is_empty());
        assert!(mem.record(2).is_none(), "nothing new is created");

        let other = mem.apply(keyed(3, b"99"));
        assert_eq!(
            other.unwrap_err(),
            Rejected::IdempotencyConflict("k-1".into())
        );
        assert!(mem.record(3).is_none(), "a refusal writes nothing");
        assert_eq!(mem.idempotency(&target, "k-1"), Some(1));
    }

    #[test]
    fn exclusive_invocations_of_one_key_queue_in_arrival_order() {
        let mem = Mem::new();
        let key = instance(&cart());
        assert_eq!(mem.create(1, cart(), HandlerKind::Exclusive).start, vec![1]);
        assert!(
            mem.create(2, cart(), HandlerKind::Exclusive)
                .start
                .is_empty()
        );
        assert!(
            mem.create(3, cart(), HandlerKind::Exclusive)
                .start
                .is_empty()
        );
        assert_eq!(mem.lock(&key), Some(1));
        assert_eq!(mem.queued(&key), vec![2, 3]);
        assert_eq!(mem.record(2).unwrap().status, Status::Pending);
        // A shared handler of the same key does not wait for the key.
        let shared = Target::object("Cart", "alice", "get");
        assert_eq!(mem.create(4, shared, HandlerKind::Shared).start, vec![4]);
        assert_eq!(mem.inflight(), vec![1, 4]);
    }

    #[test]
    fn a_workflow_key_runs_once() {
        let mem = Mem::new();
        assert_eq!(
            mem.create(1, order(), HandlerKind::WorkflowRun).start,
            vec![1]
        );
        let again = mem.create(2, order(), HandlerKind::WorkflowRun);
        assert_eq!(again.invocation, Some(1));
        assert!(again.start.is_empty());
        assert!(mem.record(2).is_none());
        assert_eq!(mem.workflow(&instance(&order())), Some(1));
    }

    #[test]
    fn a_delayed_send_waits_for_its_start_timer() {
        let mem = Mem::new();
        let mut new = invocation(1, Target::service("Mail", "send"), HandlerKind::Shared);
        new.start_at_ms = Some(500);
        let fx = mem.apply(Command::Create(new)).unwrap();
        assert!(fx.start.is_empty());
        assert_eq!(fx.earliest_timer, Some(500));
        assert_eq!(
            mem.record(1).unwrap().status,
            Status::Scheduled { start_at_ms: 500 }
        );
        assert_eq!(mem.timers(), vec![(500, 1, START_SLOT, timer::START)]);
        assert!(mem.inflight().is_empty());
    }
}
