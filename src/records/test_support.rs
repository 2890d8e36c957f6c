//! Helpers for the validator's tests: real batches from kafka-protocol's encoder, and edits
//! that keep the frame consistent (batch length, CRC-32C) so only the intended fault remains.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use super::validate::{NoTransactions, ProduceRules, TopicRules};

/// Every codec a client may use.
pub const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

/// Where the records start in a v2 batch.
pub const RECORDS_AT: usize = 61;

/// Rules of a plain Produce v9 request without a transactional id.
pub fn rules() -> ProduceRules<'static> {
    ProduceRules {
        api_version: 9,
        has_transactional_id: false,
        transactions: &NoTransactions,
        topic: TopicRules::default(),
        now_ms: 1_700_000_000_000,
    }
}

/// One record of the shape [`batch`] writes.
pub fn record(i: usize, producer_id: i64, timestamp: i64) -> Record {
    let mut headers = IndexMap::new();
    headers.insert(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"hv")));
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: if producer_id >= 0 { 0 } else { -1 },
        timestamp_type: TimestampType::Creation,
        offset: i as i64,
        sequence: i as i32,
        timestamp,
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::from(format!("value-{i:02}"))),
        headers,
    }
}

/// Encodes `records` as one v2 batch.
pub fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression };
    RecordBatchEncoder::encode(&mut buf, records, &options).expect("encode");
    buf.to_vec()
}

/// `n` records, each 23 bytes uncompressed: length varint (1 byte, 22), attributes @+1,
/// timestamp delta @+2, offset delta @+3, key length @+4, key "key" @+5, value length @+8,
/// value "value-NN" @+9, header count @+17, header key length @+18, key "h" @+19, header
/// value length @+20, value "hv" @+21.
pub fn batch(compression: Compression, n: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..n).map(|i| record(i, -1, 1_700_000_000_000)).collect();
    let mut b = encode(&records, compression);
    // Non-idempotent clients send no sequence (the encoder needs one to keep one batch).
    put(&mut b, 53, &(-1i32).to_be_bytes());
    b
}

/// Size of each record [`batch`] writes.
pub const RECORD_LEN: usize = 23;

/// Start of record `i` in an uncompressed [`batch`].
pub fn record_at(i: usize) -> usize {
    RECORDS_AT + i * RECORD_LEN
}

/// Overwrites bytes at `at` and recomputes the CRC.
pub fn put(batch: &mut [u8], at: usize, bytes: &[u8]) {
    batch[at..at + bytes.len()].copy_from_slice(bytes);
    fix_crc(batch);
}

/// Replaces `range` with `with`, fixing the batch length and the CRC.
pub fn splice(batch: &mut Vec<u8>, range: std::ops::Range<usize>, with: &[u8]) {
    batch.splice(range, with.iter().copied());
    fix_length(batch);
    fix_crc(batch);
}

/// Sets the batch length from the buffer's size.
pub fn fix_length(batch: &mut [u8]) {
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
}

/// Recomputes the CRC-32C over bytes 21.. .
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Sets the record count and last offset delta together, so only the records disagree.
pub fn set_count(batch: &mut [u8], count: i32) {
    batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    put(batch, 57, &count.to_be_bytes());
}

/// The codec number in a batch's attributes.
pub fn codec_of(batch: &[u8]) -> u8 {
    batch[22] & 0x7
}

/// Compresses `plain` records with the batch's codec number, as a client would.
pub fn compress(codec: u8, plain: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let fill = |b: &mut BytesMut| {
        b.extend_from_slice(plain);
        Ok(())
    };
    match codec {
        1 => Gzip::compress(&mut out, fill),
        2 => Snappy::compress(&mut out, fill),
        3 => Lz4::compress(&mut out, fill),
        4 => Zstd::compress(&mut out, fill),
        _ => return plain.to_vec(),
    }
    .expect("compress");
    out.to_vec()
}

/// Rebuilds a compressed batch around new plain records, fixing length and CRC.
pub fn with_plain_records(batch: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut out = batch[..RECORDS_AT].to_vec();
    out.extend_from_slice(&compress(codec_of(batch), plain));
    fix_length(&mut out);
    fix_crc(&mut out);
    out
}

/// The plain records of a batch (decompressed when needed).
pub fn plain_records(batch: &[u8]) -> Vec<u8> {
    let body = &batch[RECORDS_AT..];
    match codec_of(batch) {
        0 => body.to_vec(),
        codec => super::decompress::decompress(codec, body).expect("decompress"),
    }
}
