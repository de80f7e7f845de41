//! The disk's fdatasync rate: the floor under every durable commit.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::stats::Latencies;

/// The size of the block rewritten before each sync.
pub const BLOCK_BYTES: usize = 4096;

/// What the fdatasync loop measured.
#[derive(Debug, Clone)]
pub struct SyncSample {
    /// Write + fdatasync pairs done.
    pub syncs: u64,
    /// How long they took in all.
    pub elapsed: Duration,
    /// The latency of each pair.
    pub latencies: Latencies,
}

impl SyncSample {
    /// Syncs per second.
    pub fn per_second(&self) -> f64 {
        self.syncs as f64 / self.elapsed.as_secs_f64()
    }
}

/// Rewrites 4 KiB at offset 0 of a pre-written file in `dir` and calls `fdatasync`
/// (`File::sync_data`), in a loop, for about `duration`.
pub fn measure_fdatasync(dir: &Path, duration: Duration) -> io::Result<SyncSample> {
    let path = dir.join("fdatasync.bin");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let mut block = vec![0xA5_u8; BLOCK_BYTES];
    // Pre-write 1 MiB and make it durable: the loop then overwrites allocated blocks only.
    for _ in 0..256 {
        file.write_all(&block)?;
    }
    file.sync_all()?;

    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut round: u8 = 0;
    while started.elapsed() < duration {
        round = round.wrapping_add(1);
        block[0] = round;
        let t0 = Instant::now();
        file.write_all_at(&block, 0)?;
        file.sync_data()?;
        latencies.push(t0.elapsed());
    }
    let elapsed = started.elapsed();
    std::fs::remove_file(&path)?;
    Ok(SyncSample {
        syncs: latencies.len() as u64,
        elapsed,
        latencies: Latencies::new(latencies),
    })
}
