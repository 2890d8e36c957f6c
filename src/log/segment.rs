//! One segment: `<base:020>.log` with its `.index` and `.timeindex`. Appends go to the end of
//! the file with plain writes; reads use positional reads so they need only `&self`.

mod load;
mod lookup;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::BatchHeader;
use super::durability;
use super::error::{IoContext, LogError};
use super::index::{IndexFile, OffsetEntry, TimeEntry};

pub(crate) use load::{Layout, Truncation};
pub(crate) use lookup::ReadBudget;

/// The file name of a segment's log (or index, with another extension): the base offset padded
/// to 20 digits, so names sort like offsets.
pub(crate) fn file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// A segment of a partition's log and what is known about its batches.
pub(crate) struct Segment {
    /// Offset of the first batch this segment holds (or will hold).
    base_offset: i64,
    /// The `.log` file's path, for error messages and deletion.
    log_path: PathBuf,
    /// The log file, opened for append and positional reads; shared with the WAL flusher.
    log: Arc<File>,
    /// Bytes of valid batches in the file.
    size: u64,
    /// Last offset + 1, or `base_offset` while empty.
    next_offset: i64,
    /// Sparse relative offset → file position.
    offset_index: IndexFile<OffsetEntry>,
    /// Sparse largest-timestamp-so-far → relative offset.
    time_index: IndexFile<TimeEntry>,
    /// Largest batch max timestamp in the segment; -1 when none.
    max_timestamp: i64,
    /// Last offset of the batch that reached `max_timestamp`.
    offset_of_max_timestamp: i64,
    /// Bytes appended since the last index entry (Kafka's `bytesSinceLastIndexEntry`).
    bytes_since_index_entry: u64,
    /// Index entries are added once more than this many bytes went by without one.
    index_interval_bytes: u32,
    /// When the segment started, for rolling by age: the first append's wall clock, or the
    /// first batch's timestamp for a segment reopened from disk; `None` until known.
    roll_clock_ms: Option<i64>,
    /// Whether a batch may start past the previous one's end: true in a compacted log, where
    /// the cleaner removes records (Kafka's offset gaps). Elsewhere a gap means damage.
    allow_gaps: bool,
}

impl Segment {
    /// A new empty segment at `base_offset`, replacing any files with its names.
    pub fn create(dir: &Path, base_offset: i64, index_interval_bytes: u32) -> Result<Segment, LogError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let log = open_log(&log_path)?;
        log.set_len(0).ctx(|| format!("empty segment {}", log_path.display()))?;
        durability::created(&log_path);
        let (offset_index, time_index) = create_indexes(dir, base_offset)?;
        // The new name must survive a crash before the flusher's first fsync of the file.
        sync_dir(dir)?;
        Ok(Segment::assemble(base_offset, log_path, log, offset_index, time_index, index_interval_bytes))
    }

    fn assemble(
        base_offset: i64,
        log_path: PathBuf,
        log: File,
        offset_index: IndexFile<OffsetEntry>,
        time_index: IndexFile<TimeEntry>,
        index_interval_bytes: u32,
    ) -> Segment {
        Segment {
            base_offset,
            log_path,
            log: Arc::new(log),
            size: 0,
            next_offset: base_offset,
            offset_index,
            time_index,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            bytes_since_index_entry: 0,
            index_interval_bytes,
            roll_clock_ms: None,
            allow_gaps: false,
        }
    }

    /// Lets batches start past the previous one's end (a compacted log) or not.
    pub fn set_allow_gaps(&mut self, allow: bool) {
        self.allow_gaps = allow;
    }

    /// Offset of the segment's first batch.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Last offset + 1 (the base offset while empty).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes of valid batches.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Largest record timestamp in the segment, -1 if none.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The log file handle, for the WAL flusher.
    pub fn log_file(&self) -> &Arc<File> {
        &self.log
    }

    /// The log file's path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// How long ago (by `now_ms`) the segment started; 0 when not known yet. Starts the clock
    /// when unknown and pulls a future start (a producer's skewed clock) back to `now_ms`.
    pub fn age_ms(&mut self, now_ms: i64) -> i64 {
        let start = self.roll_clock_ms.get_or_insert(now_ms);
        *start = (*start).min(now_ms);
        now_ms - *start
    }

    /// Restarts the roll clock from the first batch's timestamp, for a sealed segment that
    /// becomes active again.
    pub fn restart_roll_clock(&mut self) -> Result<(), LogError> {
        self.roll_clock_ms = self.first_batch_timestamp()?;
        Ok(())
    }

    /// Writes `batch` (already given its base offset) at the end of the file and indexes it.
    /// A failed write is rolled back so the file never keeps a partial batch behind the indexes.
    pub fn append(&mut self, batch: &[u8], header: &BatchHeader, now_ms: i64) -> Result<(), LogError> {
        if let Err(e) = (&*self.log).write_all(batch) {
            let rollback = match self.log.set_len(self.size) {
                Ok(()) => {
                    durability::truncated(&self.log_path, self.size);
                    String::new()
                }
                Err(r) => format!(" (and truncating back to byte {} failed: {r})", self.size),
            };
            let context = format!("append {} bytes to {}{rollback}", batch.len(), self.log_path.display());
            return Err(LogError::Io { context, source: e });
        }
        self.roll_clock_ms.get_or_insert(now_ms);
        self.track(header, self.size)
    }

    /// Accounts for the batch at `position` (appended or found on disk): sizes, offsets, the
    /// largest timestamp, and an index entry once `index_interval_bytes` went by without one.
    fn track(&mut self, header: &BatchHeader, position: u64) -> Result<(), LogError> {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        if self.bytes_since_index_entry > u64::from(self.index_interval_bytes) {
            self.add_index_entries(header.base_offset, position)?;
            self.bytes_since_index_entry = 0;
        }
        let len = header.total_len() as u64;
        self.bytes_since_index_entry += len;
        self.size = position + len;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Indexes the batch at `position` and, if it grew, the largest timestamp so far. Offsets or
    /// positions too large for 32 bits are left unindexed: lookups then scan from an earlier
    /// entry, which is slower but still correct.
    fn add_index_entries(&mut self, base_offset: i64, position: u64) -> Result<(), LogError> {
        if let (Some(relative_offset), Ok(position)) = (self.relative(base_offset), u32::try_from(position)) {
            self.offset_index.push(OffsetEntry { relative_offset, position })?;
        }
        self.add_time_entry()
    }

    /// Appends the largest timestamp so far to the time index if it grew since the last entry.
    fn add_time_entry(&mut self) -> Result<(), LogError> {
        let last = self.time_index.last().map_or(-1, |e| e.timestamp);
        if self.max_timestamp > last
            && let Some(relative_offset) = self.relative(self.offset_of_max_timestamp)
        {
            self.time_index.push(TimeEntry { timestamp: self.max_timestamp, relative_offset })?;
        }
        Ok(())
    }

    /// `offset - base_offset` if it fits an index entry.
    fn relative(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset.checked_sub(self.base_offset)?).ok()
    }

    /// Makes the segment read-only for good: records the final largest timestamp in the time
    /// index and fsyncs the log and both indexes, so nothing acknowledged is left in a file the
    /// flusher no longer syncs.
    pub fn seal(&mut self) -> Result<(), LogError> {
        self.add_time_entry()?;
        self.sync()?;
        self.close_indexes()
    }

    /// Flushes and closes both index files; they reopen on the next write.
    pub fn close_indexes(&mut self) -> Result<(), LogError> {
        self.offset_index.close()?;
        self.time_index.close()
    }

    /// Fsyncs the log file and flushes and fsyncs both indexes.
    pub fn sync(&mut self) -> Result<(), LogError> {
        let synced = durability::sync_data(&self.log, &self.log_path);
        synced.ctx(|| format!("fsync segment {}", self.log_path.display()))?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Flushes buffered index entries to their files (no fsync).
    pub fn flush_indexes(&mut self) -> Result<(), LogError> {
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// Deletes the segment's three files (missing index files are fine).
    pub fn remove_files(self) -> Result<(), LogError> {
        let paths =
            [self.log_path.clone(), self.offset_index.path().to_path_buf(), self.time_index.path().to_path_buf()];
        drop(self);
        for path in paths {
            durability::remove(&path).ctx(|| format!("delete {}", path.display()))?;
        }
        Ok(())
    }

    /// Milliseconds since the epoch of the log file's last modification.
    pub fn modified_ms(&self) -> Result<i64, LogError> {
        let context = || format!("read modification time of {}", self.log_path.display());
        let modified = self.log.metadata().and_then(|m| m.modified()).ctx(context)?;
        let since = modified.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A segment's offset and time index files.
type Indexes = (IndexFile<OffsetEntry>, IndexFile<TimeEntry>);

/// Empty index files for the segment at `base_offset`, replacing any old ones.
fn create_indexes(dir: &Path, base_offset: i64) -> Result<Indexes, LogError> {
    let offsets = IndexFile::create(dir.join(file_name(base_offset, "index")))?;
    let times = IndexFile::create(dir.join(file_name(base_offset, "timeindex")))?;
    Ok((offsets, times))
}

/// Opens (creating if needed) a segment's log file for appending and positional reads.
fn open_log(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .ctx(|| format!("open segment {}", path.display()))
}

/// Fsyncs a directory so entries created in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(|| format!("fsync directory {}", dir.display()))
}
