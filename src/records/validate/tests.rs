//! One test per rule: a real batch from kafka-protocol's encoder, one fault put in with the
//! CRC recomputed, and the exact refusal and Kafka error code asserted.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::records::Compression;

use super::super::test_support::*;
use super::*;
use crate::records::RecordFault;

fn check(batch: Vec<u8>) -> Result<Bytes, Refusal> {
    validate_produce(Some(&Bytes::from(batch)), &rules())
}

fn refused(batch: Vec<u8>) -> Refusal {
    check(batch).expect_err("should be refused")
}

fn record_fault(batch: Vec<u8>) -> (i32, RecordFault) {
    match refused(batch) {
        Refusal::Record { index, fault } => (index, fault),
        other => panic!("expected a record fault, got {other:?}"),
    }
}

#[test]
fn real_batches_of_every_codec_pass_unchanged() {
    for codec in CODECS {
        let b = batch(codec, 30);
        let got = check(b.clone()).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        assert_eq!(&got[..], &b[..], "{codec:?}");
    }
    let idempotent: Vec<_> = (0..5).map(|i| record(i, 42, 1_000)).collect();
    check(encode(&idempotent, Compression::Lz4)).expect("idempotent batch");
}

#[test]
fn no_records_or_no_complete_batch_is_invalid_record() {
    assert_eq!(validate_produce(None, &rules()), Err(Refusal::NoBatch { len: 0 }));
    assert_eq!(refused(Vec::new()), Refusal::NoBatch { len: 0 });
    let mut b = batch(Compression::None, 3);
    b.truncate(b.len() - 1);
    let r = refused(b);
    assert!(matches!(r, Refusal::NoBatch { .. }), "{r:?}");
    assert_eq!(r.error(), ResponseError::InvalidRecord);
}

#[test]
fn a_second_batch_or_trailing_bytes_are_invalid_record() {
    let one = batch(Compression::None, 2);
    let r = refused([one.clone(), one.clone()].concat());
    assert_eq!(r, Refusal::ExtraBytes { extra: one.len() });
    assert_eq!(r.error(), ResponseError::InvalidRecord);
    assert_eq!(refused([one, vec![0; 5]].concat()), Refusal::ExtraBytes { extra: 5 });
}

#[test]
fn magic_and_frame_faults() {
    let mut b = batch(Compression::None, 2);
    b[16] = 1;
    assert_eq!(refused(b.clone()).error(), ResponseError::InvalidRecord, "an old format");
    b[16] = 7;
    assert_eq!(refused(b).error(), ResponseError::CorruptMessage, "an unknown magic");
    let mut b = batch(Compression::None, 2);
    b[8..12].copy_from_slice(&13i32.to_be_bytes());
    assert_eq!(refused(b).error(), ResponseError::CorruptMessage, "shorter than any record");
    let mut b = batch(Compression::None, 2);
    b.truncate(40);
    fix_length(&mut b);
    assert_eq!(refused(b), Refusal::TooShort { batch_length: 28 });
}

#[test]
fn base_offset_must_be_zero() {
    let mut b = batch(Compression::None, 2);
    b[..8].copy_from_slice(&5i64.to_be_bytes());
    let r = refused(b);
    assert_eq!(r, Refusal::BaseOffset(5));
    assert_eq!(r.error(), ResponseError::InvalidRecord);
}

#[test]
fn a_bad_crc_is_corrupt_message() {
    let mut b = batch(Compression::None, 2);
    let last = b.len() - 1;
    b[last] ^= 1;
    let r = refused(b);
    assert!(matches!(r, Refusal::Header(BatchError::CrcMismatch { .. })), "{r:?}");
    assert_eq!(r.error(), ResponseError::CorruptMessage);
}

#[test]
fn count_and_last_offset_delta_must_agree_and_be_positive() {
    let mut b = batch(Compression::None, 3);
    put(&mut b, 57, &4i32.to_be_bytes());
    assert_eq!(refused(b.clone()).error(), ResponseError::InvalidRecord, "count disagrees");
    put(&mut b, 57, &3i32.to_be_bytes());
    put(&mut b, 23, &7i32.to_be_bytes());
    assert_eq!(refused(b.clone()).error(), ResponseError::InvalidRecord, "last offset delta disagrees");
    set_count(&mut b, 0);
    assert_eq!(refused(b).error(), ResponseError::InvalidRecord, "an empty batch");
}

#[test]
fn clients_may_not_write_control_batches() {
    let mut b = batch(Compression::None, 2);
    b[22] |= 0x20;
    fix_crc(&mut b);
    assert_eq!(refused(b), Refusal::ControlBatch);
    assert_eq!(Refusal::ControlBatch.error(), ResponseError::InvalidRecord);
}

#[test]
fn a_producer_id_needs_a_sequence_but_a_sequence_needs_no_producer_id() {
    let idempotent: Vec<_> = (0..2).map(|i| record(i, 42, 1_000)).collect();
    let mut b = encode(&idempotent, Compression::None);
    put(&mut b, 53, &(-1i32).to_be_bytes());
    let r = refused(b);
    assert_eq!(r, Refusal::MissingSequence { producer_id: 42, base_sequence: -1 });
    assert_eq!(r.error(), ResponseError::InvalidRecord);
    // kafkajs sends producer id -1 with epoch 0 and sequence 0; Kafka accepts it.
    let mut b = batch(Compression::None, 2);
    put(&mut b, 51, &[0, 0, 0, 0, 0, 0]);
    check(b).expect("a sequence without a producer id");
}

#[test]
fn unknown_codecs_are_corrupt_and_zstd_needs_v7() {
    let mut b = batch(Compression::None, 2);
    b[22] |= 5;
    fix_crc(&mut b);
    assert_eq!(refused(b).error(), ResponseError::CorruptMessage);
    let b = Bytes::from(batch(Compression::Zstd, 2));
    let v6 = ProduceRules { api_version: 6, ..rules() };
    let r = validate_produce(Some(&b), &v6).expect_err("zstd on v6");
    assert_eq!(r.error(), ResponseError::UnsupportedCompressionType);
    validate_produce(Some(&b), &ProduceRules { api_version: 7, ..rules() }).expect("zstd on v7");
}

/// A transaction kept open for producer 42, as a later transactions feature would report.
struct Open;
impl OngoingTransactions for Open {
    fn is_ongoing(&self, producer_id: i64, _producer_epoch: i16) -> bool {
        producer_id == 42
    }
}

#[test]
fn transactional_batches_need_an_ongoing_transaction() {
    let mut records: Vec<_> = (0..2).map(|i| record(i, 42, 1_000)).collect();
    records.iter_mut().for_each(|r| r.transactional = true);
    let b = Bytes::from(encode(&records, Compression::None));
    assert!(claims_transaction(&b));
    let r = validate_produce(Some(&b), &rules()).expect_err("no transactional id");
    assert_eq!(r.error(), ResponseError::TransactionalIdAuthorizationFailed);
    let with_id = ProduceRules { has_transactional_id: true, ..rules() };
    let r = validate_produce(Some(&b), &with_id).expect_err("no coordinator knows it");
    assert_eq!(r, Refusal::NoOngoingTransaction { producer_id: 42 });
    assert_eq!(r.error(), ResponseError::InvalidProducerIdMapping);
    let open = ProduceRules { transactions: &Open, ..with_id };
    validate_produce(Some(&b), &open).expect("an open transaction lets it through");
    assert!(!claims_transaction(&batch(Compression::None, 1)));
}

#[test]
fn garbage_inside_a_compressed_batch_is_corrupt_message() {
    for codec in &CODECS[1..] {
        let mut b = batch(*codec, 50);
        let end = b.len();
        b[RECORDS_AT..end].iter_mut().for_each(|x| *x ^= 0x5a);
        fix_crc(&mut b);
        let r = refused(b);
        assert!(matches!(r, Refusal::Decompress(_)), "{codec:?}: {r:?}");
        assert_eq!(r.error(), ResponseError::CorruptMessage);
    }
}

#[test]
fn record_length_varint_garbled_negative_or_too_long() {
    let at = record_at(1);
    let mut b = batch(Compression::None, 3);
    splice(&mut b, at..at + 1, &[0xff, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(record_fault(b), (1, RecordFault::Varint { field: "record length" }));
    let mut b = batch(Compression::None, 3);
    put(&mut b, at, &[0x01]); // zigzag -1
    assert!(matches!(record_fault(b), (1, RecordFault::Length { length: -1, .. })));
    let mut b = batch(Compression::None, 3);
    put(&mut b, record_at(2), &[0x30]); // 24 bytes where 22 are left
    assert_eq!(record_fault(b), (2, RecordFault::Length { length: 24, available: 22 }));
}

#[test]
fn record_attributes_must_be_zero() {
    let mut b = batch(Compression::None, 2);
    put(&mut b, record_at(0) + 1, &[0x80]);
    assert_eq!(record_fault(b), (0, RecordFault::Attributes(0x80)));
}

#[test]
fn timestamps_may_be_negative_but_may_not_overflow() {
    let mut b = batch(Compression::None, 2);
    put(&mut b, 27, &(-5_000i64).to_be_bytes());
    check(b).expect("Kafka stores negative create times");
    let mut b = batch(Compression::None, 2);
    put(&mut b, 27, &(i64::MAX - 1).to_be_bytes());
    put(&mut b, record_at(1) + 2, &[0x04]); // delta +2
    let r = refused(b);
    assert_eq!(r, Refusal::Record { index: 1, fault: RecordFault::TimestampOverflow { delta: 2 } });
    assert_eq!(r.error(), ResponseError::InvalidTimestamp);
}

#[test]
fn offset_delta_must_be_the_records_position() {
    let mut b = batch(Compression::None, 3);
    put(&mut b, record_at(2) + 3, &[0x02]); // 1 instead of 2
    assert_eq!(record_fault(b), (2, RecordFault::OffsetDelta { got: 1 }));
}

#[test]
fn key_and_value_lengths_are_at_least_minus_one_and_within_the_record() {
    let mut b = batch(Compression::None, 2);
    put(&mut b, record_at(0) + 4, &[0x03]); // -2
    assert_eq!(record_fault(b), (0, RecordFault::FieldLength { field: "key", length: -2 }));
    let mut b = batch(Compression::None, 2);
    put(&mut b, record_at(1) + 8, &[0x40]); // 32 bytes
    assert!(matches!(record_fault(b), (1, RecordFault::FieldBeyondRecord { field: "value", length: 32, .. })));
}

#[test]
fn header_count_and_header_fields() {
    let h = record_at(1) + 17;
    type Expect = fn(&RecordFault) -> bool;
    let cases: [(usize, u8, Expect); 4] = [
        (h, 0x01, |f| matches!(f, RecordFault::HeaderCount { count: -1, .. })),
        (h, 0x7e, |f| matches!(f, RecordFault::HeaderCount { count: 63, .. })),
        (h + 1, 0x01, |f| matches!(f, RecordFault::FieldLength { field: "header key", length: -1 })),
        (h + 3, 0x03, |f| matches!(f, RecordFault::FieldLength { field: "header value", length: -2 })),
    ];
    for (at, byte, expected) in cases {
        let mut b = batch(Compression::None, 2);
        put(&mut b, at, &[byte]);
        let (index, fault) = record_fault(b);
        assert!(index == 1 && expected(&fault), "{at} {byte:#x}: {fault:?}");
    }
    let mut b = batch(Compression::None, 2);
    put(&mut b, h + 2, &[0xff]);
    assert_eq!(record_fault(b), (1, RecordFault::HeaderKeyNotUtf8));
}

#[test]
fn record_count_must_match_the_records_present() {
    let mut b = batch(Compression::None, 3);
    set_count(&mut b, 4);
    let r = refused(b);
    assert_eq!(r, Refusal::MissingRecords { declared: 4, found: 3 });
    assert_eq!(r.error(), ResponseError::InvalidRecord);
    let mut b = batch(Compression::None, 3);
    set_count(&mut b, 2);
    assert_eq!(refused(b), Refusal::TrailingBytes { extra: RECORD_LEN });
}

#[test]
fn bytes_after_the_last_record_or_inside_a_record_are_refused() {
    let mut b = batch(Compression::None, 2);
    let end = b.len();
    splice(&mut b, end..end, &[0]);
    assert_eq!(refused(b), Refusal::TrailingBytes { extra: 1 });
    let at = record_at(0);
    let mut b = batch(Compression::None, 2);
    b[at] = 0x2e; // 23 bytes where the fields take 22
    splice(&mut b, at + RECORD_LEN..at + RECORD_LEN, &[0]);
    assert_eq!(record_fault(b), (0, RecordFault::Leftover { declared: 23, parsed: 22 }));
}

#[test]
fn the_log_append_time_flag_is_refused_with_an_error_per_record() {
    let mut b = batch(Compression::None, 3);
    b[22] |= 0x08;
    fix_crc(&mut b);
    let r = refused(b);
    assert_eq!(r.error(), ResponseError::InvalidTimestamp);
    let indexes: Vec<i32> = r.record_errors().iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![0, 1, 2]);
}

#[test]
fn record_errors_name_the_record_and_batch_faults_name_none() {
    let mut b = batch(Compression::None, 3);
    put(&mut b, record_at(2) + 1, &[1]);
    let r = refused(b);
    assert_eq!(r.record_errors(), vec![(2, "record attributes 0x01, expected 0".to_string())]);
    assert!(Refusal::ControlBatch.record_errors().is_empty());
}

#[test]
fn records_inside_compressed_batches_are_walked_too() {
    for codec in &CODECS[1..] {
        let b = batch(*codec, 4);
        let mut plain = plain_records(&b);
        plain[record_at(3) - RECORDS_AT + 3] = 0x02; // offset delta 1 at record 3
        let r = refused(with_plain_records(&b, &plain));
        assert_eq!(r, Refusal::Record { index: 3, fault: RecordFault::OffsetDelta { got: 1 } }, "{codec:?}");
        let mut plain = plain_records(&b);
        plain.push(0);
        assert_eq!(refused(with_plain_records(&b, &plain)), Refusal::TrailingBytes { extra: 1 }, "{codec:?}");
    }
}

fn with_topic(topic: TopicRules) -> ProduceRules<'static> {
    ProduceRules { topic, ..rules() }
}

#[test]
fn a_batch_above_max_message_bytes_is_message_too_large() {
    let b = batch(Compression::None, 3);
    let limit = |max_batch_bytes| with_topic(TopicRules { max_batch_bytes, ..TopicRules::default() });
    validate_produce(Some(&Bytes::from(b.clone())), &limit(b.len())).expect("exactly at the limit");
    let r = validate_produce(Some(&Bytes::from(b.clone())), &limit(b.len() - 1)).expect_err("one byte over");
    assert_eq!(r, Refusal::TooLarge { size: b.len(), max: b.len() - 1 });
    assert_eq!(r.error(), ResponseError::MessageTooLarge);
}

#[test]
fn create_time_outside_the_window_is_invalid_timestamp_per_record() {
    let now = rules().now_ms;
    // Record 1 is an hour old, record 2 an hour ahead, record 3 has no timestamp (exempt).
    let stamps = [now, now - 3_600_000, now + 3_600_000, -1];
    let records: Vec<_> = stamps.iter().enumerate().map(|(i, ts)| record(i, -1, *ts)).collect();
    let b = Bytes::from(encode(&records, Compression::Lz4));
    let window = |before_ms, after_ms| {
        with_topic(TopicRules {
            timestamps: TimestampRule::CreateTime { before_ms, after_ms },
            ..TopicRules::default()
        })
    };
    validate_produce(Some(&b), &window(3_600_000, 3_600_000)).expect("both at the edge");
    let r = validate_produce(Some(&b), &window(60_000, 60_000)).expect_err("an hour off either way");
    assert_eq!(r.error(), ResponseError::InvalidTimestamp);
    let indexes: Vec<i32> = r.record_errors().iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![1, 2]);
    let r = validate_produce(Some(&b), &window(i64::MAX, 60_000)).expect_err("the future one");
    let want = format!(
        "timestamp {} is out of range; it must be within [{}, {}]",
        now + 3_600_000,
        now - i64::MAX,
        now + 60_000
    );
    assert_eq!(r.record_errors(), vec![(2, want)]);
}

#[test]
fn a_log_append_time_topic_stamps_the_batch_and_keeps_its_records() {
    let b = batch(Compression::Gzip, 3);
    let topic = TopicRules { timestamps: TimestampRule::LogAppendTime, ..TopicRules::default() };
    let now = 1_800_000_000_000;
    let stamped = validate_produce(Some(&Bytes::from(b.clone())), &ProduceRules { topic, now_ms: now, ..rules() })
        .expect("a LogAppendTime topic takes any CreateTime");
    verify_crc(&stamped).expect("the CRC is recomputed");
    let header = BatchHeader::parse(&stamped).expect("header");
    assert!(header.is_log_append_time());
    assert_eq!(header.max_timestamp, now);
    assert_eq!(&stamped[BATCH_HEADER_LEN..], &b[BATCH_HEADER_LEN..], "records untouched");
    assert_eq!(header.compression(), 1, "the codec bits are kept");
}

#[test]
fn keyless_records_on_a_compacted_topic_are_invalid_record_per_record() {
    let now = rules().now_ms;
    let mut records: Vec<_> = (0..4).map(|i| record(i, -1, now)).collect();
    records[1].key = None;
    records[3].key = None;
    let b = Bytes::from(encode(&records, Compression::Gzip));
    let compacted = with_topic(TopicRules { keys_required: true, ..TopicRules::default() });
    let r = validate_produce(Some(&b), &compacted).expect_err("two records have no key");
    assert_eq!(r.error(), ResponseError::InvalidRecord);
    let indexes: Vec<i32> = r.record_errors().iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![1, 3]);
    validate_produce(Some(&b), &with_topic(TopicRules::default())).expect("keys are optional elsewhere");
}
