//! Digests of real logs: a follower copy agrees, one changed record is found at every level.

use std::path::Path;

use super::*;
use crate::log::PartitionLog;
use crate::log::batch::split_batches;
use crate::log::config::LogConfig;
use crate::log::test_support::{batch, fix_crc};

fn open(dir: &Path) -> PartitionLog {
    let config = LogConfig {
        segment_bytes: 600,
        segment_ms: 1 << 50,
        retention_bytes: -1,
        retention_ms: -1,
        index_interval_bytes: 64,
        compaction: None,
    };
    PartitionLog::open(dir, config, 1_000).expect("open").0
}

/// A leader log of 30 batches of 3 records over epochs 0, 1 and 2, and a follower copy.
fn leader_and_follower(leader_dir: &Path, follower_dir: &Path) -> (PartitionLog, PartitionLog) {
    let mut leader = open(leader_dir);
    for i in 0..30 {
        let values = [format!("a{i}"), format!("b{i}"), format!("c{i}")];
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        leader.append(&mut batch(&values, 1_000 + i), (i / 10) as i32, 1).expect("append");
    }
    let mut follower = open(follower_dir);
    let all = leader.read(0, i64::MAX, usize::MAX, true).expect("read").records;
    for b in split_batches(&all).expect("split") {
        follower.append_replicated(&b, 1).expect("copy");
    }
    (leader, follower)
}

fn ask(log: &PartitionLog, from: i64, to: i64, query: DigestQuery) -> DigestAnswer {
    log.view().digest(from, to, query).expect("digest")
}

#[test]
fn a_byte_for_byte_copy_agrees_and_epochs_split_the_range() {
    let (a, b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (leader, follower) = leader_and_follower(a.path(), b.path());
    assert!(leader.segment_count() > 3);
    let DigestAnswer::Epochs { ranges } = ask(&leader, 0, 90, DigestQuery::Epochs) else { panic!("epochs") };
    let spans: Vec<_> = ranges.iter().map(|r| (r.leader_epoch, r.start_offset, r.end_offset, r.batches)).collect();
    assert_eq!(spans, vec![(Some(0), 0, 30, 10), (Some(1), 30, 60, 10), (Some(2), 60, 90, 10)]);
    for query in [DigestQuery::Epochs, DigestQuery::Chunks { parts: 7 }, DigestQuery::Batches { limit: 100 }] {
        assert_eq!(ask(&leader, 0, 90, query), ask(&follower, 0, 90, query));
    }
    // Only whole batches inside the range count: [4, 20) holds batches 6..18.
    let DigestAnswer::Batches { batches, complete } = ask(&leader, 4, 20, DigestQuery::Batches { limit: 100 }) else {
        panic!("batches")
    };
    assert!(complete);
    assert_eq!(batches.iter().map(|b| b.base_offset).collect::<Vec<_>>(), vec![6, 9, 12, 15]);
    let DigestAnswer::Batches { batches, complete } = ask(&leader, 0, 90, DigestQuery::Batches { limit: 4 }) else {
        panic!("batches")
    };
    assert_eq!((batches.len(), complete), (4, false));
}

#[test]
fn one_changed_record_is_found_by_epoch_chunk_batch_and_record() {
    let (a, b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (leader, follower) = leader_and_follower(a.path(), b.path());
    drop(follower);
    // Rewrite the value of offset 46 (the second record of the batch at 45) with a valid CRC.
    let segment = std::fs::read_dir(b.path())
        .expect("list")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .find(|p| std::fs::read(p).expect("read").windows(3).any(|w| w == b"b15"))
        .expect("segment with offset 46");
    let mut data = std::fs::read(&segment).expect("read");
    let at = data.windows(3).position(|w| w == b"b15").expect("value");
    data[at] = b'X';
    let mut start = 0;
    let len = loop {
        let header = crate::log::BatchHeader::parse(&data[start..]).expect("header");
        if header.base_offset == 45 {
            break header.total_len();
        }
        start += header.total_len();
    };
    fix_crc(&mut data[start..start + len]);
    std::fs::write(&segment, data).expect("write");
    let follower = open(b.path());

    let epochs = |log| match ask(log, 0, 90, DigestQuery::Epochs) {
        DigestAnswer::Epochs { ranges } => ranges,
        other => panic!("{other:?}"),
    };
    let (le, fe) = (epochs(&leader), epochs(&follower));
    assert_eq!((le[0] == fe[0], le[1] == fe[1], le[2] == fe[2]), (true, false, true));
    let chunks = |log| ask(log, 30, 60, DigestQuery::Chunks { parts: 3 });
    let (DigestAnswer::Chunks { ranges: lc }, DigestAnswer::Chunks { ranges: fc }) =
        (chunks(&leader), chunks(&follower))
    else {
        panic!("chunks")
    };
    assert_eq!(lc.iter().zip(&fc).map(|(l, f)| l == f).collect::<Vec<_>>(), vec![true, false, true]);
    let records = |log| ask(log, 40, 50, DigestQuery::Records { offset: 46 });
    let (
        DigestAnswer::Records { batch: Some(lb), records: lr },
        DigestAnswer::Records { batch: Some(fb), records: fr },
    ) = (records(&leader), records(&follower))
    else {
        panic!("records")
    };
    assert_eq!((lb.base_offset, fb.base_offset), (45, 45));
    assert_ne!(lb.sha256, fb.sha256);
    let differ: Vec<i64> = lr.iter().zip(&fr).filter(|(l, f)| l != f).map(|(l, _)| l.offset).collect();
    assert_eq!(differ, vec![46]);
    let DigestAnswer::Records { batch: None, .. } = ask(&leader, 0, 40, DigestQuery::Records { offset: 46 }) else {
        panic!("offset 46 lies outside [0, 40)")
    };
}
