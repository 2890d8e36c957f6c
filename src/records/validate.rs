//! The checks a produced partition's records pass before anything is appended, in the order
//! Kafka's broker applies them: the request level (exactly one v2 batch, zstd only from v7),
//! the log (base offset 0, CRC), the batch (offset range and count, no control batch, a
//! sequence for every producer id, transactions), then every record.
//!
//! The topic's configs add a size limit (`max.message.bytes`) and the timestamp rules
//! (`message.timestamp.*`).
//!
//! Where Kafka is lenient because it can rewrite a batch (inner offsets, the timestamp type)
//! or simply stores what it got (trailing bytes after a batch are trimmed, an unused record
//! attribute byte is ignored), this broker refuses instead: it rewrites a batch only to stamp
//! a LogAppendTime topic's time, and every consumer reads back exactly the records the
//! producer was acknowledged for.

use bytes::{Bytes, BytesMut};

use super::decompress::decompress;
use super::refusal::{MAX_RECORD_ERRORS, Refusal};
use super::walk::{RecordView, WalkError, walk_records};
use crate::log::{BATCH_HEADER_LEN, BatchError, BatchHeader, stamp_log_append_time, verify_crc};

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
/// A record timestamp meaning "none" (old clients); Kafka exempts it from the window.
const NO_TIMESTAMP: i64 = -1;

/// Which producers have a transaction open on the partition being written (the broker
/// implements it over the transaction registrations of its coordinators).
pub trait OngoingTransactions {
    /// Whether `producer_id` at `producer_epoch` has a transaction open here.
    fn is_ongoing(&self, producer_id: i64, producer_epoch: i16) -> bool;

    /// The newer epoch that fenced `producer_epoch` of `producer_id` here, if one did.
    fn fenced_by(&self, _producer_id: i64, _producer_epoch: i16) -> Option<i16> {
        None
    }
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
    /// What the topic's configs ask of every batch.
    pub topic: TopicRules,
    /// The broker's clock, for the timestamp window and the log append time.
    pub now_ms: i64,
}

/// What a topic's configs ask of each produced batch (see
/// `chronik::cluster::topic_produce_rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRules {
    /// `max.message.bytes`: the largest batch accepted, counted as Kafka does (the whole
    /// batch, its 12 bytes of offset and length included).
    pub max_batch_bytes: usize,
    /// `message.timestamp.type` and the window producers' timestamps must fall in.
    pub timestamps: TimestampRule,
    /// `cleanup.policy` holds `compact`: every record needs a key, the cleaner keeps the
    /// latest record per key and could not tell keyless ones apart.
    pub keys_required: bool,
}

impl Default for TopicRules {
    /// Kafka's defaults with no size limit of its own (the request limit still applies).
    fn default() -> Self {
        Self {
            max_batch_bytes: usize::MAX,
            timestamps: TimestampRule::CreateTime { before_ms: i64::MAX, after_ms: i64::MAX },
            keys_required: false,
        }
    }
}

/// How a topic's records are timestamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampRule {
    /// The producer's timestamps are kept, and must lie within `[now - before_ms, now +
    /// after_ms]` (records without a timestamp, -1, are exempt, as in Kafka).
    CreateTime {
        /// `message.timestamp.before.max.ms`: how far in the past a timestamp may be.
        before_ms: i64,
        /// `message.timestamp.after.max.ms`: how far in the future a timestamp may be.
        after_ms: i64,
    },
    /// The broker stamps each batch with the time it appends it.
    LogAppendTime,
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
    if records.len() > rules.topic.max_batch_bytes {
        return Err(Refusal::TooLarge { size: records.len(), max: rules.topic.max_batch_bytes });
    }
    let header = check_header(records)?;
    check_producer(&header, rules)?;
    let mut window = TimestampWindow::new(rules);
    let mut keyless = Vec::new();
    let mut visit = visit;
    check_records(records, &header, |record| {
        window.check(&record);
        if rules.topic.keys_required && record.key.is_none() && keyless.len() < MAX_RECORD_ERRORS {
            keyless.push(record.index);
        }
        visit(record);
    })?;
    if header.is_log_append_time() {
        return Err(Refusal::LogAppendTime { record_count: header.record_count });
    }
    if !keyless.is_empty() {
        return Err(Refusal::KeylessOnCompacted { records: keyless });
    }
    window.verdict()?;
    match rules.topic.timestamps {
        // The one batch is the whole of `records`: hand it on without copying.
        TimestampRule::CreateTime { .. } => Ok(records.clone()),
        // The only rewrite this broker makes, and Kafka makes it too: two header fields and
        // the CRC; the records themselves keep the producer's bytes.
        TimestampRule::LogAppendTime => {
            let mut stamped = BytesMut::from(&records[..]);
            stamp_log_append_time(&mut stamped, rules.now_ms);
            Ok(stamped.freeze())
        }
    }
}

/// Collects the records whose CreateTime falls outside the topic's window.
struct TimestampWindow {
    /// `[earliest, latest]` allowed, or `None` when the topic does not check (LogAppendTime).
    bounds: Option<(i64, i64)>,
    /// The first offending records, as `(index, timestamp)`.
    strays: Vec<(i32, i64)>,
    /// How many records offend in all.
    count: usize,
}

impl TimestampWindow {
    fn new(rules: &ProduceRules<'_>) -> Self {
        let bounds = match rules.topic.timestamps {
            TimestampRule::CreateTime { before_ms, after_ms } => {
                Some((rules.now_ms.saturating_sub(before_ms), rules.now_ms.saturating_add(after_ms)))
            }
            TimestampRule::LogAppendTime => None,
        };
        Self { bounds, strays: Vec::new(), count: 0 }
    }

    fn check(&mut self, record: &RecordView<'_>) {
        let Some((earliest, latest)) = self.bounds else { return };
        if record.timestamp == NO_TIMESTAMP || (earliest..=latest).contains(&record.timestamp) {
            return;
        }
        self.count += 1;
        if self.strays.len() < MAX_RECORD_ERRORS {
            self.strays.push((record.index, record.timestamp));
        }
    }

    fn verdict(self) -> Result<(), Refusal> {
        match (self.bounds, self.count) {
            (Some((earliest, latest)), count) if count > 0 => {
                Err(Refusal::TimestampOutOfRange { strays: self.strays, count, earliest, latest })
            }
            _ => Ok(()),
        }
    }
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
        let (producer_id, epoch) = (header.producer_id, header.producer_epoch);
        if !(header.has_producer_id() && rules.transactions.is_ongoing(producer_id, epoch)) {
            if let Some(current) = rules.transactions.fenced_by(producer_id, epoch) {
                return Err(Refusal::FencedEpoch { producer_id, epoch, current });
            }
            return Err(Refusal::NoOngoingTransaction { producer_id });
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
