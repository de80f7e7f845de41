//! Removing a finished invocation with everything that belongs to it.

use super::{Applied, Tables};
use crate::error::StoreError;
use crate::ids::HandlerKind;
use crate::store::command::{Rejected, StateOp};
use redb::ReadableTable;

impl Tables<'_> {
    /// Removes a finished invocation: its record, journal, idempotency key, and for a workflow
    /// its key, state and promises, so the key can run again.
    pub(super) fn purge(&mut self, inv: u64) -> Result<(), StoreError> {
        let Some(record) = self.record(inv)? else {
            return Ok(());
        };
        if !record.status.is_finished() {
            return Ok(());
        }
        self.invocations.remove(inv)?;
        let mut indices = Vec::new();
        for row in self.journal.range((inv, 0)..=(inv, u32::MAX))? {
            indices.push(row?.0.value().1);
        }
        for index in indices {
            self.journal.remove((inv, index))?;
        }
        if let Some(key) = &record.idempotency_key {
            let target = record.target.to_string();
            if self
                .idempotency
                .get((target.as_str(), key.as_str()))?
                .map(|g| g.value())
                == Some(inv)
            {
                self.idempotency.remove((target.as_str(), key.as_str()))?;
            }
        }
        if record.kind == HandlerKind::WorkflowRun {
            if let Some(instance) = record.target.instance() {
                if self.workflows.get(instance.as_str())?.map(|g| g.value()) == Some(inv) {
                    self.workflows.remove(instance.as_str())?;
                    self.apply_state(&StateOp::ClearAll {
                        instance: instance.clone(),
                    })?;
                    let mut names = Vec::new();
                    for row in self.promises.range((instance.as_str(), "")..)? {
                        let (key, _) = row?;
                        let (owner, name) = key.value();
                        if owner != instance {
                            break;
                        }
                        names.push(name.to_owned());
                    }
                    for name in names {
                        self.promises.remove((instance.as_str(), name.as_str()))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Purges a finished invocation now, as its retention timer would; refuses an unfinished one.
    pub(super) fn purge_finished(&mut self, inv: u64) -> Applied {
        match self.record(inv)? {
            None => Ok(Err(Rejected::UnknownInvocation(inv))),
            Some(record) if !record.status.is_finished() => Ok(Err(Rejected::NotFinished(inv))),
            Some(_) => {
                self.purge(inv)?;
                Ok(Ok(()))
            }
        }
    }
}
