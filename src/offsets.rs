//! Committed consumer-group offsets as records of the internal `__consumer_offsets` topic.
//! The coordinator appends one batch per OffsetCommit and rebuilds its cache on start by
//! reading the partitions back. Keys and values are JSON so the topic stays readable with any
//! Kafka tool; a record without a value is a tombstone (the offset was deleted).

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use serde::{Deserialize, Serialize};

use crate::records::encode_batch;

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Which offsets partition (and so which coordinator) owns a group: Kafka's
/// `abs(groupId.hashCode) % partitions`, with Java's string hash, so tools agree.
pub fn partition_for_group(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// The key of one committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OffsetKey {
    /// Consumer group.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// A committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record (-1 if unknown).
    pub leader_epoch: i32,
    /// Free-form metadata the client attached.
    pub metadata: Option<String>,
    /// When the broker accepted the commit (ms since the epoch).
    pub commit_timestamp: i64,
}

/// One offsets-topic record: a commit, or a deletion when `value` is `None`.
pub type OffsetRecord = (OffsetKey, Option<CommittedOffset>);

/// Encodes commits as one record batch (consecutive sequences keep it a single batch).
pub fn encode_commits(records: &[OffsetRecord], now_ms: i64) -> Result<Bytes, String> {
    let entries = records
        .iter()
        .map(|(key, value)| {
            let key = serde_json::to_vec(key).map_err(|e| e.to_string())?;
            let value = value.as_ref().map(serde_json::to_vec).transpose().map_err(|e| e.to_string())?;
            Ok((Some(Bytes::from(key)), value.map(Bytes::from)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    encode_batch(&entries, now_ms, Compression::None)
}

/// Decodes the records of batches read back from the offsets topic, in log order. Records that
/// are not ours (someone produced to the internal topic) are skipped.
pub fn decode_commits(mut batches: Bytes) -> Result<Vec<OffsetRecord>, String> {
    let sets = RecordBatchDecoder::decode_all(&mut batches).map_err(|e| format!("{e:#}"))?;
    let records = sets.into_iter().flat_map(|set| set.records);
    Ok(records
        .filter_map(|r| {
            let key: OffsetKey = serde_json::from_slice(r.key.as_deref()?).ok()?;
            let value = match r.value {
                None => None,
                Some(v) => Some(serde_json::from_slice(&v).ok()?),
            };
            Some((key, value))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str, p: i32) -> OffsetKey {
        OffsetKey { group: group.into(), topic: "orders".into(), partition: p }
    }

    #[test]
    fn commits_round_trip_through_a_batch() {
        let commit = CommittedOffset { offset: 42, leader_epoch: 0, metadata: Some("m".into()), commit_timestamp: 7 };
        let records = vec![(key("g", 0), Some(commit)), (key("g", 1), None)];
        let batch = encode_commits(&records, 1_000).expect("encode");
        let header = crate::log::BatchHeader::parse(&batch).expect("one batch");
        assert_eq!(header.record_count, 2);
        assert_eq!(decode_commits(batch).expect("decode"), records);
    }

    #[test]
    fn partition_matches_kafkas_string_hash() {
        // Java: "my-group".hashCode() == -1_906_497_762 → abs % 50 == 12.
        assert_eq!(partition_for_group("my-group", 50), 12);
        assert_eq!(partition_for_group("", 50), 0);
        for g in ["a", "group-1", "ünïcode"] {
            assert!((0..7).contains(&partition_for_group(g, 7)));
        }
    }
}
