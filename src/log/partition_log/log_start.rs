//! The log start offset (Kafka's `logStartOffset`): the first offset a reader may see. It is
//! at least the first segment's base and may lie inside a segment once DeleteRecords (or a
//! follower copying its leader's) moved it there, so it is checkpointed beside the segments in
//! `log-start-offset-checkpoint`, replaced atomically ([`write_atomic`]) before anything relies
//! on it: after a crash, records below it stay deleted. Whole segments below it are removed.
//!
//! A checkpoint that cannot be read or decoded is logged and ignored: the log then starts at its
//! first segment, which is what the segment files themselves prove.

use std::path::Path;

use tracing::{info, warn};

use super::PartitionLog;
use crate::log::durability::write_atomic;
use crate::log::error::LogError;

/// The checkpoint's file name, in the partition directory.
pub const LOG_START_FILE: &str = "log-start-offset-checkpoint";
/// The only format version: a version line, then the offset.
const VERSION: &str = "0";

/// The checkpointed log start of `dir`; `None` when there is none or it is unusable (logged).
pub(super) fn load(dir: &Path) -> Option<i64> {
    let path = dir.join(LOG_START_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the log start checkpoint; ignoring it");
            return None;
        }
    };
    let decoded = std::str::from_utf8(&bytes).ok().and_then(decode);
    if decoded.is_none() {
        let start = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
        warn!(file = %path.display(), content = ?start,
            "the log start checkpoint is damaged; ignoring it (the log starts at its first segment)");
    }
    decoded
}

/// `0\n<offset>\n`, strictly: anything else is not what this code wrote.
fn decode(text: &str) -> Option<i64> {
    let mut lines = text.lines();
    if lines.next()? != VERSION {
        return None;
    }
    let offset: i64 = lines.next()?.parse().ok()?;
    (offset >= 0 && lines.next().is_none() && text.ends_with('\n')).then_some(offset)
}

/// Replaces the checkpoint of `dir` with `offset`.
pub(super) fn store(dir: &Path, offset: i64) -> Result<(), LogError> {
    let path = dir.join(LOG_START_FILE);
    write_atomic(&path, format!("{VERSION}\n{offset}\n").as_bytes())
        .map_err(|source| LogError::Io { context: format!("write {}", path.display()), source })
}

impl PartitionLog {
    /// First offset in the log: the checkpointed log start, or the first segment's base when
    /// retention has deleted past it.
    pub fn log_start_offset(&self) -> i64 {
        let first_base = self.sealed.first_key_value().map_or(self.active.base_offset(), |(base, _)| *base);
        self.log_start.max(first_base)
    }

    /// Moves the log start up to `offset` (DeleteRecords, or a follower following its leader's):
    /// checkpoints it durably, then deletes the sealed segments wholly below it. Never moves it
    /// back: an `offset` at or below the current start changes nothing. Refuses an `offset` past
    /// the log end. Returns the base offsets of the segments deleted.
    pub fn advance_log_start(&mut self, offset: i64) -> Result<Vec<i64>, LogError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset > log_end {
            return Err(LogError::OffsetOutOfRange { offset, log_start, log_end });
        }
        if offset <= log_start {
            return Ok(Vec::new());
        }
        store(&self.dir, offset)?;
        self.log_start = offset;
        let deleted = self.delete_segments_below_start()?;
        info!(dir = %self.dir.display(), log_start = offset, deleted_segments = deleted.len(), "log start advanced");
        Ok(deleted)
    }

    /// Deletes the sealed segments whose every offset lies below the log start. The active
    /// segment stays, as in Kafka: it is where the log end lives.
    pub(super) fn delete_segments_below_start(&mut self) -> Result<Vec<i64>, LogError> {
        let mut deleted = Vec::new();
        while let Some((_, oldest)) = self.sealed.first_key_value()
            && oldest.next_offset() <= self.log_start
            && let Some((base, segment)) = self.sealed.pop_first()
        {
            segment.remove_files()?;
            deleted.push(base);
        }
        Ok(deleted)
    }

    /// Applies the checkpoint found at open: a log ending below it lost its tail after the
    /// records were deleted (they must stay deleted), so it is emptied and starts there, as
    /// Kafka's recovery does.
    pub(super) fn apply_checkpoint(&mut self, checkpointed: Option<i64>) -> Result<(), LogError> {
        let Some(offset) = checkpointed else { return Ok(()) };
        if offset > self.log_end_offset() {
            warn!(dir = %self.dir.display(), log_start = offset, log_end = self.log_end_offset(),
                "the log ends below its checkpointed log start; emptying it to start there");
            return self.reset_to(offset);
        }
        self.log_start = offset;
        self.delete_segments_below_start()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_round_trips_and_damaged_files_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()), None);
        store(dir.path(), 40).expect("store");
        assert_eq!(load(dir.path()), Some(40));
        assert!(!dir.path().join(format!("{LOG_START_FILE}.tmp")).exists(), "no temporary file is left behind");
        let torn: &[&[u8]] = &[
            b"",
            b"0",
            b"0\n",
            b"0\n4",
            b"1\n40\n",
            b"0\n-3\n",
            b"0\n40\n41\n",
            b"0\nabc\n",
            b"\0\0\0\0",
            b"0\n\xff\xfe\n",
        ];
        for bad in torn {
            std::fs::write(dir.path().join(LOG_START_FILE), bad).expect("write");
            assert_eq!(load(dir.path()), None, "{bad:?}");
        }
    }
}
