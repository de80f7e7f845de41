//! The crash-point checker: an invocation run once for its journal, then from scratch once per
//! entry, crashed before that entry (or the outcome) is committed, and compared.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::{Outcome, RawOutcome, START_MS, Settle, Setup, TestEngine, json_value, real_now};
use crate::error::{CallError, OpenError, TerminalError};
use crate::handler::{Answers, Callee};
use crate::ids::Target;
use crate::payload::{Decode, Encode};
use crate::runtime::clocks::ManualClock;
use crate::store::command::{Command, CrashHook};
use crate::{JournalEntryInfo, SendOptions};

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
pub struct CrashReport<O> {
    /// The invocation's result, the same in every run.
    pub outcome: Result<O, TerminalError>,
    /// Its journal in the reference run, the same in every run.
    pub journal: Vec<Step>,
    /// The runs with a crash: one before each journal entry was committed, and one before the
    /// outcome was.
    pub crash_points: u32,
    /// `run` steps whose closure executed, was lost to a crash before its result was
    /// journaled, and executed again after recovery: these must be idempotent. One element per
    /// crash point where it happened: the number of the entry that was not committed, and the
    /// step's name.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// The first run, without a crash.
    Reference,
    /// A run that crashed just before the invocation's journal entry number `entry` (counted
    /// from 0) was committed: entries `0..entry` were committed, `entry` was not. When `entry`
    /// is the journal's length, every entry was committed and the crash came before the
    /// outcome was.
    CrashedBefore {
        /// The first entry not committed.
        entry: u32,
        /// That entry as the reference run journaled it (`run "charge"`), or `None` for the
        /// outcome.
        step: Option<String>,
    },
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Run::Reference => write!(f, "reference run"),
            Run::CrashedBefore {
                entry,
                step: Some(step),
            } => write!(
                f,
                "run crashed before journal entry {entry} ({step}) was committed \
                 ({entry} entries were)"
            ),
            Run::CrashedBefore { entry, step: None } => write!(
                f,
                "run crashed after all {entry} journal entries were committed, before the \
                 outcome was"
            ),
        }
    }
}

/// Makes the setup of one run.
type MakeSetup<S> = Box<
    dyn Fn(ManualClock) -> Pin<Box<dyn Future<Output = Result<S, String>> + Send>> + Send + Sync,
>;

/// The crash-point checker: see the [module docs](crate::testing).
pub struct CrashPoints<S: Setup> {
    make_setup: MakeSetup<S>,
    timeout: Duration,
}

impl<S: Setup> CrashPoints<S> {
    /// A checker that calls `make` for a fresh setup for every run from scratch, so that
    /// nothing a run did (a counter in an `Arc`, rows in a fake database) leaks into the next.
    /// After a crash the run goes on with the same setup, as a restarted process finds the
    /// same world.
    pub fn new(make: impl Fn() -> S + Send + Sync + 'static) -> Self {
        Self::with_setup(move |_| {
            let setup = make();
            async move { Ok::<S, std::convert::Infallible>(setup) }
        })
    }

    /// Like [`new`](CrashPoints::new), for a setup that is made asynchronously (a new database
    /// for the handlers to write to) and may fail.
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

    /// Runs the check for one invocation of `target` (a typed reference, or a `Target`) with
    /// `input`.
    pub async fn check<I, O>(
        &self,
        target: impl Callee<I> + Answers<O>,
        input: &I,
    ) -> Result<CrashReport<O>, CrashPointError>
    where
        I: Encode + ?Sized,
        O: Decode,
    {
        self.check_with(
            target,
            input,
            async |_: &TestEngine<S>, _: &Result<O, TerminalError>| Ok::<(), String>(()),
        )
        .await
    }

    /// Like [`check`](CrashPoints::check), and calls `verify` after every run with the engine
    /// (still open, its setup reachable through [`TestEngine::setup`]) and the run's outcome: the
    /// place to check what the handlers did outside the engine — one payment, one shipment.
    /// Its error (any type that displays) fails the check, naming the run.
    pub async fn check_with<I, O, E>(
        &self,
        target: impl Callee<I> + Answers<O>,
        input: &I,
        verify: impl AsyncFn(&TestEngine<S>, &Result<O, TerminalError>) -> Result<(), E>,
    ) -> Result<CrashReport<O>, CrashPointError>
    where
        I: Encode + ?Sized,
        O: Decode,
        E: fmt::Display,
    {
        let target = target.into_target();
        let input = input.encode().map_err(CallError::Codec)?;
        let (outcome, journal) = self
            .run(&target, &input, None, &verify)
            .await?
            .ok_or(CrashPointError::Setup("the reference run crashed".into()))?;
        let reference = json_outcome(&outcome);
        let entries = u32::try_from(journal.len()).unwrap_or(u32::MAX);
        let mut repeated_steps = Vec::new();
        for entry in 0..=entries {
            let step = journal.get(entry as usize);
            let run = Run::CrashedBefore {
                entry,
                step: step.map(Step::to_string),
            };
            let Some((crashed_outcome, crashed_journal)) = self
                .run(&target, &input, Some((entry, run.clone())), &verify)
                .await?
            else {
                continue;
            };
            let crashed = json_outcome(&crashed_outcome);
            if crashed != reference {
                return Err(CrashPointError::Diverged {
                    run,
                    difference: format!(
                        "the result is {} instead of {}",
                        show(&crashed),
                        show(&reference)
                    ),
                });
            }
            if let Some(difference) = journal_difference(&journal, &crashed_journal) {
                return Err(CrashPointError::Diverged { run, difference });
            }
            if let Some(step) = step.filter(|step| step.kind == "run") {
                repeated_steps.push((entry, step.name.clone().unwrap_or_default()));
            }
        }
        Ok(CrashReport {
            outcome: typed(outcome)?,
            journal,
            crash_points: entries + 1,
            repeated_steps,
        })
    }

    /// One run from scratch; with `crash`, crashed once just before the invocation's entry
    /// number `crash.0` (or its outcome) was committed.
    async fn run<O: Decode, E: fmt::Display>(
        &self,
        target: &Target,
        input: &[u8],
        crash: Option<(u32, Run)>,
        verify: &impl AsyncFn(&TestEngine<S>, &Result<O, TerminalError>) -> Result<(), E>,
    ) -> Result<Option<(RawOutcome, Vec<Step>)>, CrashPointError> {
        let (crash_before, run) = match crash {
            Some((entry, run)) => (Some(entry), run),
            None => (None, Run::Reference),
        };
        let clock = ManualClock::new(START_MS);
        let setup = (self.make_setup)(clock.clone())
            .await
            .map_err(CrashPointError::Setup)?;
        let crashed = Arc::new(AtomicBool::new(false));
        let hook = crash_before.map(|entry| crash_hook(target.clone(), entry, crashed.clone()));
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
        let stuck = |run: &Run| CrashPointError::Stuck {
            run: run.clone(),
            waited: self.timeout,
        };
        let settled = |settled: Result<Option<RawOutcome>, Settle>| match settled {
            Ok(outcome) => Ok(outcome),
            Err(Settle::Call(error)) => Err(CrashPointError::Call(error)),
            Err(Settle::Stuck) => Err(stuck(&run)),
            Err(Settle::Setup(message)) => Err(CrashPointError::Setup(message)),
        };
        let mut outcome = settled(test.settle(id, deadline, &crashed).await)?;
        if outcome.is_none() {
            test.crash().await?;
            let never = AtomicBool::new(false);
            outcome = settled(test.settle(id, deadline, &never).await)?;
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
        let typed_outcome = typed::<O>(outcome.clone())?;
        if let Err(error) = verify(&test, &typed_outcome).await {
            return Err(CrashPointError::Check {
                run,
                message: error.to_string(),
            });
        }
        test.shutdown().await;
        Ok(Some((outcome, journal)))
    }
}

/// The outcome as the checker compares it across runs: JSON, so that two encodings of one
/// value agree.
fn json_outcome(outcome: &RawOutcome) -> Outcome {
    match outcome {
        Ok(bytes) => Ok(json_value(bytes)),
        Err(error) => Err(error.clone()),
    }
}

/// The outcome as the handler's output type.
fn typed<O: Decode>(outcome: RawOutcome) -> Result<Result<O, TerminalError>, CrashPointError> {
    match outcome {
        Ok(bytes) => Ok(Ok(O::decode(&bytes).map_err(CallError::Codec)?)),
        Err(error) => Ok(Err(error)),
    }
}

/// Halts the writer before the invocation of `target` writes its entry number `after` (counted
/// from 0), or its outcome when it has only `after` entries.
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
