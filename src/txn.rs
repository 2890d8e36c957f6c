//! The pure state of Kafka's transaction coordinator (exactly-once delivery): one
//! [`TxnMetadata`] per transactional id, changed only by the transition functions here and
//! persisted as records of the internal `__transaction_state` topic. The coordinator actor
//! calls a transition, appends the metadata it returns, and only then acts on it (answers the
//! client, writes markers); after a restart it rebuilds its cache by reading the topic back.
//!
//! # Layout
//! - this file: the state ([`TxnState`], [`TxnMetadata`]) and which partition owns an id.
//! - `transitions`: InitProducerId, AddPartitionsToTxn, EndTxn, completion, timeouts and the
//!   producer checks, following Kafka's `TransactionCoordinator` (transaction protocol v1).
//! - `records`: the JSON codec of `__transaction_state` records.
//! - `markers`: the commit/abort control batches written to the transaction's data partitions.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

mod markers;
mod records;
mod transitions;

pub use markers::{Marker, encode_marker, read_marker};
pub use records::{TxnRecord, decode_txn_records, encode_txn_records};
pub use transitions::{
    EndStep, InitStep, abort_by_operator, add_partitions, check_producer, complete, end, expired, fresh, init,
    timed_out, verifies,
};

/// The internal topic holding transaction metadata.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka's default `transaction.max.timeout.ms`: the longest timeout a producer may ask for.
pub const MAX_TIMEOUT_MS: i32 = 900_000;

/// Which `__transaction_state` partition (and so which coordinator) owns a transactional id:
/// Kafka's `abs(hashCode) % partitions`, the same hash as consumer groups.
pub fn partition_for_transaction(transactional_id: &str, partitions: i32) -> i32 {
    crate::offsets::partition_for_group(transactional_id, partitions)
}

/// Where a transactional id's current transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// A producer is initialised but has not added a partition since.
    Empty,
    /// Partitions were added; the producer may write to them until it ends the transaction.
    Ongoing,
    /// EndTxn(commit) is persisted; commit markers are being written.
    PrepareCommit,
    /// An abort is persisted (client, timeout, fencing or operator); abort markers are being written.
    PrepareAbort,
    /// Every commit marker is written; the producer may start a new transaction.
    CompleteCommit,
    /// Every abort marker is written; the producer may start a new transaction.
    CompleteAbort,
}

impl TxnState {
    /// Every state, in Kafka's order.
    pub const ALL: [TxnState; 6] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ];

    /// Kafka's name of the state, as shown by `kafka-transactions.sh` and DescribeTransactions.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    /// The state with Kafka's name `s` (ListTransactions' state filter), if any.
    pub fn from_name(s: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|state| state.name() == s)
    }

    /// Whether markers are being written (PrepareCommit/PrepareAbort): the producer must wait.
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// What the coordinator knows of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMetadata {
    /// The producer id assigned to the transactional id.
    pub producer_id: i64,
    /// The current epoch; a producer with an older one is fenced.
    pub producer_epoch: i16,
    /// How long a transaction may stay Ongoing before the coordinator aborts it.
    pub timeout_ms: i32,
    /// Where the current transaction stands.
    pub state: TxnState,
    /// Partitions in the current transaction (topic, partition); empty unless Ongoing/Prepare*.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction started (ms since epoch), -1 when none.
    pub start_ms: i64,
    /// When this metadata last changed (ms since epoch).
    pub last_update_ms: i64,
}

#[cfg(test)]
mod tests;
