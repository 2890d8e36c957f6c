//! Finding batches inside a segment: by offset (sparse index, then a header walk), by
//! timestamp (time index, then the records of one batch), and cutting the segment at an offset.

use std::ops::Range;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::Segment;
use crate::log::batch::BatchHeader;
use crate::log::error::{IoContext, LogError};
use crate::log::reader::{Step, WINDOW_BYTES, WindowReader};

/// How many more bytes a read may return; the first batch may exceed it when `min_one`
/// (KIP-74), so a consumer is never stuck behind a batch larger than its fetch size.
#[derive(Debug)]
pub(crate) struct ReadBudget {
    /// Bytes still allowed.
    left: usize,
    /// Whether the next batch is admitted whatever its size.
    next_is_free: bool,
}

impl ReadBudget {
    /// A budget of `max_bytes`, waived for the first batch when `min_one`.
    pub fn new(max_bytes: usize, min_one: bool) -> Self {
        Self { left: max_bytes, next_is_free: min_one }
    }

    /// Takes `len` bytes from the budget if they fit (or the first batch is free).
    fn admit(&mut self, len: usize) -> bool {
        let ok = len <= self.left || self.next_is_free;
        if ok {
            self.left = self.left.saturating_sub(len);
            self.next_is_free = false;
        }
        ok
    }
}

impl Segment {
    fn reader(&self) -> WindowReader<'_> {
        WindowReader::new(&self.log, &self.log_path, WINDOW_BYTES)
    }

    /// The error for bad bytes at `position` of this segment.
    fn corrupt(&self, position: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt { segment: self.log_path.clone(), position, reason: reason.into() }
    }

    /// Position and header of the first batch whose last offset is `>= offset`, if any.
    fn find_batch(&self, offset: i64, reader: &mut WindowReader<'_>) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let relative = offset.saturating_sub(self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let mut pos = self.offset_index.lookup(relative).map_or(0, |e| u64::from(e.position));
        loop {
            match reader.header_at(pos, self.size)? {
                Step::End => return Ok(None),
                Step::Torn(reason) => return Err(self.corrupt(pos, reason)),
                Step::Batch(h) if h.last_offset() >= offset => return Ok(Some((pos, h))),
                Step::Batch(h) => pos += h.total_len() as u64,
            }
        }
    }

    /// The byte range of whole batches to read from `from`: it starts with the batch holding
    /// `from` and ends before the first batch reaching `limit` (exclusive) or overflowing the
    /// budget. The flag says whether the read must stop here rather than go on to the next
    /// segment.
    pub fn plan_read(&self, from: i64, limit: i64, budget: &mut ReadBudget) -> Result<(Range<u64>, bool), LogError> {
        let mut reader = self.reader();
        let Some((start, _)) = self.find_batch(from, &mut reader)? else {
            return Ok((0..0, false));
        };
        let mut pos = start;
        loop {
            let header = match reader.header_at(pos, self.size)? {
                Step::End => return Ok((start..pos, false)),
                Step::Torn(reason) => return Err(self.corrupt(pos, reason)),
                Step::Batch(h) => h,
            };
            if header.last_offset() >= limit || !budget.admit(header.total_len()) {
                return Ok((start..pos, true));
            }
            pos += header.total_len() as u64;
        }
    }

    /// Fills `out` with the file's bytes from `position`.
    pub fn read_at(&self, position: u64, out: &mut [u8]) -> Result<(), LogError> {
        let len = out.len();
        self.log
            .read_exact_at(out, position)
            .ctx(|| format!("read {len} bytes at byte {position} of {}", self.log_path.display()))
    }

    /// The first record with a timestamp `>= ts`, as `(offset, timestamp)`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        // Every batch before the one that reached an entry's timestamp is older than it.
        let from =
            self.time_index.lookup(ts).map_or(self.base_offset, |e| self.base_offset + i64::from(e.relative_offset));
        let mut reader = self.reader();
        let Some((mut pos, _)) = self.find_batch(from, &mut reader)? else {
            return Ok(None);
        };
        loop {
            let header = match reader.header_at(pos, self.size)? {
                Step::End => return Ok(None),
                Step::Torn(reason) => return Err(self.corrupt(pos, reason)),
                Step::Batch(h) => h,
            };
            if header.max_timestamp >= ts
                && let Some(found) = self.search_batch(pos, &header, ts)?
            {
                return Ok(Some(found));
            }
            pos += header.total_len() as u64;
        }
    }

    /// The first record of the batch at `pos` with a timestamp `>= ts`.
    fn search_batch(&self, pos: u64, header: &BatchHeader, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        if header.is_log_append_time() {
            // Every record of a log-append-time batch carries the batch's timestamp.
            return Ok(Some((header.base_offset, header.max_timestamp)));
        }
        let mut bytes = vec![0u8; header.total_len()];
        self.read_at(pos, &mut bytes)?;
        let mut bytes = Bytes::from(bytes);
        let set = RecordBatchDecoder::decode(&mut bytes)
            .map_err(|e| self.corrupt(pos, format!("cannot decode records: {e}")))?;
        Ok(set.records.iter().find(|r| r.timestamp >= ts).map(|r| (r.offset, r.timestamp)))
    }

    /// Calls `f` with every batch header, in order.
    pub fn for_each_header(&self, f: &mut impl FnMut(&BatchHeader)) -> Result<(), LogError> {
        let mut reader = self.reader();
        let mut pos = 0;
        loop {
            match reader.header_at(pos, self.size)? {
                Step::End => return Ok(()),
                Step::Torn(reason) => return Err(self.corrupt(pos, reason)),
                Step::Batch(h) => {
                    f(&h);
                    pos += h.total_len() as u64;
                }
            }
        }
    }

    /// The first batch's timestamp, if the segment has a batch with one.
    pub fn first_batch_timestamp(&self) -> Result<Option<i64>, LogError> {
        match self.reader().header_at(0, self.size)? {
            Step::Batch(h) if h.max_timestamp >= 0 => Ok(Some(h.max_timestamp)),
            _ => Ok(None),
        }
    }

    /// Removes the batch holding `offset` and everything after it.
    /// The next offset becomes that batch's base offset.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let found = self.find_batch(offset, &mut self.reader())?;
        let Some((position, header)) = found else {
            return Ok(());
        };
        self.log
            .set_len(position)
            .ctx(|| format!("truncate segment {} to byte {position}", self.log_path.display()))?;
        crate::log::durability::truncated(&self.log_path, position);
        let next_offset = header.base_offset;
        let keep = self.offset_index.entries().partition_point(|e| u64::from(e.position) < position);
        self.offset_index.truncate(keep)?;
        let base = self.base_offset;
        let keep = self.time_index.entries().partition_point(|e| base + i64::from(e.relative_offset) < next_offset);
        self.time_index.truncate(keep)?;
        if !self.resume(position)? {
            return Err(self.corrupt(position, "batches before the truncation point disagree with the indexes"));
        }
        if self.size == 0 {
            self.roll_clock_ms = None;
        }
        Ok(())
    }
}
