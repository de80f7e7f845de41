//! The replay gate: before a new build is deployed, replay the journals a data folder holds —
//! every unfinished invocation, and those finished recently — against the new build's
//! handlers, with no side effects, and report every invocation whose journal the new code would
//! no longer match.
//!
//! Each handler runs on a backend that only replays: every operation it issues is matched with
//! the recorded entry at its index and answered with the recorded result; nothing is executed,
//! written or sent. An invocation passes when the new code reaches the end of what is recorded
//! (its next operation would run live, or it awaits a result that has not arrived) or finishes
//! where the journal ends. It fails when the code issues another operation than the journal
//! holds, finishes while the journal goes on, fails on a recorded value (a changed type), or
//! its handler is gone.
//!
//! ```
//! use zeroapp_engine::prelude::*;
//!
//! async fn charge(ctx: Context, order: String) -> Result<String, HandlerError> {
//!     ctx.run("charge", || async { Ok(()) }).await?;
//!     Ok(order)
//! }
//!
//! async fn charge_v2(ctx: Context, order: String) -> Result<String, HandlerError> {
//!     // Renamed: invocations recorded with the old name would no longer replay.
//!     ctx.run("charge with tax", || async { Ok(()) }).await?;
//!     Ok(order)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::builder()
//!     .register(Service::new("Orders").handler("charge", charge))
//!     .open(dir.path())
//!     .await?;
//! let _: String = engine.client().call(Target::service("Orders", "charge"), &"o-1").await?;
//! engine.shutdown().await;
//!
//! let recorded = Engine::read_recorded(dir.path(), std::time::Duration::from_secs(3600)).await?;
//! let report = Engine::builder()
//!     .register(Service::new("Orders").handler("charge", charge_v2))
//!     .check_replay(&recorded)
//!     .await?;
//! assert_eq!(report.checked, 1);
//! let finding = &report.incompatible[0];
//! assert_eq!((finding.entry, finding.expected.as_str()), (Some(0), "run(\"charge\")"));
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::{Clock, millis, sleep_for};
use crate::context::backend::{Backend, BoxFuture, Handle, Outcome, RunAction};
use crate::engine::{Engine, EngineBuilder, on_data_file};
use crate::error::{OpenError, TerminalError};
use crate::ids::{InvocationId, Target, awakeable_id};
use crate::journal::replay::Replay;
use crate::journal::{Completion, Entry, Op, Patch, Step};
use crate::retry::RetryPolicy;
use crate::runtime::clocks::SystemClock;
use crate::runtime::invocation::{outcome, replayed_handle};
use crate::store::records::InvocationRecord;

/// How long one invocation's replay may take in real time before the gate gives up on it (a
/// handler that loops without issuing operations, say).
pub const REPLAY_LIMIT: Duration = Duration::from_secs(10);

/// One invocation as a data folder records it, with its journal: what the gate replays.
/// Serializable (JSON), so a folder's journals can be exported to a file and checked on
/// another machine, by the build about to be deployed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedInvocation {
    id: InvocationId,
    target: Target,
    status: String,
    finished: bool,
    input: Vec<u8>,
    journal: Vec<(u32, Entry)>,
}

impl RecordedInvocation {
    fn new(id: u64, record: InvocationRecord, journal: Vec<(u32, Entry)>) -> Self {
        Self {
            id: InvocationId(id),
            target: record.target,
            status: crate::introspect::stored_status(record.status)
                .as_str()
                .to_owned(),
            finished: record.status.is_finished(),
            input: record.input,
            journal,
        }
    }

    /// The invocation's id.
    pub fn id(&self) -> InvocationId {
        self.id
    }

    /// What it invoked.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Its status when it was read (`suspended`, `completed`…).
    pub fn status(&self) -> &str {
        &self.status
    }

    /// How many journal entries it has.
    pub fn entries(&self) -> usize {
        self.journal.len()
    }
}

/// What the gate found.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// How many invocations were replayed.
    pub checked: usize,
    /// Those the new code would no longer match, in id order.
    pub incompatible: Vec<Incompatibility>,
}

impl ReplayReport {
    /// Whether every invocation replays against the new code.
    pub fn is_compatible(&self) -> bool {
        self.incompatible.is_empty()
    }
}

/// One invocation whose journal the new code would no longer match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// The invocation.
    pub invocation: InvocationId,
    /// Its handler (service, key, handler).
    pub target: Target,
    /// Its status when it was read.
    pub status: String,
    /// The journal entry where the new code parts from the journal (`None`: not at an entry).
    pub entry: Option<u32>,
    /// What the journal holds there (or what the recorded invocation did).
    pub expected: String,
    /// What the new code does instead.
    pub found: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.invocation, self.target, self.status)?;
        if let Some(entry) = self.entry {
            write!(f, " at journal entry {entry}")?;
        }
        write!(f, ": expected {}, found {}", self.expected, self.found)
    }
}

impl Engine {
    /// The invocations in the data folder `dir` that the replay gate checks: every unfinished
    /// one, and those finished within `finished_within` of now, with their journals. Read
    /// without opening the file for writing; no process may have it open (check a copy made
    /// with `Engine::back_up` for a running server).
    pub async fn read_recorded(
        dir: impl AsRef<Path>,
        finished_within: Duration,
    ) -> Result<Vec<RecordedInvocation>, OpenError> {
        let since = SystemClock.now_ms().saturating_sub(millis(finished_within));
        on_data_file(dir.as_ref().to_owned(), move |dir| {
            Ok(crate::store::read_recorded(dir, since)?
                .into_iter()
                .map(|(id, record, journal)| RecordedInvocation::new(id, record, journal))
                .collect())
        })
        .await
    }
}

impl EngineBuilder {
    /// Replays `recorded` against the handlers registered on this builder (the build about to
    /// be deployed), without side effects: see the [module docs](crate::replay_check). Opens
    /// nothing; fails only if two definitions share a name.
    pub async fn check_replay(
        mut self,
        recorded: &[RecordedInvocation],
    ) -> Result<ReplayReport, OpenError> {
        let registry = self.registry()?;
        let mut report = ReplayReport::default();
        for invocation in recorded {
            report.checked += 1;
            let finding = |entry, expected: String, found: String| Incompatibility {
                invocation: invocation.id,
                target: invocation.target.clone(),
                status: invocation.status.clone(),
                entry,
                expected,
                found,
            };
            let handler = match registry.handler(&invocation.target) {
                Ok(handler) => handler,
                Err(error) => {
                    report.incompatible.push(finding(
                        None,
                        format!("a handler for {}", invocation.target),
                        format!("none in this build ({error})"),
                    ));
                    continue;
                }
            };
            let replayer = Arc::new(Replayer::new(invocation));
            let running = handler(replayer.clone(), invocation.input.clone());
            let ended = tokio::select! {
                result = running => Ended::Finished(result.map(drop).map_err(|e| e.to_string())),
                () = replayer.stopped.notified() => Ended::Stopped,
                () = sleep_for(&SystemClock, REPLAY_LIMIT) => Ended::TimedOut,
            };
            if let Some(found) = replayer.verdict(ended, invocation.finished) {
                report.incompatible.push(finding(found.0, found.1, found.2));
            }
        }
        Ok(report)
    }
}

/// How a replayed handler stopped.
enum Ended {
    /// It returned (its error, if it failed).
    Finished(Result<(), String>),
    /// The replayer stopped it: the end of the journal, or a mismatch.
    Stopped,
    /// It took longer than [`REPLAY_LIMIT`].
    TimedOut,
}

/// Where the replay ended.
#[derive(Debug)]
enum Stop {
    /// The code went past what is recorded: it would go on live from here.
    Reached,
    /// The code issued another operation than the journal holds.
    Mismatch {
        index: u32,
        recorded: String,
        issued: String,
    },
}

/// The side-effect-free backend: answers every operation from the journal.
struct Replayer {
    id: u64,
    key: Option<String>,
    inner: Mutex<Replaying>,
    stopped: Notify,
}

struct Replaying {
    replay: Replay,
    /// The completions of the entries replayed so far, by index (`None`: not arrived).
    completions: HashMap<u32, Option<Completion>>,
    stop: Option<Stop>,
}

/// The token of a handle whose operation could not be replayed.
const STOPPED: u64 = u32::MAX as u64;

impl Replayer {
    fn new(invocation: &RecordedInvocation) -> Self {
        Self {
            id: invocation.id.0,
            key: invocation.target.key.clone(),
            inner: Mutex::new(Replaying {
                replay: Replay::new(invocation.journal.iter().cloned()),
                completions: HashMap::new(),
                stop: None,
            }),
            stopped: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Replaying> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records where the replay ended (the first stop wins) and wakes the gate.
    fn stop(&self, stop: Stop) {
        self.lock().stop.get_or_insert(stop);
        self.stopped.notify_one();
    }

    /// The recorded entry for `op`, or `None` after stopping the replay.
    fn issue(&self, op: &Op) -> Option<(u32, Entry)> {
        let step = {
            let mut inner = self.lock();
            let step = inner.replay.issue(op);
            if let Step::Replayed(index, entry) = &step {
                inner.completions.insert(*index, entry.completion.clone());
            }
            step
        };
        match step {
            Step::Replayed(index, entry) => Some((index, entry)),
            Step::Live(_) => {
                self.stop(Stop::Reached);
                None
            }
            Step::Mismatch {
                index,
                recorded,
                issued,
            } => {
                self.stop(Stop::Mismatch {
                    index,
                    recorded,
                    issued,
                });
                None
            }
        }
    }

    /// The recorded result of `op`; stops (and never returns) if there is none to give.
    async fn result(&self, op: Op) -> Outcome {
        match self.issue(&op) {
            Some((
                _,
                Entry {
                    completion: Some(completion),
                    ..
                },
            )) => outcome(Some(completion), &op.describe()),
            Some(_) => {
                // Recorded, but its result had not arrived: the invocation waits here.
                self.stop(Stop::Reached);
                std::future::pending().await
            }
            None => std::future::pending().await,
        }
    }

    /// The recorded value of a read that may find nothing (a state key, a promise peeked).
    async fn optional(&self, op: Op) -> Result<Option<Vec<u8>>, TerminalError> {
        match self.issue(&op) {
            Some((_, entry)) => match entry.completion {
                Some(Completion::Empty) => Ok(None),
                other => outcome(other, &op.describe()).map(Some),
            },
            None => std::future::pending().await,
        }
    }

    /// A durable future's handle: its recorded result if it arrived.
    fn handle(&self, op: &Op) -> (Option<Entry>, Handle) {
        match self.issue(op) {
            Some((index, entry)) => {
                let handle = replayed_handle(index, &entry);
                (Some(entry), handle)
            }
            None => (None, Handle::pending(STOPPED)),
        }
    }

    /// Why the invocation does not replay, if it does not: (entry, expected, found).
    fn verdict(&self, ended: Ended, finished: bool) -> Option<(Option<u32>, String, String)> {
        let inner = self.lock();
        match (ended, &inner.stop) {
            (
                _,
                Some(Stop::Mismatch {
                    index,
                    recorded,
                    issued,
                }),
            ) => Some((Some(*index), recorded.clone(), issued.clone())),
            (Ended::Stopped, _) | (_, Some(Stop::Reached)) => None,
            (Ended::TimedOut, None) => Some((
                Some(inner.replay.next_index()),
                "the next operation".to_owned(),
                format!("nothing within {REPLAY_LIMIT:?}"),
            )),
            (Ended::Finished(result), None) => {
                if let Some((index, entry)) = inner.replay.next_recorded() {
                    let ended = match result {
                        Ok(()) => "the handler returns".to_owned(),
                        Err(error) => format!("the handler fails: {error}"),
                    };
                    return Some((Some(index), entry.op.describe(), ended));
                }
                match result {
                    // A recorded value that no longer decodes, say; a finished invocation
                    // that failed the same way is not a change.
                    Err(error) if !finished => Some((
                        None,
                        "the journal's values to be read".to_owned(),
                        format!("the handler fails: {error}"),
                    )),
                    _ => None,
                }
            }
        }
    }
}

impl Backend for Replayer {
    fn invocation_id(&self) -> String {
        InvocationId(self.id).to_string()
    }

    fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn is_replaying(&self) -> bool {
        true
    }

    fn run(
        self: Arc<Self>,
        name: String,
        _policy: RetryPolicy,
        _action: RunAction,
    ) -> BoxFuture<Outcome> {
        Box::pin(async move { self.result(Op::Run { name }).await })
    }

    fn get_state(
        self: Arc<Self>,
        key: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>> {
        Box::pin(async move { self.optional(Op::GetState { key }).await })
    }

    fn state_keys(self: Arc<Self>) -> BoxFuture<Result<Vec<String>, TerminalError>> {
        Box::pin(async move {
            let bytes = self.result(Op::GetStateKeys).await?;
            crate::context::decode_value(Ok(bytes), "state keys")
        })
    }

    fn set_state(&self, key: &str, value: Option<Vec<u8>>) {
        let key = key.to_owned();
        let op = match value {
            Some(_) => Op::SetState { key },
            None => Op::ClearState { key },
        };
        self.issue(&op);
    }

    fn clear_all_state(&self) {
        self.issue(&Op::ClearAllState);
    }

    fn call(self: Arc<Self>, target: Target, _input: Vec<u8>) -> BoxFuture<Outcome> {
        Box::pin(async move { self.result(Op::Call { target, callee: 0 }).await })
    }

    fn send(
        self: Arc<Self>,
        target: Target,
        _input: Vec<u8>,
        _delay: Option<Duration>,
    ) -> BoxFuture<Result<String, TerminalError>> {
        Box::pin(async move {
            match self.issue(&Op::Send { target, callee: 0 }) {
                Some((
                    _,
                    Entry {
                        op: Op::Send { callee, .. },
                        ..
                    },
                )) => Ok(InvocationId(callee).to_string()),
                _ => std::future::pending().await,
            }
        })
    }

    fn sleep(self: Arc<Self>, _duration: Duration) -> Handle {
        self.handle(&Op::Sleep { wake_at_ms: 0 }).1
    }

    fn sleep_until(self: Arc<Self>, _deadline: SystemTime) -> Handle {
        self.handle(&Op::Sleep { wake_at_ms: 0 }).1
    }

    fn awakeable(self: Arc<Self>) -> (String, Handle) {
        let (entry, handle) = self.handle(&Op::Awakeable { secret: 0 });
        let secret = match entry.map(|e| e.op) {
            Some(Op::Awakeable { secret }) => secret,
            _ => 0,
        };
        let index = u32::try_from(handle.token).unwrap_or(u32::MAX);
        (awakeable_id(self.id, index, secret), handle)
    }

    fn complete_awakeable(
        self: Arc<Self>,
        id: String,
        _outcome: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>> {
        Box::pin(async move { self.result(Op::CompleteAwakeable { id }).await.map(drop) })
    }

    fn promise(self: Arc<Self>, name: String) -> Handle {
        self.handle(&Op::GetPromise { name }).1
    }

    fn peek_promise(
        self: Arc<Self>,
        name: String,
    ) -> BoxFuture<Result<Option<Vec<u8>>, TerminalError>> {
        Box::pin(async move { self.optional(Op::PeekPromise { name }).await })
    }

    fn complete_promise(
        self: Arc<Self>,
        name: String,
        _outcome: Outcome,
    ) -> BoxFuture<Result<(), TerminalError>> {
        Box::pin(async move { self.result(Op::CompletePromise { name }).await.map(drop) })
    }

    fn await_handle(self: Arc<Self>, token: u64) -> BoxFuture<Outcome> {
        Box::pin(async move {
            let index = u32::try_from(token).unwrap_or(u32::MAX);
            let recorded = self.lock().completions.get(&index).cloned().flatten();
            match recorded {
                Some(completion) => outcome(Some(completion), "a durable future's result"),
                None => {
                    if token != STOPPED {
                        // The journal waits here: so would the invocation.
                        self.stop(Stop::Reached);
                    }
                    std::future::pending().await
                }
            }
        })
    }

    fn select(
        self: Arc<Self>,
        handles: Vec<(u64, bool)>,
    ) -> BoxFuture<Result<usize, TerminalError>> {
        Box::pin(async move {
            let Some(of) = handles
                .iter()
                .map(|&(token, _)| u32::try_from(token).ok().filter(|&i| i != u32::MAX))
                .collect::<Option<Vec<u32>>>()
            else {
                return std::future::pending().await;
            };
            let bytes = self.result(Op::Select { of }).await?;
            crate::context::decode_value(Ok(bytes), "the winner of a select")
        })
    }

    fn rand_u64(self: Arc<Self>) -> BoxFuture<Result<u64, TerminalError>> {
        Box::pin(async move {
            let bytes = self.result(Op::Rand).await?;
            crate::context::decode_value(Ok(bytes), "rand")
        })
    }

    fn uuid(self: Arc<Self>) -> BoxFuture<Result<uuid::Uuid, TerminalError>> {
        Box::pin(async move {
            let bytes = self.result(Op::Uuid).await?;
            crate::context::decode_value(Ok(bytes), "uuid")
        })
    }

    fn now(self: Arc<Self>) -> BoxFuture<Result<SystemTime, TerminalError>> {
        Box::pin(async move {
            let bytes = self.result(Op::Now).await?;
            let ms: u64 = crate::context::decode_value(Ok(bytes), "now")?;
            Ok(crate::clock::to_system_time(ms))
        })
    }

    fn patched(self: Arc<Self>, name: String) -> BoxFuture<Result<bool, TerminalError>> {
        Box::pin(async move {
            let decision = self.lock().replay.issue_patch(&Op::Patch { name });
            match decision {
                Patch::Replayed(_) => Ok(true),
                Patch::Absent => Ok(false),
                Patch::Live(_) => {
                    self.stop(Stop::Reached);
                    std::future::pending().await
                }
            }
        })
    }
}
