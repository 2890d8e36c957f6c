//! Helpers shared by the log's unit tests: building real record batches with the
//! `kafka-protocol` encoder, and a throwaway log directory.

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// Encodes one uncompressed batch with one record per value, all stamped `timestamp`.
pub fn batch(values: &[&str], timestamp: i64) -> Vec<u8> {
    let stamps: Vec<i64> = values.iter().map(|_| timestamp).collect();
    batch_with_timestamps(values, &stamps)
}

/// Encodes one uncompressed batch whose records carry the given values and timestamps.
pub fn batch_with_timestamps(values: &[&str], timestamps: &[i64]) -> Vec<u8> {
    encode(values, timestamps, -1, -1)
}

/// Encodes one batch from an idempotent producer starting at sequence `base_sequence`.
pub fn idempotent_batch(values: &[&str], producer_id: i64, base_sequence: i32) -> Vec<u8> {
    let stamps: Vec<i64> = values.iter().map(|_| 1_000).collect();
    encode(values, &stamps, producer_id, base_sequence)
}

fn encode(values: &[&str], timestamps: &[i64], producer_id: i64, base_sequence: i32) -> Vec<u8> {
    // The encoder groups records into one batch only while `offset - sequence` stays the same,
    // so records always get consecutive sequences; the header is patched back to "no
    // sequence" below for non-idempotent batches.
    let records: Vec<Record> = values
        .iter()
        .zip(timestamps)
        .enumerate()
        .map(|(i, (v, ts))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: base_sequence.max(0) + i as i32,
            timestamp: *ts,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = Vec::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode test batch");
    if base_sequence < 0 {
        buf[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        fix_crc(&mut buf);
    }
    buf
}

/// Recomputes the CRC-32C of a batch after its covered bytes were edited.
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}
