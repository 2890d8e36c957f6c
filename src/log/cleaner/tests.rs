//! Unit tests of the cleaner on real logs in temporary directories.

use std::path::Path;

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

use super::Throttle;
use crate::log::batch::BatchHeader;
use crate::log::config::{Compaction, LogConfig};
use crate::log::{LogError, PartitionLog};
use crate::records::encode_batch;

pub(super) const NOW: i64 = 1_700_000_000_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

pub(super) fn compacted(segment_bytes: u64, delete_retention_ms: i64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_ms: 1 << 50,
        retention_bytes: -1,
        retention_ms: -1,
        index_interval_bytes: 64,
        compaction: Some(Compaction { delete_retention_ms, min_dirty_ratio: 0.01, ..Compaction::default() }),
    }
}

pub(super) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, NOW).expect("open").0
}

/// Appends `(key, value)` records (value `None`: a tombstone) as one batch stamped `ts`.
pub(super) fn put(log: &mut PartitionLog, entries: &[(&str, Option<&str>)], ts: i64, compression: Compression) {
    let entries: Vec<_> = entries
        .iter()
        .map(|(k, v)| (Some(Bytes::copy_from_slice(k.as_bytes())), v.map(|v| Bytes::copy_from_slice(v.as_bytes()))))
        .collect();
    let mut batch = encode_batch(&entries, ts, compression).expect("encode").to_vec();
    log.append(&mut batch, 1, NOW).expect("append");
}

/// Every record the log holds, as `(offset, key, value)`.
pub(super) fn contents(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let read = log.read(log.log_start_offset(), i64::MAX, usize::MAX, true).expect("read");
    let mut bytes = read.records;
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode(&mut bytes).expect("decode");
        for r in set.records {
            let text = |b: Bytes| String::from_utf8(b.to_vec()).expect("utf8");
            out.push((r.offset, r.key.map(text).expect("keyed"), r.value.map(text)));
        }
    }
    out
}

/// Plans, runs and applies one cleaning at `now`, with the whole log below the high watermark.
fn clean(log: &mut PartitionLog, now: i64) -> Option<super::CleanOutcome> {
    let job = log.plan_clean(now, log.log_end_offset())?;
    let cleaned = job.run(&mut Throttle::new(0), 1 << 20).expect("run");
    Some(log.apply_clean(cleaned).expect("apply"))
}

/// Ten versions of five keys in small batches of every codec, then a last batch that rolls
/// the segment so everything before it is sealed.
fn versions(log: &mut PartitionLog) {
    let codecs = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    for version in 0..10 {
        let values: Vec<String> = (0..5).map(|_| format!("v{version}")).collect();
        let entries: Vec<(String, Option<&str>)> =
            (0..5).map(|k| (format!("k{k}"), Some(values[k].as_str()))).collect();
        let entries: Vec<(&str, Option<&str>)> = entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        put(log, &entries[..2], NOW, codecs[version % 5]);
        put(log, &entries[2..], NOW, codecs[(version + 1) % 5]);
    }
}

pub(super) fn roll(log: &mut PartitionLog) {
    let filler = "f".repeat(400);
    put(log, &[("filler", Some(&filler))], NOW, Compression::None);
}

#[test]
fn the_latest_record_of_each_key_stays_at_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(400, DAY_MS));
    versions(&mut log);
    roll(&mut log);
    let before = contents(&log);
    let end = log.log_end_offset();
    let outcome = clean(&mut log, NOW).expect("due");
    assert!(outcome.applied && outcome.size_after < outcome.size_before, "{outcome:?}");
    assert_eq!(outcome.stats.records_removed, 45, "{outcome:?}");
    let after = contents(&log);
    let latest: Vec<_> =
        before.iter().filter(|(o, k, _)| !before.iter().any(|(o2, k2, _)| k2 == k && o2 > o)).cloned().collect();
    assert_eq!(after, latest, "one record per key, where it was written");
    assert_eq!(log.log_end_offset(), end);
    assert!(clean(&mut log, NOW).is_none(), "nothing dirty: no cleaning");

    drop(log);
    let mut log = open(dir.path(), compacted(400, DAY_MS));
    assert_eq!(contents(&log), latest, "the same after a restart");
    put(&mut log, &[("k0", Some("v10"))], NOW, Compression::None);
    assert_eq!(contents(&log).last().map(|r| r.0), Some(end), "appends go on at the log end");
}

#[test]
fn tombstones_stay_for_delete_retention_then_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(200, 1_000));
    put(&mut log, &[("a", Some("1")), ("b", Some("1"))], NOW, Compression::None);
    put(&mut log, &[("a", None)], NOW + 10, Compression::Gzip);
    roll(&mut log);
    clean(&mut log, NOW + 100).expect("due");
    let keys = |log: &PartitionLog| contents(log).into_iter().map(|(_, k, v)| (k, v)).collect::<Vec<_>>();
    assert_eq!(keys(&log)[..2], [("b".into(), Some("1".into())), ("a".into(), None)], "the delete is visible");
    assert_eq!(log.cleaner_checkpoint().tombstones_due_ms, NOW + 1_100, "from the first cleaning, not the timestamp");
    assert!(clean(&mut log, NOW + 1_099).is_none(), "not due yet, nothing dirty");
    clean(&mut log, NOW + 1_100).expect("the tombstone is due");
    assert_eq!(keys(&log)[0], ("b".into(), Some("1".into())), "the key is gone entirely");
    assert!(!keys(&log).iter().any(|(k, _)| k == "a"));
    assert_eq!(log.cleaner_checkpoint().tombstones_due_ms, -1);
}

/// One batch from idempotent producer `producer_id` with keys `keys`, sequences from `base_seq`.
fn idempotent(keys: &[&str], producer_id: i64, base_seq: i32) -> Vec<u8> {
    let records: Vec<Record> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: 0,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i as i64,
            sequence: base_seq + i as i32,
            timestamp: NOW,
            key: Some(Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::from_static(b"p")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = Vec::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::Lz4 };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
    buf
}

#[test]
fn an_idempotent_producers_last_batch_stays_as_an_empty_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(300, DAY_MS));
    log.append(&mut idempotent(&["x", "y"], 7, 0), 1, NOW).expect("append");
    log.append(&mut idempotent(&["x", "y"], 7, 2), 1, NOW).expect("append");
    put(&mut log, &[("x", Some("later")), ("y", Some("later"))], NOW, Compression::None);
    roll(&mut log);
    clean(&mut log, NOW).expect("due");
    let mut headers = Vec::new();
    log.for_each_batch_header(|h| headers.push(*h)).expect("headers");
    let producer: Vec<&BatchHeader> = headers.iter().filter(|h| h.producer_id == 7).collect();
    assert_eq!(producer.len(), 1, "the first batch is gone, the last one stays: {headers:?}");
    let last = producer[0];
    assert_eq!((last.base_offset, last.last_offset(), last.record_count), (2, 3, 0));
    assert_eq!((last.base_sequence, last.last_sequence(), last.compression()), (2, 3, 0));
    assert!(contents(&log).iter().all(|(_, _, v)| v.as_deref() != Some("p")), "its records are gone");
}

#[test]
fn a_committed_swap_is_finished_at_open_and_an_uncommitted_one_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(400, DAY_MS));
    versions(&mut log);
    roll(&mut log);
    let before = contents(&log);
    let job = log.plan_clean(NOW, log.log_end_offset()).expect("due");
    let cleaned = job.run(&mut Throttle::new(0), 1 << 20).expect("run");
    drop(log);
    // A crash before the commit point: the old segments stay, the `.cleaned` files go.
    let log = open(dir.path(), compacted(400, DAY_MS));
    assert_eq!(contents(&log), before);
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(".cleaned")), "{:?}", names(dir.path()));
    drop(log);
    // A crash right after the commit point (renamed to .swap, old segments still there).
    let cleaned = {
        let log = open(dir.path(), compacted(400, DAY_MS));
        let job = log.plan_clean(NOW, log.log_end_offset()).expect("due");
        drop(cleaned);
        job.run(&mut Throttle::new(0), 1 << 20).expect("run")
    };
    for group in cleaned.groups.iter().filter(|g| g.install) {
        let swap = dir.path().join(format!("{:020}.{:020}.swap", group.base_offset, group.end_offset));
        std::fs::rename(&group.path, swap).expect("rename");
    }
    let log = open(dir.path(), compacted(400, DAY_MS));
    let after = contents(&log);
    // Only the groups with records were committed; the others would have been plain deletes.
    assert!(after.len() < before.len(), "the committed swaps were finished");
    assert!(after.iter().all(|r| before.contains(r)), "every record kept where it was");
    for key in ["k0", "k1", "k2", "k3", "k4", "filler"] {
        let latest = before.iter().rev().find(|r| r.1 == key).expect("written");
        assert!(after.contains(latest), "{key}'s latest record survives: {after:?}");
    }
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(".swap")));
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn a_log_changed_meanwhile_throws_the_cleaning_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(400, DAY_MS));
    versions(&mut log);
    roll(&mut log);
    let job = log.plan_clean(NOW, log.log_end_offset()).expect("due");
    let cleaned = job.run(&mut Throttle::new(0), 1 << 20).expect("run");
    let second = log.segments().nth(1).expect("two segments").base_offset();
    log.advance_log_start(second).expect("delete records");
    let before = contents(&log);
    let outcome = log.apply_clean(cleaned).expect("apply");
    assert!(!outcome.applied);
    assert_eq!(contents(&log), before);
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(".cleaned")));
}

#[test]
fn only_a_compacted_log_takes_replicated_batches_past_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut gap = encode_batch(&[(Some(Bytes::from_static(b"k")), None)], NOW, Compression::None).expect("encode");
    let mut batch = gap.to_vec();
    crate::log::set_base_offset_and_epoch(&mut batch, 5, 1);
    gap = Bytes::from(batch);
    let mut plain = open(&dir.path().join("plain"), LogConfig { compaction: None, ..compacted(400, DAY_MS) });
    assert!(matches!(plain.append_replicated(&gap, NOW), Err(LogError::NotContiguous { .. })));
    let mut log = open(&dir.path().join("compacted"), compacted(400, DAY_MS));
    log.append_replicated(&gap, NOW).expect("a compacted leader's gap is copied");
    assert_eq!(log.log_end_offset(), 6);
    drop(log);
    let log = open(&dir.path().join("compacted"), compacted(400, DAY_MS));
    assert_eq!(log.log_end_offset(), 6, "recovery keeps the batch after the gap");
}

#[test]
fn a_log_set_to_compact_later_keeps_its_gaps_after_going_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = LogConfig { compaction: None, ..compacted(400, DAY_MS) };
    let mut log = open(dir.path(), plain.clone());
    log.set_config(compacted(400, DAY_MS)).expect("compact");
    let mut batch =
        encode_batch(&[(Some(Bytes::from_static(b"k")), None)], NOW, Compression::None).expect("b").to_vec();
    crate::log::set_base_offset_and_epoch(&mut batch, 9, 1);
    log.append_replicated(&batch, NOW).expect("gap");
    drop(log);
    let log = open(dir.path(), plain);
    assert_eq!(log.log_end_offset(), 10, "the cleaner checkpoint marks the log as one with gaps");
}

#[test]
fn the_dirty_ratio_waits_unless_a_dirty_segment_is_overdue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lazy = |max_lag_ms| LogConfig {
        compaction: Some(Compaction { min_dirty_ratio: 0.9, max_lag_ms, ..Compaction::default() }),
        ..compacted(400, DAY_MS)
    };
    let mut log = open(dir.path(), lazy(i64::MAX));
    versions(&mut log);
    roll(&mut log);
    clean(&mut log, NOW).expect("all dirty at first");
    put(&mut log, &[("k0", Some("again"))], NOW, Compression::None);
    roll(&mut log);
    assert!(log.plan_clean(NOW + 10_000, log.log_end_offset()).is_none(), "a little dirt waits for the ratio");
    log.set_config(lazy(5_000)).expect("config");
    assert!(log.plan_clean(NOW + 4_000, log.log_end_offset()).is_none(), "not overdue yet");
    clean(&mut log, NOW + 5_000).expect("overdue: cleaned whatever the ratio");
    let k0: Vec<_> = contents(&log).into_iter().filter(|r| r.1 == "k0").collect();
    assert_eq!(k0.len(), 1, "{k0:?}");
}

#[test]
fn a_quiet_compacted_log_rolls_its_active_segment_after_max_compaction_lag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lagged = |max_lag_ms| LogConfig {
        compaction: Some(Compaction { min_dirty_ratio: 0.9, max_lag_ms, ..Compaction::default() }),
        ..compacted(1 << 20, DAY_MS)
    };
    let mut log = open(dir.path(), lagged(5_000));
    versions(&mut log);
    let before = contents(&log);
    assert_eq!(log.segment_count(), 1, "everything is in the active segment");
    assert!(!log.roll_if_compaction_due(NOW + 5_000).expect("roll"), "not older than the lag yet");
    assert!(log.plan_clean(NOW + 5_000, log.log_end_offset()).is_none(), "the active segment is never cleaned");
    assert!(log.roll_if_compaction_due(NOW + 5_001).expect("roll"), "older than the lag: rolled");
    assert_eq!(log.segment_count(), 2);
    assert!(!log.roll_if_compaction_due(NOW + 60_000).expect("roll"), "an empty active segment stays");
    clean(&mut log, NOW + 5_001).expect("the rolled segment is cleaned");
    let latest: Vec<_> =
        before.iter().filter(|(o, k, _)| !before.iter().any(|(o2, k2, _)| k2 == k && o2 > o)).cloned().collect();
    assert_eq!(contents(&log), latest);

    let plain = LogConfig { compaction: None, ..compacted(1 << 20, DAY_MS) };
    let mut log = open(&dir.path().join("plain"), plain);
    versions(&mut log);
    assert!(!log.roll_if_compaction_due(NOW + DAY_MS).expect("roll"), "only a compacted log rolls on the timer");
}

#[test]
fn a_tombstone_without_a_timestamp_stays_for_delete_retention_after_its_first_cleaning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(200, 1_000));
    put(&mut log, &[("a", Some("1")), ("b", Some("1"))], NOW, Compression::None);
    put(&mut log, &[("a", None)], -1, Compression::None);
    roll(&mut log);
    let tombstone = |log: &PartitionLog| contents(log).into_iter().any(|(_, k, v)| k == "a" && v.is_none());
    clean(&mut log, NOW + 100).expect("due");
    assert!(tombstone(&log), "timestamp -1 is not 'long ago': kept by its first cleaning");
    assert!(!contents(&log).iter().any(|(_, k, v)| k == "a" && v.is_some()), "the value it deletes is gone");
    assert_eq!(log.cleaner_checkpoint().tombstones_due_ms, NOW + 1_100);

    drop(log);
    let mut log = open(dir.path(), compacted(200, 1_000));
    put(&mut log, &[("b", Some("2"))], NOW + 500, Compression::None);
    roll(&mut log);
    clean(&mut log, NOW + 600).expect("new dirt");
    assert!(tombstone(&log), "a later cleaning, after a restart, keeps the horizon of the first one");
    assert_eq!(log.cleaner_checkpoint().tombstones_due_ms, NOW + 1_100);
    assert!(clean(&mut log, NOW + 1_099).is_none());
    clean(&mut log, NOW + 1_100).expect("the tombstone is due");
    assert!(!contents(&log).iter().any(|(_, k, _)| k == "a"), "{:?}", contents(&log));
}

#[test]
fn a_truncation_below_the_first_dirty_offset_makes_the_rest_dirty_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(400, DAY_MS));
    versions(&mut log);
    roll(&mut log);
    clean(&mut log, NOW).expect("due");
    let first_dirty = log.cleaner_checkpoint().first_dirty;
    assert!(first_dirty > 40, "{first_dirty}");
    log.truncate_to(40).expect("truncate");
    assert_eq!(log.cleaner_checkpoint().first_dirty, log.log_end_offset());
    assert_eq!(log.cleaner_checkpoint().ranges.first_cleaned_ms(log.log_end_offset()), None);
    drop(log);
    let log = open(dir.path(), compacted(400, DAY_MS));
    assert_eq!(log.cleaner_checkpoint().first_dirty, log.log_end_offset(), "durable");
}
