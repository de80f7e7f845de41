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
