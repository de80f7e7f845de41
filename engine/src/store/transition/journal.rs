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
