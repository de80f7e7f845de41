//! Testing handler code (cargo feature `testing`): an engine on a temporary folder with a
//! virtual clock, and a crash-point checker.
//!
//! * [`TestEngine`] opens an engine in a fresh temporary folder with a [`ManualClock`]: a test
//!   that sleeps for an hour advances the clock instead of waiting, and
//!   [`TestEngine::crash`] simulates a crash in-process (nothing more is committed, the engine is
//!   dropped and reopened on the same folder, and recovery runs as after a real kill).
//! * [`CrashPoints`] runs an invocation once to learn its journal, then again from scratch
//!   once per journal entry, crashing right after that entry was committed and recovering. It
//!   fails if any run ends with another result or another journal (non-determinism: a branch
//!   on the wall clock, ambient randomness, a map's iteration order…) and lets the test check the
//!   outside world after every run (non-idempotent steps: a `run` closure whose effect happened
//!   but whose result was not yet journaled runs again after the crash).
//!
//! Randomness is seeded in both: [`ContextBase::rand_u64`](crate::ContextBase::rand_u64),
//! [`uuid`](crate::ContextBase::uuid) and awakeable ids are a function of the invocation and the
//! journal index, so a run from scratch draws the same numbers as the reference run.
//!
//! ```
//! use zeroapp_engine::prelude::*;
//! use zeroapp_engine::EngineBuilder;
//! use zeroapp_engine::testing::CrashPoints;
//!
//! async fn greet(ctx: Context, name: String) -> Result<String, HandlerError> {
//!     let greeting: String = ctx.run("greeting", || async { Ok("Hello".to_owned()) }).await?;
//!     let n = ctx.rand_u64().await? % 100;
//!     Ok(format!("{greeting}, {name}! (#{n})"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let report = CrashPoints::new(|builder: EngineBuilder| {
//!     builder.register(Service::new("Greeter").handler("greet", greet))
//! })
//! .check(Target::service("Greeter", "greet"), &"Ada")
//! .await?;
//! // Two entries (the run step and the random number), so three crash points: after 0, 1, 2.
//! assert_eq!(report.crash_points, 3);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::Client;
use crate::clock::Clock;
use crate::engine::{Engine, EngineBuilder};
use crate::error::{CallError, OpenError, TerminalError};
use crate::ids::{InvocationId, Target};
use crate::runtime::clocks::ManualClock;
use crate::store::command::{Command, CrashHook};
use crate::{JournalEntryInfo, SendOptions};

/// Where the virtual clock starts: 2026-01-01T00:00:00Z, in milliseconds since the epoch.
pub const START_MS: u64 = 1_767_225_600_000;

/// The seed of the engine's randomness in tests.
const SEED: u64 = 0x5eed_2e70_a99e_d00d;

/// What a test engine registers, and what it does once the engine is open (again, after each
/// crash). Closures `Fn(EngineBuilder) -> EngineBuilder` are setups; implement the trait for a
/// fixture that also owns outside resources (a database the handlers write to) and must attach
/// to the engine once it is open.
pub trait Setup: Send + Sync + 'static {
    /// Registers services, objects and workflows (and may change the configuration).
    fn register(&self, builder: EngineBuilder) -> EngineBuilder;

    /// Called each time the engine has been opened (again after each crash), before anything
    /// is submitted.
    fn opened(&self, engine: &Engine) {
        let _ = engine;
    }

    /// Called once per [`CrashPoints`] run, after the engine opened and before the invocation
    /// under test is submitted: the place to create what that invocation needs (a basket to
    /// check out, a row it reads). Crash points count only the invocation under test.
    fn prepare(&self, client: &Client) -> impl Future<Output = Result<(), String>> + Send {
        let _ = client;
        async { Ok(()) }
    }
}

impl<F> Setup for F
where
    F: Fn(EngineBuilder) -> EngineBuilder + Send + Sync + 'static,
{
    fn register(&self, builder: EngineBuilder) -> EngineBuilder {
        self(builder)
    }
}

/// An engine on a temporary folder, with a virtual clock and seeded randomness.
pub struct TestEngine<S: Setup> {
    setup: Arc<S>,
    clock: ManualClock,
    engine: Option<Engine>,
    // Declared last: dropped after the engine.
    dir: tempfile::TempDir,
}

impl<S: Setup> TestEngine<S> {
    /// Opens an engine in a fresh temporary folder (removed when the `TestEngine` is dropped).
    pub async fn start(setup: S) -> Result<Self, OpenError> {
        Self::start_with(setup, ManualClock::new(START_MS), None).await
    }

    async fn start_with(
        setup: S,
        clock: ManualClock,
        crash_hook: Option<CrashHook>,
    ) -> Result<Self, OpenError> {
        let dir = tempfile::tempdir().map_err(|source| OpenError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
        let mut engine = Self {
            setup: Arc::new(setup),
            clock,
            engine: None,
            dir,
        };
        engine.open(crash_hook).await?;
        Ok(engine)
    }

    async fn open(&mut self, crash_hook: Option<CrashHook>) -> Result<(), OpenError> {
        let mut builder = self
            .setup
            .register(Engine::builder())
            .clock(self.clock.clone());
        builder.random_seed = Some(SEED);
        builder.crash_hook = crash_hook;
        let engine = builder.open(self.dir.path()).await?;
        self.setup.opened(&engine);
        self.engine = Some(engine);
        Ok(())
    }

    /// The setup it was started with.
    pub fn setup(&self) -> &S {
        &self.setup
    }

    /// The engine. Panics only if a [`TestEngine::crash`] failed to reopen it.
    pub fn engine(&self) -> &Engine {
        match &self.engine {
            Some(engine) => engine,
            None => panic!("the test engine failed to reopen after a crash"),
        }
    }

    /// A client of the engine. Clients made before a [`crash`](TestEngine::crash) stop working.
    pub fn client(&self) -> Client {
        self.engine().client()
    }

    /// The virtual clock, showing [`START_MS`] at the start.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The data folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Moves the clock forward by `by`: first lets the engine run until it is idle (every
    /// invocation waits for a completion or for time, nothing is being committed), then moves
    /// the clock, then lets the engine run until it is idle again. So a handler just sent has
    /// reached its sleep before time moves, and every timer that came due has fired and its
    /// handler taken its next steps when this returns.
    pub async fn advance(&self, by: Duration) {
        self.idle().await;
        self.clock.advance(by);
        self.idle().await;
    }

    /// Lets the engine run until it is idle: nothing is being committed, no timer is due, and
    /// every invocation in memory waits — for a completion (a call, an awakeable, a promise, a
    /// timer still in the future) or for the clock (a retry's backoff) — rather than works.
    /// Gives up waiting after [`IDLE_LIMIT`] of real time (a `run` step that works in real
    /// time for longer, say), with a warning.
    pub async fn idle(&self) {
        if !self.wait_idle(real_now() + IDLE_LIMIT).await {
            tracing::warn!(limit = ?IDLE_LIMIT, "the test engine did not become idle");
        }
    }

    /// Waits until the engine is idle, twice in a row a moment apart; false if `deadline`
    /// passes first.
    async fn wait_idle(&self, deadline: Instant) -> bool {
        let inner = self.engine().inner();
        let mut idle_once = false;
        loop {
            let idle = inner.is_idle();
            if idle && idle_once {
                return true;
            }
            idle_once = idle;
            if real_now() >= deadline {
                return false;
            }
            pause().await;
        }
    }

    /// Moves the clock to the next moment anything waits for (a durable timer, a retry's
    /// backoff, an inactivity timeout); false if nothing waits for time.
    fn skip_to_next_deadline(&self) -> bool {
        let now = self.clock.now_ms();
        let timer = self.engine().inner().store.first_timer().ok().flatten();
        let next = [timer, self.clock.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(due) => {
                if due > now {
                    self.clock.advance(Duration::from_millis(due - now));
                }
                true
            }
            None => false,
        }
    }

    /// Runs the engine until invocation `id` has finished, and returns its output: whenever the
    /// engine is idle and the invocation has not finished, the clock skips to the next moment
    /// anything waits for, so a workflow that sleeps for a week or retries with long backoffs
    /// finishes at once. Fails with [`CallError::Failed`] if the invocation failed; gives up
    /// with [`CallError::NotFinished`] after `limit` of real time (while the invocation waits
    /// for input from outside, an awakeable or a promise nobody completes, say).
    pub async fn run_until_finished<T: serde::de::DeserializeOwned>(
        &self,
        id: InvocationId,
        limit: Duration,
    ) -> Result<T, CallError> {
        let never = AtomicBool::new(false);
        match self.settle(id, real_now() + limit, &never).await {
            Ok(Some(outcome)) => {
                let value = outcome.map_err(CallError::Failed)?;
                serde_json::from_value(value).map_err(|e| CallError::Codec(e.to_string()))
            }
            Ok(None) | Err(Settle::Stuck) => Err(CallError::NotFinished(id.to_string())),
            Err(Settle::Call(error)) => Err(error),
        }
    }

    /// Simulates a crash: nothing more is committed from this moment, the engine is dropped and
    /// opened again on the same folder, and every unfinished invocation recovers from its
    /// journal, as after a kill of the process.
    pub async fn crash(&mut self) -> Result<(), OpenError> {
        if let Some(engine) = self.engine.take() {
            engine.inner().store.halt();
            engine.shutdown().await;
        }
        self.open(None).await
    }

    /// Makes the storage layer fail at the next write, as a damaged file can: the engine's
    /// writer thread dies, every write fails from then on, and [`Engine::failure`] says why.
    pub fn fail_storage(&self) {
        self.engine().inner().store.fail_storage();
    }

    /// Stops the engine cleanly.
    pub async fn shutdown(mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
    }

    /// Waits for an invocation's outcome, skipping the clock to the next deadline whenever the
    /// engine is idle. Returns `None` if `stop` says so first.
    async fn settle(
        &self,
        id: InvocationId,
        deadline: Instant,
        stop: &AtomicBool,
    ) -> Result<Option<Outcome>, Settle> {
        let inner = self.engine().inner();
        let client = self.client();
        let mut idle_once = false;
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            match client.output_raw(id) {
                Ok(Some(bytes)) => return Ok(Some(Ok(json_value(&bytes)))),
                Err(CallError::Failed(error)) => return Ok(Some(Err(error))),
                Ok(None) => {}
                Err(error) => return Err(Settle::Call(error)),
            }
            if real_now() >= deadline {
                return Err(Settle::Stuck);
            }
            let idle = inner.is_idle();
            if idle && idle_once {
                // Nothing more happens until time moves (or outside input arrives).
                self.skip_to_next_deadline();
                idle_once = false;
            } else {
                idle_once = idle;
            }
            pause().await;
        }
    }
}

/// How long [`TestEngine::idle`] waits, in real time, for the engine to become idle.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Real time, for the test's own limits (how long a run may take), never the engine's.
#[allow(clippy::disallowed_methods)]
fn real_now() -> Instant {
    Instant::now()
}

/// A moment of real time for the engine's tasks and its writer thread to go on, between two
/// looks at the engine from a test.
async fn pause() {
    #[allow(clippy::disallowed_methods)] // the test's own pace, not the engine's time
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// An invocation's result: its output as JSON (`null` for none), or its terminal error.
pub type Outcome = Result<serde_json::Value, TerminalError>;

enum Settle {
    Call(CallError),
    Stuck,
}

fn json_value(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into()))
    }
}

/// A journal entry as the checker compares it: kind, name and result (not time or attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `run`, `get_state`, `call`, …
    pub kind: &'static str,
    /// The step name, state key or target.
    pub name: Option<String>,
    /// Its result: JSON (`null` for no value) or a terminal error; `None` if it never completed.
    pub result: Option<Outcome>,
}

impl From<JournalEntryInfo> for Step {
    fn from(entry: JournalEntryInfo) -> Self {
        Self {
            kind: entry.kind,
            name: entry.name,
            result: entry.result.map(|r| r.map(|bytes| json_value(&bytes))),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        match &self.result {
            Some(Ok(value)) => write!(f, " = {value}"),
            Some(Err(error)) => write!(f, " = error {error}"),
            None => write!(f, " (pending)"),
        }
    }
}

/// What a crash-point check found when every run agreed.
#[derive(Debug, Clone)]
pub struct CrashReport {
    /// The invocation's result, the same in every run.
    pub outcome: Outcome,
    /// Its journal in the reference run, the same in every run.
    pub journal: Vec<Step>,
    /// The runs with a crash: one after each journal entry, and one before the first.
    pub crash_points: u32,
    /// `run` steps whose closure executed, was lost to a crash before its result was
    /// journaled, and executed again after recovery: these must be idempotent. One element per
    /// crash point where it happened, with the step's name.
    pub repeated_steps: Vec<(u32, String)>,
}

/// Why a crash-point check failed.
#[derive(Debug, thiserror::Error)]
pub enum CrashPointError {
    /// The engine could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Building the outside world for a run failed.
    #[error("setting up a run failed: {0}")]
    Setup(String),
    /// Submitting or reading the invocation failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The invocation did not finish in time.
    #[error("{run}: the invocation did not finish within {waited:?}")]
    Stuck {
        /// Which run.
        run: Run,
        /// How long the checker waited.
        waited: Duration,
    },
    /// A run ended differently from the reference run.
    #[error("{run}: {difference}")]
    Diverged {
        /// Which run.
        run: Run,
        /// What differs, both sides shown.
        difference: String,
    },
    /// The test's own check of the outside world failed after a run.
    #[error("{run}: {message}")]
    Check {
        /// Which run.
        run: Run,
        /// The check's message.
        message: String,
    },
}

/// One run of a crash-point check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// The first run, without a crash.
    Reference,
    /// A run crashed after this many of the invocation's journal entries were committed.
    CrashedAfter(u32),
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Run::Reference => write!(f, "reference run"),
            Run::CrashedAfter(n) => write!(f, "run crashed after journal entry {n}"),
        }
    }
}

/// Makes the setup of one run.
type MakeSetup<S> = Box<
    dyn Fn(ManualClock) -> Pin<Box<dyn Future<Output = Result<S, String>> + Send>> + Send + Sync,
>;

/// The crash-point checker: see the [module docs](self).
pub struct CrashPoints<S: Setup> {
    make_setup: MakeSetup<S>,
    timeout: Duration,
}

impl<S: Setup + Clone> CrashPoints<S> {
    /// A checker whose runs all use (clones of) `setup`: for handlers with no outside state.
    pub fn new(setup: S) -> Self {
        Self::with_setup(move |_| {
            let setup = setup.clone();
            async move { Ok::<S, std::convert::Infallible>(setup) }
        })
    }
}

impl<S: Setup> CrashPoints<S> {
    /// A checker that makes a fresh setup for every run from scratch — a new database for the
    /// handlers to write to, say — so that each run starts from the same outside world. After a
    /// crash the run goes on with the same setup, as a restarted process finds the same world.
    ///
    /// `make` gets the run's virtual clock: the outside world should take its time from it
    /// (timestamps it writes inside `run` steps), so that every run writes the same values.
    pub fn with_setup<F, Fut, E>(make: F) -> Self
    where
        F: Fn(ManualClock) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
        E: fmt::Display,
    {
        Self {
            make_setup: Box::new(move |clock| {
                let made = make(clock);
                Box::pin(async move { made.await.map_err(|e| e.to_string()) })
            }),
            timeout: Duration::from_secs(30),
        }
    }

    /// How long one run may take (30 s by default).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the check for one invocation of `target` with `input`.
    pub async fn check<I: Serialize>(
        &self,
        target: Target,
        input: &I,
    ) -> Result<CrashReport, CrashPointError> {
        self.check_with(target, input, async |_: &TestEngine<S>, _: &Outcome| {
            Ok::<(), String>(())
        })
        .await
    }

    /// Like [`check`](CrashPoints::check), and calls `verify` after every run with the engine
    /// (still open, its setup reachable through [`TestEngine::setup`]) and the run's outcome: the
    /// place to check what the handlers did outside the engine — one payment, one shipment.
    pub async fn check_with<I: Serialize>(
        &self,
        target: Target,
        input: &I,
        verify: impl AsyncFn(&TestEngine<S>, &Outcome) -> Result<(), String>,
    ) -> Result<CrashReport, CrashPointError> {
        let input = serde_json::to_vec(input).map_err(|e| CallError::Codec(e.to_string()))?;
        let (outcome, journal) = self
            .run(&target, &input, None, &verify)
            .await?
            .ok_or(CrashPointError::Setup("the reference run crashed".into()))?;
        let entries = u32::try_from(journal.len()).unwrap_or(u32::MAX);
        let mut repeated_steps = Vec::new();
        for after in 0..=entries {
            let run = Run::CrashedAfter(after);
            let Some((crashed_outcome, crashed_journal)) =
                self.run(&target, &input, Some(after), &verify).await?
            else {
                continue;
            };
            if crashed_outcome != outcome {
                return Err(CrashPointError::Diverged {
                    run,
                    difference: format!(
                        "the result is {} instead of {}",
                        show(&crashed_outcome),
                        show(&outcome)
                    ),
                });
            }
            if let Some(difference) = journal_difference(&journal, &crashed_journal) {
                return Err(CrashPointError::Diverged { run, difference });
            }
            if let Some(step) = journal.get(after as usize) {
                if step.kind == "run" {
                    repeated_steps.push((after, step.name.clone().unwrap_or_default()));
                }
            }
        }
        Ok(CrashReport {
            outcome,
            journal,
            crash_points: entries + 1,
            repeated_steps,
        })
    }

    /// One run from scratch; with `crash_after`, crashed once right after that many of the
    /// invocation's entries were committed (before its next entry or its outcome).
    async fn run(
        &self,
        target: &Target,
        input: &[u8],
        crash_after: Option<u32>,
        verify: &impl AsyncFn(&TestEngine<S>, &Outcome) -> Result<(), String>,
    ) -> Result<Option<(Outcome, Vec<Step>)>, CrashPointError> {
        let run = crash_after.map_or(Run::Reference, Run::CrashedAfter);
        let clock = ManualClock::new(START_MS);
        let setup = (self.make_setup)(clock.clone())
            .await
            .map_err(CrashPointError::Setup)?;
        let crashed = Arc::new(AtomicBool::new(false));
        let hook = crash_after.map(|after| crash_hook(target.clone(), after, crashed.clone()));
        let mut test = TestEngine::start_with(setup, clock, hook).await?;
        test.setup()
            .prepare(&test.client())
            .await
            .map_err(CrashPointError::Setup)?;
        let id = test
            .client()
            .submit_raw(target.clone(), input.to_vec(), SendOptions::default())
            .await?
            .id;
        let deadline = real_now() + self.timeout;
        let stuck = |waited| CrashPointError::Stuck { run, waited };
        let mut outcome = match test.settle(id, deadline, &crashed).await {
            Ok(outcome) => outcome,
            Err(Settle::Call(error)) => return Err(error.into()),
            Err(Settle::Stuck) => return Err(stuck(self.timeout)),
        };
        if outcome.is_none() {
            test.crash().await?;
            let never = AtomicBool::new(false);
            outcome = match test.settle(id, deadline, &never).await {
                Ok(outcome) => outcome,
                Err(Settle::Call(error)) => return Err(error.into()),
                Err(Settle::Stuck) => return Err(stuck(self.timeout)),
            };
        }
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        let journal: Vec<Step> = test
            .client()
            .journal(id)
            .map_err(CallError::from)?
            .unwrap_or_default()
            .into_iter()
            .map(Step::from)
            .collect();
        verify(&test, &outcome)
            .await
            .map_err(|message| CrashPointError::Check { run, message })?;
        test.shutdown().await;
        Ok(Some((outcome, journal)))
    }
}

/// Halts the writer before the invocation of `target` writes its entry number `after + 1` (or
/// its outcome, when it has only `after` entries).
fn crash_hook(target: Target, after: u32, fired: Arc<AtomicBool>) -> CrashHook {
    // 0 = not created yet; ids start at 1.
    let id = AtomicU64::new(0);
    let written = AtomicU32::new(0);
    Arc::new(move |command: &Command| {
        if fired.load(Ordering::SeqCst) {
            return false;
        }
        let mine = id.load(Ordering::SeqCst);
        let halt = match command {
            Command::Create(new) if mine == 0 && new.target == target => {
                id.store(new.id, Ordering::SeqCst);
                false
            }
            Command::Finish { inv, .. } if mine != 0 && *inv == mine => {
                written.load(Ordering::SeqCst) == after
            }
            other => match other.journal_entry() {
                Some((inv, _)) if mine != 0 && inv == mine => {
                    written.load(Ordering::SeqCst) == after || {
                        written.fetch_add(1, Ordering::SeqCst);
                        false
                    }
                }
                _ => false,
            },
        };
        if halt {
            fired.store(true, Ordering::SeqCst);
        }
        halt
    })
}

fn show(outcome: &Outcome) -> String {
    match outcome {
        Ok(value) => value.to_string(),
        Err(error) => format!("error {error}"),
    }
}

/// The first difference between two journals, described.
fn journal_difference(expected: &[Step], found: &[Step]) -> Option<String> {
    for (index, (a, b)) in expected.iter().zip(found).enumerate() {
        if a != b {
            return Some(format!(
                "journal entry {index} is `{b}` instead of `{a}` (replayed code took another \
                 path, or a step returned another value when executed again)"
            ));
        }
    }
    (expected.len() != found.len()).then(|| {
        format!(
            "the journal has {} entries instead of {}",
            found.len(),
            expected.len()
        )
    })
}
