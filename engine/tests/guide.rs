//! The code of docs/guide.md, run as written: each fragment under `tests/guide/` is a block
//! whose inside the guide must show verbatim, and that block runs here. (The fragments are not
//! formatted by `cargo fmt`: they are the guide's text.)

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

use std::time::Duration;

use zeroapp_engine::EngineBuilder;
use zeroapp_engine::prelude::*;
use zeroapp_engine::testing::TestEngine;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Asserts that the guide shows `fragment`'s inside (the lines between its braces) verbatim.
fn shown_in_guide(fragment: &str) {
    let guide = include_str!("../../docs/guide.md");
    let lines: Vec<&str> = fragment.trim_end().lines().collect();
    let inside = lines[1..lines.len() - 1].join("\n");
    assert!(
        guide.contains(&format!("```rust\n{inside}\n```")),
        "docs/guide.md no longer shows this code as a block of its own:\n{inside}"
    );
}

/// §13: `send`, `advance` five hours, `attach`: on the default test runtime (one thread), where
/// `send` returns before the handler has reached its sleep. Repeated, since a race shows only
/// sometimes.
#[tokio::test]
async fn section_13_virtual_clock() -> TestResult {
    shown_in_guide(include_str!("guide/virtual_clock.rs"));
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
