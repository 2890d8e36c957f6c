//! The read side of a partition log: fetches, timestamp lookups and header walks. All take
//! `&self` and use positional reads only.

use bytes::Bytes;

use super::{PartitionLog, ReadResult};
use crate::log::batch::BatchHeader;
use crate::log::error::LogError;
use crate::log::segment::{ReadBudget, Segment};

impl PartitionLog {
    /// Reads whole batches starting with the batch that contains `offset`, never returning a
    /// batch whose last offset is `>= max_offset` (the high watermark, exclusive), at most
    /// `max_bytes` — but always at least one whole batch when `min_one` and one is available
    /// (KIP-74). May continue into following segments. Empty `records` when `offset` is the
    /// log end or `>= max_offset`; `OffsetOutOfRange` when `offset` is before the log start or
    /// after the log end.
    pub fn read(&self, offset: i64, max_offset: i64, max_bytes: usize, min_one: bool) -> Result<ReadResult, LogError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange { offset, log_start, log_end });
        }
        let limit = max_offset.min(log_end);
        let records = match offset < limit {
            true => self.read_batches(offset, limit, ReadBudget::new(max_bytes, min_one))?,
            false => Bytes::new(),
        };
        Ok(ReadResult { records, log_start_offset: log_start, log_end_offset: log_end })
    }

    /// Plans the byte ranges segment by segment, then fills one buffer of exactly their size.
    fn read_batches(&self, offset: i64, limit: i64, mut budget: ReadBudget) -> Result<Bytes, LogError> {
        let mut spans = Vec::new();
        let mut total = 0usize;
        for segment in self.segments_from(offset) {
            let (range, stop) = segment.plan_read(offset, limit, &mut budget)?;
            if !range.is_empty() {
                total += (range.end - range.start) as usize;
                spans.push((segment, range));
            }
            if stop {
                break;
            }
        }
        let mut out = vec![0u8; total];
        let mut at = 0;
        for (segment, range) in spans {
            let len = (range.end - range.start) as usize;
            segment.read_at(range.start, &mut out[at..at + len])?;
            at += len;
        }
        Ok(Bytes::from(out))
    }

    /// The segment that would hold `offset`, then every later one.
    fn segments_from(&self, offset: i64) -> impl Iterator<Item = &Segment> {
        let first = match offset >= self.active.base_offset() {
            // No sealed segment can hold it: start the (empty) range at the active base.
            true => self.active.base_offset(),
            false => self.sealed.range(..=offset).next_back().map_or(i64::MIN, |(base, _)| *base),
        };
        self.sealed.range(first..).map(|(_, s)| s).chain(std::iter::once(&self.active))
    }

    /// The earliest offset whose record timestamp is `>= ts`, with that record's timestamp:
    /// the first segment whose largest timestamp reaches `ts`, its time index, then the records
    /// of the first batch there that reaches it. `None` if no record is that recent. A record
    /// below the log start (deleted, still in its segment) answers with the log start instead.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let log_start = self.log_start_offset();
        for segment in self.segments() {
            if segment.max_timestamp() >= ts
                && let Some((offset, found_ts)) = segment.offset_for_timestamp(ts)?
            {
                return Ok(Some((offset.max(log_start), found_ts)));
            }
        }
        Ok(None)
    }

    /// Every segment's base offset and the last modification time of its file, oldest first
    /// (ListOffsets v0's legacy answer is built from them, as Kafka's is).
    pub fn segment_times(&self) -> Result<Vec<(i64, i64)>, LogError> {
        self.segments().map(|s| Ok((s.base_offset(), s.modified_ms()?))).collect()
    }

    /// The segments as they are now, for digests computed on another thread.
    pub fn view(&self) -> crate::log::digest::LogView {
        let segments = self
            .segments()
            .map(|s| crate::log::digest::SegmentView {
                base_offset: s.base_offset(),
                size: s.size(),
                file: std::sync::Arc::clone(s.log_file()),
                path: s.log_path().to_path_buf(),
            })
            .collect();
        crate::log::digest::LogView { segments }
    }

    /// Calls `f` with every batch header from the start of the log, in order (to rebuild
    /// producer state on recovery). Reads headers through a read-ahead window, never decoding
    /// records.
    pub fn for_each_batch_header(&self, mut f: impl FnMut(&BatchHeader)) -> Result<(), LogError> {
        for segment in self.segments() {
            segment.for_each_header(&mut f)?;
        }
        Ok(())
    }
}
