//! Walks the records of a batch in place: every length, count and varint is checked against
//! the bytes actually present, nothing is copied and nothing is allocated. This runs on every
//! produced record, so it reads each field once and does nothing else.
//!
//! Record layout (v2): length varint, then `length` bytes holding attributes i8, timestamp
//! delta varlong, offset delta varint, key (varint length, -1 = null), value (same), header
//! count varint, and per header a key (varint length ≥ 0, UTF-8) and a value (nullable).

use super::refusal::RecordFault;

/// One record as seen by the walk; slices point into the batch's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Position of the record within its batch (equals its offset delta).
    pub index: i32,
    /// Absolute timestamp: the batch's base timestamp plus the record's delta.
    pub timestamp: i64,
    /// The key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` when null.
    pub value: Option<&'a [u8]>,
    /// Number of headers.
    pub header_count: usize,
}

/// How a walk ended short of success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WalkError {
    /// Record `index` is malformed.
    Record {
        /// Position of the faulty record in the batch.
        index: i32,
        /// What is wrong with it.
        fault: RecordFault,
    },
    /// The bytes ran out after `found` of the `declared` records.
    Missing {
        /// The batch header's record count.
        declared: i32,
        /// Records actually present.
        found: i32,
    },
    /// `extra` bytes follow the last declared record.
    Trailing {
        /// Bytes left over.
        extra: usize,
    },
}

/// Walks exactly `count` records laid out in `data`, calling `visit` for each, and refuses
/// bytes left over after the last one.
pub(super) fn walk_records<'a>(
    data: &'a [u8],
    count: i32,
    base_timestamp: i64,
    mut visit: impl FnMut(RecordView<'a>),
) -> Result<(), WalkError> {
    let mut rest = data;
    for index in 0..count {
        if rest.is_empty() {
            return Err(WalkError::Missing { declared: count, found: index });
        }
        let (view, tail) =
            one_record(rest, index, base_timestamp).map_err(|fault| WalkError::Record { index, fault })?;
        visit(view);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(WalkError::Trailing { extra: rest.len() });
    }
    Ok(())
}

/// Parses the record at the start of `rest`; returns it and the bytes after it.
fn one_record(rest: &[u8], index: i32, base_timestamp: i64) -> Result<(RecordView<'_>, &[u8]), RecordFault> {
    let (_, body, tail) = frame(rest)?;
    let body_len = body.len();
    let mut r = Cursor { buf: body };
    let attributes = r.byte().ok_or(RecordFault::Overrun { field: "attributes" })?;
    if attributes != 0 {
        return Err(RecordFault::Attributes(attributes));
    }
    let delta = r.varlong().ok_or(RecordFault::Varint { field: "timestamp delta" })?;
    let timestamp = base_timestamp.checked_add(delta).ok_or(RecordFault::TimestampOverflow { delta })?;
    let offset_delta = r.varint().ok_or(RecordFault::Varint { field: "offset delta" })?;
    if offset_delta != index {
        return Err(RecordFault::OffsetDelta { got: offset_delta });
    }
    let key = r.nullable("key")?;
    let value = r.nullable("value")?;
    let header_count = r.header_count()?;
    for _ in 0..header_count {
        r.header()?;
    }
    if !r.buf.is_empty() {
        return Err(RecordFault::Leftover { declared: body_len, parsed: body_len - r.buf.len() });
    }
    Ok((RecordView { index, timestamp, key, value, header_count }, tail))
}

/// One record of a stored batch, as the log cleaner sees it: where it lies, which offset it
/// has, and what compaction decides on. Slices point into the batch's (decompressed) records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRecord<'a> {
    /// The whole record, length prefix included, to copy unchanged into a rewritten batch.
    pub raw: &'a [u8],
    /// Offset relative to the batch's base offset (a cleaned batch has gaps).
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// The key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// Whether the value is null (a tombstone when the key is set).
    pub null_value: bool,
}

/// Splits the records of a stored batch (already checked when they were produced, possibly
/// cleaned since, so offset deltas may skip) into [`StoredRecord`]s. Refuses bytes that are not
/// records rather than guessing: a damaged batch is left for recovery to find.
pub fn stored_records(data: &[u8]) -> Result<Vec<StoredRecord<'_>>, RecordFault> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (raw, body, tail) = frame(rest)?;
        let mut r = Cursor { buf: body };
        r.byte().ok_or(RecordFault::Overrun { field: "attributes" })?;
        let timestamp_delta = r.varlong().ok_or(RecordFault::Varint { field: "timestamp delta" })?;
        let offset_delta = r.varint().ok_or(RecordFault::Varint { field: "offset delta" })?;
        let key = r.nullable("key")?;
        let null_value = r.nullable("value")?.is_none();
        out.push(StoredRecord { raw, offset_delta, timestamp_delta, key, null_value });
        rest = tail;
    }
    Ok(out)
}

/// A record cut out by its length prefix: the whole record (prefix included), its body, and
/// the bytes after it.
type Framed<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// The record at the start of `rest`, by its length prefix.
#[inline]
fn frame(rest: &[u8]) -> Result<Framed<'_>, RecordFault> {
    let mut outer = Cursor { buf: rest };
    let length = outer.varint().ok_or(RecordFault::Varint { field: "record length" })?;
    let available = outer.buf.len();
    let body_len = usize::try_from(length).ok().filter(|l| *l <= available);
    let Some(body_len) = body_len else {
        return Err(RecordFault::Length { length, available });
    };
    let prefix = rest.len() - available;
    let (raw, tail) = rest.split_at(prefix + body_len);
    Ok((raw, &raw[prefix..], tail))
}

/// A forward-only reader over a slice; every method returns `None` when the bytes run out.
struct Cursor<'a> {
    /// What is left to read.
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(*b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// Zigzag varint of at most 5 bytes whose value fits 32 bits. Kafka drops the bits that
    /// overflow; refusing them instead keeps every client reading the same number.
    #[inline]
    fn varint(&mut self) -> Option<i32> {
        // Most lengths and deltas fit one byte.
        if let Some((&b, rest)) = self.buf.split_first()
            && b < 0x80
        {
            self.buf = rest;
            return Some((b >> 1) as i32 ^ -((b & 1) as i32));
        }
        let mut raw: u32 = 0;
        for i in 0..5 {
            let b = self.byte()?;
            if i == 4 && b > 0x0f {
                return None;
            }
            raw |= u32::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some((raw >> 1) as i32 ^ -((raw & 1) as i32));
            }
        }
        None
    }

    /// Zigzag varlong of at most 10 bytes whose value fits 64 bits.
    #[inline]
    fn varlong(&mut self) -> Option<i64> {
        if let Some((&b, rest)) = self.buf.split_first()
            && b < 0x80
        {
            self.buf = rest;
            return Some((b >> 1) as i64 ^ -((b & 1) as i64));
        }
        let mut raw: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 0x01 {
                return None;
            }
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        None
    }

    /// A varint length then that many bytes; -1 is null, below -1 is refused.
    fn nullable(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, RecordFault> {
        let length = self.varint().ok_or(RecordFault::Varint { field })?;
        if length == -1 {
            return Ok(None);
        }
        let n = usize::try_from(length).map_err(|_| RecordFault::FieldLength { field, length })?;
        self.take(n).map(Some).ok_or(RecordFault::FieldBeyondRecord { field, length, available: self.buf.len() })
    }

    /// The header count: not negative, and no more headers than bytes left (each header
    /// needs at least two), so a garbled count is caught before looping on it.
    fn header_count(&mut self) -> Result<usize, RecordFault> {
        let count = self.varint().ok_or(RecordFault::Varint { field: "header count" })?;
        let available = self.buf.len();
        usize::try_from(count).ok().filter(|c| *c <= available).ok_or(RecordFault::HeaderCount { count, available })
    }

    /// One header: a non-null UTF-8 key (headers keys are strings to every client) and a
    /// nullable value.
    fn header(&mut self) -> Result<(), RecordFault> {
        let field = "header key";
        let length = self.varint().ok_or(RecordFault::Varint { field })?;
        let n = usize::try_from(length).map_err(|_| RecordFault::FieldLength { field, length })?;
        let key = self.take(n).ok_or(RecordFault::FieldBeyondRecord { field, length, available: self.buf.len() })?;
        if !key.is_ascii() && std::str::from_utf8(key).is_err() {
            return Err(RecordFault::HeaderKeyNotUtf8);
        }
        self.nullable("header value")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag32(v: i32) -> Vec<u8> {
        let mut z = ((v << 1) ^ (v >> 31)) as u32;
        let mut out = Vec::new();
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
        out
    }

    #[test]
    fn stored_records_split_a_batch_with_gaps() {
        use kafka_protocol::records::Compression;
        let entries = [
            (Some(bytes::Bytes::from_static(b"a")), Some(bytes::Bytes::from_static(b"1"))),
            (Some(bytes::Bytes::from_static(b"b")), None),
        ];
        let batch = crate::records::encode_batch(&entries, 1_000, Compression::None).expect("encode");
        let records = stored_records(&batch[crate::log::BATCH_HEADER_LEN..]).expect("records");
        let got: Vec<_> = records.iter().map(|r| (r.offset_delta, r.key, r.null_value)).collect();
        assert_eq!(got, vec![(0, Some(&b"a"[..]), false), (1, Some(&b"b"[..]), true)]);
        assert_eq!(records[0].raw.len() + records[1].raw.len(), batch.len() - crate::log::BATCH_HEADER_LEN);
        // The second record alone, as a cleaned batch holds it, still splits.
        assert_eq!(stored_records(records[1].raw).expect("one")[0].offset_delta, 1);
        assert!(stored_records(&records[1].raw[..records[1].raw.len() - 1]).is_err(), "cut short");
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let bytes = zigzag32(v);
            assert_eq!(Cursor { buf: &bytes }.varint(), Some(v), "{v}");
            assert_eq!(Cursor { buf: &bytes }.varlong(), Some(i64::from(v)), "{v}");
        }
        assert_eq!(Cursor { buf: &[0x80, 0x00] }.varint(), Some(0), "overlong but well formed");
    }

    #[test]
    fn garbled_varints_are_refused() {
        let cases: [&[u8]; 4] = [
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // six bytes
            &[0xff, 0xff, 0xff, 0xff, 0x1f],       // overflows 32 bits
            &[0x80, 0x80],                         // cut short
            &[],
        ];
        for case in cases {
            assert_eq!(Cursor { buf: case }.varint(), None, "{case:?}");
        }
        let long = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Cursor { buf: &long }.varlong(), None, "overflows 64 bits");
        let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Cursor { buf: &max }.varlong(), Some(i64::MAX));
    }
}
