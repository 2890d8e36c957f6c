//! A partition's on-disk log.
//!
//! # Layout on disk
//! One directory per partition holding, per segment, `<base-offset:020>.log` (record batches
//! v2 back to back, exactly as the client sent them except the base offset and partition
//! leader epoch, which lie outside the CRC), a sparse offset index `<base>.index` (relative
//! offset u32 BE, file position u32 BE; one entry per `index_interval_bytes` of log) and a time
//! index `<base>.timeindex` (largest timestamp so far i64 BE, relative offset u32 BE).
//!
//! # Parts
//! - [`batch`]: record batch v2 headers, CRC-32C checks, splitting a produce request's records.
//! - [`config`]: [`LogConfig`], roll, index and retention settings.
//! - [`PartitionLog`]: open + recovery, append, read, timestamp lookup, retention,
//!   truncation, and the durable log start offset (DeleteRecords) checkpointed beside it; built from segments (`segment`), their indexes (`index`) and a windowed
//!   positional reader (`reader`).
//! - [`SyncHandle`]: lets the WAL flusher fsync the active segment from another thread.
//! - [`durability`]: what each file is guaranteed to hold after a power loss (tracked only
//!   when fail points are on, for the power-cut fail point), and [`durability::write_atomic`],
//!   the one way to write small checkpoint files.
//! - [`cleaner`]: log compaction: plan on the owner's thread, run on another, swap in
//!   crash-safe.
//! - [`digest`]: digests of a log's batches per epoch, span, batch or record, computed on a
//!   [`digest::LogView`] off the owner's thread, to compare replicas.
//!
//! Durability: appends are plain writes; the owner fsyncs through [`SyncHandle`]. Rolling a
//! segment fsyncs it (and its indexes) synchronously. Recovery checks the last segment fully
//! and the sealed ones' tails; the log ends at the first cut or gap, and later segments are
//! deleted, so it never has a hole.

pub mod batch;
pub mod cleaner;
pub mod config;
pub mod digest;
pub mod durability;
mod error;
mod index;
mod partition_log;
mod reader;
mod segment;
mod sync_handle;
#[cfg(test)]
mod test_support;

pub use batch::{
    BATCH_HEADER_LEN, BatchError, BatchHeader, set_base_offset_and_epoch, split_batches, stamp_log_append_time,
    verify_crc,
};
pub use config::{Compaction, LogConfig};
pub use durability::write_atomic;
pub use error::LogError;
pub use partition_log::{AppendInfo, LOG_START_FILE, PartitionLog, ReadResult, RecoveryReport};
pub use sync_handle::SyncHandle;
