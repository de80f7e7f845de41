//! The write-ahead log in front of redb: what makes a batch durable with one `fdatasync` of an
//! append.
//!
//! The writer appends each batch of commands as one record, syncs the log, and only then
//! commits the batch to redb without durability (`Durability::None`) and answers. Every so
//! often it commits with `Durability::Immediate`: a *checkpoint*, which makes everything redb
//! holds durable, records the sequence number of the last batch it covers (`meta.log_seq`, in
//! the same transaction as that batch), and lets the segments before it be recycled. After a
//! crash redb opens as of its last durable commit, and [`Log::open`] hands back every record
//! after it, which the store applies again in order: the same commands on the same state give
//! the same result.
//!
//! The log is a folder of segment files, each [`SEGMENT_BYTES`] long (or one record's size, for
//! a larger record), written (zero-filled) in full and synced when created, so that an append overwrites allocated blocks and its sync
//! writes no file metadata. A file is named by the sequence number of its first record. A
//! record is
//!
//! ```text
//! length: u32 LE | seq: u64 LE | kind: u8 | crc32 of the 13 bytes before and the payload: u32 LE | payload
//! ```
//!
//! Reading stops at the first record that is not whole and intact, or does not carry the next
//! sequence number (a zeroed block, a torn write, a recycled segment's old records): that is
//! the end of the log, and the next append overwrites it.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// The log's folder inside the data folder.
pub(crate) const LOG_DIR: &str = "log";

/// The size of a segment file (a record larger than that gets a segment of its own size).
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;

/// The bytes before a record's payload.
const HEADER: usize = 4 + 8 + 1 + 4;

/// The largest payload a record may carry.
const MAX_PAYLOAD: usize = u32::MAX as usize;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A batch of commands, applied to redb in one transaction.
    Batch = 1,
    /// The batch with this record's payload's sequence number (8 bytes LE) failed to commit to
    /// redb after it was logged: it was refused, and is not applied again.
    Void = 2,
}

impl Kind {
    fn of(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Batch),
            2 => Some(Kind::Void),
            _ => None,
        }
    }
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) kind: Kind,
    pub(crate) payload: Vec<u8>,
}

/// The open log: the segment being written and the ones before it.
pub(crate) struct Log {
    dir: PathBuf,
    /// The size of a new segment.
    segment_bytes: u64,
    /// Segments by the sequence number of their first record, oldest first; the last is
    /// written.
    segments: VecDeque<(u64, PathBuf)>,
    current: File,
    /// The size of `current`.
    size: u64,
    /// Where the next record goes in `current`.
    offset: u64,
    /// The sequence number of the next record.
    next_seq: u64,
    /// Segments no longer needed, kept to be reused (renamed) as the next one.
    spare: Vec<PathBuf>,
}

impl Log {
    /// Opens the log in `dir` (created if missing), returning it with every intact record whose
    /// sequence number is above `durable` — what redb's last durable commit covers — in order.
    /// A torn or damaged tail is cut; records at or below `durable` are skipped.
    pub(crate) fn open(dir: &Path, durable: u64) -> Result<(Log, Vec<Record>), StoreError> {
        Self::open_sized(dir, durable, segment_bytes())
    }

    /// [`Log::open`], with new segments of `segment_bytes`.
    pub(crate) fn open_sized(
        dir: &Path,
        durable: u64,
        segment_bytes: u64,
    ) -> Result<(Log, Vec<Record>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, &e))?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_error("read", dir, &e))? {
            let entry = entry.map_err(|e| io_error("read", dir, &e))?;
            let name = entry.file_name();
            let first = name
                .to_str()
                .and_then(|n| n.strip_suffix(".wal"))
                .and_then(|n| n.parse::<u64>().ok());
            match first {
                Some(first) => found.push((first, entry.path())),
                // A segment being created when the process died.
                None if name.to_string_lossy().ends_with(".partial") => {
                    let _ = std::fs::remove_file(entry.path());
                }
                None => {}
            }
        }
        found.sort();
        // The log goes on from the segment holding the first record after the durable state:
        // the last one starting at or before it. Segments before it are spare.
        let start = found
            .iter()
            .rposition(|(first, _)| *first <= durable + 1)
            .unwrap_or(0);
        let mut spare: Vec<PathBuf> = found.drain(..start).map(|(_, path)| path).collect();
        let mut records = Vec::new();
        let mut segments = VecDeque::new();
        // The sequence number the next record must carry, the segment it goes in, where, whether
        // only zeros follow there, and the segment's path.
        let mut tail: Option<(u64, File, u64, bool, PathBuf)> = None;
        for (first, path) in found {
            let continues = match &tail {
                None => true,
                // A segment starts where the one before it filled up; any other is the rest of
                // a log cut before it.
                Some((next, ..)) => *next == first,
            };
            if !continues {
                // What follows a cut may hold records with the numbers the log will give next:
                // reused, one could be read back as new. Removed, never reused.
                std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, &e))?;
                continue;
            }
            let mut file = open_rw(&path)?;
            let (read, end, clean) = read_segment(&mut file, first)?;
            let next = read.last().map_or(first, |r| r.seq + 1);
            records.extend(read.into_iter().filter(|r| r.seq > durable));
            segments.push_back((first, path.clone()));
            tail = Some((next, file, end, clean, path));
        }
        // Past the end of the last segment's records, the bytes must be zero: after a torn or
        // damaged record, an intact older one could otherwise follow a new append and be read
        // as the next (found by the fuzzer: `fuzz/regressions/log_recovery/`).
        let tail = match tail {
            Some((next, file, end, clean, path)) => {
                if !clean {
                    zero_from(&file, end, &path)?;
                }
                Some((next, file, end))
            }
            None => None,
        };
        let log = match tail {
            Some((next_seq, current, offset)) if next_seq > durable => Log {
                dir: dir.to_owned(),
                segment_bytes,
                segments,
                size: current
                    .metadata()
                    .map_err(|e| io_error("read", dir, &e))?
                    .len(),
                current,
                offset,
                next_seq,
                spare,
            },
            // No log yet (a new folder, or one written before the log existed), or one that
            // ends before the durable state: start after the durable state.
            _ => {
                spare.extend(segments.drain(..).map(|(_, path)| path));
                let next_seq = durable + 1;
                let path = segment_path(dir, next_seq);
                let current = create_segment(&path, spare.pop(), segment_bytes)?;
                let size = current
                    .metadata()
                    .map_err(|e| io_error("read", &path, &e))?
                    .len();
                sync_dir(dir)?;
                segments.push_back((next_seq, path));
                Log {
                    dir: dir.to_owned(),
                    segment_bytes,
                    segments,
                    current,
                    size,
                    offset: 0,
                    next_seq,
                    spare,
                }
            }
        };
        Ok((log, records))
    }

    /// The sequence number the next record gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends a record and syncs it: when this returns `Ok`, the record survives a crash. Its
    /// sequence number.
    pub(crate) fn append(&mut self, kind: Kind, payload: &[u8]) -> Result<u64, StoreError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(StoreError::Redb(format!(
                "a batch of {} bytes does not fit in a log segment",
                payload.len()
            )));
        }
        let bytes = (HEADER + payload.len()) as u64;
        if self.offset + bytes > self.size {
            self.roll(bytes)?;
        }
        let seq = self.next_seq;
        let record = encode_record(seq, kind, payload);
        let path = self.current_path();
        self.current
            .write_all_at(&record, self.offset)
            .map_err(|e| io_error("write", &path, &e))?;
        self.current
            .sync_data()
            .map_err(|e| io_error("sync", &path, &e))?;
        self.offset += bytes;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Everything up to `seq` is durable in redb: segments whose records all precede it are
    /// kept for reuse (a few) or removed.
    pub(crate) fn checkpointed(&mut self, seq: u64) {
        while self.segments.len() > 1 {
            // A segment's records all precede the next segment's first.
            let Some(&(next_first, _)) = self.segments.get(1) else {
                break;
            };
            if next_first > seq + 1 {
                break;
            }
            let Some((_, path)) = self.segments.pop_front() else {
                break;
            };
            if self.spare.len() < 2 {
                self.spare.push(path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// How many segments the log has in use.
    #[cfg(test)]
    fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn current_path(&self) -> PathBuf {
        self.segments
            .back()
            .map_or_else(|| self.dir.clone(), |(_, path)| path.clone())
    }

    /// Starts the next segment, room for a record of `bytes` at least: a spare one renamed, or
    /// a new one.
    fn roll(&mut self, bytes: u64) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, self.next_seq);
        let size = self.segment_bytes.max(bytes);
        let spare = if size == self.segment_bytes {
            self.spare.pop()
        } else {
            None
        };
        self.current = create_segment(&path, spare, size)?;
        self.size = self
            .current
            .metadata()
            .map_err(|e| io_error("read", &path, &e))?
            .len();
        sync_dir(&self.dir)?;
        self.segments.push_back((self.next_seq, path));
        self.offset = 0;
        Ok(())
    }
}

/// The size of new segments: [`SEGMENT_BYTES`], or in builds with the `testing` feature the
/// number of bytes [`SEGMENT_BYTES_VAR`] names — small segments, so that kill tests land on
/// segment switches.
fn segment_bytes() -> u64 {
    #[cfg(feature = "testing")]
    if let Some(bytes) = std::env::var(SEGMENT_BYTES_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return bytes.max(HEADER as u64);
    }
    SEGMENT_BYTES
}

/// The environment variable that sets the size of new segments in builds with the `testing`
/// feature.
#[cfg(feature = "testing")]
pub(crate) const SEGMENT_BYTES_VAR: &str = "ZEROAPP_TESTING_LOG_SEGMENT_BYTES";

/// One record's bytes.
fn encode_record(seq: u64, kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + payload.len());
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    record.extend_from_slice(&length.to_le_bytes());
    record.extend_from_slice(&seq.to_le_bytes());
    record.push(kind as u8);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&record);
    crc.update(payload);
    record.extend_from_slice(&crc.finalize().to_le_bytes());
    record.extend_from_slice(payload);
    record
}

/// The intact records of a segment whose first record is `first`, where they end, and whether
/// only zeros follow.
fn read_segment(file: &mut File, first: u64) -> Result<(Vec<Record>, u64, bool), StoreError> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| StoreError::Redb(format!("cannot read a log segment: {e}")))?;
    let (records, end) = parse(&bytes, first);
    let clean = bytes
        .get(end..)
        .is_none_or(|rest| rest.iter().all(|b| *b == 0));
    Ok((records, end as u64, clean))
}

/// Writes zeros over `file` from `offset` to its end, and syncs it.
fn zero_from(file: &File, offset: u64, path: &Path) -> Result<(), StoreError> {
    let length = file
        .metadata()
        .map_err(|e| io_error("read", path, &e))?
        .len();
    let zeros = vec![0_u8; 1 << 20];
    let mut at = offset;
    while at < length {
        let chunk = &zeros[..zeros
            .len()
            .min(usize::try_from(length - at).unwrap_or(usize::MAX))];
        file.write_all_at(chunk, at)
            .map_err(|e| io_error("write", path, &e))?;
        at += chunk.len() as u64;
    }
    file.sync_data().map_err(|e| io_error("sync", path, &e))
}

/// The records `bytes` holds from its start, the first carrying `first`, up to the first that
/// is not whole, intact and next in sequence; and where they end. Never panics, whatever the
/// bytes (fuzzed: `fuzz/fuzz_targets/log_recovery.rs`).
pub(crate) fn parse(bytes: &[u8], first: u64) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0_usize;
    let mut expected = first;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let field = |range: std::ops::Range<usize>| header.get(range).unwrap_or_default();
        let length = u32::from_le_bytes(field(0..4).try_into().unwrap_or_default()) as usize;
        let seq = u64::from_le_bytes(field(4..12).try_into().unwrap_or_default());
        let kind = Kind::of(header[12]);
        let crc = u32::from_le_bytes(field(13..17).try_into().unwrap_or_default());
        let Some(kind) = kind else {
            break;
        };
        if seq != expected || length > MAX_PAYLOAD {
            break;
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + length) else {
            break;
        };
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header[..13]);
        hasher.update(payload);
        if hasher.finalize() != crc {
            break;
        }
        records.push(Record {
            seq,
            kind,
            payload: payload.to_vec(),
        });
        at += HEADER + length;
        expected += 1;
    }
    (records, at)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

fn open_rw(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_error("open", path, &e))
}

/// A segment at `path`, full size and synced: `reuse` renamed there (its old records end the
/// log at once: their sequence numbers are not the next ones), or a new zero-filled file
/// written under a temporary name and renamed into place.
fn create_segment(path: &Path, reuse: Option<PathBuf>, size: u64) -> Result<File, StoreError> {
    if let Some(old) = reuse {
        if std::fs::rename(&old, path).is_ok() {
            let file = open_rw(path)?;
            // Zero the first header: a record of the old segment could happen to carry the next
            // sequence number only if it were that segment's own, which it is not; zeroing
            // makes the end plain all the same.
            file.write_all_at(&[0; HEADER], 0)
                .and_then(|()| file.sync_data())
                .map_err(|e| io_error("write", path, &e))?;
            return Ok(file);
        }
    }
    let partial = path.with_extension("partial");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&partial)
        .map_err(|e| io_error("create", &partial, &e))?;
    let zeros = vec![0_u8; 1 << 20];
    let mut written = 0_u64;
    while written < size {
        let chunk = &zeros[..zeros
            .len()
            .min(usize::try_from(size - written).unwrap_or(usize::MAX))];
        file.write_all_at(chunk, written)
            .map_err(|e| io_error("write", &partial, &e))?;
        written += chunk.len() as u64;
    }
    file.sync_all()
        .map_err(|e| io_error("sync", &partial, &e))?;
    std::fs::rename(&partial, path).map_err(|e| io_error("rename", &partial, &e))?;
    Ok(file)
}

/// Makes the folder's entries (a new or renamed segment) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync", dir, &e))
}

fn io_error(what: &str, path: &Path, error: &io::Error) -> StoreError {
    if error.raw_os_error() == Some(28) || error.kind() == io::ErrorKind::StorageFull {
        return StoreError::StorageFull(format!(
            "cannot {what} {}: no space left on the device",
            path.display()
        ));
    }
    StoreError::Redb(format!("cannot {what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn records_come_back_in_order_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, old) = Log::open(dir.path(), 0).unwrap();
        assert!(old.is_empty());
        for n in 0..5_u8 {
            assert_eq!(log.append(Kind::Batch, &[n; 10]).unwrap(), u64::from(n) + 1);
        }
        drop(log);
        let (log, records) = Log::open(dir.path(), 2).unwrap();
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [3, 4, 5], "records after the durable one");
        assert_eq!(records[0].payload, [2; 10]);
        assert_eq!(log.next_seq(), 6);
    }

    #[test]
    fn a_torn_or_damaged_tail_is_cut_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 0).unwrap();
        for n in 0..3_u8 {
            log.append(Kind::Batch, &[n; 100]).unwrap();
        }
        let path = log.current_path();
        drop(log);
        // Damage the third record's payload.
        let file = open_rw(&path).unwrap();
        let third = 2 * (HEADER as u64 + 100) + HEADER as u64 + 7;
        file.write_all_at(&[0xFF], third).unwrap();
        let (mut log, records) = Log::open(dir.path(), 0).unwrap();
        assert_eq!(
            records.len(),
            2,
            "the damaged record and what follows are cut"
        );
        assert_eq!(log.append(Kind::Batch, b"next").unwrap(), 3);
        drop(log);
        let (_, records) = Log::open(dir.path(), 0).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].payload, b"next");
    }

    #[test]
    fn segments_roll_and_checkpointed_ones_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path(), 0).unwrap();
        let big = vec![7_u8; (SEGMENT_BYTES / 3) as usize];
        for _ in 0..7 {
            log.append(Kind::Batch, &big).unwrap();
        }
        assert_eq!(log.segment_count(), 4, "two records per segment");
        log.checkpointed(5);
        assert_eq!(log.segment_count(), 2, "segments before seq 5's are spare");
        log.append(Kind::Batch, &big).unwrap();
        log.append(Kind::Batch, &big).unwrap();
        drop(log);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(
            files, 4,
            "a spare segment was renamed, not a new one written"
        );
        let (log, records) = Log::open(dir.path(), 5).unwrap();
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [6, 7, 8, 9]);
        assert_eq!(log.next_seq(), 10);
    }

    #[test]
    fn parsing_garbage_finds_no_record_and_never_panics() {
        for bytes in [
            &[][..],
            &[0; 64][..],
            &[0xFF; 64][..],
            &[5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0][..],
        ] {
            assert_eq!(parse(bytes, 1).0, Vec::new());
        }
    }
}
