//! Record batch v2 (magic 2) headers: parsing, CRC-32C checks, splitting a produce request's
//! `records` into batches, and the in-place rewrite of the two fields the broker owns.
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12,
//! magic i8 @16, crc u32 @17, attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27,
//! maxTimestamp i64 @35, producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53,
//! recordCount i32 @57. The CRC covers bytes 21.. to the end, so the broker may rewrite the base
//! offset and the leader epoch without recomputing it.

use bytes::Bytes;

/// Size of the fixed record batch v2 header.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before the part counted by `batchLength`: the base offset and the length field itself.
pub const LOG_OVERHEAD: usize = 12;
/// The only record batch format this broker stores.
pub const MAGIC_V2: i8 = 2;
/// The smallest legal `batchLength`: a header with no records.
const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// Where the CRC-covered part of a batch starts (the attributes field).
const CRC_START: usize = 21;

/// Why a batch was refused. `index` is the batch's position within the buffer being checked
/// (0 for a lone batch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The buffer ends before the batch (or its header) does.
    #[error("batch {index}: truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Position of the batch in the buffer.
        index: usize,
        /// Bytes the batch needs (header, or the whole batch once its length is known).
        need: usize,
        /// Bytes left in the buffer from the batch's start.
        have: usize,
    },
    /// The magic byte is not 2; message sets v0/v1 are not supported.
    #[error("batch {index}: unsupported magic {magic} (only record batch v2 is supported)")]
    BadMagic {
        /// Position of the batch in the buffer.
        index: usize,
        /// The magic byte found.
        magic: i8,
    },
    /// `batchLength` is smaller than a bare header.
    #[error("batch {index}: batch length {batch_length} is below the minimum {MIN_BATCH_LENGTH}")]
    BadLength {
        /// Position of the batch in the buffer.
        index: usize,
        /// The length field found.
        batch_length: i32,
    },
    /// `recordCount` or `lastOffsetDelta` is negative.
    #[error("batch {index}: negative {field} {value}")]
    Negative {
        /// Position of the batch in the buffer.
        index: usize,
        /// Which header field is negative.
        field: &'static str,
        /// The value found.
        value: i32,
    },
    /// The record count disagrees with the offset range: from a client, any difference (Kafka
    /// refuses these); in a stored batch, more records than offsets.
    #[error("batch {index}: record count {record_count} does not match last offset delta {last_offset_delta} + 1")]
    CountMismatch {
        /// Position of the batch in the buffer.
        index: usize,
        /// The record count found.
        record_count: i32,
        /// The last offset delta found.
        last_offset_delta: i32,
    },
    /// The stored CRC-32C does not match the bytes.
    #[error("batch {index}: CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// Position of the batch in the buffer.
        index: usize,
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// The buffer handed in as one batch is not exactly as long as the batch says.
    #[error("batch {index}: buffer holds {actual} bytes but the header says {expected}")]
    LengthMismatch {
        /// Position of the batch in the buffer.
        index: usize,
        /// `12 + batchLength`.
        expected: usize,
        /// The buffer's length.
        actual: usize,
    },
}

impl BatchError {
    /// The same error, attributed to the batch at `index`.
    fn at(mut self, at: usize) -> Self {
        match &mut self {
            Self::Truncated { index, .. }
            | Self::BadMagic { index, .. }
            | Self::BadLength { index, .. }
            | Self::Negative { index, .. }
            | Self::CountMismatch { index, .. }
            | Self::CrcMismatch { index, .. }
            | Self::LengthMismatch { index, .. } => *index = at,
        }
        self
    }
}

/// The fixed 61-byte header of a record batch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record; assigned by the broker on append.
    pub base_offset: i64,
    /// Bytes after this field: the batch is `12 + batch_length` bytes long.
    pub batch_length: i32,
    /// Leader epoch at append time; assigned by the broker.
    pub partition_leader_epoch: i32,
    /// Format version; always 2 once parsed.
    pub magic: i8,
    /// CRC-32C of bytes 21.. to the end.
    pub crc: u32,
    /// Compression (bits 0-2), timestamp type (3), transactional (4), control (5).
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the log append time).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, -1 if none.
    pub producer_id: i64,
    /// Epoch of `producer_id`.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses and sanity-checks the header at the start of `buf` (the CRC is not checked):
    /// at least 61 bytes, magic 2, `batch_length >= 49`, non-negative record count and last
    /// offset delta. Errors name batch 0.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated { index: 0, need: BATCH_HEADER_LEN, have: buf.len() });
        }
        let magic = buf[16] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic { index: 0, magic });
        }
        let h = BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        };
        h.check()?;
        Ok(h)
    }

    fn check(&self) -> Result<(), BatchError> {
        if self.batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::BadLength { index: 0, batch_length: self.batch_length });
        }
        for (field, value) in [("record count", self.record_count), ("last offset delta", self.last_offset_delta)] {
            if value < 0 {
                return Err(BatchError::Negative { index: 0, field, value });
            }
        }
        Ok(())
    }

    /// Whole size of the batch in bytes: `12 + batch_length`.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset after the batch's last record.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Sequence number of the last record, wrapping past `i32::MAX` to 0 like Kafka; -1 if the
    /// batch carries no sequence.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == -1 {
            return -1;
        }
        // i64 so a hand-built header with odd values cannot overflow.
        let sum = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        let max = i64::from(i32::MAX);
        let wrapped = if sum > max { sum - max - 1 } else { sum };
        wrapped as i32
    }

    /// Compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & 0x7) as u8
    }

    /// Whether timestamps are the broker's log append time rather than the producer's.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & (1 << 3) != 0
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & (1 << 4) != 0
    }

    /// Whether the batch holds a control record (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & (1 << 5) != 0
    }

    /// Whether an idempotent or transactional producer wrote the batch.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Checks the CRC-32C of one whole batch (`batch` must be exactly the batch's bytes).
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    if batch.len() < BATCH_HEADER_LEN {
        return Err(BatchError::Truncated { index: 0, need: BATCH_HEADER_LEN, have: batch.len() });
    }
    let stored = be_i32(batch, 17) as u32;
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    if stored != computed {
        return Err(BatchError::CrcMismatch { index: 0, stored, computed });
    }
    Ok(())
}

/// CRC-32C of the covered part of a header (bytes 21..61), to be continued over the body with
/// [`crc32c::crc32c_append`] when the body is read in pieces.
pub(crate) fn header_crc(header: &[u8]) -> u32 {
    crc32c::crc32c(&header[CRC_START..BATCH_HEADER_LEN])
}

/// Splits stored or replicated record batches (a leader's fetch answer, a log read) into
/// single batches (zero-copy `Bytes::slice`s), validating for each: full length present,
/// magic 2, sane header, no more records than the offset range holds (a compacted batch keeps
/// its range with fewer records), CRC-32C. Errors name the batch index and reason. Empty input
/// gives an empty list.
pub fn split_batches(records: &Bytes) -> Result<Vec<Bytes>, BatchError> {
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let index = batches.len();
        let rest = &records[pos..];
        let len = check_stored_batch(rest).map_err(|e| e.at(index))?;
        batches.push(records.slice(pos..pos + len));
        pos += len;
    }
    Ok(batches)
}

/// Validates the stored batch at the start of `rest`; returns its length.
fn check_stored_batch(rest: &[u8]) -> Result<usize, BatchError> {
    let header = BatchHeader::parse(rest)?;
    let len = header.total_len();
    if rest.len() < len {
        return Err(BatchError::Truncated { index: 0, need: len, have: rest.len() });
    }
    if i64::from(header.record_count) > i64::from(header.last_offset_delta) + 1 {
        return Err(BatchError::CountMismatch {
            index: 0,
            record_count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    verify_crc(&rest[..len])?;
    Ok(len)
}

/// Marks a batch as timestamped by the broker at `now_ms`, as Kafka does for a LogAppendTime
/// topic: sets the timestamp-type attribute and the max timestamp, then the CRC they are
/// covered by. A slice shorter than a header is left alone.
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    batch[22] |= 1 << 3;
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites base offset and partition leader epoch in place (outside the CRC).
///
/// # Panics
/// If `batch` is shorter than 16 bytes; callers pass batches already checked by
/// [`split_batches`] or [`BatchHeader::parse`].
pub fn set_base_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

#[cfg(test)]
mod tests;
