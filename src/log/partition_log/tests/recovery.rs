use std::fs::OpenOptions;
use std::io::Write;

use super::*;
use crate::log::error::LogError;

/// A log of several segments; returns the base offset of the last one and the log end.
fn build(dir: &Path) -> (i64, i64) {
    let (mut log, _) = open(dir, config(2_048));
    let end = fill(&mut log, 60);
    log.flush().expect("flush");
    let last = *segment_bases(dir).last().expect("segments");
    assert!(last > 0, "test needs sealed segments");
    (last, end)
}

/// Byte positions and headers of the batches in one segment file.
fn batches_in(path: &Path) -> Vec<(usize, BatchHeader)> {
    let data = std::fs::read(path).expect("read segment");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let h = BatchHeader::parse(&data[pos..]).expect("header");
        out.push((pos, h));
        pos += h.total_len();
    }
    out
}

/// Opens the damaged log and checks it now ends after `expected_end`, cut by `cut_bytes`, and
/// that appends continue there.
fn assert_recovered(dir: &Path, expected_end: i64, cut_bytes: u64, reason_part: &str) {
    let (mut log, report) = open(dir, config(2_048));
    assert_eq!(report.log_end_offset, expected_end);
    assert_eq!(report.truncated_bytes, cut_bytes);
    let reason = report.truncation_reason.expect("a reason");
    assert!(reason.contains(reason_part), "{reason}");
    assert_eq!(headers(&read_all(&log)).last().map(|h| h.last_offset() + 1), Some(expected_end));
    assert_eq!(append(&mut log, &["after"], NOW).base_offset, expected_end);
    drop(log);
    let (log, report) = open(dir, config(2_048));
    assert_eq!((report.truncated_bytes, log.log_end_offset()), (0, expected_end + 1));
}

#[test]
fn reopen_after_clean_close_gives_identical_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), config(2_048));
    fill(&mut log, 80);
    log.flush().expect("flush");
    let before = (log.log_start_offset(), log.log_end_offset(), log.size_bytes(), log.segment_count());
    let data = read_all(&log);
    let lookups: Vec<_> = (0..80).map(|i| log.offset_for_timestamp(NOW + i).expect("lookup")).collect();
    drop(log);
    let (log, report) = open(dir.path(), config(2_048));
    assert_eq!((report.truncated_bytes, report.truncation_reason), (0, None));
    assert_eq!(before, (log.log_start_offset(), log.log_end_offset(), log.size_bytes(), log.segment_count()));
    assert_eq!(read_all(&log), data);
    let again: Vec<_> = (0..80).map(|i| log.offset_for_timestamp(NOW + i).expect("lookup")).collect();
    assert_eq!(lookups, again);
}

#[test]
fn torn_tail_is_cut_to_the_last_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (last, _) = build(dir.path());
    let path = segment_path(dir.path(), last, "log");
    let batches = batches_in(&path);
    let (pos, torn) = *batches.last().expect("batches");
    let file = OpenOptions::new().write(true).open(&path).expect("open");
    file.set_len((pos + torn.total_len() - 10) as u64).expect("cut");
    assert_recovered(dir.path(), torn.base_offset, (torn.total_len() - 10) as u64, "claims");
}

#[test]
fn garbage_after_the_last_batch_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (last, end) = build(dir.path());
    let mut file = OpenOptions::new().append(true).open(segment_path(dir.path(), last, "log")).expect("open");
    file.write_all(&[0xAB; 100]).expect("garbage");
    assert_recovered(dir.path(), end, 100, "magic");
}

#[test]
fn flipped_byte_in_the_last_batch_fails_its_crc_and_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (last, _) = build(dir.path());
    let path = segment_path(dir.path(), last, "log");
    let (pos, h) = *batches_in(&path).last().expect("batches");
    let mut data = std::fs::read(&path).expect("read");
    data[pos + h.total_len() - 3] ^= 0x01;
    std::fs::write(&path, data).expect("write");
    assert_recovered(dir.path(), h.base_offset, h.total_len() as u64, "CRC-32C");
}

#[test]
fn huge_claimed_length_is_a_torn_tail_not_an_allocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (last, _) = build(dir.path());
    let path = segment_path(dir.path(), last, "log");
    let (pos, h) = *batches_in(&path).last().expect("batches");
    let mut data = std::fs::read(&path).expect("read");
    data[pos + 8..pos + 12].copy_from_slice(&i32::MAX.to_be_bytes());
    std::fs::write(&path, data).expect("write");
    assert_recovered(dir.path(), h.base_offset, h.total_len() as u64, "claims 2147483659 bytes");
}

#[test]
fn offset_gap_in_the_last_segment_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (last, _) = build(dir.path());
    let path = segment_path(dir.path(), last, "log");
    let (pos, h) = *batches_in(&path).last().expect("batches");
    let mut data = std::fs::read(&path).expect("read");
    // The base offset lies outside the CRC, so only the continuity check can catch this.
    data[pos..pos + 8].copy_from_slice(&(h.base_offset + 5).to_be_bytes());
    std::fs::write(&path, data).expect("write");
    assert_recovered(dir.path(), h.base_offset, h.total_len() as u64, "offset gap");
}

#[test]
fn a_fully_corrupt_last_segment_becomes_empty_at_its_base() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (last, _) = build(dir.path());
    let path = segment_path(dir.path(), last, "log");
    let len = std::fs::metadata(&path).expect("stat").len();
    std::fs::write(&path, vec![0u8; len as usize]).expect("zero it");
    assert_recovered(dir.path(), last, len, "magic");
}

#[test]
fn damaged_or_missing_sealed_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path());
    let (log, _) = open(dir.path(), config(2_048));
    let expected = read_all(&log);
    drop(log);
    let bases = segment_bases(dir.path());
    std::fs::write(segment_path(dir.path(), bases[0], "index"), [1u8; 13]).expect("partial entry");
    std::fs::remove_file(segment_path(dir.path(), bases[1], "index")).expect("remove");
    std::fs::remove_file(segment_path(dir.path(), bases[1], "timeindex")).expect("remove");
    // An entry pointing past the end of the file: the index claims more than the segment holds.
    let mut beyond = std::fs::read(segment_path(dir.path(), bases[2], "index")).expect("read");
    beyond.extend_from_slice(&[0, 0, 1, 0, 0, 1, 0, 0]);
    std::fs::write(segment_path(dir.path(), bases[2], "index"), beyond).expect("write");
    let (log, report) = open(dir.path(), config(2_048));
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(read_all(&log), expected);
    for offset in 0..log.log_end_offset() {
        let first = headers(&log.read(offset, i64::MAX, 1, true).expect("read").records)[0];
        assert!(first.base_offset <= offset && offset <= first.last_offset());
    }
    let rebuilt = std::fs::metadata(segment_path(dir.path(), bases[1], "index")).expect("rebuilt index");
    assert!(rebuilt.len() > 0 && rebuilt.len().is_multiple_of(8));
}

#[test]
fn a_sealed_segment_shorter_than_its_index_ends_the_log_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path());
    let bases = segment_bases(dir.path());
    let path = segment_path(dir.path(), bases[0], "log");
    let batches = batches_in(&path);
    let (pos, lost) = batches[batches.len() - 2];
    let file = OpenOptions::new().write(true).open(&path).expect("open");
    file.set_len(pos as u64 + 30).expect("cut");
    let (log, report) = open(dir.path(), config(2_048));
    assert_eq!(report.truncated_bytes, 30);
    // Everything after the cut is gone, so the log has no hole.
    assert_eq!(report.deleted_segments, bases[1..].to_vec());
    assert_eq!((log.segment_count(), log.log_end_offset()), (1, lost.base_offset));
    assert_eq!(segment_bases(dir.path()), vec![bases[0]]);
    assert!(matches!(log.read(-1, 10, 10, true), Err(LogError::OffsetOutOfRange { .. })));
}

#[test]
fn an_empty_directory_or_empty_active_segment_reopens_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("topic-0");
    let (log, report) = open(&path, config(1_024));
    assert_eq!((report.segments, report.log_start_offset, report.log_end_offset), (1, 0, 0));
    assert!(segment_path(&path, 0, "log").exists());
    drop(log);
    // Stray files are ignored.
    std::fs::write(path.join("notes.txt"), "hello").expect("write");
    let (log, report) = open(&path, config(1_024));
    assert_eq!((report.segments, log.log_end_offset()), (1, 0));
}

#[test]
fn corruption_inside_a_sealed_segment_is_reported_on_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path());
    let path = segment_path(dir.path(), 0, "log");
    let (pos, h) = batches_in(&path)[1];
    let mut data = std::fs::read(&path).expect("read");
    data[pos + 16] = 0;
    std::fs::write(&path, data).expect("write");
    // Opening checks only the tails of sealed segments, as Kafka does.
    let (log, report) = open(dir.path(), config(2_048));
    assert_eq!(report.truncated_bytes, 0);
    let err = log.read(h.base_offset, i64::MAX, 1, true).expect_err("corrupt");
    let text = err.to_string();
    assert!(matches!(err, LogError::Corrupt { position, .. } if position == pos as u64), "{text}");
    assert!(text.contains("00000000000000000000.log") && text.contains("magic 0"), "{text}");
}

#[test]
fn sealed_segments_keep_only_their_log_file_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path());
    let (log, _) = open(dir.path(), config(2_048));
    let open_files: Vec<PathBuf> = std::fs::read_dir("/proc/self/fd")
        .expect("list fds")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir.path()))
        .collect();
    let indexes = open_files.iter().filter(|p| p.extension().is_some_and(|e| e != "log")).count();
    // Every segment's log, plus the active segment's two indexes.
    assert_eq!(open_files.len(), log.segment_count() + 2, "{open_files:?}");
    assert_eq!(indexes, 2, "{open_files:?}");
}
