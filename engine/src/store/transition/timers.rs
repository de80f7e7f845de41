//! Durable timers: adding them, and firing those due (sleeps, delayed starts, purges).

use super::Tables;
use crate::error::StoreError;
use crate::journal::Completion;
use crate::store::command::Effects;
use crate::store::records::Status;
use crate::store::tables::timer;
use redb::ReadableTable;

impl Tables<'_> {
    pub(super) fn add_timer(
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

    pub(super) fn fire_timers(
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::testkit::{Mem, invocation};
    use crate::ids::{HandlerKind, Target};
    use crate::journal::{Completion, Op};
    use crate::store::command::{Action, Command};
    use crate::store::records::Status;

    fn sleeper(mem: &Mem, inv: u64, due_ms: u64) {
        mem.create(inv, Target::service("Sleeper", "run"), HandlerKind::Shared);
        let op = Op::Sleep { wake_at_ms: due_ms };
        mem.append(inv, 0, op, vec![Action::Timer { due_ms }]);
    }

    fn fire(mem: &Mem, now_ms: u64, limit: usize) -> usize {
        mem.apply(Command::FireTimers { now_ms, limit })
            .unwrap()
            .fired
    }

    #[test]
    fn only_due_timers_fire_earliest_first_up_to_the_limit() {
        let mem = Mem::new();
        sleeper(&mem, 1, 300);
        sleeper(&mem, 2, 100);
        sleeper(&mem, 3, 200);
        assert_eq!(fire(&mem, 99, 10), 0);
        assert_eq!(fire(&mem, 250, 1), 1);
        assert_eq!(mem.completion(2, 0), Some(Completion::Empty));
        assert_eq!(
            mem.completion(3, 0),
            None,
            "beyond the limit: the next batch"
        );
        assert_eq!(fire(&mem, 250, 10), 1);
        assert_eq!(mem.completion(3, 0), Some(Completion::Empty));
        assert_eq!(mem.completion(1, 0), None, "not due");
        assert_eq!(mem.timers().len(), 1);
    }

    #[test]
    fn a_start_timer_admits_a_delayed_send() {
        let mem = Mem::new();
        let mut new = invocation(1, Target::service("Mail", "send"), HandlerKind::Shared);
        new.start_at_ms = Some(500);
        mem.apply(Command::Create(new)).unwrap();
        let fx = mem
            .apply(Command::FireTimers {
                now_ms: 500,
                limit: 10,
            })
            .unwrap();
        assert_eq!(fx.start, vec![1]);
        assert_eq!(mem.record(1).unwrap().status, Status::Ready);
        assert_eq!(mem.inflight(), vec![1]);
        assert!(mem.timers().is_empty());
    }
}
