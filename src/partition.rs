//! Per-partition rules that are not storage.
//!
//! # Layout
//! - [`checkpoints`]: the high watermark and leader-epoch checkpoint files of a partition.
//! - [`producer_state`]: idempotent-producer sequence checks (duplicate → answer with the
//!   original offset, gap → OUT_OF_ORDER_SEQUENCE_NUMBER, old epoch → INVALID_PRODUCER_EPOCH).
//! - [`replication`]: leader epochs and follower truncation (KIP-101/KIP-279), follower
//!   progress, the high watermark and ISR changes, and the acks=all checks.
//! - [`transactions`]: open and aborted transactions and the last stable offset.

pub mod checkpoints;
pub mod producer_state;
pub mod replication;
pub mod transactions;

pub use producer_state::{BatchIdentity, ProducerStateTable, ProducerSummary, SequenceCheck};
pub use replication::{
    AcksError, EpochCheckpointError, EpochEndOffset, EpochEntry, FollowerState, IsrTracker, LeaderEpochCache,
    Truncation, acks_all_done, acks_all_outcome, check_after_append, check_before_append, truncation_point,
};
pub use transactions::{AbortedTxn, OngoingTxn, TxnBatch, TxnIndex};
