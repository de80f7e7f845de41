//! Introspection: what the engine holds, for people and tools. Read-only.

use std::time::SystemTime;

use crate::clock::{format_time, to_system_time};
use crate::engine::Engine;
use crate::error::{StoreError, TerminalError};
use crate::ids::{HandlerKind, InvocationId, Target, instance_key};
use crate::journal::{Completion, Op};
use crate::runtime::Runtime;
use crate::store::records::{Cancel, InvocationRecord, Status};
use crate::store::stats::status_index;

/// Where an invocation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvocationStatus {
    /// Waiting for its object key (another exclusive invocation holds it).
    Pending,
    /// A delayed send waiting for its start time.
    Scheduled,
    /// Executing, or about to.
    Running,
    /// Failed with a retryable error; will run again.
    BackingOff,
    /// Waiting for a completion, with no memory held.
    Suspended,
    /// Finished with an output.
    Completed,
    /// Finished with a terminal error.
    Failed,
}

impl InvocationStatus {
    /// Every status, in the order of an invocation's life.
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Scheduled,
        Self::Running,
        Self::BackingOff,
        Self::Suspended,
        Self::Completed,
        Self::Failed,
    ];

    /// Whether the invocation has finished.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// The status's name in lower case: `pending`, `scheduled`, `running`, `backing-off`,
    /// `suspended`, `completed`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::BackingOff => "backing-off",
            Self::Suspended => "suspended",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

impl std::fmt::Display for InvocationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InvocationStatus {
    type Err = String;

    /// Parses a name written by [`InvocationStatus::as_str`], in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown status {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// What introspection shows of one invocation.
#[derive(Debug, Clone)]
pub struct InvocationInfo {
    /// Its id.
    pub id: InvocationId,
    /// What it runs.
    pub target: Target,
    /// How its handler runs.
    pub kind: HandlerKind,
    /// Where it is.
    pub status: InvocationStatus,
    /// Attempts that failed with a retryable error.
    pub failed_attempts: u32,
    /// The last retryable error.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When its status last changed.
    pub modified_at: SystemTime,
    /// Its output (encoded as the handler answers: JSON or bytes) or terminal error, once
    /// finished.
    pub outcome: Option<Result<Vec<u8>, TerminalError>>,
    /// Whether it was cancelled or killed.
    pub cancellation: Cancellation,
}

/// Whether an invocation was asked to stop, and how far that went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cancellation {
    /// Nobody asked.
    None,
    /// Cancelled; its next await will fail with "cancelled".
    Requested,
    /// Cancelled, and an await has failed with "cancelled" (compensations may be running).
    Delivered,
    /// Killed: stopped without compensations.
    Killed,
}

impl Cancellation {
    /// The name in lower case: `none`, `requested`, `delivered`, `killed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Requested => "requested",
            Self::Delivered => "delivered",
            Self::Killed => "killed",
        }
    }
}

/// One journal entry as introspection shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntryInfo {
    /// Its index in the journal.
    pub index: u32,
    /// The operation's kind: `run`, `get_state`, `call`, …
    pub kind: &'static str,
    /// The step name, state key or target.
    pub name: Option<String>,
    /// When it was recorded.
    pub at: SystemTime,
    /// The attempt that recorded it.
    pub attempt: u32,
    /// Its result: `None` while a completion is awaited; `Some(Ok(json))`, `Some(Ok(empty))`
    /// for no value, or `Some(Err(terminal))`.
    pub result: Option<Result<Vec<u8>, TerminalError>>,
}

/// Which invocations to list. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct InvocationFilter {
    /// Only this status.
    pub status: Option<InvocationStatus>,
    /// Only this service, object or workflow.
    pub service: Option<String>,
    /// Only this key.
    pub key: Option<String>,
    /// At most this many (all if `None`).
    pub limit: Option<usize>,
}

/// An entry's name as people read it: a timer's deadline as a date, a `select` by the entries
/// it raced (`first of 7 get_promise("approval"), 8 sleep`).
fn shown_name(op: &Op, described: &std::collections::HashMap<u32, String>) -> Option<String> {
    match op {
        Op::Sleep { wake_at_ms } => Some(format!(
            "until {}",
            format_time(to_system_time(*wake_at_ms))
        )),
        Op::Select { of } => Some(format!(
            "first of {}",
            of.iter()
                .map(|index| match described.get(index) {
                    Some(what) => format!("{index} {what}"),
                    None => index.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        )),
        other => other.name(),
    }
}

/// The status a stored record shows (a runnable one as running).
pub(crate) fn stored_status(status: Status) -> InvocationStatus {
    match status {
        Status::Pending => InvocationStatus::Pending,
        Status::Scheduled { .. } => InvocationStatus::Scheduled,
        Status::Ready => InvocationStatus::Running,
        Status::BackingOff { .. } => InvocationStatus::BackingOff,
        Status::Suspended => InvocationStatus::Suspended,
        Status::Completed => InvocationStatus::Completed,
        Status::Failed => InvocationStatus::Failed,
    }
}

pub(crate) fn info_of(engine: &Runtime, id: u64, record: InvocationRecord) -> InvocationInfo {
    let status = match record.status {
        // Backing off, but already running again.
        Status::BackingOff { .. } if engine.is_live(id) => InvocationStatus::Running,
        stored => stored_status(stored),
    };
    InvocationInfo {
        id: InvocationId(id),
        target: record.target,
        kind: record.kind,
        status,
        failed_attempts: record.attempt,
        last_error: record.last_error,
        created_at: to_system_time(record.created_ms),
        modified_at: to_system_time(record.modified_ms),
        outcome: record.outcome,
        cancellation: match record.cancel {
            Cancel::None => Cancellation::None,
            Cancel::Requested => Cancellation::Requested,
            Cancel::Delivered => Cancellation::Delivered,
            Cancel::Killed => Cancellation::Killed,
        },
    }
}

impl Engine {
    /// Invocations matching `filter`, oldest first.
    pub fn list_invocations(
        &self,
        filter: &InvocationFilter,
    ) -> Result<Vec<InvocationInfo>, StoreError> {
        self.inner().list_invocations(filter)
    }

    /// One invocation's journal, or `None` if there is no such invocation.
    pub fn journal(&self, id: InvocationId) -> Result<Option<Vec<JournalEntryInfo>>, StoreError> {
        self.inner().journal(id)
    }

    /// The committed state of an object or workflow instance: (key, JSON value), sorted by key.
    pub fn object_state(
        &self,
        service: &str,
        key: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner().object_state(service, key)
    }

    /// Number of durable timers stored: sleeps, delayed sends and scheduled purges.
    pub fn timers_stored(&self) -> Result<u64, StoreError> {
        self.inner().timers_stored()
    }

    /// How many stored invocations have each status, in the order of [`InvocationStatus::ALL`].
    /// Kept by the writer as it commits, so this costs the same whatever the retained history
    /// (it reads the records of the invocations in memory only).
    pub fn count_invocations(&self) -> Result<Vec<(InvocationStatus, u64)>, StoreError> {
        self.inner().count_invocations()
    }

    /// Number of journal entries stored, over all invocations.
    pub fn journal_entries_stored(&self) -> Result<u64, StoreError> {
        self.inner().journal_entries_stored()
    }
}

/// The bodies behind [`Engine`]'s introspection, for the parts of the crate that hold only the
/// engine's shared core (the HTTP admin API).
impl Runtime {
    pub(crate) fn list_invocations(
        &self,
        filter: &InvocationFilter,
    ) -> Result<Vec<InvocationInfo>, StoreError> {
        let inner = self;
        let mut found = Vec::new();
        let limit = filter.limit.unwrap_or(usize::MAX);
        inner.store.scan_invocations(|id, record| {
            let matches = filter
                .service
                .as_ref()
                .is_none_or(|s| *s == record.target.service)
                && filter
                    .key
                    .as_ref()
                    .is_none_or(|k| Some(k) == record.target.key.as_ref());
            if matches {
                let info = info_of(inner, id, record);
                if filter.status.is_none_or(|s| s == info.status) {
                    found.push(info);
                }
            }
            found.len() < limit
        })?;
        Ok(found)
    }

    pub(crate) fn journal(
        &self,
        id: InvocationId,
    ) -> Result<Option<Vec<JournalEntryInfo>>, StoreError> {
        let Some((_, entries)) = self.store.load(id.0)? else {
            return Ok(None);
        };
        let described: std::collections::HashMap<u32, String> = entries
            .iter()
            .map(|(index, entry)| (*index, entry.op.describe()))
            .collect();
        Ok(Some(
            entries
                .into_iter()
                .map(|(index, entry)| JournalEntryInfo {
                    index,
                    kind: entry.op.kind(),
                    name: shown_name(&entry.op, &described),
                    at: to_system_time(entry.at_ms),
                    attempt: entry.attempt,
                    result: entry.completion.map(|c| match c {
                        Completion::Value(bytes) => Ok(bytes),
                        Completion::Empty => Ok(Vec::new()),
                        Completion::Failure(e) => Err(e),
                    }),
                })
                .collect(),
        ))
    }

    pub(crate) fn object_state(
        &self,
        service: &str,
        key: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.store.state_all(&instance_key(service, key))
    }

    pub(crate) fn state_value(
        &self,
        service: &str,
        key: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.state_get(&instance_key(service, key), name)
    }

    /// From the counts the writer keeps by stored status, not a scan: the cost grows with the
    /// invocations in memory (an attempt running again after a back-off is stored as backing
    /// off but shown as running), not with the retained history.
    pub(crate) fn count_invocations(&self) -> Result<Vec<(InvocationStatus, u64)>, StoreError> {
        let stored = self.store.stats.statuses.snapshot();
        let mut counts = [
            (
                InvocationStatus::Pending,
                stored[status_index(Status::Pending)],
            ),
            (
                InvocationStatus::Scheduled,
                stored[status_index(Status::Scheduled { start_at_ms: 0 })],
            ),
            (
                InvocationStatus::Running,
                stored[status_index(Status::Ready)],
            ),
            (
                InvocationStatus::BackingOff,
                stored[status_index(Status::BackingOff { retry_at_ms: 0 })],
            ),
            (
                InvocationStatus::Suspended,
                stored[status_index(Status::Suspended)],
            ),
            (
                InvocationStatus::Completed,
                stored[status_index(Status::Completed)],
            ),
            (
                InvocationStatus::Failed,
                stored[status_index(Status::Failed)],
            ),
        ];
        for id in self.live_ids() {
            let backing_off = self
                .store
                .record(id)?
                .is_some_and(|record| matches!(record.status, Status::BackingOff { .. }));
            if backing_off && counts[3].1 > 0 {
                counts[3].1 -= 1;
                counts[2].1 += 1;
            }
        }
        Ok(counts.to_vec())
    }

    pub(crate) fn timers_stored(&self) -> Result<u64, StoreError> {
        self.store.timers_len()
    }

    pub(crate) fn journal_entries_stored(&self) -> Result<u64, StoreError> {
        self.store.journal_len()
    }
}
