//! A lost disk tail cuts the newest several segments (and their indexes) in half: the log must
//! reopen contiguous, ending at the first cut, with exactly the batches before it.

use std::fs::OpenOptions;
use std::io::Write;

use super::*;

/// A log of many small segments; returns its whole content.
fn build(dir: &Path) -> Bytes {
    let (mut log, _) = open(dir, config(1_024));
    fill(&mut log, 80);
    log.flush().expect("flush");
    assert!(segment_bases(dir).len() >= 5, "test needs several segments");
    read_all(&log)
}

/// `(position, length)` of every batch in `bytes`.
fn spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let len = BatchHeader::parse(&bytes[pos..]).expect("header").total_len();
        out.push((pos, len));
        pos += len;
    }
    out
}

/// Cuts the last `n` segments' files to half their length (indexes too, mid-entry), appending
/// `garbage` bytes to each log file. Returns the batches that survive whole, back to back: every
/// batch of the segments before, and those of the first cut segment that end by its half.
fn cut_newest(dir: &Path, n: usize, garbage: usize) -> Vec<u8> {
    let bases = segment_bases(dir);
    let first_cut = bases.len() - n;
    let mut survivors = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let data = std::fs::read(segment_path(dir, *base, "log")).expect("read");
        let keep = if i < first_cut { data.len() } else { data.len() / 2 };
        for (pos, len) in spans(&data) {
            if i <= first_cut && pos + len <= keep {
                survivors.extend_from_slice(&data[pos..pos + len]);
            }
        }
        if i < first_cut {
            continue;
        }
        for ext in ["log", "index", "timeindex"] {
            let path = segment_path(dir, *base, ext);
            let len = std::fs::metadata(&path).expect("stat").len();
            OpenOptions::new().write(true).open(&path).expect("open").set_len(len / 2).expect("cut");
        }
        let mut log = OpenOptions::new().append(true).open(segment_path(dir, *base, "log")).expect("open");
        let noise: Vec<u8> = (0..garbage).map(|i| (i as u8).wrapping_mul(151).wrapping_add(7)).collect();
        log.write_all(&noise).expect("garbage");
    }
    survivors
}

/// Damages the newest `n` segments, reopens, and checks the log against what survived.
fn reopen_after_cutting(n: usize, garbage: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = build(dir.path());
    let bases = segment_bases(dir.path());
    let survivors = cut_newest(dir.path(), n, garbage);
    assert!(survivors.len() < whole.len() && whole.starts_with(&survivors));
    let end = headers(&Bytes::from(survivors.clone())).last().map_or(0, |h| h.last_offset() + 1);

    let (mut log, report) = open(dir.path(), config(1_024));
    let first_cut = bases.len() - n;
    assert_eq!(report.deleted_segments, bases[first_cut + 1..].to_vec(), "{report:?}");
    assert_eq!(segment_bases(dir.path()), bases[..=first_cut].to_vec());
    assert_eq!((report.log_start_offset, report.log_end_offset), (0, end));
    assert!(report.truncated_bytes > 0, "{report:?}");
    assert_eq!(read_all(&log), survivors, "exactly the batches before the first cut");
    // Every offset still reads through the rebuilt indexes.
    for offset in 0..end {
        let first = headers(&log.read(offset, i64::MAX, 1, true).expect("read").records)[0];
        assert!(first.base_offset <= offset && offset <= first.last_offset());
    }
    assert_eq!(append(&mut log, &["after"], NOW).base_offset, end);
    drop(log);

    let (log, report) = open(dir.path(), config(1_024));
    assert_eq!((report.truncated_bytes, report.deleted_segments.len()), (0, 0), "{report:?}");
    assert_eq!(log.log_end_offset(), end + 1);
    assert!(read_all(&log).starts_with(&survivors));
}

#[test]
fn the_last_two_segments_cut_in_half() {
    reopen_after_cutting(2, 0);
}

#[test]
fn the_last_two_segments_cut_in_half_with_garbage_after_the_cut() {
    reopen_after_cutting(2, 97);
}

#[test]
fn the_last_three_segments_cut_in_half() {
    reopen_after_cutting(3, 0);
}

#[test]
fn the_last_three_segments_cut_in_half_with_garbage_after_the_cut() {
    reopen_after_cutting(3, 200);
}

#[test]
fn a_missing_middle_segment_ends_the_log_before_the_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = build(dir.path());
    let bases = segment_bases(dir.path());
    for ext in ["log", "index", "timeindex"] {
        std::fs::remove_file(segment_path(dir.path(), bases[2], ext)).expect("remove");
    }
    let (log, report) = open(dir.path(), config(1_024));
    assert_eq!(report.deleted_segments, bases[3..].to_vec());
    assert_eq!((report.truncated_bytes, report.log_end_offset), (0, bases[2]));
    let kept = read_all(&log);
    assert!(whole.starts_with(&kept));
    assert_eq!(headers(&kept).last().map(|h| h.last_offset() + 1), Some(bases[2]));
}
