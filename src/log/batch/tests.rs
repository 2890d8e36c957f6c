use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::log::test_support::{batch, fix_crc, idempotent_batch};

#[test]
fn parses_an_encoded_batch() {
    let b = batch(&["a", "bb", "ccc"], 1_700_000_000_000);
    let h = BatchHeader::parse(&b).expect("parse");
    assert_eq!(h.total_len(), b.len());
    assert_eq!(h.magic, 2);
    assert_eq!(h.record_count, 3);
    assert_eq!(h.last_offset_delta, 2);
    assert_eq!(h.base_offset, 0);
    assert_eq!(h.last_offset(), 2);
    assert_eq!(h.max_timestamp, 1_700_000_000_000);
    assert_eq!(h.compression(), 0);
    assert!(!h.is_transactional() && !h.is_control() && !h.has_producer_id());
    assert_eq!(h.last_sequence(), -1);
    verify_crc(&b).expect("crc");
}

#[test]
fn last_sequence_wraps_like_kafka() {
    let b = idempotent_batch(&["a", "b", "c"], 7, 10);
    let mut h = BatchHeader::parse(&b).expect("parse");
    assert!(h.has_producer_id());
    assert_eq!(h.last_sequence(), 12);
    h.base_sequence = i32::MAX - 1;
    assert_eq!(h.last_sequence(), 0);
}

#[test]
fn rewriting_offset_and_epoch_keeps_the_crc_valid() {
    let mut b = batch(&["a", "b"], 5);
    set_base_offset_and_epoch(&mut b, 1234, 7);
    let h = BatchHeader::parse(&b).expect("parse");
    assert_eq!((h.base_offset, h.partition_leader_epoch, h.last_offset()), (1234, 7, 1235));
    verify_crc(&b).expect("crc still valid");
}

#[test]
fn parse_refuses_short_bad_magic_and_bad_length() {
    let b = batch(&["a"], 5);
    assert!(matches!(BatchHeader::parse(&b[..60]), Err(BatchError::Truncated { need: 61, have: 60, .. })));
    let mut bad = b.clone();
    bad[16] = 1;
    assert!(matches!(BatchHeader::parse(&bad), Err(BatchError::BadMagic { magic: 1, .. })));
    let mut bad = b.clone();
    bad[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(BatchHeader::parse(&bad), Err(BatchError::BadLength { batch_length: 10, .. })));
    let mut bad = b;
    bad[57..61].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(BatchHeader::parse(&bad), Err(BatchError::Negative { value: -1, .. })));
}

fn three_batches() -> BytesMut {
    let mut all = BytesMut::new();
    all.put_slice(&batch(&["a"], 1));
    all.put_slice(&batch(&["b", "c"], 2));
    all.put_slice(&batch(&["d", "e", "f"], 3));
    all
}

#[test]
fn splits_good_input_zero_copy() {
    let all = three_batches().freeze();
    let parts = split_batches(&all).expect("split");
    assert_eq!(parts.len(), 3);
    let counts: Vec<i32> = parts.iter().map(|p| BatchHeader::parse(p).expect("parse").record_count).collect();
    assert_eq!(counts, vec![1, 2, 3]);
    assert_eq!(parts.iter().map(Bytes::len).sum::<usize>(), all.len());
    assert_eq!(parts[0].as_ptr(), all.as_ptr(), "slices share the input buffer");
    assert!(split_batches(&Bytes::new()).expect("empty").is_empty());
}

#[test]
fn split_names_the_truncated_batch() {
    let all = three_batches();
    let cut = all.len() - 5;
    let err = split_batches(&all.freeze().slice(..cut)).expect_err("truncated");
    assert!(matches!(err, BatchError::Truncated { index: 2, .. }), "{err}");
    assert!(err.to_string().starts_with("batch 2: truncated: need"), "{err}");
    let tiny = Bytes::from_static(&[0u8; 20]);
    assert!(matches!(split_batches(&tiny), Err(BatchError::Truncated { index: 0, need: 61, have: 20 })));
}

#[test]
fn split_refuses_bad_crc_and_bad_magic() {
    let mut all = three_batches();
    let second = batch(&["a"], 1).len();
    let last = all.len() - 1;
    all[last] ^= 0xff;
    let err = split_batches(&all.clone().freeze()).expect_err("crc");
    assert!(matches!(err, BatchError::CrcMismatch { index: 2, .. }), "{err}");
    all[last] ^= 0xff;
    all[second + 16] = 0;
    let err = split_batches(&all.freeze()).expect_err("magic");
    assert!(matches!(err, BatchError::BadMagic { index: 1, magic: 0 }), "{err}");
}

#[test]
fn split_refuses_more_records_than_offsets_but_takes_compacted_batches() {
    let mut b = batch(&["a", "b", "c"], 1);
    b[23..27].copy_from_slice(&1i32.to_be_bytes());
    // The delta is inside the CRC: fix it so only the count check can fire.
    fix_crc(&mut b);
    let err = split_batches(&Bytes::from(b.clone())).expect_err("count");
    assert!(matches!(err, BatchError::CountMismatch { record_count: 3, last_offset_delta: 1, .. }), "{err}");
    // Three records spread over offsets 0..=5: what the cleaner leaves of a larger batch.
    b[23..27].copy_from_slice(&5i32.to_be_bytes());
    fix_crc(&mut b);
    assert_eq!(split_batches(&Bytes::from(b)).expect("compacted").len(), 1);
}
