//! The code of docs/guide.md and README.md, compiled and partly run as written: every `rust`
//! block of either must appear verbatim in a file compiled here — a fragment under `tests/guide/` (a block
//! in braces whose inside the guide shows, or items) included below, or an example of
//! `examples/examples/` — so that no block of the guide can drift from the API. (The fragments
//! are not formatted by `cargo fmt`: they are the guide's text.)

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)]
// a test waits in real time for what it observes
// The fragments are excerpts: a value shown but not used, a function never called.
#![allow(dead_code, unused_variables, unreachable_code)]

use std::error::Error;
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::testing::TestEngine;
use zeroapp_engine::{Engine, EngineBuilder, ManualClock};

type TestResult = Result<(), Box<dyn Error>>;

/// The files the guide's blocks are taken from, each compiled by this test or as an example.
const SOURCES: &[(&str, &str)] = &[
    ("guide/start.rs", include_str!("guide/start.rs")),
    ("guide/state.rs", include_str!("guide/state.rs")),
    ("guide/terminal.rs", include_str!("guide/terminal.rs")),
    ("guide/run_with.rs", include_str!("guide/run_with.rs")),
    ("guide/timeout.rs", include_str!("guide/timeout.rs")),
    ("guide/awakeable.rs", include_str!("guide/awakeable.rs")),
    ("guide/select.rs", include_str!("guide/select.rs")),
    ("guide/saga.rs", include_str!("guide/saga.rs")),
    ("guide/config.rs", include_str!("guide/config.rs")),
    ("guide/ingress.rs", include_str!("guide/ingress.rs")),
    ("guide/patched.rs", include_str!("guide/patched.rs")),
    ("guide/gate.rs", include_str!("guide/gate.rs")),
    (
        "guide/virtual_clock.rs",
        include_str!("guide/virtual_clock.rs"),
    ),
    ("guide/readme.rs", include_str!("guide/readme.rs")),
    (
        "examples/testing.rs",
        include_str!("../../examples/examples/testing.rs"),
    ),
];

#[test]
fn every_rust_block_of_the_guide_is_compiled() {
    let guide = include_str!("../../docs/guide.md");
    let readme = include_str!("../../README.md");
    let mut blocks = 0;
    for block in [guide, readme]
        .into_iter()
        .flat_map(|text| text.split("```rust\n").skip(1))
    {
        let block = block.split("\n```").next().unwrap();
        blocks += 1;
        assert!(
            SOURCES.iter().any(|(_, source)| source.contains(block)),
            "this block of docs/guide.md or README.md is in no compiled file (add it to engine/tests/guide/ \
             and include it in engine/tests/guide.rs):\n{block}"
        );
    }
    assert!(blocks >= SOURCES.len(), "{blocks} rust blocks");
}

// §2: the program, and a handler with a dependency.
mod start {
    include!("guide/start.rs");
}

mod state {
    use zeroapp_engine::prelude::*;
    include!("guide/state.rs");

    pub fn with_an_outbox() -> Service {
        signup(Mailer {
            outbox: std::sync::Arc::default(),
        })
    }
}

// §4, §5, §6, §7, §9: fragments of handler bodies.
#[allow(clippy::needless_return)] // the guide shows the statement as a handler writes it
async fn terminal(ctx: Context, (): ()) -> Result<(), HandlerError> {
    include!("guide/terminal.rs")
}

async fn run_with(ctx: Context, (): ()) -> Result<(), HandlerError> {
    include!("guide/run_with.rs");
    Ok(())
}

async fn timeout(ctx: Context, (): ()) -> Result<(), HandlerError> {
    include!("guide/timeout.rs");
    Ok(())
}

async fn awakeable(ctx: Context, (): ()) -> Result<(), HandlerError> {
    include!("guide/awakeable.rs");
    Ok(())
}

async fn select(ctx: WorkflowContext, (): ()) -> Result<(), HandlerError> {
    include!("guide/select.rs");
    Ok(())
}

async fn saga(ctx: Context, (): ()) -> Result<(), HandlerError> {
    include!("guide/saga.rs");
    Ok(())
}

// README.md's block.
async fn readme() -> TestResult {
    include!("guide/readme.rs");
    Ok(())
}

// §11: configuration, and the ingress.
fn config() -> EngineBuilder {
    include!("guide/config.rs")
}

async fn ingress(engine: Engine) -> TestResult {
    include!("guide/ingress.rs");
    Ok(())
}

// §12: a version marker, and the replay gate.
mod versioning {
    use std::time::Duration;

    use zeroapp_engine::Engine;
    use zeroapp_engine::prelude::*;

    include!("guide/patched.rs");

    pub fn orders() -> Workflow {
        Workflow::new("Orders").run(fulfil)
    }

    async fn gate() -> Result<(), Box<dyn std::error::Error>> {
        include!("guide/gate.rs");
        Ok(())
    }
}

/// The fragments' handlers register, so their contexts are the ones the guide says.
#[tokio::test]
async fn the_fragments_register() -> TestResult {
    let dir = tempfile::tempdir()?;
    let engine = config()
        .clock(zeroapp_engine::SystemClock)
        .register(
            Service::new("Fragments")
                .handler("terminal", terminal)
                .handler("run_with", run_with)
                .handler("timeout", timeout)
                .handler("awakeable", awakeable)
                .handler("saga", saga),
        )
        .register(Workflow::new("Select").run(select))
        .register(versioning::orders())
        .register(state::with_an_outbox())
        .open(dir.path())
        .await?;
    let refused = engine
        .client()
        .call::<_, ()>(Target::service("Fragments", "terminal"), &())
        .await;
    assert!(refused.is_err());
    engine.shutdown().await;
    let _ = ManualClock::new(0);
    let _ = ingress;
    Ok(())
}

/// §13: `send`, `advance` five hours, `attach`: on the default test runtime (one thread), where
/// `send` returns before the handler has reached its sleep. Repeated, since a race shows only
/// sometimes.
#[tokio::test]
async fn section_13_virtual_clock() -> TestResult {
    let twenty_times = async {
        for _ in 0..20 {
            include!("guide/virtual_clock.rs");
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(60), twenty_times)
        .await
        .map_err(|_| "the guide's code hung: the timer never fired")?
}
