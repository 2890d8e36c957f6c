use super::*;
use crate::log::error::LogError;

/// A log of 3-record segments, one batch of one record per offset, stamped `ts_of(offset)`.
fn log_with_stamps(dir: &Path, batches: i64, ts_of: impl Fn(i64) -> i64) -> PartitionLog {
    let one = batch(&["0123456789"], NOW).len() as u64;
    let (mut log, _) = open(dir, config(one * 3));
    for offset in 0..batches {
        append_stamped(&mut log, &["0123456789"], &[ts_of(offset)], NOW);
    }
    log
}

#[test]
fn retention_by_size_keeps_at_least_retention_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_stamps(dir.path(), 10, |_| NOW);
    assert_eq!(segment_bases(dir.path()), vec![0, 3, 6, 9]);
    let segment = log.size_bytes() / 10 * 3;
    // Without the two oldest segments the log still holds retention_bytes; without three not.
    let mut c = log.config().clone();
    c.retention_bytes = (log.size_bytes() - 2 * segment - 1) as i64;
    log.set_config(c).expect("config");
    assert_eq!(log.enforce_retention(NOW).expect("retention"), vec![0, 3]);
    assert_eq!(segment_bases(dir.path()), vec![6, 9]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (6, 10));
    assert!(matches!(log.read(5, i64::MAX, 100, true), Err(LogError::OffsetOutOfRange { log_start: 6, .. })));
    assert_eq!(headers(&read_all(&log))[0].base_offset, 6);
    assert!(log.enforce_retention(NOW).expect("again").is_empty(), "nothing more to delete");
}

#[test]
fn retention_by_time_deletes_expired_segments_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Offsets 0..6 are old; 6 and later are recent, except a stray old record at 7.
    let mut log = log_with_stamps(dir.path(), 10, |o| if o < 6 || o == 7 { 1_000 } else { NOW });
    let mut c = log.config().clone();
    c.retention_ms = 60_000;
    log.set_config(c).expect("config");
    assert_eq!(log.enforce_retention(NOW).expect("retention"), vec![0, 3]);
    assert_eq!((log.log_start_offset(), log.segment_count()), (6, 2));
}

#[test]
fn expiring_everything_keeps_the_log_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_stamps(dir.path(), 8, |_| 1_000);
    let mut c = log.config().clone();
    c.retention_ms = 60_000;
    log.set_config(c.clone()).expect("config");
    assert_eq!(log.enforce_retention(NOW).expect("retention"), vec![0, 3, 6]);
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.size_bytes()), (8, 8, 0));
    assert_eq!(segment_bases(dir.path()), vec![8]);
    assert!(log.read(8, i64::MAX, 100, true).expect("read at end").records.is_empty());
    drop(log);
    let (mut log, report) = open(dir.path(), c);
    assert_eq!((report.log_start_offset, report.log_end_offset), (8, 8));
    assert_eq!(append(&mut log, &["next"], NOW).base_offset, 8);
}

#[test]
fn segments_without_timestamps_expire_by_modification_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_stamps(dir.path(), 4, |_| -1);
    let mut c = log.config().clone();
    c.retention_ms = 60_000;
    log.set_config(c).expect("config");
    let file_time =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    assert!(log.enforce_retention(file_time).expect("fresh files").is_empty());
    assert_eq!(log.enforce_retention(file_time + 120_000).expect("old files"), vec![0, 3]);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(400);
    c.index_interval_bytes = 0;
    let (mut log, _) = open(dir.path(), c);
    // Batches of four records stamped 100, 110, 120, ... except one batch from a late clock.
    for b in 0..20i64 {
        let stamps: Vec<i64> = (0..4).map(|r| if b == 12 { 50 } else { 100 + (b * 4 + r) * 10 }).collect();
        append_stamped(&mut log, &["a", "b", "c", "d"], &stamps, NOW);
    }
    assert!(log.segment_count() > 3);
    assert_eq!(log.offset_for_timestamp(0).expect("lookup"), Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(100).expect("lookup"), Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(101).expect("lookup"), Some((1, 110)));
    assert_eq!(log.offset_for_timestamp(335).expect("lookup"), Some((24, 340)));
    assert_eq!(log.offset_for_timestamp(890).expect("lookup"), Some((79, 890)));
    assert_eq!(log.offset_for_timestamp(891).expect("lookup"), None);
    // The late batch (offsets 48..52, stamped 50) is found by the earliest record at or after.
    assert_eq!(log.offset_for_timestamp(51).expect("lookup"), Some((0, 100)));
}

#[test]
fn truncate_to_removes_everything_from_the_offset_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_stamps(dir.path(), 10, |o| 100 + o);
    // Inside a segment.
    log.truncate_to(8).expect("truncate");
    assert_eq!((log.log_end_offset(), log.segment_count()), (8, 3));
    assert_eq!(log.offset_for_timestamp(108).expect("lookup"), None);
    // At a segment's base: that segment goes, the previous one takes appends again.
    log.truncate_to(6).expect("truncate");
    assert_eq!((log.log_end_offset(), log.segment_count()), (6, 2));
    assert_eq!(segment_bases(dir.path()), vec![0, 3]);
    assert_eq!(append(&mut log, &["again"], NOW).base_offset, 6);
    assert_eq!(log.offset_for_timestamp(105).expect("lookup"), Some((5, 105)));
    // At or past the end: nothing; below the start: refused.
    log.truncate_to(100).expect("no-op");
    assert_eq!(log.log_end_offset(), 7);
    assert!(matches!(log.truncate_to(-1), Err(LogError::OffsetOutOfRange { .. })));
    // At the log start: everything.
    log.truncate_to(0).expect("truncate all");
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.size_bytes()), (0, 0, 0));
    assert_eq!(append(&mut log, &["fresh"], NOW).base_offset, 0);
    drop(log);
    let (log, report) = open(dir.path(), config(1 << 20));
    assert_eq!((report.truncated_bytes, log.log_end_offset(), log.segment_count()), (0, 1, 1));
}

#[test]
fn truncate_inside_a_batch_drops_the_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), config(1 << 20));
    append(&mut log, &["a", "b"], NOW);
    append(&mut log, &["c", "d", "e"], NOW);
    log.truncate_to(3).expect("truncate");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(headers(&read_all(&log)).len(), 1);
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t-0");
    let (mut log, _) = open(&path, config(200));
    fill(&mut log, 10);
    log.delete().expect("delete");
    assert!(!path.exists());
}

#[test]
fn a_reset_log_is_empty_and_continues_at_the_new_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_stamps(dir.path(), 10, |_| NOW);
    assert!(log.segment_count() > 1);
    log.reset_to(500).expect("reset");
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.segment_count()), (500, 500, 1));
    assert_eq!(segment_bases(dir.path()), vec![500]);
    append_stamped(&mut log, &["after"], &[NOW], NOW);
    drop(log);
    let (log, _) = open(dir.path(), config(1 << 20));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 501));
}
