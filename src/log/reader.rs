//! Positional reads of a segment file through a reusable window, so walking many small batch
//! headers costs one `pread` per window instead of one per batch, while a lone huge batch never
//! needs a buffer bigger than the window.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::batch::{BATCH_HEADER_LEN, BatchError, BatchHeader, header_crc};
use super::error::{IoContext, LogError};

/// Largest window: holds many small batches, small enough to allocate per call.
pub(crate) const WINDOW_BYTES: usize = 64 * 1024;
/// The first read of a reader: a point lookup (index entry, a few headers, done) stays cheap;
/// each refill doubles the read up to the capacity, so long walks still use big reads.
const FIRST_READ_BYTES: usize = 4 * 1024;

/// What sits at a position of a segment.
#[derive(Debug)]
pub(crate) enum Step {
    /// A whole batch that fits before the end; its header (CRC not checked).
    Batch(BatchHeader),
    /// The position is the end.
    End,
    /// The bytes there are not a whole, sane batch; why.
    Torn(String),
}

/// A window over `[start, start + buf.len())` of a segment file.
pub(crate) struct WindowReader<'a> {
    /// The segment file, read with `pread` only, so sharing it is safe.
    file: &'a File,
    /// The file's path, for error messages.
    path: &'a Path,
    /// Most bytes one read may fetch.
    capacity: usize,
    /// Bytes the next refill reads (before clamping to the file's end).
    next_read: usize,
    /// Bytes of the current window.
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    start: u64,
}

impl<'a> WindowReader<'a> {
    /// A reader with an empty window of at most `capacity` bytes (at least a batch header).
    pub fn new(file: &'a File, path: &'a Path, capacity: usize) -> Self {
        let capacity = capacity.max(BATCH_HEADER_LEN);
        Self { file, path, capacity, next_read: FIRST_READ_BYTES.min(capacity), buf: Vec::new(), start: 0 }
    }

    /// Bytes `[pos, pos + len)` of the file; `len` must not exceed the capacity and
    /// `pos + len` must not exceed `end`, the known size of the file's valid data.
    pub fn get(&mut self, pos: u64, len: usize, end: u64) -> Result<&[u8], LogError> {
        let buffered = pos >= self.start && pos + len as u64 <= self.start + self.buf.len() as u64;
        if !buffered {
            // Reading ahead up to `end` serves the following headers from memory.
            let want = (end.saturating_sub(pos)).min(self.next_read as u64) as usize;
            let want = want.max(len);
            self.next_read = (self.next_read * 2).min(self.capacity);
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf, pos)
                .ctx(|| format!("read {want} bytes at byte {pos} of {}", self.path.display()))?;
            self.start = pos;
        }
        let from = (pos - self.start) as usize;
        Ok(&self.buf[from..from + len])
    }

    /// The batch at `pos`, if a whole sane one lies before `end`.
    pub fn header_at(&mut self, pos: u64, end: u64) -> Result<Step, LogError> {
        if pos >= end {
            return Ok(Step::End);
        }
        let left = end - pos;
        if left < BATCH_HEADER_LEN as u64 {
            return Ok(Step::Torn(format!("{left} bytes left, fewer than a batch header")));
        }
        let header = match BatchHeader::parse(self.get(pos, BATCH_HEADER_LEN, end)?) {
            Ok(h) => h,
            Err(e) => return Ok(Step::Torn(describe(&e))),
        };
        let total = header.total_len() as u64;
        if total > left {
            return Ok(Step::Torn(format!("batch claims {total} bytes but only {left} remain")));
        }
        Ok(Step::Batch(header))
    }

    /// Whether the CRC-32C of the batch at `pos` (already found by `header_at`) matches,
    /// reading the body in window-sized pieces.
    pub fn crc_matches(&mut self, pos: u64, header: &BatchHeader, end: u64) -> Result<bool, LogError> {
        let mut crc = header_crc(self.get(pos, BATCH_HEADER_LEN, end)?);
        let batch_end = pos + header.total_len() as u64;
        let mut at = pos + BATCH_HEADER_LEN as u64;
        while at < batch_end {
            let len = (batch_end - at).min(self.capacity as u64) as usize;
            crc = crc32c::crc32c_append(crc, self.get(at, len, end)?);
            at += len as u64;
        }
        Ok(crc == header.crc)
    }
}

/// A batch error's reason without its "batch N: " prefix, which means nothing inside a file.
fn describe(e: &BatchError) -> String {
    let text = e.to_string();
    match text.split_once(": ") {
        Some((prefix, reason)) if prefix.starts_with("batch ") => reason.to_string(),
        _ => text,
    }
}
