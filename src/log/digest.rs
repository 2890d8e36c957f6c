//! Digests of a log's batches, to check that replicas hold the same bytes.
//!
//! Followers copy their leader's batches byte for byte (base offset and leader epoch included),
//! so two replicas agree on a range exactly when the batches in it are identical. A batch is in
//! the range `[from, to)` when it lies wholly inside it (`base_offset >= from` and
//! `last_offset < to`): the same batches on every replica that has them, wherever their
//! segments were rolled.
//!
//! Each batch is hashed (SHA-256 of its stored bytes); a range's digest is the SHA-256 of its
//! batch hashes in order. Narrowing down a difference goes from coarse to fine, so nobody ships
//! a whole log's batch list: [`DigestQuery::Epochs`] (one digest per run of batches of one
//! leader epoch), [`DigestQuery::Chunks`] (a range cut into equal offset spans),
//! [`DigestQuery::Batches`] (each batch, up to a limit) and [`DigestQuery::Records`] (each
//! record of one batch).
//!
//! The work runs on a [`LogView`]: the segment files and sizes at one moment, readable from
//! another thread while the log's owner goes on.

mod walk;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::LogError;

pub use walk::MAX_RECORDS_BATCH_BYTES;

/// Most batches a [`DigestQuery::Batches`] answer lists.
pub const MAX_BATCHES: usize = 4096;
/// Most chunks a [`DigestQuery::Chunks`] answer has.
pub const MAX_CHUNKS: usize = 1024;

/// What to digest over `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestQuery {
    /// One digest per run of consecutive batches of one leader epoch.
    Epochs,
    /// `parts` equal offset spans; a batch belongs to the span holding its base offset.
    Chunks {
        /// How many spans (1 to [`MAX_CHUNKS`]).
        parts: usize,
    },
    /// Each batch, at most `limit` (up to [`MAX_BATCHES`]) of them.
    Batches {
        /// Most batches listed.
        limit: usize,
    },
    /// Each record of the batch holding `offset` (only `from`..`to` bound the search).
    Records {
        /// An offset inside the batch.
        offset: i64,
    },
}

/// A digest of the batches of an offset range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDigest {
    /// The leader epoch of every batch in it (epoch runs), `None` for chunks.
    pub leader_epoch: Option<i32>,
    /// First offset of the range: its first batch's base offset (epoch runs), the span's start
    /// (chunks).
    pub start_offset: i64,
    /// End of the range (exclusive): its last batch's last offset + 1 (epoch runs), the span's
    /// end (chunks).
    pub end_offset: i64,
    /// Its last batch's last offset + 1; `None` when it holds no batch. For a chunk it can lie
    /// past `end_offset` (a batch belongs to the span of its base offset), so narrowing a
    /// difference down to one chunk looks at `[start_offset, data_end)`.
    pub data_end: Option<i64>,
    /// Batches in it.
    pub batches: u64,
    /// Bytes of those batches.
    pub bytes: u64,
    /// SHA-256 (hex) of the batches' SHA-256 hashes, in order.
    pub sha256: String,
}

/// One batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDigest {
    /// Its first offset.
    pub base_offset: i64,
    /// Its last offset.
    pub last_offset: i64,
    /// The leader epoch it was written in.
    pub leader_epoch: i32,
    /// Its length in bytes.
    pub bytes: u64,
    /// SHA-256 (hex) of its bytes.
    pub sha256: String,
}

/// One record of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDigest {
    /// Its offset.
    pub offset: i64,
    /// SHA-256 (hex) of its timestamp, key, value and headers.
    pub sha256: String,
}

/// The answer to a [`DigestQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum DigestAnswer {
    /// Per epoch run, in offset order.
    Epochs {
        /// The runs.
        ranges: Vec<RangeDigest>,
    },
    /// Per span, in offset order, empty spans included.
    Chunks {
        /// The spans.
        ranges: Vec<RangeDigest>,
    },
    /// Per batch, in offset order.
    Batches {
        /// The batches.
        batches: Vec<BatchDigest>,
        /// Whether every batch of the range is listed (false when `limit` cut the list).
        complete: bool,
    },
    /// Per record of one batch; `batch` is `None` when no batch in the range holds the offset.
    Records {
        /// The batch the records belong to.
        batch: Option<BatchDigest>,
        /// Its records, in offset order.
        records: Vec<RecordDigest>,
    },
}

/// One segment as it was when the view was taken.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    /// Offset of its first batch.
    pub base_offset: i64,
    /// Bytes of valid batches then.
    pub size: u64,
    /// The file, read with positional reads only.
    pub file: Arc<File>,
    /// The file's path, for error messages.
    pub path: PathBuf,
}

/// A partition log's segments at one moment, to be read on another thread. A segment deleted
/// afterwards stays readable through its open file; a truncation afterwards makes the view read
/// bytes that are no longer in the log (or fail): ask again.
#[derive(Debug, Clone)]
pub struct LogView {
    /// Oldest first.
    pub(crate) segments: Vec<SegmentView>,
}

impl LogView {
    /// Answers `query` over the batches wholly inside `[from, to)`.
    pub fn digest(&self, from: i64, to: i64, query: DigestQuery) -> Result<DigestAnswer, LogError> {
        match query {
            DigestQuery::Epochs => Ok(DigestAnswer::Epochs { ranges: self.epoch_ranges(from, to)? }),
            DigestQuery::Chunks { parts } => Ok(DigestAnswer::Chunks { ranges: self.chunks(from, to, parts)? }),
            DigestQuery::Batches { limit } => {
                let (batches, complete) = self.batches(from, to, limit.min(MAX_BATCHES))?;
                Ok(DigestAnswer::Batches { batches, complete })
            }
            DigestQuery::Records { offset } => {
                let (batch, records) = self.records(from, to, offset)?;
                Ok(DigestAnswer::Records { batch, records })
            }
        }
    }

    fn epoch_ranges(&self, from: i64, to: i64) -> Result<Vec<RangeDigest>, LogError> {
        let mut ranges: Vec<(RangeDigest, Sha256)> = Vec::new();
        self.walk(from, to, |batch| {
            match ranges.last_mut() {
                Some((range, hasher)) if range.leader_epoch == Some(batch.leader_epoch) => add(range, hasher, batch),
                _ => {
                    let mut range = empty_range(Some(batch.leader_epoch), batch.base_offset, batch.base_offset);
                    let mut hasher = Sha256::new();
                    add(&mut range, &mut hasher, batch);
                    ranges.push((range, hasher));
                }
            }
            true
        })?;
        Ok(ranges.into_iter().map(finish).collect())
    }

    fn chunks(&self, from: i64, to: i64, parts: usize) -> Result<Vec<RangeDigest>, LogError> {
        let bounds = chunk_bounds(from, to, parts);
        let mut ranges: Vec<(RangeDigest, Sha256)> =
            bounds.windows(2).map(|w| (empty_range(None, w[0], w[1]), Sha256::new())).collect();
        let mut at = 0;
        self.walk(from, to, |batch| {
            while at + 1 < ranges.len() && batch.base_offset >= ranges[at].0.end_offset {
                at += 1;
            }
            let (range, hasher) = &mut ranges[at];
            range.batches += 1;
            range.bytes += batch.bytes;
            range.data_end = Some(batch.last_offset + 1);
            hasher.update(batch.hash);
            true
        })?;
        Ok(ranges.into_iter().map(finish).collect())
    }

    fn batches(&self, from: i64, to: i64, limit: usize) -> Result<(Vec<BatchDigest>, bool), LogError> {
        let mut out = Vec::new();
        let mut complete = true;
        self.walk(from, to, |batch| {
            if out.len() == limit {
                complete = false;
                return false;
            }
            out.push(batch.to_digest());
            true
        })?;
        Ok((out, complete))
    }
}

/// What the walk learns of one batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSeen {
    /// First offset.
    pub base_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes.
    pub hash: [u8; 32],
}

impl BatchSeen {
    fn to_digest(self) -> BatchDigest {
        BatchDigest {
            base_offset: self.base_offset,
            last_offset: self.last_offset,
            leader_epoch: self.leader_epoch,
            bytes: self.bytes,
            sha256: hex(&self.hash),
        }
    }
}

/// `parts + 1` offsets cutting `[from, to)` into `parts` spans as equal as offsets allow.
fn chunk_bounds(from: i64, to: i64, parts: usize) -> Vec<i64> {
    let to = to.max(from);
    let parts = parts.clamp(1, MAX_CHUNKS) as i128;
    let width = i128::from(to) - i128::from(from);
    (0..=parts).map(|i| (i128::from(from) + width * i / parts) as i64).collect()
}

fn empty_range(leader_epoch: Option<i32>, start_offset: i64, end_offset: i64) -> RangeDigest {
    RangeDigest { leader_epoch, start_offset, end_offset, data_end: None, batches: 0, bytes: 0, sha256: String::new() }
}

fn add(range: &mut RangeDigest, hasher: &mut Sha256, batch: &BatchSeen) {
    range.batches += 1;
    range.bytes += batch.bytes;
    range.end_offset = batch.last_offset + 1;
    range.data_end = Some(range.end_offset);
    hasher.update(batch.hash);
}

fn finish((mut range, hasher): (RangeDigest, Sha256)) -> RangeDigest {
    range.sha256 = hex(&hasher.finalize());
    range
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
