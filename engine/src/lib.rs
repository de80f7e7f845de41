//! # zeroapp-engine
//!
//! An embedded durable-execution engine: what Restate gives its users, as a library, with no
//! server. Handlers are plain async Rust functions; everything they do through their context is
//! journaled in a [redb] file, so after a crash each unfinished invocation is replayed and the
//! steps that already finished are not executed again.
//!
//! ## The model
//!
//! * A **service** is a set of stateless handlers ([`Service`]).
//! * A **virtual object** is a set of handlers keyed by an object key, with K/V state per key.
//!   At most one *exclusive* handler runs per key at a time, in arrival order, from a queue that
//!   survives restarts; *shared* handlers read committed state concurrently ([`VirtualObject`]).
//! * A **workflow** has a `run` handler that executes once per key, and shared handlers
//!   ([`Workflow`]).
//! * An **invocation** is one execution of a handler with an input. Its **journal** records
//!   each context operation — `run` steps, state reads and writes, calls, sends, random numbers,
//!   time — and its result. A result reaches the handler only after its entry is committed.
//! * A [`TerminalError`] ends an invocation; any other error, or a panic, is retried with
//!   backoff by replaying the journal ([`RetryPolicy`]).
//! * A handler can wait — on a call, a durable timer (`sleep`), an **awakeable** completed from
//!   outside by id, or a workflow's durable **promise** — alone or racing several with `select`
//!   ([`DurableFuture`]). A waiting invocation gives its memory back after the inactivity
//!   timeout and is replayed when what it waits for completes, so waiting costs disk.
//! * Invocations can be **cancelled** (the next await fails, compensations run — see [`Saga`])
//!   or **killed**; client requests can carry an **idempotency key** ([`SendOptions`]); finished
//!   invocations are purged after the **retention** period ([`EngineConfig`]).
//!
//! ## Example
//!
//! ```
//! use zeroapp_engine::prelude::*;
//!
//! // Each handler's name and types, declared once: registration and calls go through these,
//! // and the compiler checks both against the handler.
//! const GREET: ServiceHandler<String, String> = ServiceHandler::new("Greeter", "greet");
//! const ADD: ObjectHandler<i64, i64> = ObjectHandler::new("Counter", "add");
//! const TOTAL: ObjectHandler<(), i64> = ObjectHandler::new("Counter", "total");
//!
//! async fn greet(ctx: Context, name: String) -> Result<String, HandlerError> {
//!     // Runs once; on replay, the journaled result is returned instead.
//!     let visit: u64 = ctx.run("pick a number", || async { Ok(42) }).await?;
//!     Ok(format!("Hello, {name}! You are visitor {visit}."))
//! }
//!
//! async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
//!     let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
//!     ctx.set("total", &total)?;
//!     Ok(total)
//! }
//!
//! async fn total(ctx: SharedObjectContext, (): ()) -> Result<i64, HandlerError> {
//!     Ok(ctx.get::<i64>("total").await?.unwrap_or(0))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::builder()
//!     .register(Service::new("Greeter").handler(GREET, greet))
//!     .register(VirtualObject::new("Counter").exclusive(ADD, add).shared(TOTAL, total))
//!     .open(dir.path())
//!     .await?;
//! let client = engine.client();
//!
//! let greeting = client.call(GREET, &"Ada".to_owned()).await?;
//! assert_eq!(greeting, "Hello, Ada! You are visitor 42.");
//!
//! client.call(ADD.key("apples"), &3).await?;
//! assert_eq!(client.call(ADD.key("apples"), &4).await?, 7);
//! // By name, as over HTTP: an untyped `Target`, checked when the call is made.
//! let total: i64 = client.call(Target::object("Counter", "apples", "total"), &()).await?;
//! assert_eq!(total, 7);
//! engine.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Examples and testing
//!
//! The repository's `examples/` folder has one program per idea — a greeter service, a counter
//! object, a saga with compensations, an approval workflow with a deadline, durable reminders,
//! an awakeable completed over HTTP — each run by `cargo run --example NAME` and by the tests.
//! `docs/guide.md` goes from an empty project to a tested workflow.
//!
//! With the cargo feature `testing`, the `testing` module gives tests an engine with a
//! virtual clock and a crash-point checker that crashes an invocation after each of its journal
//! entries in turn and checks that every run ends the same.
//!
//! ## Where things are
//!
//! The crate root has what handlers and their callers use — definitions ([`Service`],
//! [`VirtualObject`], [`Workflow`]), the [`Engine`] and its [`Client`], errors, introspection —
//! and [`prelude`] re-exports the usual part. The public modules:
//!
//! * [`context`] — the contexts handed to handlers, typed by capability;
//!   [`context::backend`] is the byte-level seam under them, which the embedded journal
//!   implements and another engine can too (the `zeroapp-restate` crate serves the same
//!   definitions to a Restate cluster).
//! * [`handler`] — typed handler references, and [`with_state`] for handlers' dependencies.
//! * [`replay_check`] — the replay gate: would this build still replay the journals in a data
//!   folder?
//! * `http` (cargo feature `http`) — the Restate-compatible HTTP ingress and the admin API.
//! * `testing` (cargo feature `testing`) — an engine with a virtual clock for tests, and the
//!   crash-point checker.
//!
//! The journal and replay, the redb store with its single writer thread, and the runtime that
//! runs invocations are private: docs/architecture.md in the repository maps them, with the
//! write path and recovery step by step.
//!
//! [redb]: https://docs.rs/redb

#![deny(missing_docs)]

mod client;
mod clock;
pub mod context;
mod counted;
mod engine;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod handler;
#[cfg(feature = "http")]
pub mod http;
mod ids;
mod introspect;
mod journal;
mod payload;
pub mod replay_check;
mod retry;
mod runtime;
mod service;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use crate::client::Client;
pub use crate::client::{Accepted, SendOptions};
pub use crate::clock::{Clock, ClockSleep};
pub use crate::context::{
    Context, ContextBase, ContextPromises, ContextReadState, ContextWriteState, DurableFuture,
    ObjectContext, Saga, Selectable, SharedObjectContext, SharedWorkflowContext, WorkflowContext,
};
pub use crate::engine::{Engine, EngineBuilder};
pub use crate::error::{
    CallError, HandlerError, IntoTerminal, OpenError, StoreError, TerminalError,
};
pub use crate::handler::{
    Call, HandlerName, ObjectHandler, ServiceHandler, WorkflowHandler, with_state,
};
pub use crate::ids::{HandlerKind, InvocationId, ParseIdError, ServiceKind, Target};
pub use crate::introspect::{
    Cancellation, InvocationFilter, InvocationInfo, InvocationStatus, JournalEntryInfo,
};
pub use crate::payload::{Binary, Decode, Encode, Format};
pub use crate::replay_check::{Incompatibility, RecordedInvocation, ReplayReport};
pub use crate::retry::RetryPolicy;
pub use crate::runtime::EngineConfig;
pub use crate::runtime::clocks::{ManualClock, SystemClock};
pub use crate::service::{Definition, Formats, HandlerFuture, Service, VirtualObject, Workflow};
pub use crate::store::check::CheckReport;
pub use crate::store::stats::{Histogram, WriterStatistics};
pub use crate::store::{DATA_FILE, StoredIdentity};

/// Everything a handler module usually needs.
pub mod prelude {
    pub use crate::{
        Binary, Client, Context, ContextBase, ContextPromises, ContextReadState, ContextWriteState,
        DurableFuture, Engine, EngineBuilder, HandlerError, IntoTerminal, InvocationId,
        ObjectContext, ObjectHandler, RetryPolicy, Saga, SendOptions, Service, ServiceHandler,
        SharedObjectContext, SharedWorkflowContext, Target, TerminalError, VirtualObject, Workflow,
        WorkflowContext, WorkflowHandler, with_state,
    };
}
