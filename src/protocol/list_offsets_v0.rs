//! ListOffsets v0, which kafka-protocol does not decode (Kafka 4 dropped it; Kafka 3.9 still
//! serves it, and old clients send it). Per partition it names a target time and how many
//! offsets to return, and its answer is a list of offsets ("old style"), not one offset with a
//! timestamp. Seven fixed-size fields: decoded here by hand, every array count checked against
//! the bytes that remain before anything is allocated by it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A decoded v0 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsV0 {
    /// -1 for a consumer (answers are capped at the high watermark), a broker id otherwise.
    pub replica_id: i32,
    /// The partitions asked about, by topic.
    pub topics: Vec<TopicV0>,
}

/// One topic of a v0 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicV0 {
    /// The topic's name.
    pub name: String,
    /// Its partitions asked about.
    pub partitions: Vec<PartitionV0>,
}

/// One partition of a v0 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionV0 {
    /// The partition index.
    pub partition: i32,
    /// -1 latest, -2 earliest, or a time in ms: offsets of segments last written before it.
    pub timestamp: i64,
    /// At most this many offsets are returned.
    pub max_num_offsets: i32,
}

/// One partition's answer: its index, error code and offsets (newest first).
pub type PartitionAnswerV0 = (i32, i16, Vec<i64>);

/// Bytes of one partition entry: index, timestamp, max offsets.
const PARTITION_LEN: usize = 4 + 8 + 4;
/// The fewest bytes a topic entry takes: an empty name and an empty partition array.
const MIN_TOPIC_LEN: usize = 2 + 4;

/// Decodes a v0 request body (the bytes after the request header).
pub fn decode(mut body: Bytes) -> Result<ListOffsetsV0, String> {
    let replica_id = i32_of(&mut body)?;
    let topics = array(&mut body, MIN_TOPIC_LEN, |body| {
        let name = string(body)?;
        let partitions = array(body, PARTITION_LEN, |body| {
            Ok(PartitionV0 { partition: i32_of(body)?, timestamp: i64_of(body)?, max_num_offsets: i32_of(body)? })
        })?;
        Ok(TopicV0 { name, partitions })
    })?;
    Ok(ListOffsetsV0 { replica_id, topics })
}

/// Encodes a whole v0 response frame: size prefix, header v0 (the correlation id), body.
pub fn encode_response(correlation_id: i32, topics: &[(String, Vec<PartitionAnswerV0>)]) -> Bytes {
    let mut buf = BytesMut::new();
    // Placeholder: patched below with the real size.
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i32(topics.len() as i32);
    for (name, partitions) in topics {
        // Names come from a request whose i16 length prefix bounded them.
        buf.put_i16(name.len() as i16);
        buf.put_slice(name.as_bytes());
        buf.put_i32(partitions.len() as i32);
        for (partition, error_code, offsets) in partitions {
            buf.put_i32(*partition);
            buf.put_i16(*error_code);
            buf.put_i32(offsets.len() as i32);
            offsets.iter().for_each(|o| buf.put_i64(*o));
        }
    }
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

/// Kafka's legacy answer (`legacyFetchOffsetsBefore`) from a log's `segments` as
/// `(base offset, last modified ms)` oldest first, its log start and end: every segment's base
/// (not below the log start), then the log end stamped `now_ms` if the last segment holds
/// anything; from the last entry at or before `timestamp` (-1: the last, -2: the first), up to
/// `max` entries going back, newest first. A consumer's answer never exceeds the high
/// watermark: entries above it give way to the high watermark itself.
pub fn legacy_offsets(
    segments: &[(i64, i64)],
    log_start: i64,
    log_end: i64,
    high_watermark: i64,
    (timestamp, max, now_ms): (i64, i32, i64),
) -> Vec<i64> {
    let mut entries: Vec<(i64, i64)> =
        segments.iter().map(|&(base, modified)| (base.max(log_start), modified)).collect();
    if segments.last().is_some_and(|&(base, _)| log_end > base) {
        entries.push((log_end, now_ms));
    }
    let start = match timestamp {
        -1 => entries.len().checked_sub(1),
        -2 => (!entries.is_empty()).then_some(0),
        t => entries.iter().rposition(|&(_, modified)| modified <= t),
    };
    let Some(start) = start else { return Vec::new() };
    let take = usize::try_from(max).unwrap_or(0).min(start + 1);
    let offsets: Vec<i64> = entries[start + 1 - take..=start].iter().rev().map(|&(offset, _)| offset).collect();
    if offsets.iter().any(|&o| o > high_watermark) {
        std::iter::once(high_watermark).chain(offsets.into_iter().skip_while(|&o| o > high_watermark)).collect()
    } else {
        offsets
    }
}

fn need(body: &Bytes, n: usize) -> Result<(), String> {
    match body.remaining() >= n {
        true => Ok(()),
        false => Err(format!("needs {n} more bytes, {} left", body.remaining())),
    }
}

fn i32_of(body: &mut Bytes) -> Result<i32, String> {
    need(body, 4)?;
    Ok(body.get_i32())
}

fn i64_of(body: &mut Bytes) -> Result<i64, String> {
    need(body, 8)?;
    Ok(body.get_i64())
}

/// A non-nullable string: i16 length, UTF-8 bytes.
fn string(body: &mut Bytes) -> Result<String, String> {
    need(body, 2)?;
    let len = usize::try_from(body.get_i16()).map_err(|_| "a topic name may not be null".to_owned())?;
    need(body, len)?;
    String::from_utf8(body.split_to(len).to_vec()).map_err(|e| format!("topic name is not UTF-8: {e}"))
}

/// An i32-counted array whose entries take at least `min_len` bytes each: a count the rest of
/// the body cannot hold is refused before anything is allocated.
fn array<T>(
    body: &mut Bytes,
    min_len: usize,
    mut entry: impl FnMut(&mut Bytes) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let count = i32_of(body)?;
    let count = usize::try_from(count).map_err(|_| format!("array count {count} is negative"))?;
    if count > body.remaining() / min_len {
        return Err(format!("array count {count} exceeds the {} bytes left", body.remaining()));
    }
    (0..count).map(|_| entry(body)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A consumer's request for `partitions` of one topic.
    fn request(name: &str, partitions: &[PartitionV0]) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i32(-1);
        buf.put_i32(1);
        buf.put_i16(name.len() as i16);
        buf.put_slice(name.as_bytes());
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(p.partition);
            buf.put_i64(p.timestamp);
            buf.put_i32(p.max_num_offsets);
        }
        buf.freeze()
    }

    #[test]
    fn decodes_what_a_client_sends() {
        let partitions = [
            PartitionV0 { partition: 0, timestamp: -1, max_num_offsets: 1 },
            PartitionV0 { partition: 3, timestamp: 1_700_000_000_000, max_num_offsets: 5 },
        ];
        let decoded = decode(request("orders", &partitions)).expect("decodes");
        assert_eq!(decoded.replica_id, -1);
        assert_eq!(decoded.topics.len(), 1);
        assert_eq!(decoded.topics[0].name, "orders");
        assert_eq!(decoded.topics[0].partitions, partitions);
    }

    #[test]
    fn refuses_truncated_bodies_and_counts_the_body_cannot_hold() {
        let whole = request("orders", &[PartitionV0 { partition: 0, timestamp: -1, max_num_offsets: 1 }]);
        for cut in 0..whole.len() {
            assert!(decode(whole.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut huge = BytesMut::new();
        huge.put_i32(-1);
        huge.put_i32(i32::MAX);
        assert!(decode(huge.freeze()).unwrap_err().contains("exceeds"));
        let mut negative = BytesMut::new();
        negative.put_i32(-1);
        negative.put_i32(-5);
        assert!(decode(negative.freeze()).unwrap_err().contains("negative"));
        let mut null_name = BytesMut::new();
        null_name.put_i32(-1);
        null_name.put_i32(1);
        null_name.put_i16(-1);
        null_name.put_i32(0);
        assert!(decode(null_name.freeze()).is_err());
    }

    #[test]
    fn encodes_the_old_style_answer() {
        let frame = encode_response(42, &[("orders".into(), vec![(0, 0, vec![30, 10]), (1, 6, vec![])])]);
        let mut b = frame.clone();
        assert_eq!(b.get_i32() as usize, frame.len() - 4);
        assert_eq!(b.get_i32(), 42);
        assert_eq!(b.get_i32(), 1);
        assert_eq!(b.get_i16(), 6);
        assert_eq!(&b.split_to(6)[..], b"orders");
        assert_eq!(b.get_i32(), 2);
        assert_eq!((b.get_i32(), b.get_i16(), b.get_i32(), b.get_i64(), b.get_i64()), (0, 0, 2, 30, 10));
        assert_eq!((b.get_i32(), b.get_i16(), b.get_i32()), (1, 6, 0));
        assert!(!b.has_remaining());
    }

    /// Three segments based at 0, 10 and 20, last written at times 100, 200, 300; the log ends
    /// at 30 with the high watermark at 25.
    const SEGMENTS: [(i64, i64); 3] = [(0, 100), (10, 200), (20, 300)];

    #[test]
    fn latest_and_earliest_as_kafka_answers_them() {
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (-1, 1, 999)), vec![30]);
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (-1, 10, 999)), vec![30, 20, 10, 0]);
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (-2, 10, 999)), vec![0]);
        // The log start cuts into the first segment.
        assert_eq!(legacy_offsets(&SEGMENTS, 4, 30, 30, (-2, 1, 999)), vec![4]);
        // A consumer never sees past the high watermark.
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 25, (-1, 3, 999)), vec![25, 20, 10]);
    }

    #[test]
    fn a_time_answers_the_segments_written_before_it() {
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (250, 10, 999)), vec![10, 0]);
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (200, 1, 999)), vec![10]);
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (99, 10, 999)), Vec::<i64>::new());
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (5_000, 2, 999)), vec![30, 20]);
    }

    #[test]
    fn an_empty_last_segment_adds_no_end_entry_and_max_zero_answers_nothing() {
        let empty_active = [(0, 100), (10, 200)];
        assert_eq!(legacy_offsets(&empty_active, 0, 10, 10, (-1, 5, 999)), vec![10, 0]);
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (-1, 0, 999)), Vec::<i64>::new());
        assert_eq!(legacy_offsets(&SEGMENTS, 0, 30, 30, (-1, -3, 999)), Vec::<i64>::new());
    }
}
