//! The cleaner and transactions: aborted records, open transactions and markers.

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::Throttle;
use super::tests::{NOW, compacted, contents, open, put, roll};
use crate::log::PartitionLog;
use crate::partition::transactions::AbortedTxn;
use crate::records::encode_transactional_batch;
use crate::txn::encode_marker;

/// Appends `producer`'s transactional batch of `(key, value)` records.
fn txn(log: &mut PartitionLog, producer: i64, entries: &[(&str, &str)]) {
    let entries: Vec<_> = entries
        .iter()
        .map(|(k, v)| (Some(Bytes::copy_from_slice(k.as_bytes())), Some(Bytes::copy_from_slice(v.as_bytes()))))
        .collect();
    let mut batch = encode_transactional_batch(&entries, NOW, (producer, 0)).expect("encode").to_vec();
    log.append(&mut batch, 1, NOW).expect("append");
}

/// Appends `producer`'s commit or abort marker; returns its offset.
fn marker(log: &mut PartitionLog, producer: i64, commit: bool) -> i64 {
    let offset = log.log_end_offset();
    let mut batch = encode_marker(producer, 0, commit, 0, NOW).to_vec();
    log.append(&mut batch, 1, NOW).expect("append");
    offset
}

/// The data records as `(offset, key, value)`, and the markers' offsets.
fn split(log: &PartitionLog) -> (Vec<(i64, String, String)>, Vec<i64>) {
    let (mut data, mut markers) = (Vec::new(), Vec::new());
    for (offset, key, value) in contents(log) {
        match key.starts_with('\0') {
            true => markers.push(offset),
            false => data.push((offset, key, value.unwrap_or_default())),
        }
    }
    (data, markers)
}

/// One cleaning at `now` of the log up to `stable`, told of `aborted`.
fn clean(log: &mut PartitionLog, now: i64, stable: i64, aborted: &[AbortedTxn]) -> Option<super::CleanOutcome> {
    let job = log.plan_clean(now, stable)?.with_aborted(aborted.iter().copied());
    let cleaned = job.run(&mut Throttle::new(0), 1 << 20).expect("run");
    Some(log.apply_clean(cleaned).expect("apply"))
}

#[test]
fn aborted_records_go_without_hiding_committed_ones_and_markers_go_after_their_horizon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(200, 1_000));
    put(&mut log, &[("a", Some("1")), ("b", Some("1"))], NOW, Compression::None); // 0, 1
    txn(&mut log, 7, &[("a", "aborted"), ("c", "aborted")]); // 2, 3
    let abort = marker(&mut log, 7, false); // 4
    txn(&mut log, 8, &[("b", "2")]); // 5
    let commit = marker(&mut log, 8, true); // 6
    put(&mut log, &[("b", Some("3"))], NOW, Compression::None); // 7
    // Both producers go on, so those markers are not their last batches (which always stay).
    txn(&mut log, 7, &[("x", "1")]);
    let last7 = marker(&mut log, 7, true);
    txn(&mut log, 8, &[("y", "1")]);
    let last8 = marker(&mut log, 8, true);
    roll(&mut log);
    let aborted = [AbortedTxn { producer_id: 7, first_offset: 2, last_offset: abort }];
    let end = log.log_end_offset();

    clean(&mut log, NOW + 100, end, &aborted).expect("due");
    let (data, markers) = split(&log);
    let keys: Vec<_> = data.iter().map(|(o, k, v)| (*o, k.as_str(), v.as_str())).collect();
    assert_eq!(keys[..4], [(0, "a", "1"), (7, "b", "3"), (8, "x", "1"), (10, "y", "1")], "{data:?}");
    assert_eq!(markers, [abort, commit, last7, last8], "markers stay for delete.retention.ms");
    assert_eq!(log.cleaner_checkpoint().tombstones_due_ms, NOW + 1_100);

    assert!(clean(&mut log, NOW + 1_099, end, &aborted).is_none(), "not due yet, nothing dirty");
    clean(&mut log, NOW + 1_100, end, &aborted).expect("the markers are due");
    let (data_after, markers) = split(&log);
    assert_eq!(data_after, data, "no record moves");
    assert_eq!(markers, [last7, last8], "a marker with nothing left of its transaction goes; a producer's last stays");
}

#[test]
fn a_committed_transactions_marker_stays_while_its_records_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(200, 1_000));
    txn(&mut log, 8, &[("k", "1")]);
    let commit = marker(&mut log, 8, true);
    put(&mut log, &[("other", Some("1"))], NOW, Compression::None);
    txn(&mut log, 8, &[("z", "1")]);
    marker(&mut log, 8, true);
    roll(&mut log);
    let end = log.log_end_offset();
    clean(&mut log, NOW + 100, end, &[]).expect("due");
    put(&mut log, &[("other", Some("2"))], NOW, Compression::None);
    roll(&mut log);
    let end = log.log_end_offset();
    clean(&mut log, NOW + 5_000, end, &[]).expect("new dirt");
    let (data, markers) = split(&log);
    assert!(data.iter().any(|(o, k, _)| *o == 0 && k == "k"), "{data:?}");
    assert!(markers.contains(&commit), "the transaction's record is still there: {markers:?}");
}

#[test]
fn an_open_transaction_is_not_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compacted(200, 1_000));
    put(&mut log, &[("a", Some("1"))], NOW, Compression::None); // 0
    txn(&mut log, 7, &[("a", "open")]); // 1: undecided
    put(&mut log, &[("a", Some("3"))], NOW, Compression::None); // 2
    roll(&mut log);
    roll(&mut log);
    clean(&mut log, NOW + 100, 1, &[]);
    let (data, _) = split(&log);
    assert_eq!(data[0], (0, "a".into(), "1".into()), "nothing at or after the last stable offset counts yet");
    let end = log.log_end_offset();
    clean(&mut log, NOW + 100, end, &[]).expect("decided, it is cleaned");
    let (data, _) = split(&log);
    assert_eq!(data.iter().filter(|(_, k, _)| k == "a").count(), 1, "{data:?}");
}
