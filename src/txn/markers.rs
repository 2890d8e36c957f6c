//! Transaction markers: the control batches the coordinator writes to every partition of a
//! transaction once it is decided, telling consumers (read_committed) and the partition's
//! producer state whether the producer's records before it are committed or aborted.
//!
//! A marker is one uncompressed, transactional, control batch with base sequence -1 holding one
//! record: key `[version i16 = 0, type i16]` (0 abort, 1 commit) and value
//! `[version i16 = 0, coordinator_epoch i32]`, big-endian, as Kafka's `EndTransactionMarker`.
//! It is built by hand because its layout is fixed and tiny, so nothing can fail.

use bytes::Bytes;

use crate::log::{BATCH_HEADER_LEN, BatchHeader, verify_crc};

/// Batch attributes of a marker: transactional (bit 4) and control (bit 5), no compression.
const MARKER_ATTRIBUTES: i16 = (1 << 4) | (1 << 5);
/// Control record type of an abort marker.
const ABORT: i16 = 0;
/// Control record type of a commit marker.
const COMMIT: i16 = 1;

/// A commit (`commit`) or abort marker of the producer's transaction, as a whole batch with
/// base offset 0 (the partition assigns the real one on append).
pub fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Bytes {
    let kind = if commit { COMMIT } else { ABORT };
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = 0i16.to_be_bytes().to_vec();
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());

    // Record: attributes, timestamp delta, offset delta, key, value, header count.
    let mut record = vec![0u8];
    put_varint(&mut record, 0);
    put_varint(&mut record, 0);
    for field in [&key, &value] {
        put_varint(&mut record, field.len() as i64);
        record.extend_from_slice(field);
    }
    put_varint(&mut record, 0);

    let mut batch = Vec::with_capacity(BATCH_HEADER_LEN + record.len() + 2);
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    batch.extend_from_slice(&0i32.to_be_bytes()); // batch length, set below
    batch.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    batch.extend_from_slice(&MARKER_ATTRIBUTES.to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    batch.extend_from_slice(&now_ms.to_be_bytes()); // base timestamp
    batch.extend_from_slice(&now_ms.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&producer_id.to_be_bytes());
    batch.extend_from_slice(&producer_epoch.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&1i32.to_be_bytes()); // record count
    put_varint(&mut batch, record.len() as i64);
    batch.extend_from_slice(&record);

    let batch_length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

/// What a marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Commit (else abort).
    pub commit: bool,
    /// The epoch of the coordinator that wrote it (its `__transaction_state` partition's leader
    /// epoch): a partition refuses markers of an older one.
    pub coordinator_epoch: i32,
}

/// The marker a control batch holds (whole batch bytes as stored in a log, any base offset);
/// `None` when it is not a control batch, its CRC is wrong, it is compressed, or its record
/// cannot be read. Never panics on arbitrary bytes.
pub fn read_marker(batch: &[u8]) -> Option<Marker> {
    let header = BatchHeader::parse(batch).ok()?;
    if !header.is_control() || header.compression() != 0 || header.record_count < 1 {
        return None;
    }
    let batch = batch.get(..header.total_len())?;
    verify_crc(batch).ok()?;
    let mut rest = batch.get(BATCH_HEADER_LEN..)?;
    let _record_len = varint(&mut rest)?;
    let _attributes = take(&mut rest, 1)?;
    let _timestamp_delta = varint(&mut rest)?;
    let _offset_delta = varint(&mut rest)?;
    let key_len = usize::try_from(varint(&mut rest)?).ok()?;
    let key = take(&mut rest, key_len)?;
    // Kafka reads newer key versions by the same first two fields; a negative one is invalid.
    let version = i16::from_be_bytes([*key.first()?, *key.get(1)?]);
    let kind = i16::from_be_bytes([*key.get(2)?, *key.get(3)?]);
    let commit = match (version >= 0, kind) {
        (true, COMMIT) => true,
        (true, ABORT) => false,
        _ => return None,
    };
    // The value: [version i16, coordinator_epoch i32].
    let value_len = usize::try_from(varint(&mut rest)?).ok()?;
    let value = take(&mut rest, value_len)?;
    let coordinator_epoch = i32::from_be_bytes(value.get(2..6)?.try_into().ok()?);
    Some(Marker { commit, coordinator_epoch })
}

/// Appends `v` as a zigzag varint (record fields use them).
fn put_varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Reads a zigzag varint from the front of `buf`; `None` if it is cut short or longer than
/// ten bytes.
fn varint(buf: &mut &[u8]) -> Option<i64> {
    let mut z = 0u64;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    None
}

/// Splits `n` bytes off the front of `buf`; `None` if there are fewer.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Some(head)
}
