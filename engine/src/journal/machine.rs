//! The invocation machine: the synchronous heart of one attempt of an invocation, with no I/O,
//! no locks and no tasks. It owns replay (which index each issued operation gets, and whether
//! the journal already has it), the handler's own state writes that reads must see before they
//! are committed, the completions delivered for its entries, what the handler waits on, a
//! pending cancellation, the winner of a `select`, and the decision to suspend.
//!
//! Events come in as method calls — an operation issued, a completion delivered, an append
//! queued or acknowledged, the inactivity timeout elapsed, a cancellation requested — and the
//! answers say what to do: replay or execute ([`Step`]), what a wait found ([`Wake`]), what to
//! suspend on, whether the attempt must be abandoned ([`Fatal`]). The runtime's async code
//! (`runtime::invocation` and the invoker) is the driver: it performs the appends and reads
//! the machine asks for, and wakes the handler. The tests below are transcripts: a journal in,
//! events in order, answers out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::entry::{Completion, Entry, Op};
use super::replay::{Patch, Replay, Step};

/// A failure the handler must not observe: the attempt is abandoned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fatal {
    /// Replay found another operation in the journal: fail the invocation.
    Mismatch(String),
    /// The store failed or refused a write: retry the attempt.
    Store(String),
    /// The invocation was killed (and is already recorded as failed): stop, write nothing.
    Killed,
}

impl Fatal {
    /// The failure a [`Step::Mismatch`] stands for.
    pub(crate) fn mismatch(index: u32, recorded: &str, issued: &str) -> Self {
        Fatal::Mismatch(format!(
            "journal mismatch at index {index}: the handler issued {issued} but the journal \
             holds {recorded}; the handler's code changed while this invocation was in flight"
        ))
    }
}

/// What a wait on some entries finds now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Wake {
    /// The awaited entry at this position (among those waited on) has a completion.
    Ready(usize),
    /// A cancellation is pending: journal it as the result of this await.
    DeliverCancel,
    /// Nothing yet: wait for the next delivery (or the inactivity timeout).
    Wait,
}

/// A state key as the handler's own uncommitted writes show it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Overlaid {
    /// Written (`None`: cleared) by this attempt.
    Written(Option<Vec<u8>>),
    /// Every key was cleared by this attempt, and this one not written since.
    ClearedAll,
    /// Not touched by this attempt: read the committed state.
    Untouched,
}

/// One attempt of an invocation, as a state machine.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    replay: Replay,
    /// This attempt's own state writes.
    written: BTreeMap<String, Option<Vec<u8>>>,
    cleared_all: bool,
    /// Completions delivered and not yet taken, by entry index.
    completions: HashMap<u32, Completion>,
    /// Indices awaited right now, each with how many waits are on it.
    waiting: BTreeMap<u32, usize>,
    /// Operations executing (a `run` closure, an append awaiting its commit).
    active: usize,
    /// Waits on the clock in progress (a retry's backoff).
    clock_sleeps: usize,
    /// Appends queued without waiting whose commit is not acknowledged yet.
    detached: usize,
    /// A cancellation waits to fail the next await.
    cancel: bool,
    /// The inactivity timeout elapsed while waiting: suspend if still possible.
    suspend: bool,
    /// Why the attempt must end, once it must.
    fatal: Option<Fatal>,
}

impl Machine {
    /// Starts replaying a journal (the attempt's recorded entries).
    pub(crate) fn load(&mut self, journal: impl IntoIterator<Item = (u32, Entry)>) {
        self.replay = Replay::new(journal);
    }

    /// Hands the next index to `op`: replay it, execute it, or a mismatch. A mismatch also
    /// makes the attempt fatal (the driver stops the handler).
    pub(crate) fn issue(&mut self, op: &Op) -> Step {
        let step = self.replay.issue(op);
        if let Step::Mismatch {
            index,
            recorded,
            issued,
        } = &step
        {
            self.fail(Fatal::mismatch(*index, recorded, issued));
        }
        step
    }

    /// Hands the next index to a version marker, if it takes one.
    pub(crate) fn issue_patch(&mut self, marker: &Op) -> Patch {
        self.replay.issue_patch(marker)
    }

    /// The index the next issued operation gets.
    pub(crate) fn next_index(&self) -> u32 {
        self.replay.next_index()
    }

    /// Whether recorded entries remain ahead.
    pub(crate) fn is_replaying(&self) -> bool {
        self.replay.is_replaying()
    }

    /// A completion for the entry at `index` arrived (committed by the writer).
    pub(crate) fn deliver(&mut self, index: u32, completion: Completion) {
        self.completions.insert(index, completion);
    }

    /// Takes the delivered completion of `index`.
    pub(crate) fn take_completion(&mut self, index: u32) -> Option<Completion> {
        self.completions.remove(&index)
    }

    /// The handler starts waiting on `indices`.
    pub(crate) fn wait_for(&mut self, indices: &[u32]) {
        for &index in indices {
            *self.waiting.entry(index).or_default() += 1;
        }
    }

    /// The handler stops waiting on `indices`.
    pub(crate) fn stop_waiting(&mut self, indices: &[u32]) {
        for index in indices {
            if let Some(count) = self.waiting.get_mut(index) {
                *count -= 1;
                if *count == 0 {
                    self.waiting.remove(index);
                }
            }
        }
    }

    /// What a wait on `indices` finds now: the first of them with a completion (so a `select`
    /// picks its winner), else a pending cancellation, else nothing.
    pub(crate) fn poll_wait(&self, indices: &[u32]) -> Wake {
        if let Some(position) = indices
            .iter()
            .position(|index| self.completions.contains_key(index))
        {
            Wake::Ready(position)
        } else if self.cancel {
            Wake::DeliverCancel
        } else {
            Wake::Wait
        }
    }

    /// An operation starts executing; no suspension until it ends.
    pub(crate) fn begin_operation(&mut self) {
        self.active += 1;
    }

    /// An operation ended.
    pub(crate) fn end_operation(&mut self) {
        self.active = self.active.saturating_sub(1);
    }

    /// A wait on the clock starts (the attempt waits for time, not for work).
    pub(crate) fn begin_clock_sleep(&mut self) {
        self.clock_sleeps += 1;
    }

    /// A wait on the clock ended.
    pub(crate) fn end_clock_sleep(&mut self) {
        self.clock_sleeps = self.clock_sleeps.saturating_sub(1);
    }

    /// An append was queued without waiting for its commit.
    pub(crate) fn detached_started(&mut self) {
        self.detached += 1;
    }

    /// A detached append was acknowledged; true once none is left.
    pub(crate) fn detached_done(&mut self) -> bool {
        self.detached = self.detached.saturating_sub(1);
        self.detached == 0
    }

    /// Whether every detached append was acknowledged: a `run` closure may start.
    pub(crate) fn detached_committed(&self) -> bool {
        self.detached == 0
    }

    /// A cancellation arrived: the next await fails with "cancelled".
    pub(crate) fn request_cancel(&mut self) {
        self.cancel = true;
    }

    /// The cancellation was journaled at an await (or found delivered already).
    pub(crate) fn cancel_delivered(&mut self) {
        self.cancel = false;
    }

    /// The attempt must end; the first reason stands.
    pub(crate) fn fail(&mut self, fatal: Fatal) {
        self.fatal.get_or_insert(fatal);
    }

    /// Why the attempt must end, if it must (taken once).
    pub(crate) fn take_fatal(&mut self) -> Option<Fatal> {
        self.fatal.take()
    }

    /// The inactivity timeout elapsed during a wait.
    pub(crate) fn inactivity_elapsed(&mut self) {
        self.suspend = true;
    }

    /// After [`Machine::inactivity_elapsed`]: the indices to suspend on, if the attempt can
    /// suspend now — it waits on something, nothing executes, nothing it waits on has arrived,
    /// no cancellation is pending. Answered once per elapsed timeout.
    pub(crate) fn take_suspension(&mut self) -> Option<Vec<u32>> {
        if !std::mem::take(&mut self.suspend) {
            return None;
        }
        let waiting: Vec<u32> = self.waiting.keys().copied().collect();
        let arrived = waiting
            .iter()
            .any(|index| self.completions.contains_key(index));
        let can = self.active == 0 && !waiting.is_empty() && !arrived && !self.cancel;
        can.then_some(waiting)
    }

    /// Whether the attempt is doing (or about to do) work, rather than only waiting for a
    /// completion or for the clock.
    pub(crate) fn is_busy(&self) -> bool {
        if self.fatal.is_some() || self.suspend || self.cancel || self.detached > 0 {
            return true;
        }
        if self.active > self.clock_sleeps {
            return true;
        }
        if self.waiting.is_empty() {
            return self.clock_sleeps == 0;
        }
        self.waiting
            .keys()
            .any(|index| self.completions.contains_key(index))
    }

    /// The handler writes (`Some`) or clears (`None`) a state key.
    pub(crate) fn write_state(&mut self, key: &str, value: Option<Vec<u8>>) {
        self.written.insert(key.to_owned(), value);
    }

    /// The handler clears every state key.
    pub(crate) fn clear_all_state(&mut self) {
        self.cleared_all = true;
        self.written.clear();
    }

    /// A state key as this attempt's own writes show it.
    pub(crate) fn overlaid(&self, key: &str) -> Overlaid {
        match self.written.get(key) {
            Some(value) => Overlaid::Written(value.clone()),
            None if self.cleared_all => Overlaid::ClearedAll,
            None => Overlaid::Untouched,
        }
    }

    /// Whether this attempt cleared all state (committed keys are then hidden).
    pub(crate) fn cleared_all(&self) -> bool {
        self.cleared_all
    }

    /// The state keys: the committed ones with this attempt's writes laid over them.
    pub(crate) fn keys_over(&self, mut committed: BTreeSet<String>) -> Vec<String> {
        if self.cleared_all {
            committed.clear();
        }
        for (key, value) in &self.written {
            if value.is_some() {
                committed.insert(key.clone());
            } else {
                committed.remove(key);
            }
        }
        committed.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    //! Transcripts: a journal in, the events of an attempt in order, what the machine answers.

    use super::*;

    fn done(op: Op, value: &str) -> Entry {
        Entry {
            op,
            at_ms: 0,
            attempt: 1,
            completion: Some(Completion::Value(value.as_bytes().to_vec())),
        }
    }

    fn pending(op: Op) -> Entry {
        Entry {
            op,
            at_ms: 0,
            attempt: 1,
            completion: None,
        }
    }

    fn run(name: &str) -> Op {
        Op::Run { name: name.into() }
    }

    fn sleep(at: u64) -> Op {
        Op::Sleep { wake_at_ms: at }
    }

    fn value(v: &str) -> Completion {
        Completion::Value(v.as_bytes().to_vec())
    }

    #[test]
    fn a_replayed_prefix_then_live_operations() {
        let mut m = Machine::default();
        m.load([(0, done(run("charge"), "\"r-1\""))]);
        assert!(m.is_replaying());
        assert!(matches!(m.issue(&run("charge")), Step::Replayed(0, _)));
        assert!(!m.is_replaying());
        assert_eq!(m.issue(&run("ship")), Step::Live(1));
        assert_eq!(m.take_fatal(), None);
    }

    #[test]
    fn another_operation_where_the_journal_has_one_is_fatal() {
        let mut m = Machine::default();
        m.load([(0, done(run("charge"), "1"))]);
        assert!(matches!(m.issue(&run("refund")), Step::Mismatch { .. }));
        match m.take_fatal() {
            Some(Fatal::Mismatch(message)) => {
                assert!(message.contains("index 0"), "{message}");
                assert!(message.contains("\"refund\""), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_completion_delivered_before_the_wait_is_found_at_once() {
        let mut m = Machine::default();
        m.load([(0, pending(sleep(100)))]);
        assert!(matches!(m.issue(&sleep(100)), Step::Replayed(0, _)));
        m.deliver(0, Completion::Empty);
        m.wait_for(&[0]);
        assert_eq!(m.poll_wait(&[0]), Wake::Ready(0));
        assert_eq!(m.take_completion(0), Some(Completion::Empty));
        m.stop_waiting(&[0]);
        assert!(
            m.is_busy(),
            "waits on nothing and sleeps on nothing: it works"
        );
    }

    #[test]
    fn select_takes_the_first_candidate_with_a_completion() {
        let mut m = Machine::default();
        assert_eq!(m.issue(&sleep(100)), Step::Live(0));
        assert_eq!(
            m.issue(&Op::GetPromise { name: "ok".into() }),
            Step::Live(1)
        );
        m.wait_for(&[0, 1]);
        assert_eq!(m.poll_wait(&[0, 1]), Wake::Wait);
        m.deliver(1, value("true"));
        assert_eq!(m.poll_wait(&[0, 1]), Wake::Ready(1));
        m.deliver(0, Completion::Empty);
        assert_eq!(
            m.poll_wait(&[0, 1]),
            Wake::Ready(0),
            "the earlier candidate wins"
        );
    }

    #[test]
    fn a_cancellation_fails_the_next_await_unless_its_result_is_there() {
        let mut m = Machine::default();
        assert_eq!(m.issue(&sleep(100)), Step::Live(0));
        m.wait_for(&[0]);
        m.request_cancel();
        assert_eq!(m.poll_wait(&[0]), Wake::DeliverCancel);
        m.deliver(0, Completion::Empty);
        assert_eq!(
            m.poll_wait(&[0]),
            Wake::Ready(0),
            "a result that arrived wins"
        );
        m.cancel_delivered();
        m.take_completion(0);
        assert_eq!(m.poll_wait(&[0]), Wake::Wait, "delivered once");
    }

    #[test]
    fn it_suspends_only_when_idle_on_something_not_yet_arrived() {
        let mut m = Machine::default();
        assert_eq!(m.issue(&sleep(100)), Step::Live(0));
        // No timeout yet: no suspension.
        m.wait_for(&[0]);
        assert_eq!(m.take_suspension(), None);
        // Timed out while waiting on entry 0.
        m.inactivity_elapsed();
        assert_eq!(m.take_suspension(), Some(vec![0]));
        // Once per elapsed timeout.
        assert_eq!(m.take_suspension(), None);
        // Declined: the completion arrived.
        m.deliver(0, Completion::Empty);
        m.inactivity_elapsed();
        assert_eq!(m.take_suspension(), None);
        // Declined: an operation executes beside the wait.
        m.take_completion(0);
        m.begin_operation();
        m.inactivity_elapsed();
        assert_eq!(m.take_suspension(), None);
        m.end_operation();
        // Declined: a cancellation is pending.
        m.request_cancel();
        m.inactivity_elapsed();
        assert_eq!(m.take_suspension(), None);
    }

    #[test]
    fn waiting_for_time_is_not_work() {
        let mut m = Machine::default();
        assert!(m.is_busy(), "a handler between awaits works");
        m.begin_operation();
        assert!(m.is_busy(), "a run closure executes");
        m.begin_clock_sleep();
        assert!(!m.is_busy(), "the run step backs off on the clock");
        m.end_clock_sleep();
        m.end_operation();
        m.wait_for(&[3]);
        assert!(!m.is_busy(), "waits for entry 3");
        m.detached_started();
        assert!(m.is_busy(), "an append is not acknowledged yet");
        assert!(!m.detached_committed());
        assert!(m.detached_done());
        assert!(m.detached_committed());
        m.deliver(3, Completion::Empty);
        assert!(
            m.is_busy(),
            "entry 3 arrived: the handler is about to go on"
        );
    }

    #[test]
    fn the_handlers_own_writes_are_read_before_they_are_committed() {
        let mut m = Machine::default();
        assert_eq!(m.overlaid("total"), Overlaid::Untouched);
        m.write_state("total", Some(b"3".to_vec()));
        m.write_state("gone", None);
        assert_eq!(m.overlaid("total"), Overlaid::Written(Some(b"3".to_vec())));
        assert_eq!(m.overlaid("gone"), Overlaid::Written(None));
        let committed: BTreeSet<String> = ["gone", "other"].map(String::from).into();
        assert_eq!(m.keys_over(committed.clone()), ["other", "total"]);
        m.clear_all_state();
        assert_eq!(m.overlaid("other"), Overlaid::ClearedAll);
        assert!(m.cleared_all());
        assert!(m.keys_over(committed.clone()).is_empty());
        m.write_state("fresh", Some(b"1".to_vec()));
        assert_eq!(m.keys_over(committed), ["fresh"]);
    }

    #[test]
    fn the_first_fatal_reason_stands() {
        let mut m = Machine::default();
        m.fail(Fatal::Store("disk".into()));
        m.fail(Fatal::Killed);
        assert!(m.is_busy());
        assert_eq!(m.take_fatal(), Some(Fatal::Store("disk".into())));
        assert_eq!(m.take_fatal(), None);
    }
}
