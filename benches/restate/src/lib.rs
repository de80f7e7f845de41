//! The engine measured against Restate: the benches that need a `restate-server` (from npm)
//! and Restate's Rust SDK, in a crate of their own so that the everyday benches
//! (`zeroapp-benches`) build without them. They run in `zeroapp-benches`' harness
//! ([`zeroapp_benches::harness`]).
//!
//! * [`comparison`] — the `restate` bench: the same workloads on the engine (HTTP and
//!   in-process) and on a real Restate server with the handlers written on `restate-sdk`
//!   (`services/`, a project of its own), side by side.
//! * [`scale_out`] — the `scale_out` bench: the same handlers on the embedded engine, served
//!   to one Restate node and to a 3-node Restate cluster (`zeroapp-restate`), side by side.
//! * [`workloads`] — the workloads both share (W1 three steps … W5 sleep) and their workers.
//! * [`services`] — those workloads' handlers on the engine.
//! * [`server`] — the servers in child processes: `zeroapp-bench-server` (this crate's
//!   binary) and `restate-server` with the SDK's handlers.

#![deny(missing_docs)]

pub mod comparison;
pub mod scale_out;
pub mod server;
pub mod services;
pub mod workloads;

/// This crate's package, whose bench targets these are.
pub const PACKAGE: &str = "zeroapp-benches-restate";
