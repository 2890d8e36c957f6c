use super::*;
use crate::log::error::LogError;

#[test]
fn append_and_read_round_trip_across_many_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, report) = open(dir.path(), config(2_048));
    assert_eq!((report.segments, report.log_start_offset, report.log_end_offset), (1, 0, 0));
    let end = fill(&mut log, 300);
    assert!(log.segment_count() > 10, "only {} segments", log.segment_count());
    assert_eq!(log.log_end_offset(), end);
    let all = read_all(&log);
    assert_eq!(all.len() as u64, log.size_bytes());
    let hs = headers(&all);
    assert_eq!(hs.len(), 300);
    let mut next = 0;
    for h in &hs {
        assert_eq!(h.base_offset, next, "offsets are contiguous");
        assert_eq!(h.partition_leader_epoch, 3);
        next = h.last_offset() + 1;
    }
    assert_eq!(next, end);
    // Every offset reads back starting with the batch that holds it.
    for offset in 0..end {
        let r = log.read(offset, i64::MAX, 1, true).expect("read");
        let first = headers(&r.records)[0];
        assert!(first.base_offset <= offset && offset <= first.last_offset(), "offset {offset} in {first:?}");
    }
}

#[test]
fn every_index_entry_points_at_the_batch_it_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), config(1 << 20));
    fill(&mut log, 200);
    log.flush().expect("flush");
    let index = std::fs::read(segment_path(dir.path(), 0, "index")).expect("read index");
    let data = std::fs::read(segment_path(dir.path(), 0, "log")).expect("read log");
    assert!(index.len() / 8 > 10, "sparse index has {} entries", index.len() / 8);
    let mut last_position = 0;
    for entry in index.chunks_exact(8) {
        let relative = u32::from_be_bytes(entry[..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(entry[4..].try_into().expect("4 bytes")) as usize;
        let h = BatchHeader::parse(&data[position..]).expect("batch at indexed position");
        assert_eq!(h.base_offset, i64::from(relative));
        // Entries come roughly every `index_interval_bytes` (256) of log.
        assert!(position - last_position > 256 || last_position == 0);
        last_position = position;
    }
}

#[test]
fn read_honours_max_bytes_min_one_and_max_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), config(1_000));
    let infos: Vec<AppendInfo> = (0..10).map(|i| append(&mut log, &["aaaaaaaaaa", "bbbbbbbbbb"], NOW + i)).collect();
    let one = (log.size_bytes() / 10) as usize;
    // The first batch is bigger than max_bytes: only min_one returns it.
    assert!(log.read(0, i64::MAX, one - 1, false).expect("read").records.is_empty());
    assert_eq!(headers(&log.read(0, i64::MAX, one - 1, true).expect("read").records).len(), 1);
    // Two and a half batches' worth returns two whole batches.
    assert_eq!(headers(&log.read(0, i64::MAX, one * 5 / 2, true).expect("read").records).len(), 2);
    // The high watermark cuts before the batch that reaches it, even with min_one.
    let hw = infos[4].last_offset;
    let hs = headers(&log.read(2, hw, usize::MAX, true).expect("read").records);
    assert_eq!((hs[0].base_offset, hs.last().expect("some").last_offset()), (2, infos[3].last_offset));
    assert!(
        log.read(infos[4].base_offset, infos[4].base_offset + 1, usize::MAX, true).expect("read").records.is_empty()
    );
    // At the end, or at the high watermark: empty. Past the end: out of range.
    let end = log.log_end_offset();
    let r = log.read(end, i64::MAX, usize::MAX, true).expect("read at end");
    assert!(r.records.is_empty());
    assert_eq!((r.log_start_offset, r.log_end_offset), (0, end));
    assert!(log.read(6, 6, usize::MAX, true).expect("read at hw").records.is_empty());
    let err = log.read(end + 1, i64::MAX, 100, true).expect_err("past the end");
    assert!(matches!(err, LogError::OffsetOutOfRange { offset, log_start: 0, log_end }
            if offset == end + 1 && log_end == end));
}

#[test]
fn append_refuses_malformed_batches_without_touching_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), config(1 << 20));
    let mut b = batch(&["a"], NOW);
    b.push(0);
    assert!(matches!(log.append(&mut b, 0, NOW), Err(LogError::Batch(_))));
    let mut b = batch(&["a"], NOW);
    b[16] = 1;
    assert!(matches!(log.append(&mut b, 0, NOW), Err(LogError::Batch(_))));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));
    assert_eq!(append(&mut log, &["ok"], NOW).base_offset, 0);
}

#[test]
fn rolls_by_size_and_keeps_segments_within_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&["0123456789"], NOW).len() as u64;
    let (mut log, _) = open(dir.path(), config(one * 3));
    for _ in 0..7 {
        append(&mut log, &["0123456789"], NOW);
    }
    assert_eq!(segment_bases(dir.path()), vec![0, 3, 6]);
    assert_eq!(log.segment_count(), 3);
    // A batch larger than a segment still gets one of its own.
    let big = "x".repeat(one as usize * 4);
    let info = append(&mut log, &[big.as_str()], NOW);
    assert_eq!(info.base_offset, 7);
    assert_eq!(segment_bases(dir.path()), vec![0, 3, 6, 7]);
    append(&mut log, &["after"], NOW);
    assert_eq!(segment_bases(dir.path()), vec![0, 3, 6, 7, 8]);
}

#[test]
fn rolls_by_age_of_the_first_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(1 << 20);
    c.segment_ms = 1_000;
    let (mut log, _) = open(dir.path(), c.clone());
    append_stamped(&mut log, &["a"], &[5], NOW);
    append_stamped(&mut log, &["b"], &[5], NOW + 1_000);
    assert_eq!(log.segment_count(), 1, "not older than segment_ms yet");
    append_stamped(&mut log, &["c"], &[5], NOW + 1_001);
    assert_eq!(segment_bases(dir.path()), vec![0, 2]);
    drop(log);
    let (mut log, _) = PartitionLog::open(dir.path(), c, NOW + 10_000).expect("reopen");
    // Reopened, the age counts from the first batch's timestamp (5): long expired.
    append_stamped(&mut log, &["d"], &[5], NOW + 10_000);
    assert_eq!(segment_bases(dir.path()), vec![0, 2, 3]);
}

#[test]
fn sync_handle_follows_the_active_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), config(200));
    let handle = log.sync_handle();
    fill(&mut log, 20);
    assert!(log.segment_count() > 2);
    let other_thread = std::thread::spawn(move || handle.sync());
    other_thread.join().expect("join").expect("fsync");
    log.flush().expect("flush");
}

#[test]
fn for_each_batch_header_visits_every_batch_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), config(1_024));
    let end = fill(&mut log, 50);
    let mut seen = Vec::new();
    log.for_each_batch_header(|h| seen.push((h.base_offset, h.last_offset()))).expect("walk");
    assert_eq!(seen.len(), 50);
    assert!(seen.windows(2).all(|w| w[0].1 + 1 == w[1].0));
    assert_eq!(seen.last().map(|s| s.1 + 1), Some(end));
}

#[test]
fn the_log_can_move_between_threads_and_the_handle_can_be_shared() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PartitionLog>();
    send_sync::<crate::log::SyncHandle>();
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = open(dir.path(), config(1_024));
    let shown = format!("{log:?}");
    assert!(shown.contains("log_end_offset: 0"), "{shown}");
}
