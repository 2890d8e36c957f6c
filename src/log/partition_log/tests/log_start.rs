use super::*;
use crate::log::error::LogError;
use crate::log::partition_log::LOG_START_FILE;

/// Ten 5-record batches (offsets 0..50), three batches per segment: segments at 0, 15, 30, 45.
fn log_of_batches(dir: &Path) -> (PartitionLog, LogConfig) {
    let values = ["r0", "r1", "r2", "r3", "r4"];
    let config = config(batch(&values, NOW).len() as u64 * 3);
    let (mut log, _) = open(dir, config.clone());
    for _ in 0..10 {
        append(&mut log, &values, NOW);
    }
    assert_eq!(segment_bases(dir), vec![0, 15, 30, 45]);
    (log, config)
}

fn out_of_range_start(result: Result<crate::log::ReadResult, LogError>) -> Option<i64> {
    match result {
        Err(LogError::OffsetOutOfRange { log_start, .. }) => Some(log_start),
        _ => None,
    }
}

#[test]
fn a_log_start_inside_a_segment_hides_the_records_below_it_and_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, config) = log_of_batches(dir.path());
    assert_eq!(log.advance_log_start(22).expect("advance"), vec![0], "the segment wholly below 22 goes");
    assert_eq!(segment_bases(dir.path()), vec![15, 30, 45]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (22, 50));
    assert_eq!(out_of_range_start(log.read(21, i64::MAX, 1 << 20, true)), Some(22));
    let from_start = log.read(22, i64::MAX, 1 << 20, true).expect("read at the log start");
    assert_eq!((headers(&from_start.records)[0].base_offset, from_start.log_start_offset), (20, 22));
    assert_eq!(log.offset_for_timestamp(0).expect("lookup").map(|(o, _)| o), Some(22));

    // Never backwards, never past the log end.
    assert!(log.advance_log_start(10).expect("lower").is_empty());
    assert!(log.advance_log_start(22).expect("same").is_empty());
    assert_eq!(log.log_start_offset(), 22);
    assert!(matches!(log.advance_log_start(51), Err(LogError::OffsetOutOfRange { offset: 51, .. })));

    drop(log);
    let (mut log, report) = open(dir.path(), config.clone());
    assert_eq!((report.log_start_offset, log.log_start_offset()), (22, 22));
    assert_eq!(out_of_range_start(log.read(20, i64::MAX, 1 << 20, true)), Some(22));

    // Retention deletes whole segments: the log start moves forward with them, not back.
    let mut c = config.clone();
    c.retention_bytes = (log.size_bytes() / 7 * 4) as i64; // seven batches left: keep four
    log.set_config(c).expect("config");
    assert_eq!(log.enforce_retention(NOW).expect("retention"), vec![15]);
    assert_eq!(log.log_start_offset(), 30);
    drop(log);
    assert_eq!(open(dir.path(), config).0.log_start_offset(), 30);
}

#[test]
fn a_damaged_checkpoint_is_ignored_and_the_log_starts_at_its_first_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, config) = log_of_batches(dir.path());
    log.advance_log_start(22).expect("advance");
    drop(log);
    for garbage in [&b"0\n2"[..], b"\xff\xfe garbage", b"", b"1\n22\n"] {
        std::fs::write(dir.path().join(LOG_START_FILE), garbage).expect("write");
        let (log, report) = open(dir.path(), config.clone());
        assert_eq!((report.log_start_offset, log.log_end_offset()), (15, 50), "{garbage:?}");
    }
}

#[test]
fn a_log_ending_below_its_checkpoint_is_emptied_there_so_deleted_records_stay_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, config) = log_of_batches(dir.path());
    drop(log);
    // As if records up to 70 were deleted and then a lost disk tail cut the log back to 50.
    std::fs::write(dir.path().join(LOG_START_FILE), "0\n70\n").expect("write");
    let (mut log, report) = open(dir.path(), config.clone());
    assert_eq!((report.log_start_offset, report.log_end_offset), (70, 70));
    assert_eq!(segment_bases(dir.path()), vec![70]);
    assert_eq!(append(&mut log, &["next"], NOW).base_offset, 70);
}

#[test]
fn truncating_inside_the_batch_that_holds_the_log_start_keeps_the_records_below_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, config) = log_of_batches(dir.path());
    log.advance_log_start(22).expect("advance");
    // 23 lies in the batch 20..25: the cut falls at 20, below the log start.
    log.truncate_to(23).expect("truncate");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (22, 22));
    assert!(log.read(22, i64::MAX, 1 << 20, true).expect("read").records.is_empty());
    assert!(matches!(log.truncate_to(21), Err(LogError::OffsetOutOfRange { offset: 21, log_start: 22, .. })));
    // A follower restarting its empty log at a batch base below (Kafka's follower does so when
    // its leader's first batch straddles the log start) moves the checkpoint with it.
    log.reset_to(20).expect("reset");
    drop(log);
    assert_eq!(open(dir.path(), config).0.log_start_offset(), 20);
}
