//! Why a produced batch is refused, and the Kafka error each reason is answered with.
//!
//! The codes follow Kafka's broker: a structural fault Kafka's record reader throws on is
//! INVALID_RECORD (87), a failed CRC or an unreadable frame is CORRUPT_MESSAGE (2), timestamp
//! rules answer INVALID_TIMESTAMP (32). Kafka's answer to bytes it cannot decompress is an
//! unknown server error; CORRUPT_MESSAGE says what happened and lets the client retry.

use kafka_protocol::ResponseError;

use crate::log::BatchError;

/// Most entries put in a response's `record_errors`; a batch of a million records with a
/// bad timestamp type must not turn into a million error strings.
pub const MAX_RECORD_ERRORS: usize = 100;

/// What is wrong inside one record. Every fault is INVALID_RECORD except a timestamp that
/// overflows, which is INVALID_TIMESTAMP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordFault {
    /// A varint is cut short, longer than allowed, or overflows its type.
    #[error("garbled or cut-short varint in the {field}")]
    Varint {
        /// Which field the varint encodes.
        field: &'static str,
    },
    /// The record length is negative or runs past the batch.
    #[error("record length {length} with {available} bytes left in the batch")]
    Length {
        /// The declared record length.
        length: i32,
        /// Bytes left in the batch after the length varint.
        available: usize,
    },
    /// A fixed-size field runs past the record.
    #[error("the {field} runs past the record")]
    Overrun {
        /// Which field.
        field: &'static str,
    },
    /// Record attributes are unused and always 0; kafka-python reads them as a varint, so
    /// anything else would be misread by a real consumer.
    #[error("record attributes {0:#04x}, expected 0")]
    Attributes(u8),
    /// The base timestamp plus the delta leaves the 64-bit range.
    #[error("timestamp delta {delta} overflows the base timestamp")]
    TimestampOverflow {
        /// The record's timestamp delta.
        delta: i64,
    },
    /// The offset delta is not the record's position in the batch.
    #[error("offset delta {got} does not match the record's position")]
    OffsetDelta {
        /// The offset delta found.
        got: i32,
    },
    /// A length below -1 (or below 0 for a header key, which cannot be null).
    #[error("invalid {field} length {length}")]
    FieldLength {
        /// Which field.
        field: &'static str,
        /// The length found.
        length: i32,
    },
    /// A key, value or header runs past the record's declared length.
    #[error("{field} length {length} with {available} bytes left in the record")]
    FieldBeyondRecord {
        /// Which field.
        field: &'static str,
        /// The length found.
        length: i32,
        /// Bytes left in the record.
        available: usize,
    },
    /// The header count is negative or larger than the bytes left could hold.
    #[error("header count {count} with {available} bytes left in the record")]
    HeaderCount {
        /// The count found.
        count: i32,
        /// Bytes left in the record.
        available: usize,
    },
    /// A header key is not UTF-8 (clients expose header keys as strings).
    #[error("header key is not UTF-8")]
    HeaderKeyNotUtf8,
    /// The record's fields end before its declared length does.
    #[error("record declares {declared} bytes but its fields take {parsed}")]
    Leftover {
        /// The declared record length.
        declared: usize,
        /// Bytes its fields used.
        parsed: usize,
    },
}

/// Why a partition's produced records are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No records, or fewer bytes than one complete batch.
    #[error(
        "produce requests must carry exactly one record batch per partition; got {len} bytes and no complete batch"
    )]
    NoBatch {
        /// Bytes received.
        len: usize,
    },
    /// More bytes follow the one batch a produce may carry.
    #[error("produce requests must carry exactly one record batch per partition; {extra} bytes follow the first")]
    ExtraBytes {
        /// Bytes after the first batch.
        extra: usize,
    },
    /// A batch length below the smallest record Kafka knows (14 bytes).
    #[error("batch length {batch_length} is below the minimum record overhead")]
    TooShort {
        /// The length field found.
        batch_length: i32,
    },
    /// The header, CRC or offset range is wrong (see [`BatchError`]).
    #[error(transparent)]
    Header(#[from] BatchError),
    /// Clients must send base offset 0; the broker assigns offsets.
    #[error("the base offset of a produced batch must be 0, got {0}")]
    BaseOffset(i64),
    /// Zstd needs Produce v7 or later.
    #[error("produce v{version} cannot carry zstd-compressed batches (v7 or later can)")]
    ZstdBeforeV7 {
        /// The request's version.
        version: i16,
    },
    /// Compression bits 5–7 name no codec.
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    /// Control batches are written by the broker only.
    #[error("clients are not allowed to write control records")]
    ControlBatch,
    /// An idempotent producer's batch without a sequence number.
    #[error("invalid sequence number {base_sequence} in a batch with producer id {producer_id}")]
    MissingSequence {
        /// The batch's producer id.
        producer_id: i64,
        /// The base sequence found.
        base_sequence: i32,
    },
    /// A transactional batch in a request without a transactional id.
    #[error("transactional records need a transactional id")]
    TransactionalWithoutId,
    /// A transactional batch whose producer has no transaction open on this partition.
    #[error("producer {producer_id} has no ongoing transaction on this partition")]
    NoOngoingTransaction {
        /// The batch's producer id.
        producer_id: i64,
    },
    /// A transactional batch of a producer epoch the coordinator has since fenced (it aborted
    /// the transaction with a newer epoch): the producer is a zombie.
    #[error("producer {producer_id}: epoch {epoch} was fenced by epoch {current}")]
    FencedEpoch {
        /// The batch's producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The newer epoch.
        current: i16,
    },
    /// The compressed records do not decompress.
    #[error("{0}")]
    Decompress(String),
    /// One record is malformed.
    #[error("record {index}: {fault}")]
    Record {
        /// Its position in the batch.
        index: i32,
        /// What is wrong with it.
        fault: RecordFault,
    },
    /// Fewer records than the header's count.
    #[error("the batch declares {declared} records but holds {found}")]
    MissingRecords {
        /// The header's record count.
        declared: i32,
        /// Records present.
        found: i32,
    },
    /// Bytes after the last record.
    #[error("{extra} bytes follow the batch's last record")]
    TrailingBytes {
        /// Bytes left over.
        extra: usize,
    },
    /// The batch is larger than the topic's `max.message.bytes`.
    #[error("the batch is {size} bytes, larger than the topic's max.message.bytes {max}")]
    TooLarge {
        /// The batch's size.
        size: usize,
        /// The topic's limit.
        max: usize,
    },
    /// Records whose CreateTime lies outside the topic's `message.timestamp.*` window.
    #[error("{count} record(s) have timestamps outside [{earliest}, {latest}]")]
    TimestampOutOfRange {
        /// The first offenders as `(index, timestamp)`, at most [`MAX_RECORD_ERRORS`].
        strays: Vec<(i32, i64)>,
        /// How many records offend.
        count: usize,
        /// The earliest timestamp allowed.
        earliest: i64,
        /// The latest timestamp allowed.
        latest: i64,
    },
    /// Records without a key sent to a compacted topic.
    #[error("compacted topic cannot accept message without key")]
    KeylessOnCompacted {
        /// The keyless records' indexes, at most [`MAX_RECORD_ERRORS`].
        records: Vec<i32>,
    },
    /// The producer set the log-append-time flag, which only the broker may.
    #[error("producers should not set the timestamp type to LogAppendTime")]
    LogAppendTime {
        /// Records in the batch (each gets a record error, as Kafka reports).
        record_count: i32,
    },
}

impl Refusal {
    /// The Kafka error this refusal is answered with.
    pub fn error(&self) -> ResponseError {
        match self {
            Self::ExtraBytes { .. }
            | Self::NoBatch { .. }
            | Self::BaseOffset(_)
            | Self::ControlBatch
            | Self::MissingSequence { .. }
            | Self::MissingRecords { .. }
            | Self::TrailingBytes { .. }
            | Self::KeylessOnCompacted { .. } => ResponseError::InvalidRecord,
            Self::Record { fault: RecordFault::TimestampOverflow { .. }, .. }
            | Self::LogAppendTime { .. }
            | Self::TimestampOutOfRange { .. } => ResponseError::InvalidTimestamp,
            Self::TooLarge { .. } => ResponseError::MessageTooLarge,
            Self::Record { .. } => ResponseError::InvalidRecord,
            Self::Header(e) => header_error(e),
            Self::TooShort { .. } | Self::UnknownCodec(_) | Self::Decompress(_) => ResponseError::CorruptMessage,
            Self::ZstdBeforeV7 { .. } => ResponseError::UnsupportedCompressionType,
            Self::TransactionalWithoutId => ResponseError::TransactionalIdAuthorizationFailed,
            Self::NoOngoingTransaction { .. } => ResponseError::InvalidProducerIdMapping,
            Self::FencedEpoch { .. } => ResponseError::InvalidProducerEpoch,
        }
    }

    /// `(record index, message)` for the records to blame (Produce v8+ `record_errors`);
    /// empty when the fault is the batch's, not a record's. At most [`MAX_RECORD_ERRORS`].
    pub fn record_errors(&self) -> Vec<(i32, String)> {
        match self {
            Self::Record { index, fault } => vec![(*index, fault.to_string())],
            Self::LogAppendTime { record_count } => (0..*record_count)
                .take(MAX_RECORD_ERRORS)
                .map(|i| (i, "producers should not set the timestamp type to LogAppendTime".to_string()))
                .collect(),
            Self::KeylessOnCompacted { records } => {
                records.iter().map(|i| (*i, "compacted topic cannot accept message without key".to_string())).collect()
            }
            Self::TimestampOutOfRange { strays, earliest, latest, .. } => strays
                .iter()
                .map(|(i, ts)| {
                    (*i, format!("timestamp {ts} is out of range; it must be within [{earliest}, {latest}]"))
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Kafka answers a bad offset range or count with INVALID_RECORD, an old message format with
/// INVALID_RECORD, and everything else about the frame (CRC, lengths, unknown magic) with
/// CORRUPT_MESSAGE.
fn header_error(e: &BatchError) -> ResponseError {
    match e {
        BatchError::Negative { .. } | BatchError::CountMismatch { .. } => ResponseError::InvalidRecord,
        BatchError::BadMagic { magic: 0 | 1, .. } => ResponseError::InvalidRecord,
        _ => ResponseError::CorruptMessage,
    }
}
