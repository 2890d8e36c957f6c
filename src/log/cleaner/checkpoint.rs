//! The cleaner checkpoint (`cleaner-offset-checkpoint`, beside the segments): where the last
//! cleaning ended and when a tombstone it kept becomes due. Its existence also says the log may
//! have offset gaps. Replaced atomically ([`write_atomic`]). A damaged one is logged and read as
//! "nothing cleaned yet", which only costs a cleaning that changes nothing.

use std::path::Path;

use tracing::warn;

use crate::log::PartitionLog;
use crate::log::durability::write_atomic;
use crate::log::error::LogError;

/// The checkpoint's file name, in the partition directory.
pub const CLEANER_FILE: &str = "cleaner-offset-checkpoint";
/// The only format version: a version line, the first dirty offset, the tombstone due time.
const VERSION: &str = "0";

/// What the cleaner remembers about a log between cleanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerCheckpoint {
    /// Records from here on were written after the last cleaning (Kafka's first dirty offset).
    pub first_dirty: i64,
    /// When the oldest tombstone the last cleaning kept may go (ms since the epoch); -1 if none.
    pub tombstones_due_ms: i64,
}

impl Default for CleanerCheckpoint {
    fn default() -> Self {
        Self { first_dirty: 0, tombstones_due_ms: -1 }
    }
}

/// The checkpoint of `dir`: `None` when there is none (the log was never compacted), the
/// default when it exists but is unreadable (logged).
pub(crate) fn load(dir: &Path) -> Option<CleanerCheckpoint> {
    let path = dir.join(CLEANER_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the cleaner checkpoint; cleaning from the start");
            return Some(CleanerCheckpoint::default());
        }
    };
    let decoded = std::str::from_utf8(&bytes).ok().and_then(decode);
    if decoded.is_none() {
        warn!(file = %path.display(), "the cleaner checkpoint is damaged; cleaning from the start");
    }
    Some(decoded.unwrap_or_default())
}

/// `0\n<first dirty>\n<tombstones due>\n`, strictly.
fn decode(text: &str) -> Option<CleanerCheckpoint> {
    let mut lines = text.lines();
    if lines.next()? != VERSION {
        return None;
    }
    let first_dirty: i64 = lines.next()?.parse().ok()?;
    let tombstones_due_ms: i64 = lines.next()?.parse().ok()?;
    let sane = first_dirty >= 0 && tombstones_due_ms >= -1 && lines.next().is_none() && text.ends_with('\n');
    sane.then_some(CleanerCheckpoint { first_dirty, tombstones_due_ms })
}

impl PartitionLog {
    /// Replaces the cleaner checkpoint, durably, and keeps it in memory.
    pub(crate) fn store_cleaner_checkpoint(&mut self, checkpoint: CleanerCheckpoint) -> Result<(), LogError> {
        let path = self.dir.join(CLEANER_FILE);
        let text = format!("{VERSION}\n{}\n{}\n", checkpoint.first_dirty, checkpoint.tombstones_due_ms);
        write_atomic(&path, text.as_bytes())
            .map_err(|source| LogError::Io { context: format!("write {}", path.display()), source })?;
        self.cleaner = checkpoint;
        Ok(())
    }

    /// Where the cleaner stopped last time.
    pub fn cleaner_checkpoint(&self) -> CleanerCheckpoint {
        self.cleaner
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
        assert_eq!(decode("0\n42\n-1\n"), Some(CleanerCheckpoint { first_dirty: 42, tombstones_due_ms: -1 }));
        assert_eq!(decode("0\n42\n1700000000000\n").map(|c| c.tombstones_due_ms), Some(1_700_000_000_000));
        for bad in ["", "0\n42\n", "1\n42\n-1\n", "0\n-4\n-1\n", "0\n42\n-2\n", "0\n42\n-1", "0\n42\n-1\n7\n"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()), None, "no file: never compacted");
        std::fs::write(dir.path().join(CLEANER_FILE), b"garbage").expect("write");
        assert_eq!(load(dir.path()), Some(CleanerCheckpoint::default()), "damaged: still compacted, clean again");
    }
}
