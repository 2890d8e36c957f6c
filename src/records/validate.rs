//! The checks a produced partition's records pass before anything is appended, in the order
//! Kafka's broker applies them: the request level (exactly one v2 batch, zstd only from v7),
//! the log (base offset 0, CRC), the batch (offset range and count, no control batch, a
//! sequence for every producer id, transactions), then every record.
//!
//! Where Kafka is lenient because it can rewrite a batch (inner offsets, the timestamp type)
//! or simply stores what it got (trailing bytes after a batch are trimmed, an unused record
//! attribute byte is ignored), this broker refuses instead: it never rewrites a batch, and
//! every consumer must read back exactly what the producer was acknowledged for.

use bytes::Bytes;

use super::decompress::decompress;
use super::refusal::Refusal;
use super::walk::{RecordView, WalkError, walk_records};
use crate::log::{BATCH_HEADER_LEN, BatchError, BatchHeader, verify_crc};

/// Base offset and batch length: the bytes before the part `batchLength` counts.
const LOG_OVERHEAD: usize = 12;
/// Kafka's smallest record of any format; a shorter batch length is a corrupt frame.
const MIN_RECORD_OVERHEAD: i32 = 14;
/// Offset of the magic byte.
const MAGIC_AT: usize = 16;
/// Offset of the attributes.
const ATTRIBUTES_AT: usize = 21;
/// Bit 4 of the attributes: the batch belongs to a transaction.
const TRANSACTIONAL_BIT: u8 = 1 << 4;
/// Codec number of zstd in the attributes.
const ZSTD: u8 = 4;

/// Which producers have a transaction open on the partition being written. Chronik has no
/// transaction coordinator yet ([`NoTransactions`]); a transactions feature implements this
/// over the partition's producer state to let transactional batches through.
pub trait OngoingTransactions {
    /// Whether `producer_id` at `producer_epoch` has a transaction open here.
    fn is_ongoing(&self, producer_id: i64, producer_epoch: i16) -> bool;
}

/// No transaction is ever open.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTransactions;

impl OngoingTransactions for NoTransactions {
    fn is_ongoing(&self, _producer_id: i64, _producer_epoch: i16) -> bool {
        false
    }
}

/// What the checks need to know about the request and the partition.
#[derive(Clone, Copy)]
pub struct ProduceRules<'a> {
    /// The Produce request's version (zstd needs v7 or later).
    pub api_version: i16,
    /// Whether the request names a transactional id.
    pub has_transactional_id: bool,
    /// Which producers have a transaction open on the partition.
    pub transactions: &'a dyn OngoingTransactions,
}

/// Validates one partition's `records` from a Produce request and returns its one batch,
/// ready to append; or why it must be refused (see [`Refusal::error`] for the Kafka code).
pub fn validate_produce(records: Option<&Bytes>, rules: &ProduceRules<'_>) -> Result<Bytes, Refusal> {
    validate_visiting(records, rules, |_| {})
}

/// [`validate_produce`], calling `visit` for each record once the batch-level checks passed
/// (a later record may still fail the batch).
pub fn validate_visiting(
    records: Option<&Bytes>,
    rules: &ProduceRules<'_>,
    visit: impl FnMut(RecordView<'_>),
) -> Result<Bytes, Refusal> {
    let empty = Bytes::new();
    let records = records.unwrap_or(&empty);
    check_frame(records, rules.api_version)?;
    let header = check_header(records)?;
    check_producer(&header, rules)?;
    check_records(records, &header, visit)?;
    if header.is_log_append_time() {
        return Err(Refusal::LogAppendTime { record_count: header.record_count });
    }
    // The one batch is the whole of `records`: hand it on without copying.
    Ok(records.clone())
}

/// Whether the first batch in `records` has its transactional bit set: Kafka refuses the
/// whole request when one does and the request has no transactional id.
pub fn claims_transaction(records: &[u8]) -> bool {
    records.get(ATTRIBUTES_AT + 1).is_some_and(|low| low & TRANSACTIONAL_BIT != 0)
}

/// Exactly one complete batch of magic 2, and zstd only from v7.
fn check_frame(records: &[u8], api_version: i16) -> Result<(), Refusal> {
    let no_batch = Refusal::NoBatch { len: records.len() };
    let Some(length_field) = records.get(8..LOG_OVERHEAD) else { return Err(no_batch) };
    let batch_length = i32::from_be_bytes([length_field[0], length_field[1], length_field[2], length_field[3]]);
    if batch_length < MIN_RECORD_OVERHEAD {
        return Err(Refusal::TooShort { batch_length });
    }
    let Some(&magic) = records.get(MAGIC_AT) else { return Err(no_batch) };
    if magic != 2 {
        return Err(BatchError::BadMagic { index: 0, magic: magic as i8 }.into());
    }
    let total = LOG_OVERHEAD + batch_length as usize;
    if records.len() < total {
        return Err(no_batch);
    }
    if records.len() > total {
        return Err(Refusal::ExtraBytes { extra: records.len() - total });
    }
    if api_version < 7 && records[ATTRIBUTES_AT + 1] & 0x7 == ZSTD {
        return Err(Refusal::ZstdBeforeV7 { version: api_version });
    }
    Ok(())
}

/// Base offset 0, a whole header, the CRC, then the offset range and record count.
fn check_header(batch: &[u8]) -> Result<BatchHeader, Refusal> {
    let base_offset = i64::from_be_bytes(batch[..8].try_into().unwrap_or_default());
    if base_offset != 0 {
        return Err(Refusal::BaseOffset(base_offset));
    }
    if batch.len() < BATCH_HEADER_LEN {
        return Err(Refusal::TooShort { batch_length: (batch.len() - LOG_OVERHEAD) as i32 });
    }
    verify_crc(batch)?;
    let header = BatchHeader::parse(batch)?;
    if i64::from(header.record_count) != i64::from(header.last_offset_delta) + 1 {
        let (record_count, last_offset_delta) = (header.record_count, header.last_offset_delta);
        return Err(BatchError::CountMismatch { index: 0, record_count, last_offset_delta }.into());
    }
    if header.is_control() {
        return Err(Refusal::ControlBatch);
    }
    Ok(header)
}

/// Sequence numbers for idempotent batches, a known codec, and transactions.
fn check_producer(header: &BatchHeader, rules: &ProduceRules<'_>) -> Result<(), Refusal> {
    if header.has_producer_id() && header.base_sequence < 0 {
        let (producer_id, base_sequence) = (header.producer_id, header.base_sequence);
        return Err(Refusal::MissingSequence { producer_id, base_sequence });
    }
    if header.compression() > ZSTD {
        return Err(Refusal::UnknownCodec(header.compression()));
    }
    if header.is_transactional() {
        if !rules.has_transactional_id {
            return Err(Refusal::TransactionalWithoutId);
        }
        if !(header.has_producer_id() && rules.transactions.is_ongoing(header.producer_id, header.producer_epoch)) {
            return Err(Refusal::NoOngoingTransaction { producer_id: header.producer_id });
        }
    }
    Ok(())
}

/// Walks the records in place, or after decompressing them.
fn check_records(batch: &[u8], header: &BatchHeader, visit: impl FnMut(RecordView<'_>)) -> Result<(), Refusal> {
    let body = &batch[BATCH_HEADER_LEN..];
    let walked = if header.compression() == 0 {
        walk_records(body, header.record_count, header.base_timestamp, visit)
    } else {
        let plain = decompress(header.compression(), body).map_err(Refusal::Decompress)?;
        walk_records(&plain, header.record_count, header.base_timestamp, visit)
    };
    walked.map_err(|e| match e {
        WalkError::Record { index, fault } => Refusal::Record { index, fault },
        WalkError::Missing { declared, found } => Refusal::MissingRecords { declared, found },
        WalkError::Trailing { extra } => Refusal::TrailingBytes { extra },
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
