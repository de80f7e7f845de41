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
        self.remove_record(inv, record.status)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::testkit::{Mem, RETENTION_MS, instance, invocation, order};
    use crate::ids::{HandlerKind, Target};
    use crate::journal::{Completion, Op};
    use crate::store::command::{Action, Command, Completable, Rejected, StateOp};

    /// A workflow run (id 1, idempotency key `k`) with state and a completed promise, finished
    /// at 100.
    fn finished_workflow(mem: &Mem) {
        let mut new = invocation(1, order(), HandlerKind::WorkflowRun);
        new.idempotency_key = Some("k".into());
        mem.apply(Command::Create(new)).unwrap();
        let key = instance(&order());
        let set = Action::State(StateOp::Set {
            instance: key.clone(),
            key: "status".into(),
            value: b"1".to_vec(),
        });
        mem.append(
            1,
            0,
            Op::SetState {
                key: "status".into(),
            },
            vec![set],
        );
        mem.apply(Command::Complete {
            what: Completable::Promise {
                instance: key,
                name: "approval".into(),
            },
            completion: Completion::Value(b"true".to_vec()),
            by: None,
            at_ms: 50,
        })
        .unwrap();
        mem.apply(Command::Finish {
            inv: 1,
            outcome: Ok(b"done".to_vec()),
            at_ms: 100,
        })
        .unwrap();
    }

    fn assert_gone(mem: &Mem) {
        let key = instance(&order());
        assert!(mem.record(1).is_none());
        assert_eq!(mem.journal_len(1), 0);
        assert_eq!(mem.idempotency(&order(), "k"), None);
        assert_eq!(mem.workflow(&key), None);
        assert_eq!(mem.state(&key, "status"), None);
        assert_eq!(mem.promise(&key, "approval"), None);
    }

    #[test]
    fn purging_a_finished_workflow_removes_everything_and_frees_its_key() {
        let mem = Mem::new();
        finished_workflow(&mem);
        mem.apply(Command::Purge { inv: 1 }).unwrap();
        assert_gone(&mem);
        // The key runs again, as a new invocation.
        assert_eq!(
            mem.create(2, order(), HandlerKind::WorkflowRun).start,
            vec![2]
        );
    }

    #[test]
    fn the_retention_timer_purges_and_nothing_earlier() {
        let mem = Mem::new();
        finished_workflow(&mem);
        let fire = |now_ms| Command::FireTimers { now_ms, limit: 10 };
        mem.apply(fire(100 + RETENTION_MS - 1)).unwrap();
        assert!(mem.record(1).is_some());
        mem.apply(fire(100 + RETENTION_MS)).unwrap();
        assert_gone(&mem);
    }

    #[test]
    fn only_a_finished_invocation_is_purged() {
        let mem = Mem::new();
        mem.create(1, Target::service("S", "h"), HandlerKind::Shared);
        let refused = mem.apply(Command::Purge { inv: 1 });
        assert_eq!(refused.unwrap_err(), Rejected::NotFinished(1));
        assert!(mem.record(1).is_some());
        let unknown = mem.apply(Command::Purge { inv: 2 });
        assert_eq!(unknown.unwrap_err(), Rejected::UnknownInvocation(2));
    }
}
