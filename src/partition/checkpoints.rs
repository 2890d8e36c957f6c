//! A partition's checkpoint files, beside its segments: the high watermark
//! (`high-watermark-checkpoint`) and the leader-epoch history (`leader-epoch-checkpoint`,
//! Kafka's format). Each is replaced atomically ([`write_atomic`]), so a power cut leaves the
//! old content or the new one, never a torn file.
//!
//! On start a replica's high watermark is `min(checkpoint, log end)` and only moves forward from
//! there: without the checkpoint it would start at its log end, and a consumer could read records
//! that no other replica holds. A file that cannot be read or decoded is reported, not trusted.

use std::path::Path;

use crate::log::{LogError, write_atomic};
use crate::partition::replication::LeaderEpochCache;

/// The high watermark checkpoint's file name.
pub const HW_FILE: &str = "high-watermark-checkpoint";
/// The leader-epoch checkpoint's file name (Kafka's).
pub const EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// The only format version of the high watermark file: a version line, then the offset.
const HW_VERSION: &str = "0";

/// Why a checkpoint was not usable; the replica then falls back to what the log itself proves.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading the file failed (other than its absence).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file's content is not a checkpoint.
    #[error("{path} is not a valid checkpoint: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The file's text, or `None` if it does not exist.
fn read(path: &Path) -> Result<Option<String>, CheckpointError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Read { path: path.display().to_string(), source }),
    }
}

/// The high watermark checkpointed in `dir`, `None` if there is none.
pub fn load_high_watermark(dir: &Path) -> Result<Option<i64>, CheckpointError> {
    let path = dir.join(HW_FILE);
    let Some(text) = read(&path)? else { return Ok(None) };
    decode_high_watermark(&text)
        .map(Some)
        .ok_or_else(|| CheckpointError::Invalid { path: path.display().to_string(), reason: quote(&text) })
}

/// Writes the high watermark checkpoint of `dir`.
pub fn store_high_watermark(dir: &Path, high_watermark: i64) -> Result<(), LogError> {
    store(&dir.join(HW_FILE), format!("{HW_VERSION}\n{high_watermark}\n").as_bytes())
}

/// Replaces a checkpoint file whole ([`write_atomic`]).
fn store(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    write_atomic(path, bytes).map_err(|source| LogError::Io { context: format!("write {}", path.display()), source })
}

/// `0\n<offset>\n`, strictly: anything else is not what this code wrote.
fn decode_high_watermark(text: &str) -> Option<i64> {
    let mut lines = text.lines();
    if lines.next()? != HW_VERSION {
        return None;
    }
    let offset: i64 = lines.next()?.parse().ok()?;
    (offset >= 0 && lines.next().is_none()).then_some(offset)
}

/// The leader-epoch history checkpointed in `dir`, `None` if there is none.
pub fn load_epochs(dir: &Path) -> Result<Option<LeaderEpochCache>, CheckpointError> {
    let path = dir.join(EPOCH_FILE);
    let Some(text) = read(&path)? else { return Ok(None) };
    LeaderEpochCache::decode(&text)
        .map(Some)
        .map_err(|e| CheckpointError::Invalid { path: path.display().to_string(), reason: e.to_string() })
}

/// Writes the leader-epoch checkpoint of `dir`.
pub fn store_epochs(dir: &Path, epochs: &LeaderEpochCache) -> Result<(), LogError> {
    store(&dir.join(EPOCH_FILE), epochs.encode().as_bytes())
}

/// The start of a bad file, for the error.
fn quote(text: &str) -> String {
    format!("{:?}", text.chars().take(40).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_checkpoints_round_trip_and_are_absent_until_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load_high_watermark(dir.path()).expect("load"), None);
        assert!(load_epochs(dir.path()).expect("load").is_none());
        store_high_watermark(dir.path(), 4_242).expect("store");
        assert_eq!(load_high_watermark(dir.path()).expect("load"), Some(4_242));
        let mut epochs = LeaderEpochCache::new();
        epochs.assign(0, 0);
        epochs.assign(3, 120);
        store_epochs(dir.path(), &epochs).expect("store");
        assert_eq!(load_epochs(dir.path()).expect("load"), Some(epochs));
        assert!(!dir.path().join(format!("{HW_FILE}.tmp")).exists(), "no temporary file is left behind");
    }

    #[test]
    fn a_damaged_high_watermark_file_is_refused_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["", "0\n", "1\n5\n", "0\n-3\n", "0\n12\n13\n", "0\nabc\n", "\u{0}\u{0}\u{0}"] {
            std::fs::write(dir.path().join(HW_FILE), bad).expect("write");
            assert!(load_high_watermark(dir.path()).is_err(), "{bad:?}");
        }
    }
}
