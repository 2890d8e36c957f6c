//! Rewriting one stored batch without the records the cleaner drops. The kept records are
//! copied byte for byte (their offset and timestamp deltas stay valid because the batch keeps
//! its base offset and base timestamp); only the header's length, count, max timestamp and CRC
//! change, and a compressed batch is compressed again with its own codec.

use bytes::{BufMut, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::log::batch::{BATCH_HEADER_LEN, BatchHeader};
use crate::records::{StoredRecord, stored_records};

/// Where the CRC-covered part of a header starts (the attributes).
const CRC_START: usize = 21;
/// The compression bits of the attributes.
const CODEC_BITS: i16 = 0x7;

/// What becomes of one batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Filtered {
    /// Every record stays: copy the batch as it is.
    Unchanged,
    /// No record stays.
    Empty,
    /// Some records stay: the rewritten batch.
    Rewritten(Vec<u8>),
}

/// The records of a stored batch (decompressed if needed); errors say why they do not parse.
pub(super) fn with_records<R>(
    batch: &[u8],
    header: &BatchHeader,
    f: impl FnOnce(&[StoredRecord<'_>]) -> R,
) -> Result<R, String> {
    let body = &batch[BATCH_HEADER_LEN..];
    let decompressed;
    let raw = match header.compression() {
        0 => body,
        codec => {
            decompressed = crate::records::decompress(codec, body)?;
            &decompressed[..]
        }
    };
    let records = stored_records(raw).map_err(|e| format!("records do not parse: {e}"))?;
    Ok(f(&records))
}

/// Filters `batch` (whose parsed header is `header`) through `keep`, called once per record.
pub(super) fn filter_batch(
    batch: &[u8],
    header: &BatchHeader,
    mut keep: impl FnMut(&StoredRecord<'_>) -> bool,
) -> Result<Filtered, String> {
    let (kept, total, max_delta) = with_records(batch, header, |records| {
        let mut kept = Vec::new();
        let mut max_delta = None;
        for record in records.iter().filter(|r| keep(r)) {
            kept.push(record.raw.to_vec());
            max_delta = max_delta.max(Some(record.timestamp_delta));
        }
        (kept, records.len(), max_delta)
    })?;
    if kept.len() == total {
        return Ok(Filtered::Unchanged);
    }
    if kept.is_empty() {
        return Ok(Filtered::Empty);
    }
    let raw: Vec<u8> = kept.concat();
    let body = compress(header.compression(), &raw)?;
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_LEN]);
    out.extend_from_slice(&body);
    let max_timestamp = match header.is_log_append_time() {
        true => header.max_timestamp,
        false => header.base_timestamp.saturating_add(max_delta.unwrap_or(0)),
    };
    finish_header(&mut out, kept.len() as i32, max_timestamp);
    Ok(Filtered::Rewritten(out))
}

/// The header of `batch` alone, with no records and no compression: what stays of an idempotent
/// producer's last batch once all its records are gone (its offsets and sequences still count).
pub(super) fn empty_batch(batch: &[u8]) -> Vec<u8> {
    let mut out = batch[..BATCH_HEADER_LEN].to_vec();
    let attributes = i16::from_be_bytes([out[21], out[22]]) & !CODEC_BITS;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let max_timestamp = i64::from_be_bytes(out[35..43].try_into().unwrap_or_default());
    finish_header(&mut out, 0, max_timestamp);
    out
}

/// Sets the batch length, record count and max timestamp of the batch `out` holds, then its CRC.
fn finish_header(out: &mut [u8], record_count: i32, max_timestamp: i64) {
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    out[57..61].copy_from_slice(&record_count.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// `raw` records compressed with `codec` (the attribute bits), as producers frame them.
fn compress(codec: u8, raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = BytesMut::new();
    let write = |b: &mut BytesMut| {
        b.put_slice(raw);
        Ok(())
    };
    let done = match codec {
        0 => return Ok(raw.to_vec()),
        1 => Gzip::compress(&mut out, write),
        2 => Snappy::compress(&mut out, write),
        3 => Lz4::compress(&mut out, write),
        4 => Zstd::compress(&mut out, write),
        other => return Err(format!("unknown compression codec {other}")),
    };
    done.map_err(|e| format!("cannot compress the kept records: {e:#}"))?;
    Ok(out.to_vec())
}
