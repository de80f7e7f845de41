//! The records stored per invocation.

use serde::{Deserialize, Serialize};

use crate::error::TerminalError;
use crate::ids::{HandlerKind, Target};
use crate::journal::Completion;

/// How an invocation ended: its JSON output or a terminal error.
pub(crate) type Outcome = Result<Vec<u8>, TerminalError>;

/// The stored status of an invocation. "Running" is not stored: a `Ready` invocation is running
/// or about to, and after a crash every `Ready` invocation is run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    /// Queued behind another exclusive invocation of the same object key.
    Pending,
    /// A delayed send: starts when its timer fires.
    Scheduled { start_at_ms: u64 },
    /// Runnable.
    Ready,
    /// Failed with a retryable error; runs again at `retry_at_ms`.
    BackingOff { retry_at_ms: u64 },
    /// Waiting for a completion with its memory given back; resumes when the completion lands.
    Suspended,
    /// Finished with an output.
    Completed,
    /// Finished with a terminal error.
    Failed,
}

impl Status {
    pub(crate) fn is_finished(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }
}

/// Everything the engine knows about one invocation, except its journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InvocationRecord {
    pub(crate) target: Target,
    pub(crate) kind: HandlerKind,
    /// The input, JSON.
    pub(crate) input: Vec<u8>,
    pub(crate) status: Status,
    /// Attempts that have failed so far.
    pub(crate) attempt: u32,
    pub(crate) created_ms: u64,
    pub(crate) modified_ms: u64,
    /// The last retryable failure, for introspection.
    pub(crate) last_error: Option<String>,
    /// The result, once finished.
    pub(crate) outcome: Option<Outcome>,
    /// The idempotency key it was submitted with, so that purging it frees the key.
    pub(crate) idempotency_key: Option<String>,
    /// Whether it was asked to stop.
    pub(crate) cancel: Cancel,
}

/// Where a cancellation request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) enum Cancel {
    /// Nobody asked.
    #[default]
    None,
    /// Asked; the invocation's next await fails with "cancelled".
    Requested,
    /// An await has failed with "cancelled" (journaled); later awaits run normally, so
    /// compensations can.
    Delivered,
    /// Killed: stopped without running anything more.
    Killed,
}

pub(crate) fn completion_of(outcome: &Outcome) -> Completion {
    match outcome {
        Ok(bytes) => Completion::Value(bytes.clone()),
        Err(e) => Completion::Failure(e.clone()),
    }
}
