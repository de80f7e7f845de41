//! Replay: the synchronous core that hands each operation a journal index and decides whether it
//! is replayed from the journal, executed live, or a sign that the code changed.
//!
//! Indices are handed out in the order the handler *issues* operations (when the future is
//! created), not the order they finish, so concurrent operations get stable indices.

use std::collections::BTreeMap;

use super::entry::{Entry, Op};

/// What the handler should do with an issued operation.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// The journal has it: use the recorded entry, do not execute.
    Replayed(u32, Entry),
    /// Past the journal: execute, then record the result at this index.
    Live(u32),
    /// The journal holds another operation at this index: the code is not the code that wrote it.
    Mismatch {
        index: u32,
        recorded: String,
        issued: String,
    },
}

/// What a version marker (`ctx.patched`) finds.
#[derive(Debug, PartialEq)]
pub(crate) enum Patch {
    /// The journal has the marker: this invocation took the patched path before.
    Replayed(u32),
    /// The journal goes on without the marker: the invocation passed this point with the code
    /// before the patch. The marker takes no index.
    Absent,
    /// Past the journal: the invocation reaches the marker for the first time; record it at
    /// this index.
    Live(u32),
}

/// The replay state of one execution of an invocation.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    recorded: BTreeMap<u32, Entry>,
    next: u32,
}

impl Replay {
    /// Starts replaying the given recorded entries.
    pub(crate) fn new(recorded: impl IntoIterator<Item = (u32, Entry)>) -> Self {
        Self {
            recorded: recorded.into_iter().collect(),
            next: 0,
        }
    }

    /// Hands the next index to `op`.
    pub(crate) fn issue(&mut self, op: &Op) -> Step {
        let index = self.next;
        self.next += 1;
        match self.recorded.remove(&index) {
            None => Step::Live(index),
            Some(entry) if entry.op.matches(op) => Step::Replayed(index, entry),
            Some(entry) => Step::Mismatch {
                index,
                recorded: entry.op.describe(),
                issued: op.describe(),
            },
        }
    }

    /// Hands the next index to a version marker, if it takes one: see [`Patch`].
    pub(crate) fn issue_patch(&mut self, marker: &Op) -> Patch {
        let index = self.next;
        match self.recorded.get(&index) {
            Some(entry) if entry.op.matches(marker) => {
                self.recorded.remove(&index);
                self.next += 1;
                Patch::Replayed(index)
            }
            // Recorded entries here or ahead, written without the marker.
            Some(_) => Patch::Absent,
            None if !self.recorded.is_empty() => Patch::Absent,
            None => {
                self.next += 1;
                Patch::Live(index)
            }
        }
    }

    /// The first recorded entry not replayed yet.
    pub(crate) fn next_recorded(&self) -> Option<(u32, Entry)> {
        self.recorded
            .first_key_value()
            .map(|(index, entry)| (*index, entry.clone()))
    }

    /// The index the next issued operation gets.
    pub(crate) fn next_index(&self) -> u32 {
        self.next
    }

    /// Whether recorded entries remain ahead: the handler is still catching up.
    pub(crate) fn is_replaying(&self) -> bool {
        !self.recorded.is_empty()
    }
}

#[cfg(test)]
mod tests {
    //! Transcript tests: a recorded journal, the operations a handler issues, and what replay
    //! must answer for each.
    use super::*;
    use crate::ids::Target;
    use crate::journal::Completion;

    fn entry(op: Op, value: &str) -> Entry {
        Entry {
            op,
            at_ms: 0,
            attempt: 1,
            completion: Some(Completion::Value(value.as_bytes().to_vec())),
        }
    }

    fn run(name: &str) -> Op {
        Op::Run { name: name.into() }
    }

    #[test]
    fn recorded_operations_replay_and_the_first_new_one_runs_live() {
        let mut replay = Replay::new([(0, entry(run("a"), "1")), (1, entry(run("b"), "2"))]);
        assert!(replay.is_replaying());
        assert_eq!(
            replay.issue(&run("a")),
            Step::Replayed(0, entry(run("a"), "1"))
        );
        assert_eq!(
            replay.issue(&run("b")),
            Step::Replayed(1, entry(run("b"), "2"))
        );
        assert!(!replay.is_replaying());
        assert_eq!(replay.issue(&run("c")), Step::Live(2));
        assert_eq!(replay.issue(&run("d")), Step::Live(3));
    }

    #[test]
    fn a_renamed_step_is_a_mismatch() {
        let mut replay = Replay::new([(0, entry(run("charge"), "1"))]);
        assert_eq!(
            replay.issue(&run("refund")),
            Step::Mismatch {
                index: 0,
                recorded: "run(\"charge\")".into(),
                issued: "run(\"refund\")".into()
            }
        );
    }

    #[test]
    fn another_kind_of_operation_is_a_mismatch() {
        let mut replay = Replay::new([(0, entry(Op::GetState { key: "n".into() }, "1"))]);
        assert!(matches!(
            replay.issue(&Op::Rand),
            Step::Mismatch { index: 0, .. }
        ));
    }

    #[test]
    fn a_call_to_another_target_is_a_mismatch_but_the_callee_id_is_not() {
        let call = |handler: &str, callee| Op::Call {
            target: Target::service("S", handler),
            callee,
        };
        let mut replay = Replay::new([
            (0, entry(call("h", 9), "x")),
            (1, entry(call("h", 10), "y")),
        ]);
        assert!(matches!(replay.issue(&call("h", 0)), Step::Replayed(0, _)));
        assert!(matches!(
            replay.issue(&call("other", 0)),
            Step::Mismatch { index: 1, .. }
        ));
    }

    #[test]
    fn holes_left_by_concurrent_operations_run_live() {
        // Two `run`s were issued together; the second finished first and the process crashed.
        let mut replay = Replay::new([(1, entry(run("b"), "2"))]);
        assert_eq!(replay.issue(&run("a")), Step::Live(0));
        assert!(matches!(replay.issue(&run("b")), Step::Replayed(1, _)));
        assert_eq!(replay.issue(&run("c")), Step::Live(2));
    }

    #[test]
    fn a_version_marker_is_true_where_recorded_or_new_and_false_where_old_code_went_on() {
        let patch = || Op::Patch {
            name: "charge-v2".into(),
        };
        // An invocation that passed this point before the change: its journal goes on with the
        // old code's next step, and the marker takes no index.
        let mut old = Replay::new([(0, entry(run("charge"), "1"))]);
        assert_eq!(old.issue_patch(&patch()), Patch::Absent);
        assert!(matches!(old.issue(&run("charge")), Step::Replayed(0, _)));
        // One that reached it after the change: recorded, and replayed as recorded.
        let mut new = Replay::new([(0, entry(patch(), "")), (1, entry(run("charge-v2"), "1"))]);
        assert_eq!(new.issue_patch(&patch()), Patch::Replayed(0));
        assert!(matches!(new.issue(&run("charge-v2")), Step::Replayed(1, _)));
        // One reaching it for the first time.
        let mut fresh = Replay::new([(0, entry(run("reserve"), "1"))]);
        assert!(matches!(fresh.issue(&run("reserve")), Step::Replayed(0, _)));
        assert_eq!(fresh.issue_patch(&patch()), Patch::Live(1));
        assert_eq!(fresh.issue(&run("charge-v2")), Step::Live(2));
    }

    #[test]
    fn an_empty_journal_runs_everything_live() {
        let mut replay = Replay::default();
        assert!(!replay.is_replaying());
        assert_eq!(replay.issue(&Op::Now), Step::Live(0));
    }
}
