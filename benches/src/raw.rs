//! The raw ceiling: a bare redb database (default durability: every commit is durable) behind
//! one writer thread that commits every pending append in one transaction, the engine's
//! group-commit pattern with no engine around it.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::load::{Sample, Window, closed_loop};

/// The size of each appended value: about one encoded `run` journal entry of the engine.
pub const ENTRY_BYTES: usize = 48;
/// The most appends committed in one transaction (the engine's writer uses the same bound).
pub const MAX_BATCH: usize = 1024;

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");

type Ack = oneshot::Sender<Result<(), String>>;

/// Counters of the raw writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawStats {
    /// Transactions committed.
    pub commits: u64,
    /// Entries appended in them.
    pub entries: u64,
    /// Time spent inserting and committing, in microseconds.
    pub commit_micros: u64,
}

/// The writer thread and the sending side of its channel.
pub struct RawWriter {
    requests: Option<mpsc::UnboundedSender<(Vec<u8>, Ack)>>,
    thread: JoinHandle<Result<RawStats, String>>,
}

/// A cloneable handle that appends through a [`RawWriter`].
#[derive(Clone)]
pub struct RawHandle(mpsc::UnboundedSender<(Vec<u8>, Ack)>);

impl RawWriter {
    /// Creates the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, String> {
        let db = Database::create(path).map_err(|e| format!("cannot create {path:?}: {e}"))?;
        let (requests, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("raw-writer".into())
            .spawn(move || write_loop(&db, rx))
            .map_err(|e| format!("cannot start the raw writer: {e}"))?;
        Ok(Self {
            requests: Some(requests),
            thread,
        })
    }

    /// A handle for appending.
    pub fn handle(&self) -> Option<RawHandle> {
        self.requests.clone().map(RawHandle)
    }

    /// Waits until every handle is dropped and the writer has committed what it got. Blocks.
    pub fn close(mut self) -> Result<RawStats, String> {
        self.requests = None;
        self.thread
            .join()
            .map_err(|_| "the raw writer panicked".to_owned())?
    }
}

impl RawHandle {
    /// Appends `value` under the next key and waits for its commit.
    pub async fn append(&self, value: Vec<u8>) -> Result<(), String> {
        let (ack, committed) = oneshot::channel();
        self.0
            .send((value, ack))
            .map_err(|_| "the raw writer is gone".to_owned())?;
        committed
            .await
            .map_err(|_| "the raw writer dropped an append".to_owned())?
    }
}

fn write_loop(
    db: &Database,
    mut rx: mpsc::UnboundedReceiver<(Vec<u8>, Ack)>,
) -> Result<RawStats, String> {
    let mut stats = RawStats::default();
    let mut next_key = 0_u64;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = commit(db, &mut next_key, &batch);
        if result.is_ok() {
            stats.commits += 1;
            stats.entries += batch.len() as u64;
            stats.commit_micros += u64::try_from(started.elapsed().as_micros()).unwrap_or(0);
        }
        for (_, ack) in batch {
            let _ = ack.send(result.clone());
        }
    }
    Ok(stats)
}

fn commit(db: &Database, next_key: &mut u64, batch: &[(Vec<u8>, Ack)]) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut table = txn.open_table(ENTRIES).map_err(|e| e.to_string())?;
        for (value, _) in batch {
            table
                .insert(*next_key, value.as_slice())
                .map_err(|e| e.to_string())?;
            *next_key += 1;
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

/// What one raw-ceiling point measured.
#[derive(Debug, Clone)]
pub struct RawPoint {
    /// Appends (one entry each) and their ack latencies.
    pub sample: Sample,
    /// The writer's counters over the whole run, warm-up included.
    pub stats: RawStats,
}

impl RawPoint {
    /// Entries appended per commit.
    pub fn batch(&self) -> f64 {
        self.stats.entries as f64 / self.stats.commits.max(1) as f64
    }

    /// Average time the writer spent inserting and committing one transaction.
    pub fn commit_time(&self) -> Duration {
        Duration::from_micros(self.stats.commit_micros / self.stats.commits.max(1))
    }
}

/// Appends from `concurrency` tasks, each waiting for its ack before the next append, to a fresh
/// database in `dir`.
pub async fn raw_point(dir: &Path, concurrency: usize, window: Window) -> Result<RawPoint, String> {
    let writer = RawWriter::open(&dir.join("raw.redb"))?;
    let handle = writer.handle().ok_or("the raw writer is closed")?;
    let sample = closed_loop(concurrency, window, move || {
        let handle = handle.clone();
        async move { handle.append(vec![0x5A; ENTRY_BYTES]).await }
    })
    .await;
    let stats = tokio::task::spawn_blocking(move || writer.close())
        .await
        .map_err(|e| format!("cannot join the raw writer: {e}"))??;
    Ok(RawPoint {
        sample: sample?,
        stats,
    })
}
