//! Every redb table the engine uses, and the on-disk format version.
//!
//! Keys are chosen so that the hot paths write close together: invocation ids grow
//! monotonically, so the journal entries of invocations running at the same time share
//! B-tree leaves, and the timers and queues are ordered by what is read next.

use redb::TableDefinition;

/// Version of the on-disk layout. Bump it (and add an upgrade path and a CHANGELOG entry)
/// whenever a table, key or record encoding changes.
///
/// 3: every stored value (invocation records, journal entries, promises, state values) ends
/// with a CRC-32 of its payload, so damage on disk is reported as damage; a version-2 file is
/// upgraded at open.
pub(crate) const FORMAT_VERSION: u64 = 3;

/// `"format_version"` → [`FORMAT_VERSION`] of the writer that created the file.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// invocation id → `InvocationRecord` (bincode).
pub(crate) const INVOCATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("invocations");
/// (invocation id, index) → `Entry` (bincode).
pub(crate) const JOURNAL: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("journal");
/// Invocations to run at start-up: ready or backing off (not pending, suspended or finished).
pub(crate) const INFLIGHT: TableDefinition<u64, ()> = TableDefinition::new("inflight");
/// (instance `service/key`, state key) → value (JSON).
pub(crate) const STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("state");
/// instance → the exclusive invocation holding the object's key.
pub(crate) const OBJECT_LOCKS: TableDefinition<&str, u64> = TableDefinition::new("object_locks");
/// (instance, invocation id) → (): exclusive invocations waiting for the key, in arrival order.
pub(crate) const OBJECT_QUEUE: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("object_queue");
/// workflow instance → the invocation of its `run`.
pub(crate) const WORKFLOWS: TableDefinition<&str, u64> = TableDefinition::new("workflows");
/// (callee, caller, caller's journal index) → (): where to deliver a callee's result.
pub(crate) const WAITERS: TableDefinition<(u64, u64, u32), ()> = TableDefinition::new("waiters");
/// (due ms, invocation id, slot) → what to do: every durable timer, ordered by deadline, so the
/// timer service only ever reads the first row. The slot is the journal index of a sleep, or
/// [`START_SLOT`] / [`PURGE_SLOT`].
pub(crate) const TIMERS: TableDefinition<(u64, u64, u32), u8> = TableDefinition::new("timers");
/// (workflow instance, promise name) → its completion (bincode), once completed.
pub(crate) const PROMISES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("promises");
/// (workflow instance, promise name, invocation, journal index) → (): who awaits a promise.
pub(crate) const PROMISE_WAITERS: TableDefinition<(&str, &str, u64, u32), ()> =
    TableDefinition::new("promise_waiters");
/// (target `service/key/handler`, idempotency key) → the invocation it maps to.
pub(crate) const IDEMPOTENCY: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("idempotency");

/// Timer kinds, stored as the value of [`TIMERS`].
pub(crate) mod timer {
    /// Complete the sleep entry at (invocation, slot).
    pub(crate) const WAKE: u8 = 0;
    /// Start a delayed invocation.
    pub(crate) const START: u8 = 1;
    /// Purge a finished invocation whose retention has passed.
    pub(crate) const PURGE: u8 = 2;
}

/// The slot of a delayed start in [`TIMERS`]; journal indices stay below it.
pub(crate) const START_SLOT: u32 = u32::MAX;
/// The slot of a purge in [`TIMERS`].
pub(crate) const PURGE_SLOT: u32 = u32::MAX - 1;
