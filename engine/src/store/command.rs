//! What can be asked of the writer ([`Command`]), what a committed command changed
//! ([`Effects`]), and why one was refused ([`Rejected`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::ids::{HandlerKind, Target};
use crate::journal::{Completion, Entry};
use crate::store::records::Outcome;

/// A new invocation to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NewInvocation {
    pub(crate) id: u64,
    pub(crate) target: Target,
    pub(crate) kind: HandlerKind,
    pub(crate) input: Vec<u8>,
    /// The caller's (invocation, journal index) awaiting the result, for calls.
    pub(crate) waiter: Option<(u64, u32)>,
    pub(crate) created_ms: u64,
    /// Maps the request to one invocation per (target, key) for the retention period.
    pub(crate) idempotency_key: Option<String>,
    /// A delayed send: start no earlier than this.
    pub(crate) start_at_ms: Option<u64>,
}

/// A state change committed with a journal entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum StateOp {
    Set {
        instance: String,
        key: String,
        value: Vec<u8>,
    },
    Clear {
        instance: String,
        key: String,
    },
    ClearAll {
        instance: String,
    },
}

/// What else a journal entry sets in motion, in the same transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Action {
    /// A state change.
    State(StateOp),
    /// A callee created by a call or send.
    Spawn(NewInvocation),
    /// Complete the entry (with no value) once the clock reaches `due_ms`.
    Timer { due_ms: u64 },
    /// Complete the entry with the promise's completion, now if it has one, else when it gets one.
    AwaitPromise { instance: String, name: String },
}

/// Something completed from outside its invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Completable {
    /// The awakeable journaled at (invocation, index), if `secret` matches its id.
    Awakeable { inv: u64, index: u32, secret: u128 },
    /// A workflow's durable promise.
    Promise { instance: String, name: String },
}

/// What can be asked of the writer.
/// Serialized as the log records them ([`super::log`]): a batch is applied again after a
/// crash from these.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Create an invocation submitted from outside.
    Create(NewInvocation),
    /// Record a journal entry, with what it sets in motion.
    Append {
        inv: u64,
        index: u32,
        entry: Entry,
        actions: Vec<Action>,
    },
    /// Complete an awakeable or a promise. With `by`, a handler does it: its journal entry
    /// records the result (a refusal becomes a failure in that entry, not a rejected command).
    Complete {
        what: Completable,
        completion: Completion,
        by: Option<(u64, u32, Entry)>,
        at_ms: u64,
    },
    /// Fire up to `limit` timers due at `now_ms`.
    FireTimers { now_ms: u64, limit: usize },
    /// Ask an invocation (and its pending callees) to stop at its next await.
    Cancel { inv: u64, at_ms: u64 },
    /// Stop an invocation (and its pending callees) without running anything more.
    Kill { inv: u64, at_ms: u64 },
    /// Fail the await at `index` with "cancelled" if the invocation has a cancellation to
    /// deliver and the entry has no completion yet. `entry` is written if the index is empty.
    DeliverCancel {
        inv: u64,
        index: u32,
        entry: Option<Entry>,
        at_ms: u64,
    },
    /// Record an invocation's outcome, deliver it to its callers, release its object key.
    Finish {
        inv: u64,
        outcome: Outcome,
        at_ms: u64,
    },
    /// Record a retryable failure.
    BackOff {
        inv: u64,
        failed_attempts: u32,
        retry_at_ms: u64,
        error: String,
        at_ms: u64,
    },
    /// Give the invocation's memory back until one of `awaiting` completes.
    Suspend {
        inv: u64,
        awaiting: Vec<u32>,
        at_ms: u64,
    },
    /// Remove a finished invocation now, as its retention timer would.
    Purge { inv: u64 },
    /// Write nothing; answered once every command sent before it is committed or refused, so a
    /// read after it sees them (the queue is FIFO).
    Barrier,
}

/// What a committed command changed that running code must act on. The writer hands each
/// commit's effects to the [`EffectSink`] before it answers anyone, which takes what concerns
/// the runtime (`start`, `deliver`, `finished`, `cancel`, `killed`, `earliest_timer`); the
/// submitter gets the rest in its answer.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// For `Create`: the invocation the request maps to (an existing one for a workflow key that
    /// already ran or a repeated idempotency key).
    pub(crate) invocation: Option<u64>,
    /// Invocations that became runnable.
    pub(crate) start: Vec<u64>,
    /// Completions for invocations that are running: (invocation, index, completion).
    pub(crate) deliver: Vec<(u64, u32, Completion)>,
    /// Invocations that finished.
    pub(crate) finished: Vec<(u64, Outcome)>,
    /// For `Suspend`: whether the invocation is now suspended.
    pub(crate) suspended: bool,
    /// Running invocations that were asked to stop at their next await.
    pub(crate) cancel: Vec<u64>,
    /// Running invocations that were killed.
    pub(crate) killed: Vec<u64>,
    /// The earliest deadline of the timers this command added.
    pub(crate) earliest_timer: Option<u64>,
    /// For `Complete` by a handler and `DeliverCancel`: what the entry now records.
    pub(crate) journaled: Option<Completion>,
    /// For `FireTimers`: how many timers fired.
    pub(crate) fired: usize,
    /// For `DeliverCancel`: whether the cancellation was journaled now.
    pub(crate) cancel_delivered: bool,
    /// Workflow promises completed: (instance, name).
    pub(crate) promises: Vec<(String, String)>,
}

impl Effects {
    pub(crate) fn timer_at(&mut self, due_ms: u64) {
        self.earliest_timer = Some(self.earliest_timer.map_or(due_ms, |t| t.min(due_ms)));
    }
}

/// Why a command was refused. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    #[error("journal index {index} of invocation {inv} is already written")]
    IndexTaken { inv: u64, index: u32 },
    #[error("invocation {0} has already finished")]
    AlreadyFinished(u64),
    #[error("no invocation {0}")]
    UnknownInvocation(u64),
    #[error("the idempotency key {0:?} was used with another request")]
    IdempotencyConflict(String),
    #[error("no such awakeable")]
    UnknownAwakeable,
    #[error("already completed")]
    AlreadyCompleted,
    #[error("invocation {0} has not finished")]
    NotFinished(u64),
}

pub(crate) type Reply = Result<Result<Effects, Rejected>, StoreError>;

/// Where the writer hands each committed command's effects, in commit order and before the
/// command is answered: so a submitter that gets its answer finds them acted on already, and no
/// submitter has to remember to act on them.
pub(crate) type EffectSink = Box<dyn Fn(&mut Effects) + Send + Sync>;

/// Decides, for tests, whether the writer halts before a command. Called on the writer thread
/// for each command in commit order, until it first answers `true`.
pub(crate) type CrashHook = Arc<dyn Fn(&Command) -> bool + Send + Sync>;

impl Command {
    /// The journal entry (invocation, index) this command writes, if it writes one.
    #[cfg(feature = "testing")]
    pub(crate) fn journal_entry(&self) -> Option<(u64, u32)> {
        match self {
            Command::Append { inv, index, .. } => Some((*inv, *index)),
            Command::Complete {
                by: Some((inv, index, _)),
                ..
            } => Some((*inv, *index)),
            Command::DeliverCancel {
                inv,
                index,
                entry: Some(_),
                ..
            } => Some((*inv, *index)),
            _ => None,
        }
    }
}
