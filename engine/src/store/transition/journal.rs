//! Journal entries and completions: appends with what they set in motion (state, callees, timers, promise waits), awakeables and promises completed, results written into waiting entries.

use super::{Applied, Tables};
use crate::error::{StoreError, TerminalError};
use crate::journal::entry::{decode, encode};
use crate::journal::{Completion, Entry, Op};
use crate::store::command::{Action, Completable, Effects, Rejected, StateOp};
use crate::store::records::Status;
use crate::store::tables::timer;
use redb::ReadableTable;

impl Tables<'_> {
    pub(super) fn append(
        &mut self,
        inv: u64,
        index: u32,
        entry: &Entry,
        actions: &[Action],
        fx: &mut Effects,
    ) -> Applied {
        if let Err(rejected) = self.writable(inv, index)? {
            return Ok(Err(rejected));
        }
        let mut entry = entry.clone();
        for action in actions {
            match action {
                Action::State(op) => self.apply_state(op)?,
                Action::Spawn(new) => self.create(new, fx)?,
                Action::Timer { due_ms } => self.add_timer(*due_ms, inv, index, timer::WAKE, fx)?,
                Action::AwaitPromise { instance, name } => {
                    let done = self.promises.get((instance.as_str(), name.as_str()))?;
                    match done
                        .map(|bytes| decode::<Completion>(bytes.value()))
                        .transpose()?
                    {
                        Some(completion) => {
                            fx.deliver.push((inv, index, completion.clone()));
                            entry.completion = Some(completion);
                        }
                        None => {
                            self.promise_waiters
                                .insert((instance.as_str(), name.as_str(), inv, index), ())?;
                        }
                    }
                }
            }
        }
        self.put_entry(inv, index, &entry)?;
        Ok(Ok(()))
    }

    /// Writes a completion into a waiting journal entry and wakes its invocation. An entry that
    /// is already complete keeps its first completion.
    pub(super) fn complete_entry(
        &mut self,
        inv: u64,
        index: u32,
        completion: Completion,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        let Some(mut entry) = self.entry(inv, index)? else {
            tracing::debug!(inv, index, "completion for a journal entry that is gone");
            return Ok(());
        };
        if entry.completion.is_some() {
            return Ok(());
        }
        entry.completion = Some(completion.clone());
        self.put_entry(inv, index, &entry)?;
        if let Some(mut record) = self.record(inv)? {
            if record.status == Status::Suspended {
                record.status = Status::Ready;
                record.modified_ms = at_ms;
                self.put_record(inv, &record)?;
                self.inflight.insert(inv, ())?;
                fx.start.push(inv);
            } else if !record.status.is_finished() {
                fx.deliver.push((inv, index, completion));
            }
        }
        Ok(())
    }

    pub(super) fn complete(
        &mut self,
        what: &Completable,
        completion: &Completion,
        by: Option<&(u64, u32, Entry)>,
        at_ms: u64,
        fx: &mut Effects,
    ) -> Applied {
        if let Some((inv, index, _)) = by {
            if let Err(rejected) = self.writable(*inv, *index)? {
                return Ok(Err(rejected));
            }
        }
        let result = match what {
            Completable::Awakeable { inv, index, secret } => match self.entry(*inv, *index)? {
                Some(Entry {
                    op: Op::Awakeable { secret: recorded },
                    completion: done,
                    ..
                }) if recorded == *secret => {
                    if done.is_some() {
                        Err(Rejected::AlreadyCompleted)
                    } else {
                        self.complete_entry(*inv, *index, completion.clone(), at_ms, fx)?;
                        Ok(())
                    }
                }
                _ => Err(Rejected::UnknownAwakeable),
            },
            Completable::Promise { instance, name } => {
                if self
                    .promises
                    .get((instance.as_str(), name.as_str()))?
                    .is_some()
                {
                    Err(Rejected::AlreadyCompleted)
                } else {
                    self.promises.insert(
                        (instance.as_str(), name.as_str()),
                        encode(completion).as_slice(),
                    )?;
                    let mut waiting = Vec::new();
                    for row in self.promise_waiters.range(
                        (instance.as_str(), name.as_str(), 0, 0)
                            ..=(instance.as_str(), name.as_str(), u64::MAX, u32::MAX),
                    )? {
                        let (key, _) = row?;
                        let (_, _, inv, index) = key.value();
                        waiting.push((inv, index));
                    }
                    for (inv, index) in waiting {
                        self.promise_waiters.remove((
                            instance.as_str(),
                            name.as_str(),
                            inv,
                            index,
                        ))?;
                        self.complete_entry(inv, index, completion.clone(), at_ms, fx)?;
                    }
                    fx.promises.push((instance.clone(), name.clone()));
                    Ok(())
                }
            }
        };
        let Some((inv, index, entry)) = by else {
            return Ok(result);
        };
        let recorded = match result {
            Ok(()) => Completion::Empty,
            Err(rejected) => Completion::Failure(TerminalError::with_code(
                TerminalError::CONFLICT,
                rejected.to_string(),
            )),
        };
        let mut entry = entry.clone();
        entry.completion = Some(recorded.clone());
        self.put_entry(*inv, *index, &entry)?;
        fx.journaled = Some(recorded);
        Ok(Ok(()))
    }

    pub(super) fn apply_state(&mut self, op: &StateOp) -> Result<(), StoreError> {
        match op {
            StateOp::Set {
                instance,
                key,
                value,
            } => {
                let sealed = crate::journal::entry::seal(value);
                self.state
                    .insert((instance.as_str(), key.as_str()), sealed.as_slice())?;
            }
            StateOp::Clear { instance, key } => {
                self.state.remove((instance.as_str(), key.as_str()))?;
            }
            StateOp::ClearAll { instance } => {
                let mut keys = Vec::new();
                for row in self.state.range((instance.as_str(), "")..)? {
                    let (key, _) = row?;
                    let (owner, name) = key.value();
                    if owner != instance {
                        break;
                    }
                    keys.push(name.to_owned());
                }
                for key in keys {
                    self.state.remove((instance.as_str(), key.as_str()))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::testkit::{Mem, entry, instance, order};
    use crate::ids::{HandlerKind, Target};
    use crate::journal::{Completion, Op};
    use crate::store::command::{Action, Command, Completable, Rejected, StateOp};

    fn promise(name: &str) -> Completable {
        Completable::Promise {
            instance: instance(&order()),
            name: name.into(),
        }
    }

    fn complete(what: Completable, value: &[u8]) -> Command {
        Command::Complete {
            what,
            completion: Completion::Value(value.to_vec()),
            by: None,
            at_ms: 10,
        }
    }

    fn await_promise(
        mem: &Mem,
        inv: u64,
        index: u32,
        name: &str,
    ) -> crate::store::command::Effects {
        let action = Action::AwaitPromise {
            instance: instance(&order()),
            name: name.into(),
        };
        mem.append(
            inv,
            index,
            Op::GetPromise { name: name.into() },
            vec![action],
        )
    }

    #[test]
    fn an_index_is_written_once() {
        let mem = Mem::new();
        mem.create(1, Target::service("S", "h"), HandlerKind::Shared);
        mem.append(
            1,
            0,
            Op::Run {
                name: "first".into(),
            },
            vec![],
        );
        let again = mem.apply(Command::Append {
            inv: 1,
            index: 0,
            entry: entry(Op::Run {
                name: "second".into(),
            }),
            actions: vec![],
        });
        assert_eq!(
            again.unwrap_err(),
            Rejected::IndexTaken { inv: 1, index: 0 }
        );
        assert_eq!(
            mem.entry(1, 0).unwrap().op,
            Op::Run {
                name: "first".into()
            }
        );
    }

    #[test]
    fn a_promise_awaited_first_is_delivered_when_completed_and_only_once() {
        let mem = Mem::new();
        mem.create(1, order(), HandlerKind::WorkflowRun);
        let awaited = await_promise(&mem, 1, 0, "approval");
        assert!(awaited.deliver.is_empty());
        let key = instance(&order());
        assert_eq!(
            mem.promise_waiters(),
            vec![(key.clone(), "approval".into(), 1, 0)]
        );

        let fx = mem.apply(complete(promise("approval"), b"true")).unwrap();
        let approved = Completion::Value(b"true".to_vec());
        assert_eq!(fx.deliver, vec![(1, 0, approved.clone())]);
        assert_eq!(mem.completion(1, 0), Some(approved.clone()));
        assert!(mem.promise_waiters().is_empty());

        let second = mem.apply(complete(promise("approval"), b"false"));
        assert_eq!(second.unwrap_err(), Rejected::AlreadyCompleted);
        assert_eq!(mem.promise(&key, "approval"), Some(approved));
    }

    #[test]
    fn a_promise_completed_first_is_delivered_at_the_await() {
        let mem = Mem::new();
        mem.create(1, order(), HandlerKind::WorkflowRun);
        mem.apply(complete(promise("approval"), b"true")).unwrap();
        let fx = await_promise(&mem, 1, 0, "approval");
        let approved = Completion::Value(b"true".to_vec());
        assert_eq!(fx.deliver, vec![(1, 0, approved.clone())]);
        assert_eq!(mem.completion(1, 0), Some(approved));
        assert!(mem.promise_waiters().is_empty());
    }

    #[test]
    fn an_awakeable_is_completed_only_with_its_secret_and_once() {
        let mem = Mem::new();
        mem.create(1, Target::service("S", "h"), HandlerKind::Shared);
        mem.append(1, 0, Op::Awakeable { secret: 42 }, vec![]);
        let awakeable = |secret| Completable::Awakeable {
            inv: 1,
            index: 0,
            secret,
        };
        let forged = mem.apply(complete(awakeable(41), b"1"));
        assert_eq!(forged.unwrap_err(), Rejected::UnknownAwakeable);
        assert_eq!(mem.completion(1, 0), None);

        let fx = mem.apply(complete(awakeable(42), b"1")).unwrap();
        assert_eq!(fx.deliver, vec![(1, 0, Completion::Value(b"1".to_vec()))]);
        let again = mem.apply(complete(awakeable(42), b"2"));
        assert_eq!(again.unwrap_err(), Rejected::AlreadyCompleted);
        assert_eq!(mem.completion(1, 0), Some(Completion::Value(b"1".to_vec())));
    }

    #[test]
    fn a_handler_completing_a_promise_twice_journals_the_refusal() {
        let mem = Mem::new();
        mem.create(1, order(), HandlerKind::WorkflowRun);
        let by = |index| Command::Complete {
            what: promise("approval"),
            completion: Completion::Value(b"true".to_vec()),
            by: Some((
                1,
                index,
                entry(Op::CompletePromise {
                    name: "approval".into(),
                }),
            )),
            at_ms: 10,
        };
        let first = mem.apply(by(0)).unwrap();
        assert_eq!(first.journaled, Some(Completion::Empty));
        let second = mem.apply(by(1)).unwrap();
        match second.journaled {
            Some(Completion::Failure(error)) => assert_eq!(error.code(), 409),
            other => panic!("the second completion journaled {other:?}"),
        }
    }

    #[test]
    fn state_writes_commit_with_their_entry() {
        let mem = Mem::new();
        mem.create(1, order(), HandlerKind::WorkflowRun);
        let key = instance(&order());
        let set = |name: &str, value: &[u8]| {
            Action::State(StateOp::Set {
                instance: key.clone(),
                key: name.into(),
                value: value.to_vec(),
            })
        };
        let op = |name: &str| Op::SetState { key: name.into() };
        mem.append(1, 0, op("status"), vec![set("status", b"\"paid\"")]);
        mem.append(1, 1, op("items"), vec![set("items", b"3")]);
        assert_eq!(mem.state(&key, "status"), Some(b"\"paid\"".to_vec()));
        let clear_all = Action::State(StateOp::ClearAll {
            instance: key.clone(),
        });
        mem.append(1, 2, Op::ClearAllState, vec![clear_all]);
        assert_eq!(mem.state(&key, "status"), None);
        assert_eq!(mem.state(&key, "items"), None);
    }
}
