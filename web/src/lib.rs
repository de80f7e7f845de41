//! The storefront server: the JSON API, event streams and the Datastar pages, on the engine's
//! `http::serve`, plus the `zeroapp` command line. The binary is `src/main.rs`; benchmarks and
//! tests use [`server::routes`] in-process.

pub mod api;
pub mod assets;
pub mod backup;
pub mod check;
pub mod cli;
pub mod engine;
pub mod identity;
pub mod inspect;
pub mod pages;
pub mod remote;
pub mod replay_check;
pub mod serve;
pub mod server;
pub mod shared;
pub mod sse;
pub mod tokens;
