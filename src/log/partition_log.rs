//! A partition's log: an ordered run of segments in one directory, the last one active.

mod log_start;
mod read;
mod recovery;
mod retention;

pub use log_start::LOG_START_FILE;
pub(crate) use recovery::list_segments;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::info;

use super::batch::{BatchError, BatchHeader, set_base_offset_and_epoch};
use super::cleaner::{self, CleanerCheckpoint};
use super::config::LogConfig;
use super::error::{IoContext, LogError};
use super::segment::{Layout, Segment, Truncation, file_name, sync_dir};
use super::sync_handle::SyncHandle;

/// What opening a log found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments in the log after opening.
    pub segments: usize,
    /// First offset in the log.
    pub log_start_offset: i64,
    /// Next offset to be assigned.
    pub log_end_offset: i64,
    /// Bytes cut from torn or corrupt segment tails.
    pub truncated_bytes: u64,
    /// Why bytes were cut (segment, position, reason; `; `-separated), if any were.
    pub truncation_reason: Option<String>,
    /// Base offsets of the segments deleted because they followed the first cut or gap.
    pub deleted_segments: Vec<i64>,
    /// Bytes of batches those segments held.
    pub deleted_bytes: u64,
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the batch's first record.
    pub base_offset: i64,
    /// Offset given to the batch's last record.
    pub last_offset: i64,
    /// The batch's largest timestamp.
    pub max_timestamp: i64,
    /// The log's end offset after the append (`last_offset + 1`).
    pub log_end_offset: i64,
}

/// Whole batches read from the log, with the log's bounds at the time of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Record batches back to back, as stored; empty when there was nothing to return.
    pub records: bytes::Bytes,
    /// First offset in the log.
    pub log_start_offset: i64,
    /// Next offset to be assigned.
    pub log_end_offset: i64,
}

/// A partition's on-disk log.
pub struct PartitionLog {
    /// The partition directory holding the segment files.
    pub(in crate::log) dir: PathBuf,
    /// Roll, index and retention settings.
    pub(in crate::log) config: LogConfig,
    /// Segments that no longer take appends, by base offset; all older than `active`.
    pub(in crate::log) sealed: BTreeMap<i64, Segment>,
    /// The segment appends go to; always present, possibly empty.
    active: Segment,
    /// Lets the WAL flusher fsync the active segment; repointed on every roll.
    sync: SyncHandle,
    /// The checkpointed log start (`log_start`), possibly inside the first segment; the
    /// effective one is never below the first segment's base.
    log_start: i64,
    /// Whether batches may skip offsets: the log is or was compacted (its cleaner checkpoint
    /// exists, written before the first gap could appear, and never removed).
    pub(in crate::log) gaps_allowed: bool,
    /// Where the cleaner stopped last time, as checkpointed (see `cleaner`).
    pub(in crate::log) cleaner: CleanerCheckpoint,
}

impl PartitionLog {
    /// Opens the log in `dir` (creating the directory if missing) and recovers it: the last
    /// segment is checked batch by batch (length, magic, CRC-32C, contiguous offsets), a torn or
    /// corrupt tail is cut with a warning and its indexes are rebuilt; sealed segments load
    /// their indexes (rebuilt if missing, damaged or pointing past the file) and check the
    /// batches after the last index entry. The log ends at the first bad point: segments after a
    /// cut one, or after a gap between segments, are deleted (see `recovery`). The log start
    /// comes from its checkpoint (see `log_start`).
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<(PartitionLog, RecoveryReport), LogError> {
        check_config(dir, &config)?;
        create_dir(dir)?;
        let cleaned = cleaner::load_checkpoint(dir, now_ms);
        let gaps_allowed = cleaned.is_some() || config.compaction.is_some();
        let layout = Layout { index_interval_bytes: config.index_interval_bytes, allow_gaps: gaps_allowed };
        let opened = recovery::open_segments(dir, layout, now_ms)?;
        let active = opened.active;
        let sync = SyncHandle::new(Arc::clone(active.log_file()), active.log_path().to_path_buf());
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            sealed: opened.sealed,
            active,
            sync,
            log_start: 0,
            gaps_allowed,
            cleaner: cleaned.clone().unwrap_or_default(),
        };
        if cleaned.is_none() && gaps_allowed {
            log.store_cleaner_checkpoint(log.cleaner.clone())?;
        }
        log.apply_checkpoint(log_start::load(dir))?;
        let report = log.report(&opened.cuts, opened.deleted);
        info!(
            dir = %dir.display(),
            segments = report.segments,
            log_start = report.log_start_offset,
            log_end = report.log_end_offset,
            truncated_bytes = report.truncated_bytes,
            deleted_segments = report.deleted_segments.len(),
            "partition log opened"
        );
        Ok((log, report))
    }

    fn report(&self, cuts: &[(i64, Truncation)], deleted: recovery::Deleted) -> RecoveryReport {
        let reasons: Vec<String> = cuts
            .iter()
            .map(|(base, c)| format!("{} at byte {}: {}", file_name(*base, "log"), c.position, c.reason))
            .collect();
        RecoveryReport {
            segments: self.segment_count(),
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
            truncated_bytes: cuts.iter().map(|(_, c)| c.bytes).sum(),
            truncation_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            deleted_segments: deleted.bases,
            deleted_bytes: deleted.bytes,
        }
    }

    /// Appends one batch (already split and validated by the caller): gives it base offset =
    /// log end offset and `leader_epoch` (rewriting the header in place), rolling first if the
    /// active segment is full or too old. A plain write, no fsync: durability is the WAL
    /// flusher's job through [`PartitionLog::sync_handle`].
    pub fn append(&mut self, batch: &mut [u8], leader_epoch: i32, now_ms: i64) -> Result<AppendInfo, LogError> {
        BatchHeader::parse(batch)?;
        set_base_offset_and_epoch(batch, self.log_end_offset(), leader_epoch);
        self.append_replicated(batch, now_ms)
    }

    /// Appends one batch that already carries its offsets and leader epoch, byte for byte (a
    /// follower copying its leader). Its base offset must be the log end offset.
    pub fn append_replicated(&mut self, batch: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        let header = BatchHeader::parse(batch)?;
        if header.total_len() != batch.len() {
            return Err(
                BatchError::LengthMismatch { index: 0, expected: header.total_len(), actual: batch.len() }.into()
            );
        }
        // A compacted leader's log skips the offsets its cleaner removed; a follower copies the
        // gaps as they are.
        let log_end = self.log_end_offset();
        if header.base_offset < log_end || (header.base_offset > log_end && !self.gaps_allowed) {
            return Err(LogError::NotContiguous { base_offset: header.base_offset, log_end });
        }
        if self.should_roll(&header, now_ms) {
            self.roll()?;
        }
        self.active.append(batch, &header, now_ms)?;
        Ok(AppendInfo {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            log_end_offset: header.next_offset(),
        })
    }

    /// Whether `header`'s batch must go to a new segment: the active one is non-empty and would
    /// grow past `segment_bytes`, is too old ([`LogConfig::max_segment_ms`]), or could no longer
    /// index the batch's offsets in 32 bits.
    fn should_roll(&mut self, header: &BatchHeader, now_ms: i64) -> bool {
        if self.active.size() == 0 {
            return false;
        }
        let full = self.active.size() + header.total_len() as u64 > self.config.segment_bytes;
        let offsets_overflow = header.last_offset() - self.active.base_offset() > i64::from(i32::MAX);
        full || self.active_too_old(now_ms) || offsets_overflow
    }

    /// Whether the non-empty active segment started longer than [`LogConfig::max_segment_ms`]
    /// ago (by the wall clock of its first append, so a producer's skewed timestamps neither
    /// roll a segment per batch nor hold one open).
    fn active_too_old(&mut self, now_ms: i64) -> bool {
        self.active.size() > 0 && self.active.age_ms(now_ms) > self.config.max_segment_ms()
    }

    /// In a compacted log, rolls the active segment once it is too old, without waiting for an
    /// append: the cleaner never touches the active segment, so on a quiet topic a record could
    /// otherwise stay uncompacted past `max.compaction.lag.ms` forever. Kafka rolls only on the
    /// next append (`maybeRoll`); the cleaner's timer calls this before planning. Returns
    /// whether it rolled.
    pub fn roll_if_compaction_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        if self.config.compaction.is_none() || !self.active_too_old(now_ms) {
            return Ok(false);
        }
        self.roll()?;
        Ok(true)
    }

    /// Seals the active segment (fsyncing it and its indexes) and starts a new one at the log
    /// end offset.
    fn roll(&mut self) -> Result<(), LogError> {
        self.active.seal()?;
        let mut next = Segment::create(&self.dir, self.active.next_offset(), self.config.index_interval_bytes)?;
        next.set_allow_gaps(self.gaps_allowed);
        let old = std::mem::replace(&mut self.active, next);
        info!(
            dir = %self.dir.display(),
            sealed = old.base_offset(),
            size = old.size(),
            new = self.active.base_offset(),
            "rolled segment"
        );
        self.sealed.insert(old.base_offset(), old);
        self.sync.replace(Arc::clone(self.active.log_file()), self.active.log_path().to_path_buf());
        Ok(())
    }

    /// Next offset to be assigned (last offset + 1).
    pub fn log_end_offset(&self) -> i64 {
        self.active.next_offset()
    }

    /// Bytes of batches in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.sealed.values().map(Segment::size).sum::<u64>() + self.active.size()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the settings (after a topic config change); `index_interval_bytes` applies to
    /// segments created from now on.
    pub fn set_config(&mut self, config: LogConfig) -> Result<(), LogError> {
        check_config(&self.dir, &config)?;
        if config.compaction.is_some() && !self.gaps_allowed {
            // Durable before the first gap can exist: a restart must not read it as damage.
            self.store_cleaner_checkpoint(self.cleaner.clone())?;
            self.gaps_allowed = true;
            self.active.set_allow_gaps(true);
            self.sealed.values_mut().for_each(|s| s.set_allow_gaps(true));
        }
        self.config = config;
        Ok(())
    }

    /// A handle another thread can use to fsync the active segment, whichever it is then.
    pub fn sync_handle(&self) -> SyncHandle {
        self.sync.clone()
    }

    /// Fsyncs the active segment and flushes and fsyncs its index files (clean shutdown).
    /// Sealed segments were synced when they were rolled.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.active.sync()
    }

    /// Closes the log and deletes the partition directory.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        let removed = std::fs::remove_dir_all(&dir);
        super::durability::forget_dir(&dir);
        removed.ctx(|| format!("delete partition directory {}", dir.display()))
    }

    /// Every segment, oldest first.
    pub(in crate::log) fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.values().chain(std::iter::once(&self.active))
    }
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .field("segments", &self.segment_count())
            .field("size_bytes", &self.size_bytes())
            .finish()
    }
}

/// Refuses unusable settings, naming every problem.
fn check_config(dir: &Path, config: &LogConfig) -> Result<(), LogError> {
    let problems = config.problems();
    match problems.is_empty() {
        true => Ok(()),
        false => Err(LogError::InvalidConfig { dir: dir.to_path_buf(), problems }),
    }
}

/// Creates the partition directory if missing, making its name durable.
fn create_dir(dir: &Path) -> Result<(), LogError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).ctx(|| format!("create partition directory {}", dir.display()))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
