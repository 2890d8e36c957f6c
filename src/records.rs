//! Produced record batches: the checks every batch passes before it reaches a log, and
//! [`encode_batch`] for the batches the broker writes itself.
//!
//! # Layout
//! - [`validate`]: [`validate_produce`] applies Kafka's broker rules to one partition's
//!   records, in Kafka's order, and returns the batch to append or a [`Refusal`].
//! - `walk`: the in-place record walk (no allocation per record) behind it.
//! - `decompress`: capped decompression for compressed batches.
//! - `refusal`: why a batch is refused and the Kafka error code for each reason.
//!
//! Batches a follower copies from its leader were checked by the leader and are not walked
//! again (`log::split_batches` keeps only the frame and CRC checks).

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

mod decompress;
mod refusal;
#[cfg(test)]
mod test_support;
pub mod validate;
mod walk;

pub use decompress::MAX_DECOMPRESSED_BATCH;
pub(crate) use decompress::decompress;
pub use refusal::{MAX_RECORD_ERRORS, RecordFault, Refusal};
pub use validate::{
    NoTransactions, OngoingTransactions, ProduceRules, TimestampRule, TopicRules, claims_transaction, validate_produce,
};
pub use walk::{RecordView, StoredRecord, stored_records};

/// Encodes `(key, value)` records as one v2 batch with no producer id, all stamped
/// `timestamp_ms` (the broker's own writes, such as committed offsets, and tests).
/// Consecutive sequences keep the encoder from splitting it into one batch per record.
pub fn encode_batch(
    entries: &[(Option<Bytes>, Option<Bytes>)],
    timestamp_ms: i64,
    compression: Compression,
) -> Result<Bytes, String> {
    encode_records(entries, timestamp_ms, compression, None)
}

/// Encodes `(key, value)` records as one batch of `producer_id`'s transaction (the broker's
/// own transactional writes: a TxnOffsetCommit). Its base sequence is -1: the broker's writes
/// carry no sequence, so the partition's duplicate checks leave them alone.
pub fn encode_transactional_batch(
    entries: &[(Option<Bytes>, Option<Bytes>)],
    timestamp_ms: i64,
    (producer_id, producer_epoch): (i64, i16),
) -> Result<Bytes, String> {
    encode_records(entries, timestamp_ms, Compression::None, Some((producer_id, producer_epoch)))
}

fn encode_records(
    entries: &[(Option<Bytes>, Option<Bytes>)],
    timestamp_ms: i64,
    compression: Compression,
    producer: Option<(i64, i16)>,
) -> Result<Bytes, String> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    // The encoder keeps records in one batch while offset minus sequence stays the same.
    let first_sequence = if producer.is_some() { -1 } else { 0 };
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: first_sequence + i as i32,
            timestamp: timestamp_ms,
            key: key.clone(),
            value: value.clone(),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// Decompresses one stored batch's records with the produce path's cap, in the shape
/// kafka-protocol's decoder takes (replica digests decode stored batches with it).
pub(crate) fn capped_decompress(compressed: &mut Bytes, codec: Compression) -> anyhow::Result<Bytes> {
    let input = compressed.split_to(compressed.len());
    let codec = match codec {
        Compression::None => return Ok(input),
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    };
    decompress::decompress(codec, &input).map(Bytes::from).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_batches_hold_the_entries_in_order() {
        let entries = [(Some(Bytes::from_static(b"k")), Some(Bytes::from_static(b"v"))), (None, None)];
        let batch = encode_batch(&entries, 1_700_000_000_000, Compression::None).expect("encode");
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch.clone()).expect("decode");
        let got: Vec<_> = set.records.iter().map(|r| (r.offset, r.key.clone(), r.value.clone())).collect();
        assert_eq!(got, vec![(0, entries[0].0.clone(), entries[0].1.clone()), (1, None, None)]);
    }
}
