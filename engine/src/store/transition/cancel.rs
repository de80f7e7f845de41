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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::testkit::{Mem, cart, instance};
    use crate::error::TerminalError;
    use crate::ids::{HandlerKind, Target};
    use crate::journal::{Completion, Op};
    use crate::store::command::{Command, Rejected};
    use crate::store::records::{Cancel, Status};

    /// 1 calls 2, which calls 3; all running.
    fn chain() -> Mem {
        let mem = Mem::new();
        mem.create(1, Target::service("Root", "run"), HandlerKind::Shared);
        mem.call(1, 0, 2);
        mem.call(2, 0, 3);
        mem
    }

    fn cancelled_code(mem: &Mem, inv: u64) -> Option<u16> {
        match mem.record(inv)?.outcome? {
            Err(error) => Some(error.code()),
            Ok(_) => None,
        }
    }

    #[test]
    fn a_kill_ends_every_callee_the_invocation_waits_on() {
        let mem = chain();
        let fx = mem.apply(Command::Kill { inv: 1, at_ms: 10 }).unwrap();
        let mut killed = fx.killed.clone();
        killed.sort_unstable();
        assert_eq!(killed, vec![1, 2, 3]);
        for inv in [1, 2, 3] {
            let record = mem.record(inv).unwrap();
            assert_eq!(
                (record.status, record.cancel),
                (Status::Failed, Cancel::Killed)
            );
            assert_eq!(cancelled_code(&mem, inv), Some(TerminalError::CANCELLED));
        }
        assert!(mem.inflight().is_empty());
        assert!(mem.waiters().is_empty());
    }

    #[test]
    fn a_cancel_fails_the_pending_calls_and_asks_the_innermost_callee_to_stop() {
        let mem = chain();
        let fx = mem.apply(Command::Cancel { inv: 1, at_ms: 10 }).unwrap();
        let cancelled = Completion::Failure(TerminalError::with_code(
            TerminalError::CANCELLED,
            "cancelled",
        ));
        // 1 and 2 are blocked on calls: those calls fail now, and their compensations can run.
        assert_eq!(mem.completion(1, 0), Some(cancelled.clone()));
        assert_eq!(mem.completion(2, 0), Some(cancelled));
        assert_eq!(mem.record(1).unwrap().cancel, Cancel::Delivered);
        // 3 runs: it is asked to stop at its next await.
        assert_eq!(fx.cancel, vec![3]);
        assert_eq!(mem.record(3).unwrap().cancel, Cancel::Requested);
        assert!(!mem.record(3).unwrap().status.is_finished());
    }

    #[test]
    fn cancelling_a_queued_invocation_ends_it_without_running_it() {
        let mem = Mem::new();
        let key = instance(&cart());
        mem.create(1, cart(), HandlerKind::Exclusive);
        mem.create(2, cart(), HandlerKind::Exclusive);
        let fx = mem.apply(Command::Cancel { inv: 2, at_ms: 10 }).unwrap();
        assert!(fx.start.is_empty());
        assert_eq!(mem.record(2).unwrap().status, Status::Failed);
        assert!(mem.queued(&key).is_empty());
        assert_eq!(mem.lock(&key), Some(1), "the holder keeps the key");
    }

    #[test]
    fn a_suspended_invocation_is_started_to_see_its_cancellation() {
        let mem = Mem::new();
        mem.create(1, Target::service("Sleeper", "run"), HandlerKind::Shared);
        mem.append(1, 0, Op::Awakeable { secret: 7 }, vec![]);
        let suspend = Command::Suspend {
            inv: 1,
            awaiting: vec![0],
            at_ms: 5,
        };
        assert!(mem.apply(suspend).unwrap().suspended);
        let fx = mem.apply(Command::Cancel { inv: 1, at_ms: 10 }).unwrap();
        assert_eq!(fx.start, vec![1]);
        assert_eq!(mem.record(1).unwrap().status, Status::Ready);
        assert_eq!(mem.inflight(), vec![1]);
    }

    #[test]
    fn a_cancellation_is_delivered_to_one_await_only() {
        let mem = Mem::new();
        mem.create(1, Target::service("Sleeper", "run"), HandlerKind::Shared);
        mem.append(1, 0, Op::Awakeable { secret: 7 }, vec![]);
        mem.apply(Command::Cancel { inv: 1, at_ms: 10 }).unwrap();
        let deliver = |index| Command::DeliverCancel {
            inv: 1,
            index,
            entry: None,
            at_ms: 20,
        };
        let first = mem.apply(deliver(0)).unwrap();
        assert!(first.cancel_delivered);
        assert!(matches!(first.journaled, Some(Completion::Failure(_))));
        assert_eq!(mem.record(1).unwrap().cancel, Cancel::Delivered);
        // A later await (a compensation's) is not cancelled again.
        mem.append(1, 1, Op::Awakeable { secret: 8 }, vec![]);
        let later = mem.apply(deliver(1)).unwrap();
        assert!(!later.cancel_delivered);
        assert_eq!(mem.completion(1, 1), None);
    }

    #[test]
    fn cancelling_an_unknown_invocation_is_refused() {
        let mem = Mem::new();
        let refused = mem.apply(Command::Cancel { inv: 9, at_ms: 10 });
        assert_eq!(refused.unwrap_err(), Rejected::UnknownInvocation(9));
    }
}
