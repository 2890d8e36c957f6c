//! Checkpoint files: every hosted partition's high watermark in one file per node
//! (`replication-offset-checkpoint` in the data directory, as Kafka keeps one per log
//! directory), and beside each partition's segments its leader-epoch history
//! (`leader-epoch-checkpoint`, Kafka's format). Each is replaced atomically ([`write_atomic`]),
//! so a power cut leaves the old content or the new one, never a torn file.
//!
//! One file for all high watermarks costs a node two fsyncs per interval however many
//! partitions it hosts; a file per partition cost two each, which at a thousand partitions was
//! most of what the disk and the runtime did. Older releases wrote `high-watermark-checkpoint`
//! per partition; it is still read for a partition the node file does not list.
//!
//! On start a replica's high watermark is `min(checkpoint, log end)` and only moves forward from
//! there: without the checkpoint it would start at its log end, and a consumer could read records
//! that no other replica holds. An older checkpoint is safe, only more conservative. A file that
//! cannot be read or decoded is reported, not trusted.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use uuid::Uuid;

use crate::log::{LogError, write_atomic};
use crate::partition::replication::LeaderEpochCache;

/// The per-partition high watermark file of older releases (read, no longer written).
pub const HW_FILE: &str = "high-watermark-checkpoint";
/// The node's high watermark file, in the data directory (Kafka's name).
pub const NODE_HW_FILE: &str = "replication-offset-checkpoint";
/// The only format version of the node's file: a version line, the entry count, then
/// `<topic id> <partition> <high watermark>` per line.
const NODE_HW_VERSION: &str = "0";
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

/// A partition in the node's high watermark file: its topic's id (a topic deleted and created
/// again under its name has another) and its number.
pub type PartitionKey = (Uuid, i32);

/// Every partition's high watermark in the node's file.
pub type HighWatermarks = BTreeMap<PartitionKey, i64>;

/// The node's high watermarks in the data directory `dir`, `None` if it has no file yet.
pub fn load_high_watermarks(dir: &Path) -> Result<Option<HighWatermarks>, CheckpointError> {
    let path = dir.join(NODE_HW_FILE);
    let Some(text) = read(&path)? else { return Ok(None) };
    decode_high_watermarks(&text)
        .map(Some)
        .map_err(|reason| CheckpointError::Invalid { path: path.display().to_string(), reason })
}

/// Replaces the node's high watermark file in the data directory `dir`.
pub fn store_high_watermarks(dir: &Path, marks: &HighWatermarks) -> Result<(), LogError> {
    let mut text = format!("{NODE_HW_VERSION}\n{}\n", marks.len());
    for ((topic_id, partition), hw) in marks {
        let _ = writeln!(text, "{topic_id} {partition} {hw}");
    }
    store(&dir.join(NODE_HW_FILE), text.as_bytes())
}

/// The node file's entries, strictly: a wrong version, count, field or a negative offset
/// makes the whole file untrusted.
fn decode_high_watermarks(text: &str) -> Result<HighWatermarks, String> {
    let mut lines = text.lines();
    if lines.next() != Some(NODE_HW_VERSION) {
        return Err(format!("unknown version in {}", quote(text)));
    }
    let count: usize = lines.next().and_then(|l| l.parse().ok()).ok_or("no entry count")?;
    let mut marks = HighWatermarks::new();
    for line in lines {
        let mut fields = line.split(' ');
        let entry = (|| {
            let topic_id = Uuid::parse_str(fields.next()?).ok()?;
            let partition: i32 = fields.next()?.parse().ok()?;
            let hw: i64 = fields.next()?.parse().ok()?;
            (partition >= 0 && hw >= 0 && fields.next().is_none()).then_some(((topic_id, partition), hw))
        })();
        let (key, hw) = entry.ok_or_else(|| format!("bad entry {}", quote(line)))?;
        marks.insert(key, hw);
    }
    if marks.len() != count {
        return Err(format!("{} entries where the file says {count}", marks.len()));
    }
    Ok(marks)
}

/// The high watermark an older release checkpointed in partition directory `dir`, `None` if
/// there is none.
pub fn load_high_watermark(dir: &Path) -> Result<Option<i64>, CheckpointError> {
    let path = dir.join(HW_FILE);
    let Some(text) = read(&path)? else { return Ok(None) };
    decode_high_watermark(&text)
        .map(Some)
        .ok_or_else(|| CheckpointError::Invalid { path: path.display().to_string(), reason: quote(&text) })
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
        std::fs::write(dir.path().join(HW_FILE), "0\n4242\n").expect("write");
        assert_eq!(load_high_watermark(dir.path()).expect("load"), Some(4_242));
        assert_eq!(load_high_watermarks(dir.path()).expect("load"), None);
        let marks: HighWatermarks = [((Uuid::new_v4(), 0), 7), ((Uuid::new_v4(), 11), 0)].into();
        store_high_watermarks(dir.path(), &marks).expect("store");
        assert_eq!(load_high_watermarks(dir.path()).expect("load"), Some(marks));
        store_high_watermarks(dir.path(), &HighWatermarks::new()).expect("store");
        assert_eq!(load_high_watermarks(dir.path()).expect("load"), Some(HighWatermarks::new()));
        let mut epochs = LeaderEpochCache::new();
        epochs.assign(0, 0);
        epochs.assign(3, 120);
        store_epochs(dir.path(), &epochs).expect("store");
        assert_eq!(load_epochs(dir.path()).expect("load"), Some(epochs));
        assert!(!dir.path().join(format!("{NODE_HW_FILE}.tmp")).exists(), "no temporary file is left behind");
    }

    #[test]
    fn a_damaged_high_watermark_file_is_refused_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["", "0\n", "1\n5\n", "0\n-3\n", "0\n12\n13\n", "0\nabc\n", "\u{0}\u{0}\u{0}"] {
            std::fs::write(dir.path().join(HW_FILE), bad).expect("write");
            assert!(load_high_watermark(dir.path()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_damaged_node_file_is_refused_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Uuid::new_v4();
        for bad in [
            String::new(),
            "1\n0\n".into(),
            "0\n".into(),
            "0\n2\n".into(),
            format!("0\n1\n{id} 0\n"),
            format!("0\n1\n{id} 0 -1\n"),
            format!("0\n1\n{id} -2 5\n"),
            format!("0\n1\n{id} 0 5 6\n"),
            format!("0\n2\n{id} 0 5\n"),
            "0\n1\nnot-a-uuid 0 5\n".into(),
        ] {
            std::fs::write(dir.path().join(NODE_HW_FILE), &bad).expect("write");
            assert!(load_high_watermarks(dir.path()).is_err(), "{bad:?}");
        }
    }
}
