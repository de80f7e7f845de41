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
//! const GREET: ServiceHandler<String, String> = ServiceHandler::new("Greeter", "greet");
//!
//! // A fresh setup for every run: here, only what to register.
//! let report = CrashPoints::new(|| {
//!     |builder: EngineBuilder| builder.register(Service::new("Greeter").handler(GREET, greet))
//! })
//! .check(GREET, &"Ada".to_owned())
//! .await?;
//! // Two entries (the run step and the random number), so three crash points: before entry 0
//! // was committed, before entry 1 was, and before the outcome was.
//! assert_eq!(report.crash_points, 3);
//! assert!(report.outcome?.starts_with("Hello, Ada!"));
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::clock::Clock;
use crate::engine::{Engine, EngineBuilder};
use crate::error::{CallError, OpenError, TerminalError};
use crate::ids::InvocationId;
use crate::payload::Decode;
use crate::runtime::clocks::ManualClock;
use crate::store::command::CrashHook;

mod crash_points;

pub use crash_points::{CrashPointError, CrashPoints, CrashReport, Run, Step};

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

    /// Called whenever the engine is idle while a [`TestEngine::run_until_finished`] or a
    /// [`CrashPoints`] run waits for the invocation under test: the place to deliver input from
    /// outside that arrives *during* the invocation (approve an order, resolve an awakeable a
    /// handler created). Answer `true` if something was delivered; on `false`, the checker moves
    /// the clock to the next moment anything waits for (a timer, a backoff). An invocation
    /// that waits on input nobody delivers ends the run as stuck.
    fn when_idle(&self, client: &Client) -> impl Future<Output = Result<bool, String>> + Send {
        let _ = client;
        async { Ok(false) }
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
    ///
    /// While the engine is idle, [`Setup::when_idle`] may deliver outside input first.
    pub async fn run_until_finished<T: Decode>(
        &self,
        id: InvocationId,
        limit: Duration,
    ) -> Result<T, CallError> {
        let never = AtomicBool::new(false);
        match self.settle(id, real_now() + limit, &never).await {
            Ok(Some(outcome)) => {
                T::decode(&outcome.map_err(CallError::Failed)?).map_err(CallError::Codec)
            }
            Ok(None) | Err(Settle::Stuck) => Err(CallError::NotFinished(id.to_string())),
            Err(Settle::Call(error)) => Err(error),
            Err(Settle::Setup(message)) => Err(CallError::Failed(TerminalError::new(format!(
                "the setup's when_idle failed: {message}"
            )))),
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

    /// Waits for an invocation's outcome, letting the setup deliver outside input and then
    /// skipping the clock to the next deadline whenever the engine is idle. Returns `None` if
    /// `stop` says so first.
    async fn settle(
        &self,
        id: InvocationId,
        deadline: Instant,
        stop: &AtomicBool,
    ) -> Result<Option<RawOutcome>, Settle> {
        let inner = self.engine().inner();
        let client = self.client();
        let mut idle_once = false;
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            match client.output_raw(id) {
                Ok(Some(bytes)) => return Ok(Some(Ok(bytes))),
                Err(CallError::Failed(error)) => return Ok(Some(Err(error))),
                Ok(None) => {}
                Err(error) => return Err(Settle::Call(error)),
            }
            if real_now() >= deadline {
                return Err(Settle::Stuck);
            }
            let idle = inner.is_idle();
            if idle && idle_once {
                // Nothing more happens until outside input arrives or time moves.
                match self.deliver(&client, deadline, stop).await? {
                    None => return Ok(None),
                    Some(true) => {}
                    Some(false) => {
                        self.skip_to_next_deadline();
                    }
                }
                idle_once = false;
            } else {
                idle_once = idle;
            }
            pause().await;
        }
    }
}

impl<S: Setup> TestEngine<S> {
    /// Lets the setup deliver outside input ([`Setup::when_idle`]): whether it did; `None` if
    /// `stop` says so first — a crash while the input was on its way, which drops it, as a
    /// crashed server drops a request in flight (the setup delivers it again after recovery).
    async fn deliver(
        &self,
        client: &Client,
        deadline: Instant,
        stop: &AtomicBool,
    ) -> Result<Option<bool>, Settle> {
        let delivering = self.setup.when_idle(client);
        tokio::pin!(delivering);
        loop {
            tokio::select! {
                delivered = &mut delivering => return delivered.map(Some).map_err(Settle::Setup),
                () = pause() => {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(None);
                    }
                    if real_now() >= deadline {
                        return Err(Settle::Stuck);
                    }
                }
            }
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

/// A journal entry's result as the checker compares it: JSON (`null` for none), or a terminal
/// error.
pub type Outcome = Result<serde_json::Value, TerminalError>;

/// An invocation's output as stored (encoded), or its terminal error.
type RawOutcome = Result<Vec<u8>, TerminalError>;

enum Settle {
    Call(CallError),
    Stuck,
    Setup(String),
}

fn json_value(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into()))
    }
}
