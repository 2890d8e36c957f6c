//! The cleaner checkpoint (`cleaner-offset-checkpoint`, beside the segments): where the last
//! cleaning ended, when a tombstone it kept becomes due, and when each part of the log was
//! first cleaned (the tombstones' delete horizons, see `horizon`). Its existence also says the log may
//! have offset gaps. Replaced atomically ([`write_atomic`]). A damaged one is logged and read as
//! "nothing cleaned yet", which only costs a cleaning that changes nothing.

use std::path::Path;

use tracing::warn;

use super::horizon::CleanedRanges;
use crate::log::PartitionLog;
use crate::log::durability::write_atomic;
use crate::log::error::LogError;

/// The checkpoint's file name, in the partition directory.
pub const CLEANER_FILE: &str = "cleaner-offset-checkpoint";
/// The format: a version line, the first dirty offset, the tombstone due time, then one
/// `<end> <time>` line per remembered cleaning.
const VERSION: &str = "1";
/// The format before the cleanings were remembered (no lines after the due time).
const VERSION_0: &str = "0";

/// What the cleaner remembers about a log between cleanings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanerCheckpoint {
    /// Records from here on were written after the last cleaning (Kafka's first dirty offset).
    pub first_dirty: i64,
    /// When the oldest tombstone the last cleaning kept may go (ms since the epoch); -1 if none.
    pub tombstones_due_ms: i64,
    /// When each part below `first_dirty` was first cleaned.
    pub ranges: CleanedRanges,
}

impl Default for CleanerCheckpoint {
    fn default() -> Self {
        Self { first_dirty: 0, tombstones_due_ms: -1, ranges: CleanedRanges::default() }
    }
}

/// The checkpoint of `dir`: `None` when there is none (the log was never compacted), the
/// default when it exists but is unreadable (logged). A version 0 one, which did not remember
/// its cleanings, reads as if everything cleaned was first cleaned at `now_ms`.
pub(crate) fn load(dir: &Path, now_ms: i64) -> Option<CleanerCheckpoint> {
    let path = dir.join(CLEANER_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the cleaner checkpoint; cleaning from the start");
            return Some(CleanerCheckpoint::default());
        }
    };
    let decoded = std::str::from_utf8(&bytes).ok().and_then(|text| decode(text, now_ms));
    if decoded.is_none() {
        warn!(file = %path.display(), "the cleaner checkpoint is damaged; cleaning from the start");
    }
    Some(decoded.unwrap_or_default())
}

/// `1\n<first dirty>\n<tombstones due>\n` and the cleanings' lines (none for version 0),
/// strictly: the last cleaning ends at the first dirty offset.
fn decode(text: &str, now_ms: i64) -> Option<CleanerCheckpoint> {
    let mut lines = text.lines();
    let version = lines.next()?;
    let first_dirty: i64 = lines.next()?.parse().ok()?;
    let tombstones_due_ms: i64 = lines.next()?.parse().ok()?;
    let ranges = match version {
        VERSION_0 if lines.next().is_none() => CleanedRanges::unknown_before(first_dirty, now_ms),
        VERSION => CleanedRanges::decode(lines)?,
        _ => return None,
    };
    let ends_at_first_dirty = ranges.0.last().map_or(0, |(end, _)| *end) == first_dirty;
    let sane = first_dirty >= 0 && tombstones_due_ms >= -1 && ends_at_first_dirty && text.ends_with('\n');
    sane.then_some(CleanerCheckpoint { first_dirty, tombstones_due_ms, ranges })
}

impl PartitionLog {
    /// Replaces the cleaner checkpoint, durably, and keeps it in memory.
    pub(crate) fn store_cleaner_checkpoint(&mut self, checkpoint: CleanerCheckpoint) -> Result<(), LogError> {
        let path = self.dir.join(CLEANER_FILE);
        let (first_dirty, due) = (checkpoint.first_dirty, checkpoint.tombstones_due_ms);
        let text = format!("{VERSION}\n{first_dirty}\n{due}\n{}", checkpoint.ranges.encode());
        write_atomic(&path, text.as_bytes())
            .map_err(|source| LogError::Io { context: format!("write {}", path.display()), source })?;
        self.cleaner = checkpoint;
        Ok(())
    }

    /// Forgets the cleanings past `offset` after the log was truncated there (Kafka's
    /// `maybeTruncateCheckpoint`): records written there again are dirty, and their tombstones
    /// are first cleaned by a later cleaning.
    pub(crate) fn truncate_cleaner_checkpoint(&mut self, offset: i64) -> Result<(), LogError> {
        if !self.gaps_allowed || self.cleaner.first_dirty <= offset {
            return Ok(());
        }
        let ranges = self.cleaner.ranges.truncated_to(offset);
        let due = self.cleaner.tombstones_due_ms;
        self.store_cleaner_checkpoint(CleanerCheckpoint { first_dirty: offset, tombstones_due_ms: due, ranges })
    }

    /// Where the cleaner stopped last time.
    pub fn cleaner_checkpoint(&self) -> &CleanerCheckpoint {
        &self.cleaner
    }

    /// In a compacted log, the offset below which this replica may have cleaned (replicas
    /// clean on their own schedule, so only the part above it compares byte for byte); `None`
    /// in a log that was never compacted.
    pub fn cleaned_below(&self) -> Option<i64> {
        self.gaps_allowed.then_some(self.cleaner.first_dirty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_decodes_strictly() {
        let checkpoint = |first_dirty, due, ranges: &[(i64, i64)]| CleanerCheckpoint {
            first_dirty,
            tombstones_due_ms: due,
            ranges: CleanedRanges(ranges.to_vec()),
        };
        assert_eq!(decode("1\n0\n-1\n", 5), Some(CleanerCheckpoint::default()));
        assert_eq!(decode("1\n42\n-1\n10 100\n42 200\n", 5), Some(checkpoint(42, -1, &[(10, 100), (42, 200)])));
        assert_eq!(decode("1\n42\n1700000000000\n42 1\n", 5).map(|c| c.tombstones_due_ms), Some(1_700_000_000_000));
        assert_eq!(decode("0\n42\n-1\n", 5), Some(checkpoint(42, -1, &[(42, 5)])), "version 0: cleaned at load time");
        let bad = [
            "",
            "0\n42\n",
            "2\n42\n-1\n42 1\n",
            "1\n-4\n-1\n",
            "1\n42\n-2\n42 1\n",
            "1\n42\n-1\n42 1",
            "1\n42\n-1\n",
            "1\n42\n-1\n40 1\n",
            "1\n42\n-1\n42 1\n7\n",
            "0\n42\n-1\n42 1\n",
        ];
        for bad in bad {
            assert_eq!(decode(bad, 5), None, "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path(), 5), None, "no file: never compacted");
        std::fs::write(dir.path().join(CLEANER_FILE), b"garbage").expect("write");
        assert_eq!(load(dir.path(), 5), Some(CleanerCheckpoint::default()), "damaged: still compacted, clean again");
    }
}
