//! Committed consumer-group offsets as records of the internal `__consumer_offsets` topic.
//! The coordinator appends one batch per OffsetCommit and rebuilds its cache on start by
//! reading the partitions back. The topic also holds each group's settled membership (see
//! `group::durable`). Keys and values are JSON so the topic stays readable with any Kafka tool;
//! a record without a value is a tombstone (the offset, or the group's membership, was deleted).

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use serde::{Deserialize, Serialize};

use crate::group::GroupSnapshot;
use crate::records::{encode_batch, encode_transactional_batch};

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

/// The key of a group's membership record: a field no offset key has, so neither is read as
/// the other (and a broker that predates these records skips them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GroupKey {
    /// The group id.
    group_metadata: String,
}

/// One offsets-topic record: a commit, or a deletion when `value` is `None`.
pub type OffsetRecord = (OffsetKey, Option<CommittedOffset>);

/// Encodes commits as one record batch; with `producer`, as a batch of that producer's
/// transaction (TxnOffsetCommit), visible once its commit marker follows.
pub fn encode_commits(records: &[OffsetRecord], now_ms: i64, producer: Option<(i64, i16)>) -> Result<Bytes, String> {
    let entries = records
        .iter()
        .map(|(key, value)| {
            let key = serde_json::to_vec(key).map_err(|e| e.to_string())?;
            let value = value.as_ref().map(serde_json::to_vec).transpose().map_err(|e| e.to_string())?;
            Ok((Some(Bytes::from(key)), value.map(Bytes::from)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    match producer {
        Some(producer) => encode_transactional_batch(&entries, now_ms, producer),
        None => encode_batch(&entries, now_ms, Compression::None),
    }
}

/// Encodes a group's membership record: its snapshot, or (`None`) its deletion.
pub fn encode_group(group: &str, snapshot: Option<&GroupSnapshot>, now_ms: i64) -> Result<Bytes, String> {
    let key = serde_json::to_vec(&GroupKey { group_metadata: group.to_owned() }).map_err(|e| e.to_string())?;
    let value = snapshot.map(serde_json::to_vec).transpose().map_err(|e| e.to_string())?;
    encode_batch(&[(Some(Bytes::from(key)), value.map(Bytes::from))], now_ms, Compression::None)
}

/// One entry of the offsets topic's log, as the coordinator replays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetLogEntry {
    /// A commit (or a deletion), in effect at once.
    Commit(OffsetRecord),
    /// A commit of `producer_id`'s transaction: in effect once its commit marker follows.
    Transactional {
        /// The transaction's producer.
        producer_id: i64,
        /// The commit.
        record: OffsetRecord,
    },
    /// A group's settled membership, or (`None`) its deletion.
    Group {
        /// The group id.
        group: String,
        /// What the group was when it last settled.
        snapshot: Option<GroupSnapshot>,
    },
    /// A transaction's marker: its commits take effect (commit) or are dropped (abort).
    Marker {
        /// The transaction's producer.
        producer_id: i64,
        /// Commit (else abort).
        commit: bool,
    },
}

/// Decodes batches read back from the offsets topic, in log order. Records that are not ours
/// (someone produced to the internal topic) are skipped.
pub fn decode_offsets_log(mut batches: Bytes) -> Result<Vec<OffsetLogEntry>, String> {
    let sets = RecordBatchDecoder::decode_all(&mut batches).map_err(|e| format!("{e:#}"))?;
    let records = sets.into_iter().flat_map(|set| set.records);
    Ok(records
        .filter_map(|r| {
            if r.control {
                // A control record's key: version (i16), then type (i16: 0 abort, 1 commit).
                let key = r.key.as_deref()?;
                let kind = i16::from_be_bytes([*key.get(2)?, *key.get(3)?]);
                return Some(OffsetLogEntry::Marker { producer_id: r.producer_id, commit: kind == 1 });
            }
            let key = r.key.as_deref()?;
            let Ok(key) = serde_json::from_slice::<OffsetKey>(key) else {
                let GroupKey { group_metadata: group } = serde_json::from_slice(key).ok()?;
                let snapshot = match r.value {
                    None => None,
                    Some(v) => Some(serde_json::from_slice(&v).ok()?),
                };
                return Some(OffsetLogEntry::Group { group, snapshot });
            };
            let value = match r.value {
                None => None,
                Some(v) => Some(serde_json::from_slice(&v).ok()?),
            };
            Some(match r.transactional {
                true => OffsetLogEntry::Transactional { producer_id: r.producer_id, record: (key, value) },
                false => OffsetLogEntry::Commit((key, value)),
            })
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
        let batch = encode_commits(&records, 1_000, None).expect("encode");
        let header = crate::log::BatchHeader::parse(&batch).expect("one batch");
        assert_eq!(header.record_count, 2);
        let plain: Vec<_> = records.iter().cloned().map(OffsetLogEntry::Commit).collect();
        assert_eq!(decode_offsets_log(batch).expect("decode"), plain);
    }

    #[test]
    fn transactional_commits_and_markers_are_told_apart() {
        let commit = CommittedOffset { offset: 7, leader_epoch: 0, metadata: None, commit_timestamp: 7 };
        let record = (key("g", 0), Some(commit));
        let batch = encode_commits(std::slice::from_ref(&record), 1_000, Some((42, 3))).expect("encode");
        let header = crate::log::BatchHeader::parse(&batch).expect("one batch");
        assert!(header.is_transactional() && header.base_sequence == -1 && header.producer_id == 42);
        let marker = crate::txn::encode_marker(42, 3, true, 0, 1_000);
        let both = Bytes::from([batch.to_vec(), marker.to_vec()].concat());
        assert_eq!(
            decode_offsets_log(both).expect("decode"),
            vec![
                OffsetLogEntry::Transactional { producer_id: 42, record },
                OffsetLogEntry::Marker { producer_id: 42, commit: true }
            ]
        );
    }

    #[test]
    fn group_records_and_commits_are_told_apart() {
        let snapshot = GroupSnapshot {
            generation_id: 3,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: Some("m-1".into()),
            members: Vec::new(),
        };
        let commit =
            (key("g", 0), Some(CommittedOffset { offset: 1, leader_epoch: 0, metadata: None, commit_timestamp: 7 }));
        let batches = [
            encode_group("g", Some(&snapshot), 1_000).expect("encode"),
            encode_commits(std::slice::from_ref(&commit), 1_000, None).expect("encode"),
            encode_group("g", None, 1_000).expect("encode"),
        ];
        let all = Bytes::from(batches.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>());
        assert_eq!(
            decode_offsets_log(all).expect("decode"),
            vec![
                OffsetLogEntry::Group { group: "g".into(), snapshot: Some(snapshot) },
                OffsetLogEntry::Commit(commit),
                OffsetLogEntry::Group { group: "g".into(), snapshot: None },
            ]
        );
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
