//! Benchmarks of the zeroapp engine.
//!
//! The measuring code lives here, in the library, so that the bench targets (`benches/`) and the
//! smoke test (`tests/smoke.rs`) run exactly the same functions; the test runs every bench in
//! quick mode so the benchmarks cannot rot.
//!
//! * [`stats`] — latency percentiles and medians.
//! * [`load`] — a closed-loop load generator: N workers, each doing one operation at a time
//!   (a shared closure, or a [`load::Worker`] with state of its own, such as a connection).
//! * [`fsync`] — the disk's fdatasync rate.
//! * [`raw`] — the raw ceiling: a bare redb database behind a group-committing writer thread.
//! * [`engine`] — the engine under load: a handler with three `run` steps.
//! * [`invocations`] — the `invocations` bench: every point, repeated, reduced to medians.
//! * [`http_load`] — an HTTP/1.1 load generator over keep-alive connections: a base URL, a
//!   path and a body, so it can load the engine's ingress or another server.
//! * [`ingress`] — the `ingress` bench: the same handler through the HTTP ingress and
//!   in-process, in the same run.
//! * [`storefront`] — the `storefront` bench: cart adds with sessions over HTTP, and one
//!   notification broadcast to many open event streams.
//! * [`waiting`] — the `waiting` bench: suspended invocations, restarts, timers, awakeables.
//! * [`micro`] — the `micro` bench: journal append, replay after a reopen, timer firing.
//! * [`soak`] — the `soak` bench: ten minutes of steady load, the data folder sampled.
//! * [`harness`] — the one harness: a [`harness::Bench`], a bench binary's `main`, and the smoke
//!   test's quick run of every bench.
//! * [`report`] — what every report uses: durations, verdicts, the machine, a section of
//!   `docs/benchmarks.md` replaced in place.
//!
//! The benches against Restate (`restate`, `scale_out`) live in `zeroapp-benches-restate`
//! (`benches/restate/`), which runs in this harness.

#![deny(missing_docs)]

/// Every bench binary allocates with mimalloc, as the `zeroapp` binary does: a profile of the
/// engine's writer under load put a third of its time in glibc's allocator. The engine, a
/// library, leaves the choice to the program that embeds it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod engine;
pub mod fsync;
pub mod harness;
pub mod http_load;
pub mod ingress;
pub mod invocations;
pub mod load;
pub mod micro;
pub mod raw;
pub mod report;
pub mod soak;
pub mod stats;
pub mod storefront;
pub mod waiting;
