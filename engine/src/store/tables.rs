//! Every redb table the engine uses, and the on-disk format version.
//!
//! Keys are chosen so that the hot paths write close together: invocation ids grow
//! monotonically, so the journal entries of invocations running at the same time share
//! B-tree leaves, and the timers and queues are ordered by what is read next.

use redb::TableDefinition;

/// Version of the on-disk layout. Bump it (and add an upgrade path and a CHANGELOG entry)
/// whenever a table, key or record encoding changes.
pub(crate) const FORMAT_VERSION: u64 = 1;

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
