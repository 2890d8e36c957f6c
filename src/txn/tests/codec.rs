//! `__transaction_state` records and transaction markers.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::{meta, tp};
use crate::log::{BatchHeader, set_base_offset_and_epoch, verify_crc};
use crate::offsets::{CommittedOffset, OffsetKey, encode_commits};
use crate::records::encode_batch;
use crate::txn::*;

/// Rewrites the CRC after a test edits a batch, so the edit itself is what gets checked.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn txn_records_round_trip_through_a_batch() {
    let mut ongoing = meta(TxnState::Ongoing);
    ongoing.partitions.insert(tp("orders", 11));
    let records: Vec<TxnRecord> =
        vec![("t1".into(), Some(ongoing)), ("t2".into(), Some(meta(TxnState::CompleteAbort))), ("t3".into(), None)];
    let batch = encode_txn_records(&records, 1_000).expect("encode");
    let header = BatchHeader::parse(&batch).expect("one batch");
    assert_eq!(header.record_count, 3);
    assert!(!header.is_control() && !header.is_transactional());
    assert_eq!(decode_txn_records(batch).expect("decode"), records);
}

#[test]
fn the_stored_json_is_readable() {
    let batch = encode_txn_records(&[("t1".into(), Some(meta(TxnState::Ongoing)))], 0).unwrap();
    let record = RecordBatchDecoder::decode(&mut batch.clone()).unwrap().records.remove(0);
    assert_eq!(record.key.as_deref(), Some(&br#"{"transactional_id":"t1"}"#[..]));
    let value: serde_json::Value = serde_json::from_slice(&record.value.unwrap()).unwrap();
    assert_eq!(value["state"], "Ongoing");
    assert_eq!(value["partitions"], serde_json::json!([["a", 0]]));
}

#[test]
fn decoding_skips_markers_and_foreign_records() {
    let ours: Vec<TxnRecord> = vec![("t1".into(), Some(meta(TxnState::Empty)))];
    let offset = CommittedOffset { offset: 1, leader_epoch: 0, metadata: None, commit_timestamp: 0 };
    let foreign_key = OffsetKey { group: "g".into(), topic: "t".into(), partition: 0 };
    let mut log = BytesMut::new();
    log.extend_from_slice(&encode_marker(5, 0, true, 0, 0));
    log.extend_from_slice(&encode_commits(&[(foreign_key, Some(offset))], 0, None).unwrap());
    let junk = [(Some(Bytes::from_static(b"not json")), Some(Bytes::from_static(b"{}")))];
    log.extend_from_slice(&encode_batch(&junk, 0, Compression::None).unwrap());
    // A key we recognise with a value we do not is skipped rather than taken for a tombstone.
    let bad_value = [(Some(Bytes::from_static(br#"{"transactional_id":"t9"}"#)), Some(Bytes::from_static(b"[]")))];
    log.extend_from_slice(&encode_batch(&bad_value, 0, Compression::None).unwrap());
    log.extend_from_slice(&encode_txn_records(&ours, 0).unwrap());
    assert_eq!(decode_txn_records(log.freeze()).unwrap(), ours);
    assert!(decode_txn_records(Bytes::from_static(b"garbage")).is_err());
}

#[test]
fn a_marker_is_a_valid_control_batch() {
    let marker = encode_marker(42, 9, true, 17, 5_000);
    let header = BatchHeader::parse(&marker).expect("header");
    verify_crc(&marker).expect("crc");
    assert_eq!(header.total_len(), marker.len());
    assert!(header.is_control() && header.is_transactional());
    assert_eq!((header.base_offset, header.last_offset_delta, header.record_count), (0, 0, 1));
    assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (42, 9, -1));
    assert_eq!((header.base_timestamp, header.max_timestamp, header.compression()), (5_000, 5_000, 0));

    // An independent decoder reads the same control record.
    let record = RecordBatchDecoder::decode(&mut marker.clone()).expect("decode").records.remove(0);
    assert!(record.control && record.transactional);
    assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
    assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 17][..]));
    assert_eq!((record.offset, record.timestamp), (0, 5_000));
}

/// The marker's kind alone.
fn kind(batch: &[u8]) -> Option<bool> {
    read_marker(batch).map(|m| m.commit)
}

#[test]
fn a_marker_reads_back_with_its_coordinator_epoch() {
    let m = read_marker(&encode_marker(1, 0, false, 17, 0));
    assert_eq!(m, Some(Marker { commit: false, coordinator_epoch: 17 }));
}

#[test]
fn marker_kind_reads_commit_and_abort_at_any_offset() {
    assert_eq!(kind(&encode_marker(1, 0, true, 0, 0)), Some(true));
    let mut abort = encode_marker(1, 0, false, 3, 0).to_vec();
    assert_eq!(kind(&abort), Some(false));
    set_base_offset_and_epoch(&mut abort, 123_456, 8);
    assert_eq!(kind(&abort), Some(false));
}

#[test]
fn marker_kind_refuses_batches_that_are_not_markers() {
    let data = encode_batch(&[(None, Some(Bytes::from_static(b"\0\0\0\x01")))], 0, Compression::None).unwrap();
    assert_eq!(kind(&data), None);
    assert_eq!(kind(&encode_txn_records(&[("t".into(), None)], 0).unwrap()), None);

    let marker = encode_marker(1, 0, true, 0, 0).to_vec();
    // After the 61-byte header: record length, attributes, timestamp and offset deltas, key
    // length (one byte each), then the key: version at 66..68, type at 68..70.
    for (at, byte) in [(69, 2u8), (66, 0x80)] {
        let mut edited = marker.clone();
        edited[at] = byte;
        fix_crc(&mut edited);
        assert_eq!(kind(&edited), None, "byte {at} = {byte:#x}");
    }
    let mut corrupt = marker.clone();
    corrupt[69] = 0;
    assert_eq!(kind(&corrupt), None, "a stale CRC is refused");
}

#[test]
fn marker_kind_never_panics_on_damaged_bytes() {
    let marker = encode_marker(1, 0, true, 0, 0).to_vec();
    for len in 0..marker.len() {
        assert_eq!(kind(&marker[..len]), None, "prefix of {len} bytes");
    }
    // Every byte of the record overwritten, CRC made valid again: whatever it says, no panic.
    for at in 61..marker.len() {
        for byte in [0x00, 0x7f, 0x80, 0xff] {
            let mut edited = marker.clone();
            edited[at] = byte;
            fix_crc(&mut edited);
            let _ = kind(&edited);
        }
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2_000 {
        let mut bytes: Vec<u8> = (0..rng.usize(0..120)).map(|_| rng.u8(..)).collect();
        if bytes.len() >= 61 {
            // Make many of them pass the header checks so the record walk is exercised.
            let batch_length = (bytes.len() - 12) as i32;
            bytes[8..12].copy_from_slice(&batch_length.to_be_bytes());
            bytes[16] = 2;
            bytes[21..23].copy_from_slice(&0x30i16.to_be_bytes());
            bytes[23..27].copy_from_slice(&0i32.to_be_bytes());
            bytes[57..61].copy_from_slice(&1i32.to_be_bytes());
            fix_crc(&mut bytes);
        }
        let _ = kind(&bytes);
    }
}
