//! The raw ceilings: one writer thread that makes every pending append durable at once, the
//! engine's group-commit pattern with no engine around it, over two kinds of storage —
//! a bare redb database (every commit durable), and a bare log file (pre-written, each batch
//! appended as checksummed records, then one `fdatasync`). And, as the candidate we measured
//! against writing the engine's own log, the `okaywal` crate: each append an entry committed
//! from its own thread, the crate grouping the syncs.

use std::fs::File;
use std::os::unix::fs::FileExt;
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

/// The size of the log file, written in full before the bench: appends overwrite allocated
/// blocks (and wrap around at the end), as in the engine's log segments.
const LOG_BYTES: u64 = 64 << 20;

/// Where the raw writer makes appends durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// A redb table, one durable commit per batch.
    Redb,
    /// A log file, one `fdatasync` per batch.
    LogFile,
}

/// The open storage of a raw writer.
enum Opened {
    Redb(Database),
    LogFile { file: File, offset: u64 },
}

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
    /// Creates the storage at `path` and starts its writer thread.
    pub fn open(path: &Path, storage: Storage) -> Result<Self, String> {
        let cannot = |e: &dyn std::fmt::Display| format!("cannot create {path:?}: {e}");
        let mut opened = match storage {
            Storage::Redb => Opened::Redb(Database::create(path).map_err(|e| cannot(&e))?),
            Storage::LogFile => {
                let file = File::create(path).map_err(|e| cannot(&e))?;
                let zeros = vec![0_u8; 1 << 20];
                for chunk in 0..LOG_BYTES / (1 << 20) {
                    file.write_all_at(&zeros, chunk << 20)
                        .map_err(|e| cannot(&e))?;
                }
                file.sync_all().map_err(|e| cannot(&e))?;
                Opened::LogFile { file, offset: 0 }
            }
        };
        let (requests, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("raw-writer".into())
            .spawn(move || write_loop(&mut opened, rx))
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
    storage: &mut Opened,
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
        let result = match storage {
            Opened::Redb(db) => commit(db, &mut next_key, &batch),
            Opened::LogFile { file, offset } => append(file, offset, &batch),
        };
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

/// Appends the batch's entries to the log file as records (length, checksum, bytes) in one
/// write, then syncs it.
fn append(file: &File, offset: &mut u64, batch: &[(Vec<u8>, Ack)]) -> Result<(), String> {
    let mut records = Vec::with_capacity(batch.len() * (ENTRY_BYTES + 8));
    for (value, _) in batch {
        let length = u32::try_from(value.len()).map_err(|e| e.to_string())?;
        records.extend_from_slice(&length.to_le_bytes());
        records.extend_from_slice(&crc32fast::hash(value).to_le_bytes());
        records.extend_from_slice(value);
    }
    if *offset + records.len() as u64 > LOG_BYTES {
        *offset = 0;
    }
    file.write_all_at(&records, *offset)
        .and_then(|()| file.sync_data())
        .map_err(|e| e.to_string())?;
    *offset += records.len() as u64;
    Ok(())
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

/// Appends from `concurrency` tasks, each waiting for its ack before the next append, to a
/// fresh `okaywal` log in `dir`: each append is an entry of one chunk, committed (durable when
/// `commit` returns) on a blocking thread.
pub async fn okaywal_point(
    dir: &Path,
    concurrency: usize,
    window: Window,
) -> Result<RawPoint, String> {
    let wal = okaywal::WriteAheadLog::recover(dir.join("okaywal"), okaywal::LogVoid)
        .map_err(|e| format!("cannot open okaywal: {e}"))?;
    let sample = closed_loop(concurrency, window, move || {
        let wal = wal.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut entry = wal.begin_entry()?;
                entry.write_chunk(&[0x5A; ENTRY_BYTES])?;
                entry.commit().map(drop)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
        }
    })
    .await?;
    Ok(RawPoint {
        stats: RawStats {
            commits: sample.completed,
            entries: sample.completed,
            commit_micros: 0,
        },
        sample,
    })
}

/// Appends from `concurrency` tasks, each waiting for its ack before the next append, to fresh
/// storage in `dir`.
pub async fn raw_point(
    dir: &Path,
    concurrency: usize,
    window: Window,
    storage: Storage,
) -> Result<RawPoint, String> {
    let writer = RawWriter::open(&dir.join("raw.store"), storage)?;
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
