//! Deciding whether a log is due for cleaning, and what the cleaning may touch.
//!
//! Due means: dirty enough (`min.cleanable.dirty.ratio`), a dirty segment that waited longer
//! than `max.compaction.lag.ms`, or a kept tombstone or transaction marker past
//! `delete.retention.ms`.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::horizon::CleanedRanges;
use crate::log::PartitionLog;
use crate::log::batch::BatchHeader;
use crate::log::config::Compaction;
use crate::log::segment::Segment;
use crate::partition::transactions::AbortedTxn;

/// One segment as a cleaning sees it: immutable while the cleaning runs (it is sealed and below
/// the high watermark; `apply_clean` checks nothing changed before swapping).
#[derive(Debug, Clone)]
pub(crate) struct SourceSegment {
    /// The segment's base offset (its file name).
    pub base_offset: i64,
    /// Bytes of valid batches.
    pub size: u64,
    /// Last offset + 1 (the base while empty).
    pub next_offset: i64,
    /// The log file, read with positional reads only.
    pub file: Arc<File>,
    /// Its path, for errors.
    pub path: PathBuf,
}

impl SourceSegment {
    fn of(segment: &Segment) -> SourceSegment {
        SourceSegment {
            base_offset: segment.base_offset(),
            size: segment.size(),
            next_offset: segment.next_offset(),
            file: Arc::clone(segment.log_file()),
            path: segment.log_path().to_path_buf(),
        }
    }
}

/// A cleaning to run off the owner's thread ([`CleanJob::run`]).
#[derive(Debug, Clone)]
pub struct CleanJob {
    /// The partition directory, where the cleaned files are written.
    pub(crate) dir: PathBuf,
    /// The cleanable segments, oldest first.
    pub(crate) cleanable: Vec<SourceSegment>,
    /// Every segment, the active one included (up to its size now): a producer's last batch
    /// may lie anywhere.
    pub(crate) whole_log: Vec<SourceSegment>,
    /// Records from here on were not cleaned yet.
    pub(crate) first_dirty: i64,
    /// When each part below `first_dirty` was first cleaned (the tombstones' horizons).
    pub(crate) ranges: CleanedRanges,
    /// The topic's compaction settings.
    pub(crate) compaction: Compaction,
    /// Cleaned groups stay within this many bytes of input (`segment.bytes`).
    pub(crate) segment_bytes: u64,
    /// The clock the cleaning judges tombstones and the compaction lag by.
    pub(crate) now_ms: i64,
    /// The aborted transactions of the cleanable part, by producer: `(first offset, marker
    /// offset)` ranges. Their records are dropped and never supersede a committed value.
    pub(crate) aborted: HashMap<i64, Vec<(i64, i64)>>,
}

impl CleanJob {
    /// Bytes of the cleanable segments.
    pub fn cleanable_bytes(&self) -> u64 {
        self.cleanable.iter().map(|s| s.size).sum()
    }

    /// The job, told which transactions of the log were aborted (the partition's index knows;
    /// the log alone would need every marker read back first).
    pub fn with_aborted(mut self, aborted: impl IntoIterator<Item = AbortedTxn>) -> CleanJob {
        for a in aborted {
            self.aborted.entry(a.producer_id).or_default().push((a.first_offset, a.last_offset));
        }
        self
    }

    /// Whether the batch `header` belongs to an aborted transaction.
    pub(crate) fn is_aborted(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && !header.is_control()
            && self.aborted.get(&header.producer_id).is_some_and(|ranges| {
                ranges.iter().any(|&(first, marker)| first <= header.base_offset && header.base_offset < marker)
            })
    }
}

impl PartitionLog {
    /// The cleaning this log is due for, if any (see the module docs of `cleaner`): `None` for
    /// a log that is not compacted, has nothing cleanable below `stable_offset`, or is not
    /// dirty enough yet. `stable_offset` is the last stable offset (the high watermark when no
    /// transaction is open): a transaction not yet decided is not cleaned, as in Kafka, since
    /// whether its records count is not known yet.
    pub fn plan_clean(&self, now_ms: i64, stable_offset: i64) -> Option<CleanJob> {
        let compaction = self.config.compaction.clone()?;
        let young_from = now_ms.saturating_sub(compaction.min_lag_ms);
        let old_enough = |s: &Segment| compaction.min_lag_ms <= 0 || s.max_timestamp() <= young_from;
        let cleanable: Vec<SourceSegment> = self
            .sealed
            .values()
            .take_while(|s| s.next_offset() <= stable_offset && old_enough(s))
            .map(SourceSegment::of)
            .collect();
        if cleanable.is_empty() {
            return None;
        }
        let first_dirty = self.cleaner.first_dirty.max(self.log_start_offset());
        let total: u64 = cleanable.iter().map(|s| s.size).sum();
        let dirty: u64 = cleanable.iter().filter(|s| s.next_offset > first_dirty).map(|s| s.size).sum();
        let dirty_enough = dirty > 0 && dirty as f64 >= compaction.min_dirty_ratio * total as f64;
        let tombstones_due = self.cleaner.tombstones_due_ms >= 0 && now_ms >= self.cleaner.tombstones_due_ms;
        // As Kafka's `maxCompactionDelay`: a batch without a timestamp (-1) says nothing about
        // how long it waited.
        let overdue_from = now_ms.saturating_sub(compaction.max_lag_ms);
        let overdue = compaction.max_lag_ms < i64::MAX
            && self.sealed.values().take(cleanable.len()).any(|s| {
                s.next_offset() > first_dirty
                    && s.first_batch_timestamp().ok().flatten().is_some_and(|ts| ts > 0 && ts <= overdue_from)
            });
        if !dirty_enough && !tombstones_due && !overdue {
            return None;
        }
        Some(CleanJob {
            dir: self.dir.clone(),
            cleanable,
            whole_log: self.segments().map(SourceSegment::of).collect(),
            first_dirty,
            ranges: self.cleaner.ranges.clone(),
            compaction,
            segment_bytes: self.config.segment_bytes,
            now_ms,
            aborted: HashMap::new(),
        })
    }
}
