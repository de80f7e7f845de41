//! A store in memory for the transitions' unit tests: commands in, rows and effects out, on
//! redb's in-memory backend.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use redb::backends::InMemoryBackend;
use redb::{Database, ReadableDatabase, ReadableTable};

use super::apply_batch;
use crate::ids::{HandlerKind, Target};
use crate::journal::entry::{decode, unseal};
use crate::journal::{Completion, Entry, Op};
use crate::store::command::{Action, Command, Effects, NewInvocation, Rejected};
use crate::store::records::InvocationRecord;
use crate::store::stats::{STATUSES, StatusCounts, status_index};
use crate::store::tables::{
    IDEMPOTENCY, INFLIGHT, INVOCATIONS, JOURNAL, OBJECT_LOCKS, OBJECT_QUEUE, PROMISE_WAITERS,
    PROMISES, STATE, TIMERS, WAITERS, WORKFLOWS,
};

/// How long finished invocations are kept.
pub(super) const RETENTION_MS: u64 = 10_000;

/// An empty store in memory.
pub(super) struct Mem {
    db: Database,
    /// Kept by the commands' status deltas, as the writer keeps the store's.
    statuses: StatusCounts,
}

impl Mem {
    pub(super) fn new() -> Self {
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .unwrap();
        let mem = Self {
            db,
            statuses: StatusCounts::default(),
        };
        // Creates every table.
        mem.apply(Command::Barrier).unwrap();
        mem
    }

    /// Applies one command in a transaction of its own and commits it.
    pub(super) fn apply(&self, command: Command) -> Result<Effects, Rejected> {
        let mut batch = apply_batch(&self.db, &[&command], RETENTION_MS).unwrap();
        self.statuses.apply(&batch.statuses);
        batch.results.pop().unwrap()
    }

    /// Creates an invocation of `target` with id `id` (started, queued or scheduled as the
    /// store decides).
    pub(super) fn create(&self, id: u64, target: Target, kind: HandlerKind) -> Effects {
        self.apply(Command::Create(invocation(id, target, kind)))
            .unwrap()
    }

    /// Appends `op` at `index` of `inv`'s journal, with `actions`.
    pub(super) fn append(&self, inv: u64, index: u32, op: Op, actions: Vec<Action>) -> Effects {
        self.apply(Command::Append {
            inv,
            index,
            entry: entry(op),
            actions,
        })
        .unwrap()
    }

    /// `caller` calls a service handler at journal `index`; the callee gets id `callee`.
    pub(super) fn call(&self, caller: u64, index: u32, callee: u64) -> Effects {
        let target = Target::service("Callee", "run");
        let mut new = invocation(callee, target.clone(), HandlerKind::Shared);
        new.waiter = Some((caller, index));
        self.append(
            caller,
            index,
            Op::Call { target, callee },
            vec![Action::Spawn(new)],
        )
    }

    /// The stored statuses' counts as the deltas kept them, checked against a scan of every
    /// record: by `status_index`.
    pub(super) fn status_counts(&self) -> [u64; STATUSES] {
        let kept = self.statuses.snapshot();
        let mut scanned = [0u64; STATUSES];
        self.read(|txn| {
            let table = txn.open_table(INVOCATIONS).unwrap();
            for row in table.iter().unwrap() {
                let record: InvocationRecord = decode(row.unwrap().1.value()).unwrap();
                scanned[status_index(record.status)] += 1;
            }
        });
        assert_eq!(kept, scanned, "the kept counts drifted from the records");
        kept
    }

    fn read<T>(&self, read: impl FnOnce(&redb::ReadTransaction) -> T) -> T {
        read(&self.db.begin_read().unwrap())
    }

    pub(super) fn record(&self, inv: u64) -> Option<InvocationRecord> {
        self.read(|txn| {
            let table = txn.open_table(INVOCATIONS).unwrap();
            let value = table.get(inv).unwrap();
            value.map(|bytes| decode(bytes.value()).unwrap())
        })
    }

    pub(super) fn entry(&self, inv: u64, index: u32) -> Option<Entry> {
        self.read(|txn| {
            let table = txn.open_table(JOURNAL).unwrap();
            let value = table.get((inv, index)).unwrap();
            value.map(|bytes| decode(bytes.value()).unwrap())
        })
    }

    /// The completion of an entry, if it has one.
    pub(super) fn completion(&self, inv: u64, index: u32) -> Option<Completion> {
        self.entry(inv, index).and_then(|entry| entry.completion)
    }

    pub(super) fn journal_len(&self, inv: u64) -> usize {
        self.read(|txn| {
            let table = txn.open_table(JOURNAL).unwrap();
            let rows = table.range((inv, 0)..=(inv, u32::MAX)).unwrap();
            rows.count()
        })
    }

    /// The holder of an object key.
    pub(super) fn lock(&self, instance: &str) -> Option<u64> {
        self.read(|txn| {
            let table = txn.open_table(OBJECT_LOCKS).unwrap();
            let value = table.get(instance).unwrap();
            value.map(|id| id.value())
        })
    }

    /// The invocations queued for an object key, in order.
    pub(super) fn queued(&self, instance: &str) -> Vec<u64> {
        self.read(|txn| {
            let table = txn.open_table(OBJECT_QUEUE).unwrap();
            let rows = table.range((instance, 0)..=(instance, u64::MAX)).unwrap();
            rows.map(|row| row.unwrap().0.value().1).collect()
        })
    }

    pub(super) fn inflight(&self) -> Vec<u64> {
        self.read(|txn| {
            let table = txn.open_table(INFLIGHT).unwrap();
            let rows = table.iter().unwrap();
            rows.map(|row| row.unwrap().0.value()).collect()
        })
    }

    /// Every timer: (due, invocation, slot, kind).
    pub(super) fn timers(&self) -> Vec<(u64, u64, u32, u8)> {
        self.read(|txn| {
            let table = txn.open_table(TIMERS).unwrap();
            let rows = table.iter().unwrap();
            rows.map(|row| {
                let (key, kind) = row.unwrap();
                let (due, inv, slot) = key.value();
                (due, inv, slot, kind.value())
            })
            .collect()
        })
    }

    /// Every caller waiting on a callee: (callee, caller, index).
    pub(super) fn waiters(&self) -> Vec<(u64, u64, u32)> {
        self.read(|txn| {
            let table = txn.open_table(WAITERS).unwrap();
            let rows = table.iter().unwrap();
            rows.map(|row| row.unwrap().0.value()).collect()
        })
    }

    /// Every await of a promise not completed yet: (instance, name, invocation, index).
    pub(super) fn promise_waiters(&self) -> Vec<(String, String, u64, u32)> {
        self.read(|txn| {
            let table = txn.open_table(PROMISE_WAITERS).unwrap();
            let rows = table.iter().unwrap();
            rows.map(|row| {
                let (key, _) = row.unwrap();
                let (instance, name, inv, index) = key.value();
                (instance.to_owned(), name.to_owned(), inv, index)
            })
            .collect()
        })
    }

    pub(super) fn promise(&self, instance: &str, name: &str) -> Option<Completion> {
        self.read(|txn| {
            let table = txn.open_table(PROMISES).unwrap();
            let value = table.get((instance, name)).unwrap();
            value.map(|bytes| decode(bytes.value()).unwrap())
        })
    }

    pub(super) fn idempotency(&self, target: &Target, key: &str) -> Option<u64> {
        let target = target.to_string();
        self.read(|txn| {
            let table = txn.open_table(IDEMPOTENCY).unwrap();
            let value = table.get((target.as_str(), key)).unwrap();
            value.map(|id| id.value())
        })
    }

    pub(super) fn workflow(&self, instance: &str) -> Option<u64> {
        self.read(|txn| {
            let table = txn.open_table(WORKFLOWS).unwrap();
            let value = table.get(instance).unwrap();
            value.map(|id| id.value())
        })
    }

    /// A state value, its checksum checked.
    pub(super) fn state(&self, instance: &str, key: &str) -> Option<Vec<u8>> {
        self.read(|txn| {
            let table = txn.open_table(STATE).unwrap();
            let value = table.get((instance, key)).unwrap();
            value.map(|bytes| unseal(bytes.value()).unwrap().to_vec())
        })
    }
}

/// A new invocation with input `null`, created at 0.
pub(super) fn invocation(id: u64, target: Target, kind: HandlerKind) -> NewInvocation {
    NewInvocation {
        id,
        target,
        kind,
        input: b"null".to_vec(),
        waiter: None,
        created_ms: 0,
        idempotency_key: None,
        start_at_ms: None,
    }
}

/// An entry without a completion, recorded at 0 by attempt 1.
pub(super) fn entry(op: Op) -> Entry {
    Entry {
        op,
        at_ms: 0,
        attempt: 1,
        completion: None,
    }
}

/// The object `Cart/alice`'s handler `add`.
pub(super) fn cart() -> Target {
    Target::object("Cart", "alice", "add")
}

/// The workflow `Order/o-1`'s `run`.
pub(super) fn order() -> Target {
    Target::workflow("Order", "o-1", "run")
}

/// The instance name of a target with a key.
pub(super) fn instance(target: &Target) -> String {
    target.instance().unwrap()
}
