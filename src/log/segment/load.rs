//! Opening segments after a restart: the last one is checked batch by batch (length, magic,
//! CRC-32C, offset continuity) and its indexes rebuilt; sealed ones load their indexes and only
//! walk the batches after the last index entry.

use std::path::Path;
use std::sync::Arc;

use tracing::warn;

use super::{Indexes, Segment, create_indexes, file_name, open_log};
use crate::log::batch::BATCH_HEADER_LEN;
use crate::log::durability;
use crate::log::error::{IoContext, LogError};
use crate::log::index::{IndexFile, offset_entries_valid, time_entries_valid};
use crate::log::reader::{Step, WINDOW_BYTES, WindowReader};

/// A torn or corrupt tail cut off a segment while opening it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Truncation {
    /// Where the first bad batch started; the file now ends here.
    pub position: u64,
    /// How many bytes were cut.
    pub bytes: u64,
    /// Why the batch at `position` was refused.
    pub reason: String,
}

/// How a log lays out its segments, as opening one needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bytes of log between two sparse index entries.
    pub index_interval_bytes: u32,
    /// Whether batches may skip offsets (a compacted log).
    pub allow_gaps: bool,
}

/// Where a walk over batches stopped early, and why.
type StopPoint = Option<(u64, String)>;

impl Segment {
    /// Opens the last segment of a log: every batch is checked, a bad tail is cut (with a
    /// warning) and both indexes are rebuilt from the scan.
    pub fn recover(
        dir: &Path,
        base_offset: i64,
        layout: Layout,
        now_ms: i64,
    ) -> Result<(Segment, Option<Truncation>), LogError> {
        let (mut segment, file_len) = Segment::open_existing(dir, base_offset, layout, false)?;
        let cut = segment.scan_all(file_len, true)?;
        segment.roll_clock_ms = segment.first_batch_timestamp()?.map(|ts| ts.min(now_ms));
        Ok((segment, cut))
    }

    /// Opens a sealed segment: loads its indexes when they look sane and walks only the batches
    /// after the last offset index entry; otherwise rebuilds the indexes by walking every header.
    pub fn open_sealed(
        dir: &Path,
        base_offset: i64,
        layout: Layout,
    ) -> Result<(Segment, Option<Truncation>), LogError> {
        let (mut segment, file_len) = Segment::open_existing(dir, base_offset, layout, true)?;
        let cut = match segment.resume(file_len)? {
            true => None,
            false => segment.rebuild(dir, file_len, false)?,
        };
        segment.close_indexes()?;
        Ok((segment, cut))
    }

    /// Opens the files of an existing segment, loading its indexes when `load_indexes` and they
    /// pass the checks (empty ones otherwise). Also returns the log file's length.
    fn open_existing(
        dir: &Path,
        base_offset: i64,
        layout: Layout,
        load_indexes: bool,
    ) -> Result<(Segment, u64), LogError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let log = open_log(&log_path)?;
        let metadata = log.metadata();
        let file_len = metadata.ctx(|| format!("stat segment {}", log_path.display()))?.len();
        durability::opened(&log_path, file_len);
        let loaded = match load_indexes {
            true => load_valid_indexes(dir, base_offset, file_len)?,
            false => None,
        };
        let (offset_index, time_index) = match loaded {
            Some(indexes) => indexes,
            None => create_indexes(dir, base_offset)?,
        };
        let mut segment =
            Segment::assemble(base_offset, log_path, log, offset_index, time_index, layout.index_interval_bytes);
        segment.allow_gaps = layout.allow_gaps;
        Ok((segment, file_len))
    }

    /// Recreates both indexes by walking the whole file (checking CRCs when `verify_crc`), cuts
    /// a bad tail, and flushes the indexes.
    fn rebuild(&mut self, dir: &Path, file_len: u64, verify_crc: bool) -> Result<Option<Truncation>, LogError> {
        (self.offset_index, self.time_index) = create_indexes(dir, self.base_offset)?;
        self.restart_stats(0, self.base_offset, -1, -1);
        self.scan_all(file_len, verify_crc)
    }

    /// Walks the whole file into empty indexes, cuts a bad tail and flushes the indexes.
    fn scan_all(&mut self, file_len: u64, verify_crc: bool) -> Result<Option<Truncation>, LogError> {
        let torn = self.scan(0, file_len, verify_crc)?;
        let cut = self.cut_tail(file_len, torn)?;
        self.flush_indexes()?;
        Ok(cut)
    }

    /// Picks up from the last offset index entry: walks the batches after it (adding any index
    /// entries they are owed) to learn the size, next offset and largest timestamp. `false` when
    /// that walk or the time index disagrees with the file, so the indexes must be rebuilt.
    pub(super) fn resume(&mut self, end: u64) -> Result<bool, LogError> {
        let base = self.base_offset;
        let (position, next) = self
            .offset_index
            .last()
            .map_or((0, base), |e| (u64::from(e.position), base + i64::from(e.relative_offset)));
        let (max_ts, max_ts_offset) =
            self.time_index.last().map_or((-1, -1), |e| (e.timestamp, base + i64::from(e.relative_offset)));
        self.restart_stats(position, next, max_ts, max_ts_offset);
        let torn = self.scan(position, end, false)?;
        Ok(torn.is_none() && self.offset_of_max_timestamp < self.next_offset)
    }

    /// Sets what is known up to the batch at `position`, whose base offset is `next_offset`.
    fn restart_stats(&mut self, position: u64, next_offset: i64, max_timestamp: i64, offset_of_max: i64) {
        self.size = position;
        self.next_offset = next_offset;
        self.max_timestamp = max_timestamp;
        self.offset_of_max_timestamp = offset_of_max;
        // The batch at `position` carries the last index entry, so the count restarts there.
        self.bytes_since_index_entry = 0;
    }

    /// Walks the batches from `from` to `end`, accounting for each one, until the end or the
    /// first batch that is torn, insane, out of offset order or (when `verify_crc`) fails its
    /// CRC; returns where and why it stopped early.
    pub(super) fn scan(&mut self, from: u64, end: u64, verify_crc: bool) -> Result<StopPoint, LogError> {
        // A second handle to the file so the reader's borrow does not pin `self`.
        let (log, path) = (Arc::clone(&self.log), self.log_path.clone());
        let mut reader = WindowReader::new(&log, &path, WINDOW_BYTES);
        let mut pos = from;
        loop {
            let header = match reader.header_at(pos, end)? {
                Step::End => return Ok(None),
                Step::Torn(reason) => return Ok(Some((pos, reason))),
                Step::Batch(h) => h,
            };
            let out_of_order = match self.allow_gaps {
                true => header.base_offset < self.next_offset,
                false => header.base_offset != self.next_offset,
            };
            if out_of_order {
                let reason =
                    format!("offset gap: expected base offset {}, found {}", self.next_offset, header.base_offset);
                return Ok(Some((pos, reason)));
            }
            if verify_crc && !reader.crc_matches(pos, &header, end)? {
                return Ok(Some((pos, "CRC-32C mismatch".to_string())));
            }
            self.track(&header, pos)?;
            pos += header.total_len() as u64;
        }
    }

    /// Cuts the file at the torn position, if any, and says so loudly.
    fn cut_tail(&mut self, file_len: u64, torn: StopPoint) -> Result<Option<Truncation>, LogError> {
        let Some((position, reason)) = torn else {
            return Ok(None);
        };
        self.log
            .set_len(position)
            .ctx(|| format!("truncate segment {} to byte {position}", self.log_path.display()))?;
        durability::truncated(&self.log_path, position);
        // Made durable at once: a second crash must not bring the torn bytes back behind the
        // batches appended from here on.
        let synced = durability::sync_data(&self.log, &self.log_path);
        synced.ctx(|| format!("fsync segment {} after cutting it", self.log_path.display()))?;
        let bytes = file_len - position;
        warn!(
            segment = %self.log_path.display(),
            position,
            bytes,
            %reason,
            "truncated a torn or corrupt segment tail"
        );
        Ok(Some(Truncation { position, bytes, reason }))
    }
}

/// Both index files of a sealed segment, if they exist and pass the checks against a log file
/// of `file_len` bytes.
fn load_valid_indexes(dir: &Path, base_offset: i64, file_len: u64) -> Result<Option<Indexes>, LogError> {
    // Each entry marks a distinct batch, so a longer index cannot be genuine.
    let max_entries = file_len / BATCH_HEADER_LEN as u64 + 2;
    let offset_path = dir.join(file_name(base_offset, "index"));
    let Some(offsets) = IndexFile::load(offset_path, max_entries, |e| offset_entries_valid(e, file_len))? else {
        return Ok(None);
    };
    let time_path = dir.join(file_name(base_offset, "timeindex"));
    Ok(IndexFile::load(time_path, max_entries, time_entries_valid)?.map(|times| (offsets, times)))
}
