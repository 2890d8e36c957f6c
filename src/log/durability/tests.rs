//! The durability model: the registry alone, the log layer reporting to it, `write_atomic`,
//! and the cut applied to real files (never `power_cut` itself: it kills the process).

use std::path::Path;
use std::sync::Arc;

use super::cut::apply;
use super::registry::{Durable, Registry, Reported};
use super::*;
use crate::log::config::LogConfig;
use crate::log::partition_log::PartitionLog;
use crate::log::segment::file_name;
use crate::log::sync_handle::{SYNC_TOGETHER_MIN, SyncHandle};
use crate::log::test_support::batch;

fn len_of(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").len()
}

#[test]
fn an_fsync_counts_the_length_at_its_start_and_a_truncation_never_lowers_it() {
    let path = Path::new("/p/00000000000000000000.log");
    let mut r = Registry::default();
    r.created(path);
    assert_eq!(r.durable_len(path), Some(0));
    let t = r.sync_began(path, 100);
    // A write racing with the fsync (the file is 150 bytes when it returns) is not counted.
    assert_eq!(r.sync_ended(path, t, 100), Reported::Yes);
    assert_eq!(r.durable_len(path), Some(100));
    // Not durable until an fsync that began after it: the length stays.
    r.truncated(path, 40);
    assert_eq!(r.durable_len(path), Some(100));
    let t = r.sync_began(path, 60);
    r.sync_ended(path, t, 60);
    assert_eq!(r.durable_len(path), Some(60), "the fsync made the truncation and the appends durable");
}

#[test]
fn an_fsync_racing_with_a_truncation_counts_only_below_the_cut_and_never_less_than_before() {
    let path = Path::new("/p/a.log");
    let mut r = Registry::default();
    r.opened(path, 50);
    let t = r.sync_began(path, 200);
    r.truncated(path, 120);
    r.sync_ended(path, t, 200);
    assert_eq!(r.durable_len(path), Some(120));
    let t = r.sync_began(path, 300);
    r.truncated(path, 10);
    r.sync_ended(path, t, 300);
    assert_eq!(r.durable_len(path), Some(120), "what an earlier fsync acknowledged stays");
}

#[test]
fn known_files_keep_their_record_deleted_ones_are_forgotten_and_a_freeze_blocks_reports() {
    let (a, b) = (Path::new("/d/x/1.log"), Path::new("/d/y/1.log"));
    let mut r = Registry::default();
    r.opened(a, 70);
    r.opened(a, 90);
    assert_eq!(r.durable_len(a), Some(70), "opening again does not make unsynced bytes durable");
    r.opened(b, 5);
    r.forget_dir(Path::new("/d/x"));
    assert_eq!((r.durable_len(a), r.durable_len(b)), (None, Some(5)));
    let stale = r.sync_began(b, 9);
    r.created(b);
    assert_eq!(r.sync_ended(b, stale, 9), Reported::Yes);
    assert_eq!(r.durable_len(b), Some(0), "an fsync of the file that was replaced changes nothing");
    let t = r.sync_began(b, 30);
    assert_eq!(r.freeze(), vec![(b.to_path_buf(), Durable::Prefix(0))]);
    assert_eq!(r.sync_ended(b, t, 30), Reported::Frozen);
    assert_eq!(r.atomic_written(Path::new("/d/hw"), b"1"), Reported::Frozen);
    r.forget(b);
    assert_eq!(r.durable_len(b), None);
}

/// The `.log` files in `dir`, oldest first.
fn segment_logs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// A log whose segments roll every few batches, with tracking on.
fn tracked_log(dir: &Path) -> PartitionLog {
    enable();
    let config = LogConfig {
        segment_bytes: 400,
        segment_ms: 1 << 50,
        retention_bytes: -1,
        retention_ms: -1,
        index_interval_bytes: 1,
        compaction: None,
    };
    PartitionLog::open(dir, config, 1_000).expect("open").0
}

#[test]
fn the_log_layer_reports_creates_fsyncs_truncations_and_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = tracked_log(dir.path());
    let first = dir.path().join(file_name(0, "log"));
    assert_eq!(durable_len(&first), Some(0), "a new segment holds nothing durable");
    log.append(&mut batch(&["a", "b"], 1), 0, 1).expect("append");
    assert_eq!(durable_len(&first), Some(0), "a plain write is not durable");
    log.sync_handle().sync().expect("sync");
    assert_eq!(durable_len(&first), Some(len_of(&first)));
    for i in 0..8 {
        log.append(&mut batch(&["0123456789"; 3], i), 0, 1).expect("append");
    }
    // Rolling sealed (fsynced) the first segment and its indexes.
    assert!(log.segment_count() > 2);
    assert_eq!(durable_len(&first), Some(len_of(&first)));
    let index = dir.path().join(file_name(0, "index"));
    assert!(len_of(&index) > 0);
    assert_eq!(durable_len(&index), Some(len_of(&index)));
    let end = log.log_end_offset();
    let logs = segment_logs(dir.path());
    let last = logs.last().expect("segments").clone();
    log.sync_handle().sync().expect("sync");
    let synced = len_of(&last);
    log.truncate_to(end - 3).expect("truncate");
    assert!(len_of(&last) < synced);
    assert_eq!(durable_len(&last), Some(synced), "a truncation is not durable before an fsync");
    log.flush().expect("flush");
    assert_eq!(durable_len(&last), Some(len_of(&last)));
    log.truncate_to(1).expect("truncate into the first segment");
    for removed in &logs[1..] {
        assert!(!removed.exists());
        assert_eq!(durable_len(removed), None, "deleted segments are forgotten");
    }
    log.delete().expect("delete");
    assert_eq!(durable_len(&first), None);
}

#[test]
fn fsyncing_many_logs_together_makes_each_durable_up_to_its_length_at_the_call() {
    let dirs: Vec<_> = (0..SYNC_TOGETHER_MIN + 2).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let mut logs: Vec<_> = dirs.iter().map(|d| tracked_log(d.path())).collect();
    for (i, log) in logs.iter_mut().enumerate() {
        log.append(&mut batch(&["x"; 2], i as i64), 0, 1).expect("append");
    }
    let actives: Vec<_> = dirs.iter().map(|d| segment_logs(d.path()).pop().expect("active")).collect();
    let handles: Vec<_> = logs.iter().map(|l| l.sync_handle()).collect();
    // Too few files are fsynced one by one; these many together. Both record every file.
    SyncHandle::sync_all(&handles[..SYNC_TOGETHER_MIN - 1]).expect("sync a few");
    SyncHandle::sync_all(&handles).expect("sync together");
    for active in &actives {
        assert_eq!(durable_len(active), Some(len_of(active)));
    }
    logs[0].append(&mut batch(&["later"], 9), 0, 1).expect("append");
    assert!(durable_len(&actives[0]) < Some(len_of(&actives[0])), "a later write is not durable");
}

#[test]
fn write_atomic_replaces_the_whole_file_and_records_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    enable();
    let path = dir.path().join("replication-offset-checkpoint");
    write_atomic(&path, b"0\n1\ntopic 0 42\n").expect("write");
    assert_eq!(std::fs::read(&path).expect("read"), b"0\n1\ntopic 0 42\n");
    assert_eq!(durable_len(&path), Some(15));
    write_atomic(&path, b"short").expect("rewrite");
    assert_eq!(std::fs::read(&path).expect("read"), b"short");
    assert_eq!(durable_len(&path), Some(5));
    assert!(!dir.path().join("replication-offset-checkpoint.tmp").exists(), "the temporary file was renamed");
    let err = write_atomic(Path::new("/"), b"x").expect_err("no file name");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn the_cut_restores_durable_lengths_and_content_and_garbles_only_torn_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("t-0");
    std::fs::create_dir(&part).expect("mkdir");
    let (sealed, active, index) = (part.join("00.log"), part.join("10.log"), part.join("00.index"));
    let (checkpoint, fresh) = (dir.path().join("hw"), dir.path().join("new-marker"));
    std::fs::write(&sealed, [1u8; 100]).expect("write");
    std::fs::write(&active, [2u8; 80]).expect("write");
    std::fs::write(&index, [3u8; 8]).expect("write");
    std::fs::write(&checkpoint, b"new content").expect("write");
    std::fs::write(&fresh, b"never durable").expect("write");
    let snapshot = vec![
        (sealed.clone(), Durable::Prefix(100)),
        (active.clone(), Durable::Prefix(50)),
        (index.clone(), Durable::Prefix(16)),
        (checkpoint.clone(), Durable::Whole(Some(Arc::from(&b"old"[..])))),
        (fresh.clone(), Durable::Whole(None)),
    ];
    let report = apply(&snapshot, PowerCut { garbage_bytes: 0, seed: 1 });
    assert!(report.iter().all(|f| f.error.is_none()), "{report:?}");
    assert_eq!((len_of(&sealed), len_of(&active)), (100, 50));
    assert_eq!(std::fs::read(&index).expect("read"), [[3u8; 8], [0u8; 8]].concat(), "a lost truncation");
    assert_eq!(std::fs::read(&checkpoint).expect("read"), b"old");
    assert!(!fresh.exists());
    assert!(!report[0].changed() && report[1].changed());

    std::fs::write(&active, [2u8; 80]).expect("write");
    let garbled = |seed| {
        std::fs::write(&active, [2u8; 80]).expect("write");
        let report = apply(&snapshot[..2], PowerCut { garbage_bytes: 7, seed });
        (report, std::fs::read(&active).expect("read"))
    };
    let (report, bytes) = garbled(42);
    assert_eq!((report[0].garbage, report[1].garbage), (0, 7), "only the active segment was being written");
    assert_eq!((len_of(&sealed), bytes.len()), (100, 57));
    assert_eq!(bytes[..50], [2u8; 50]);
    assert_eq!(garbled(42).1, bytes, "the same seed gives the same garbage");
    assert_ne!(garbled(43).1, bytes);
}

#[test]
fn an_armed_cut_waits_for_its_file_and_fires_once() {
    let mut r = Registry::default();
    let cut = super::PowerCut { garbage_bytes: 0, seed: 3 };
    assert_eq!(r.take_armed(Path::new("/d/replication-offset-checkpoint")), None, "nothing armed");
    r.arm("replication-offset-checkpoint".into(), cut);
    assert_eq!(r.take_armed(Path::new("/d/t-0/leader-epoch-checkpoint")), None, "another file");
    assert_eq!(r.take_armed(Path::new("/d/replication-offset-checkpoint.tmp")), None, "its temporary file");
    assert_eq!(r.take_armed(Path::new("/d/replication-offset-checkpoint")), Some(cut));
    assert_eq!(r.take_armed(Path::new("/d/replication-offset-checkpoint")), None, "disarmed by firing");
}
