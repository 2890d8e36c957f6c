//! Log compaction (`cleanup.policy=compact`): keeps the latest record of every key, as
//! Kafka's log cleaner does.
//!
//! # How a cleaning goes
//! 1. [`PartitionLog::plan_clean`] (on the owner's thread, cheap): the cleanable part of the
//!    log is the sealed segments wholly below the last stable offset (the high watermark, or the
//!    first offset of an undecided transaction) whose newest record is older than
//!    `min.compaction.lag.ms`; the active segment is never touched. It is cleaned when the
//!    share of it written since the last cleaning (the dirty part) reaches
//!    `min.cleanable.dirty.ratio`, or when a tombstone kept last time has become old enough to go.
//! 2. [`CleanJob::run`] (on a blocking thread, throttled): maps every key of the dirty part to
//!    its last offset, then rewrites the cleanable segments, grouped up to `segment.bytes`,
//!    into `<base>.cleaned` files: a record stays if no later record has its key, and a
//!    tombstone (null value) only while it is younger than `delete.retention.ms`. Records keep
//!    their offsets, so a batch keeps its base and last offset (and an idempotent producer's
//!    sequence range) even when records inside it are gone, as in Kafka. A batch that loses every
//!    record is dropped, unless it is its producer's last one: then its header stays, empty, so
//!    the producer's sequence survives a restart. Aborted transactions' records go and are left
//!    out of the key map; a transaction marker goes once none of its transaction's records is
//!    left and its delete horizon has passed, as a tombstone's.
//! 3. [`PartitionLog::apply_clean`] (owner's thread): checks the segments did not change
//!    meanwhile, then swaps each group in. The swap is crash-safe: `<base>.cleaned` is renamed to
//!    `<base>.<end>.swap` (the commit point), the old segments are deleted, and the swap file
//!    becomes `<base>.log`; opening a log finishes a committed swap ([`finish_swaps`]) and drops
//!    an uncommitted `.cleaned` file.
//!
//! A compacted log has offset gaps, which an uncompacted one must not (there a gap is damage).
//! The cleaner checkpoint (`cleaner-offset-checkpoint`) marks a log that may have them: it is
//! written before the first gap can exist and never removed.

mod checkpoint;
mod horizon;
mod plan;
mod rewrite;
mod run;
mod swap;

pub(crate) use checkpoint::load as load_checkpoint;
pub use checkpoint::{CLEANER_FILE, CleanerCheckpoint};
pub use horizon::CleanedRanges;
pub use plan::CleanJob;
pub use run::{CleanedLog, Throttle};
pub use swap::CleanOutcome;
pub(crate) use swap::finish_swaps;

/// What one cleaning did, for its log line and the node's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Bytes of segments read (the dirty part twice: once for the key map, once rewritten).
    pub bytes_read: u64,
    /// Bytes written to the cleaned segments.
    pub bytes_written: u64,
    /// Records dropped (superseded, aborted, expired tombstones and spent transaction markers).
    pub records_removed: u64,
    /// Records kept in the cleaned segments.
    pub records_kept: u64,
    /// Segments rewritten.
    pub segments: u64,
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
