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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::testkit::{Mem, RETENTION_MS, cart, instance};
    use crate::error::TerminalError;
    use crate::ids::{HandlerKind, Target};
    use crate::journal::{Completion, Op};
    use crate::store::command::{Action, Command, Rejected};
    use crate::store::records::Status;
    use crate::store::tables::{PURGE_SLOT, timer};

    fn finish(inv: u64, output: &[u8], at_ms: u64) -> Command {
        Command::Finish {
            inv,
            outcome: Ok(output.to_vec()),
            at_ms,
        }
    }

    #[test]
    fn finishing_an_exclusive_invocation_passes_the_key_to_the_next() {
        let mem = Mem::new();
        let key = instance(&cart());
        mem.create(1, cart(), HandlerKind::Exclusive);
        mem.create(2, cart(), HandlerKind::Exclusive);
        let fx = mem.apply(finish(1, b"1", 50)).unwrap();
        assert_eq!(fx.start, vec![2]);
        assert_eq!(fx.finished, vec![(1, Ok(b"1".to_vec()))]);
        assert_eq!(mem.lock(&key), Some(2));
        assert!(mem.queued(&key).is_empty());
        assert_eq!(mem.record(2).unwrap().status, Status::Ready);
        assert_eq!(mem.record(1).unwrap().status, Status::Completed);
        assert_eq!(mem.inflight(), vec![2]);
        // Kept for the retention period, then purged by a timer.
        assert_eq!(
            mem.timers(),
            vec![(50 + RETENTION_MS, 1, PURGE_SLOT, timer::PURGE)]
        );
        mem.apply(finish(2, b"2", 60)).unwrap();
        assert_eq!(mem.lock(&key), None, "the last holder frees the key");
    }

    #[test]
    fn an_outcome_reaches_the_waiting_callers_entry() {
        let mem = Mem::new();
        mem.create(1, Target::service("Caller", "run"), HandlerKind::Shared);
        let called = mem.call(1, 0, 2);
        assert_eq!(called.start, vec![2]);
        assert_eq!(mem.waiters(), vec![(2, 1, 0)]);
        assert_eq!(mem.completion(1, 0), None);

        let fx = mem.apply(finish(2, b"7", 10)).unwrap();
        assert_eq!(fx.deliver, vec![(1, 0, Completion::Value(b"7".to_vec()))]);
        assert_eq!(mem.completion(1, 0), Some(Completion::Value(b"7".to_vec())));
        assert!(mem.waiters().is_empty());
    }

    #[test]
    fn an_invocation_suspends_only_while_what_it_awaits_is_incomplete() {
        let mem = Mem::new();
        mem.create(1, Target::service("Sleeper", "run"), HandlerKind::Shared);
        let sleep = Op::Sleep { wake_at_ms: 100 };
        mem.append(1, 0, sleep, vec![Action::Timer { due_ms: 100 }]);
        let suspend = || Command::Suspend {
            inv: 1,
            awaiting: vec![0],
            at_ms: 5,
        };
        assert!(mem.apply(suspend()).unwrap().suspended);
        assert_eq!(mem.record(1).unwrap().status, Status::Suspended);
        assert!(mem.inflight().is_empty());

        // The timer fires: the invocation is started again, and a suspension on a complete
        // entry is declined.
        let fired = mem
            .apply(Command::FireTimers {
                now_ms: 100,
                limit: 10,
            })
            .unwrap();
        assert_eq!(fired.start, vec![1]);
        assert!(!mem.apply(suspend()).unwrap().suspended);
        assert_eq!(mem.record(1).unwrap().status, Status::Ready);
    }

    #[test]
    fn nothing_is_recorded_after_an_outcome() {
        let mem = Mem::new();
        mem.create(1, Target::service("Once", "run"), HandlerKind::Shared);
        mem.apply(finish(1, b"1", 10)).unwrap();
        assert_eq!(
            mem.apply(finish(1, b"2", 20)).unwrap_err(),
            Rejected::AlreadyFinished(1)
        );
        let back_off = Command::BackOff {
            inv: 1,
            failed_attempts: 1,
            retry_at_ms: 30,
            error: "late".into(),
            at_ms: 20,
        };
        assert_eq!(
            mem.apply(back_off).unwrap_err(),
            Rejected::AlreadyFinished(1)
        );
        let record = mem.record(1).unwrap();
        assert_eq!(record.outcome, Some(Ok(b"1".to_vec())));
        assert_eq!(record.last_error, None);
    }

    #[test]
    fn a_retry_is_recorded_with_its_attempt_and_error() {
        let mem = Mem::new();
        mem.create(1, Target::service("Flaky", "run"), HandlerKind::Shared);
        let back_off = Command::BackOff {
            inv: 1,
            failed_attempts: 2,
            retry_at_ms: 300,
            error: "bank busy".into(),
            at_ms: 100,
        };
        mem.apply(back_off).unwrap();
        let record = mem.record(1).unwrap();
        assert_eq!(record.status, Status::BackingOff { retry_at_ms: 300 });
        assert_eq!(
            (record.attempt, record.last_error.as_deref()),
            (2, Some("bank busy"))
        );
        assert_eq!(
            mem.inflight(),
            vec![1],
            "still to run: recovered at the next open"
        );
        let failed = Command::Finish {
            inv: 1,
            outcome: Err(TerminalError::new("gave up")),
            at_ms: 400,
        };
        mem.apply(failed).unwrap();
        assert_eq!(mem.record(1).unwrap().status, Status::Failed);
    }

    /// The counts of stored statuses the writer keeps follow every transition, checked against a
    /// scan of the records after each step (`Mem::status_counts`).
    #[test]
    fn the_kept_status_counts_follow_every_transition() {
        use crate::store::stats::status_index;
        let mem = Mem::new();
        let count = |status| mem.status_counts()[status_index(status)];
        mem.create(1, cart(), HandlerKind::Exclusive);
        mem.create(2, cart(), HandlerKind::Exclusive);
        let mut delayed =
            super::super::testkit::invocation(3, Target::service("M", "s"), HandlerKind::Shared);
        delayed.start_at_ms = Some(500);
        mem.apply(Command::Create(delayed)).unwrap();
        assert_eq!((count(Status::Ready), count(Status::Pending)), (1, 1));
        assert_eq!(count(Status::Scheduled { start_at_ms: 0 }), 1);
        let back_off = Command::BackOff {
            inv: 1,
            failed_attempts: 1,
            retry_at_ms: 100,
            error: "busy".into(),
            at_ms: 10,
        };
        mem.apply(back_off).unwrap();
        assert_eq!(count(Status::BackingOff { retry_at_ms: 0 }), 1);
        mem.apply(finish(1, b"1", 20)).unwrap();
        assert_eq!((count(Status::Completed), count(Status::Ready)), (1, 1));
        mem.apply(Command::Kill { inv: 3, at_ms: 30 }).unwrap();
        assert_eq!(count(Status::Failed), 1);
        mem.apply(Command::Purge { inv: 1 }).unwrap();
        assert_eq!(count(Status::Completed), 0);
        mem.apply(Command::FireTimers {
            now_ms: 30 + RETENTION_MS,
            limit: 100,
        })
        .unwrap();
        assert_eq!(mem.status_counts().iter().sum::<u64>(), 1, "only 2 is left");
    }
}
