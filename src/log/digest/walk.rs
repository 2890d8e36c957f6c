//! Walking a [`LogView`]'s batches: hashing each one, and decoding one batch's records.

use std::os::unix::fs::FileExt;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Record, RecordBatchDecoder};
use sha2::{Digest as _, Sha256};

use super::{BatchDigest, BatchSeen, LogView, RecordDigest, SegmentView, hex};
use crate::log::batch::BatchHeader;
use crate::log::error::{IoContext, LogError};
use crate::log::reader::{Step, WINDOW_BYTES, WindowReader};

/// Largest batch whose records a [`super::DigestQuery::Records`] decodes: bounds the buffer a
/// length read from disk can make us allocate.
pub const MAX_RECORDS_BATCH_BYTES: u64 = 64 * 1024 * 1024;

impl LogView {
    /// Calls `visit` with each batch wholly inside `[from, to)`, in offset order, until it
    /// returns `false`: its segment, position and header, and the reader positioned on it.
    fn scan(
        &self,
        from: i64,
        to: i64,
        mut visit: impl FnMut(&SegmentView, u64, &BatchHeader, &mut WindowReader<'_>) -> Result<bool, LogError>,
    ) -> Result<(), LogError> {
        // Segments are in offset order: start with the last one that begins at or before `from`.
        let first = self.segments.iter().rposition(|s| s.base_offset <= from).unwrap_or(0);
        for segment in &self.segments[first..] {
            let mut reader = WindowReader::new(&segment.file, &segment.path, WINDOW_BYTES);
            let mut pos = 0;
            loop {
                let header = match reader.header_at(pos, segment.size)? {
                    Step::End => break,
                    Step::Torn(reason) => {
                        return Err(LogError::Corrupt { segment: segment.path.clone(), position: pos, reason });
                    }
                    Step::Batch(h) => h,
                };
                if header.last_offset() >= to {
                    return Ok(());
                }
                if header.base_offset >= from && !visit(segment, pos, &header, &mut reader)? {
                    return Ok(());
                }
                pos += header.total_len() as u64;
            }
        }
        Ok(())
    }

    /// Calls `visit` with each batch wholly inside `[from, to)` and its hash, until it returns
    /// `false`.
    pub(super) fn walk(&self, from: i64, to: i64, mut visit: impl FnMut(&BatchSeen) -> bool) -> Result<(), LogError> {
        self.scan(from, to, |segment, pos, header, reader| {
            let seen = BatchSeen {
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
                leader_epoch: header.partition_leader_epoch,
                bytes: header.total_len() as u64,
                hash: hash_batch(reader, segment.size, pos, header.total_len() as u64)?,
            };
            Ok(visit(&seen))
        })
    }

    /// The batch holding `offset` (if it lies wholly inside `[from, to)`) and its records.
    pub(super) fn records(
        &self,
        from: i64,
        to: i64,
        offset: i64,
    ) -> Result<(Option<BatchDigest>, Vec<RecordDigest>), LogError> {
        let mut found = None;
        self.scan(from, to, |segment, pos, header, reader| {
            if header.last_offset() < offset {
                return Ok(true);
            }
            if header.base_offset <= offset {
                let hash = hash_batch(reader, segment.size, pos, header.total_len() as u64)?;
                found = Some((segment.clone(), pos, *header, hash));
            }
            Ok(false)
        })?;
        let Some((segment, pos, header, hash)) = found else { return Ok((None, Vec::new())) };
        let batch = BatchDigest {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            leader_epoch: header.partition_leader_epoch,
            bytes: header.total_len() as u64,
            sha256: hex(&hash),
        };
        let records = decode_records(&segment, pos, &header)?;
        Ok((Some(batch), records.iter().map(record_digest).collect()))
    }
}

/// SHA-256 of the `len` bytes at `pos`, read through the window in pieces.
fn hash_batch(reader: &mut WindowReader<'_>, end: u64, pos: u64, len: u64) -> Result<[u8; 32], LogError> {
    let mut hasher = Sha256::new();
    let mut at = pos;
    while at < pos + len {
        let piece = (pos + len - at).min(WINDOW_BYTES as u64) as usize;
        hasher.update(reader.get(at, piece, end)?);
        at += piece as u64;
    }
    Ok(hasher.finalize().into())
}

/// The records of the batch at `pos`; compressed batches are decompressed with the broker's cap.
fn decode_records(segment: &SegmentView, pos: u64, header: &BatchHeader) -> Result<Vec<Record>, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { segment: segment.path.clone(), position: pos, reason };
    let len = header.total_len() as u64;
    if len > MAX_RECORDS_BATCH_BYTES {
        return Err(corrupt(format!("batch of {len} bytes is larger than {MAX_RECORDS_BATCH_BYTES}, not decoded")));
    }
    let mut bytes = vec![0u8; len as usize];
    let context = || format!("read {len} bytes at byte {pos} of {}", segment.path.display());
    segment.file.read_exact_at(&mut bytes, pos).ctx(context)?;
    let mut buf = Bytes::from(bytes);
    let set = RecordBatchDecoder::decode_with_custom_compression(&mut buf, Some(crate::records::capped_decompress))
        .map_err(|e| corrupt(format!("records do not decode: {e:#}")))?;
    Ok(set.records)
}

/// SHA-256 of what a consumer sees of a record: timestamp, key, value and headers, each
/// length-prefixed (-1 for null) so no two different records encode alike.
fn record_digest(record: &Record) -> RecordDigest {
    let mut buf = BytesMut::new();
    buf.put_i64(record.timestamp);
    put_optional(&mut buf, record.key.as_deref());
    put_optional(&mut buf, record.value.as_deref());
    buf.put_u64(record.headers.len() as u64);
    for (key, value) in &record.headers {
        put_optional(&mut buf, Some(key.as_bytes()));
        put_optional(&mut buf, value.as_deref());
    }
    RecordDigest { offset: record.offset, sha256: hex(&Sha256::digest(&buf)) }
}

fn put_optional(buf: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            buf.put_i64(b.len() as i64);
            buf.put_slice(b);
        }
        None => buf.put_i64(-1),
    }
}
