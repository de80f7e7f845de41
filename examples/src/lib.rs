//! Examples of `zeroapp-engine` used as a library, one file per idea under `examples/`; run one
//! with `cargo run --example NAME` from the repository root. Each also runs as a test in
//! `cargo test`, checking what it printed, and each is compiled again below as a doctest, so the
//! code shown here is the code that runs.
//!
//! The only thing they share is [`Log`], which prints each line and keeps it for the tests.
//!
//! # greeter — a service with a durable `run` step
#![doc = concat!("```no_run\n", include_str!("../examples/greeter.rs"), "```")]
//!
//! # counter — a virtual object with K/V state, across a restart
#![doc = concat!("```no_run\n", include_str!("../examples/counter.rs"), "```")]
//!
//! # saga — trip booking with compensations in reverse order
#![doc = concat!("```no_run\n", include_str!("../examples/saga.rs"), "```")]
//!
//! # approval — a workflow racing a durable promise against a deadline
#![doc = concat!("```no_run\n", include_str!("../examples/approval.rs"), "```")]
//!
//! # reminders — durable timers and delayed sends
#![doc = concat!("```no_run\n", include_str!("../examples/reminders.rs"), "```")]
//!
//! # awakeable_http — an awakeable completed by an HTTP call to the ingress
#![doc = concat!("```no_run\n", include_str!("../examples/awakeable_http.rs"), "```")]

use std::sync::{Arc, Mutex, PoisonError};

/// Prints lines as they happen and keeps them, so each example's test can check the story.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Prints `line` and records it.
    pub fn say(&self, line: impl Into<String>) {
        let line = line.into();
        println!("{line}");
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// Every line said so far.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Panics, naming the line and everything said, unless each of `expected` was said.
    pub fn assert_said(&self, expected: &[&str]) {
        let lines = self.lines();
        for line in expected {
            assert!(
                lines.iter().any(|said| said == line),
                "{line:?} in {lines:?}"
            );
        }
    }
}
