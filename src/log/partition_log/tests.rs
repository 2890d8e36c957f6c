//! Unit tests of the partition log, on temporary directories.

mod append_read;
mod log_start;
mod recovery;
mod retention;
mod torn_segments;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{AppendInfo, PartitionLog, RecoveryReport};
use crate::log::batch::{BatchHeader, split_batches};
use crate::log::config::LogConfig;
use crate::log::segment::file_name;
use crate::log::test_support::{batch, batch_with_timestamps};

/// Wall clock used by tests that do not care about time.
const NOW: i64 = 1_700_000_000_000;

/// A config that rolls only by size and never expires anything.
fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_ms: 1 << 50,
        retention_bytes: -1,
        retention_ms: -1,
        index_interval_bytes: 256,
        compaction: None,
    }
}

fn open(dir: &Path, config: LogConfig) -> (PartitionLog, RecoveryReport) {
    PartitionLog::open(dir, config, NOW).expect("open log")
}

fn append(log: &mut PartitionLog, values: &[&str], timestamp: i64) -> AppendInfo {
    let mut b = batch(values, timestamp);
    log.append(&mut b, 3, NOW).expect("append")
}

fn append_stamped(log: &mut PartitionLog, values: &[&str], timestamps: &[i64], now_ms: i64) -> AppendInfo {
    let mut b = batch_with_timestamps(values, timestamps);
    log.append(&mut b, 3, now_ms).expect("append")
}

/// Appends `n` batches of 1 to 3 records with values of varying size; returns the log end.
fn fill(log: &mut PartitionLog, n: usize) -> i64 {
    let mut end = log.log_end_offset();
    for i in 0..n {
        let value = "v".repeat(10 + (i * 37) % 90);
        let values: Vec<&str> = (0..=i % 3).map(|_| value.as_str()).collect();
        let info = append(log, &values, NOW + i as i64);
        assert_eq!(info.base_offset, end);
        end = info.log_end_offset;
    }
    end
}

/// Headers of the batches in `records`, checking each batch's CRC on the way.
fn headers(records: &Bytes) -> Vec<BatchHeader> {
    split_batches(records).expect("valid batches").iter().map(|b| BatchHeader::parse(b).expect("header")).collect()
}

/// Everything in the log, in one read.
fn read_all(log: &PartitionLog) -> Bytes {
    log.read(log.log_start_offset(), i64::MAX, usize::MAX, true).expect("read all").records
}

fn segment_path(dir: &Path, base: i64, extension: &str) -> PathBuf {
    dir.join(file_name(base, extension))
}

/// Base offsets of the `.log` files in `dir`, ascending.
fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .expect("list dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn a_follower_copies_the_leaders_batches_byte_for_byte() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (mut leader, _) = open(leader_dir.path(), config(1 << 20));
    let (mut follower, _) = open(follower_dir.path(), config(1 << 20));
    append(&mut leader, &["a", "b"], 1);
    let mut stamped = batch(&["c"], 2).to_vec();
    leader.append(&mut stamped, 7, 2).expect("leader append");
    let copied = read_all(&leader);
    for b in split_batches(&copied).expect("split") {
        follower.append_replicated(&b, 3).expect("follower append");
    }
    assert_eq!(read_all(&follower), copied, "same offsets, same epochs, same bytes");
    assert_eq!(follower.log_end_offset(), 3);
    // A batch that does not start at the log end is refused, not stored with a gap.
    let stale = split_batches(&copied).expect("split").remove(0);
    let err = follower.append_replicated(&stale, 4).unwrap_err();
    assert!(matches!(err, crate::log::LogError::NotContiguous { base_offset: 0, log_end: 3 }), "{err}");
}
