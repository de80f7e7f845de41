//! The engine under load: a service handler with three `run` steps, called in-process.

use std::path::Path;

use zeroapp_engine::prelude::*;
use zeroapp_engine::{Context, WriterStatistics};

/// The service registered by the bench.
pub const SERVICE: &str = "Bench";
/// Its handler.
pub const HANDLER: &str = "three_steps";
/// `run` steps per invocation, hence journal entries per invocation.
pub const STEPS: u64 = 3;
/// Writer commands per invocation: create, one append per step, finish.
pub const COMMANDS_PER_INVOCATION: u64 = STEPS + 2;

/// The benchmarked handler: three `run` steps, each returning a small string.
pub async fn three_steps(ctx: Context, input: String) -> Result<String, HandlerError> {
    let a: String = ctx.run("a", || async { Ok("alpha".to_owned()) }).await?;
    let b: String = ctx.run("b", || async { Ok("bravo".to_owned()) }).await?;
    let c: String = ctx.run("c", || async { Ok("charlie".to_owned()) }).await?;
    Ok(format!("{input}:{a}-{b}-{c}"))
}

/// The output [`three_steps`] gives for `input`.
pub fn expected_output(input: &str) -> String {
    format!("{input}:alpha-bravo-charlie")
}

/// What one engine point measured.
#[derive(Debug, Clone)]
pub struct EnginePoint {
    /// Invocations (one `call` each) and their latencies.
    pub sample: crate::load::Sample,
    /// The writer's counters over the whole run, warm-up included.
    pub writer: WriterStatistics,
    /// Journal entries stored at the end: every invocation of the run has finished.
    pub journal_entries: u64,
}

impl EnginePoint {
    /// Writer commands per commit: the average group-commit batch.
    pub fn batch(&self) -> f64 {
        self.writer.commands as f64 / self.writer.commits.max(1) as f64
    }

    /// Writer commands per invocation, counted (expected: [`COMMANDS_PER_INVOCATION`]).
    pub fn commands_per_invocation(&self) -> f64 {
        self.writer.commands as f64 / self.sample.total.max(1) as f64
    }

    /// Journal entries per invocation, counted (expected: [`STEPS`]).
    pub fn entries_per_invocation(&self) -> f64 {
        self.journal_entries as f64 / self.sample.total.max(1) as f64
    }

    /// Average time the writer spent applying and committing one transaction.
    pub fn commit_time(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.writer.commit_micros / self.writer.commits.max(1))
    }
}

/// Opens a fresh engine in `dir` with [`three_steps`] registered as `SERVICE/HANDLER`.
pub async fn open_engine(dir: &Path) -> Result<Engine, String> {
    Engine::builder()
        .register(Service::new(SERVICE).handler(HANDLER, three_steps))
        .open(dir)
        .await
        .map_err(|e| format!("cannot open the engine: {e}"))
}

/// Reads the writer's counters and the journal of `engine` after a load that measured `sample`,
/// then shuts the engine down (also when the load failed).
pub async fn finish(
    engine: Engine,
    sample: Result<crate::load::Sample, String>,
) -> Result<EnginePoint, String> {
    let writer = engine.writer_statistics();
    let journal_entries = engine.journal_entries_stored();
    engine.shutdown().await;
    Ok(EnginePoint {
        sample: sample?,
        writer,
        journal_entries: journal_entries.map_err(|e| format!("cannot count entries: {e}"))?,
    })
}

/// Opens a fresh engine in `dir` and calls [`three_steps`] in-process (`Client::call`) from
/// `concurrency` tasks, each waiting for its result before the next call.
pub async fn engine_point(
    dir: &Path,
    concurrency: usize,
    window: crate::load::Window,
) -> Result<EnginePoint, String> {
    let engine = open_engine(dir).await?;
    let client = engine.client();
    let expected = expected_output("in");
    let sample = crate::load::closed_loop(concurrency, window, move || {
        let client = client.clone();
        let expected = expected.clone();
        async move {
            let output: String = client
                .call(Target::service(SERVICE, HANDLER), &"in")
                .await
                .map_err(|e| format!("call failed: {e}"))?;
            if output == expected {
                Ok(())
            } else {
                Err(format!("unexpected output {output:?}"))
            }
        }
    })
    .await;
    finish(engine, sample).await
}
