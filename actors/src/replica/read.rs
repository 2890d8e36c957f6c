//! The read side of a replica: fetch, list offsets, and rebuilding producer state on start.

use chronik::log::{BatchHeader, LogError, PartitionLog};
use chronik::partition::replication::LeaderEpochCache;
use chronik::partition::{ProducerStateTable, ProducerSummary, TxnBatch, TxnIndex};
use chronik::protocol::list_offsets_v0::legacy_offsets;
use chronik::txn::{Marker, read_marker};
use kafka_protocol::ResponseError;
use tracing::warn;

use super::append::identity;
use super::{PartitionError, ReadOutcome, ReplicaState};

/// ListOffsets sentinels.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// ListOffsets v8 (KIP-405): the first offset still in local storage. Without tiered storage
/// every segment is local, so it is the log start offset, as in Kafka without remote storage.
const EARLIEST_LOCAL: i64 = -4;
/// ListOffsets v9 (KIP-1005): the highest offset in tiered storage.
const LATEST_TIERED: i64 = -5;

impl ReplicaState {
    /// Forgets the aborted transactions whose abort marker the cleaner removed (it removes one
    /// only after every record of its transaction): a read_committed consumer told of such a
    /// transaction waits for its marker and, never meeting it, skips every later record of the
    /// producer.
    pub(super) fn forget_cleaned_markers(&mut self) {
        let log = &self.log;
        // A marker is a batch of its own: a read of just its offset finds it or nothing.
        let holds = |offset: i64| log.read(offset, offset + 1, 1, true).is_ok_and(|r| !r.records.is_empty());
        self.txns.retain_aborted(|a| holds(a.last_offset));
    }

    /// Clients read only from a leader that leads: a replica the metadata names leader but whose
    /// node is not registered yet has not even recovered its high watermark from the followers.
    pub(super) fn check_serving(&self) -> Result<(), PartitionError> {
        if self.followers.is_some() {
            return Ok(());
        }
        let msg = format!("{} is not led here ({})", self.tp, self.role());
        Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg))
    }

    /// A consumer's read: up to the high watermark, or for `read_committed` up to the last
    /// stable offset, with the aborted transactions the consumer must drop.
    pub(super) fn read(
        &self,
        offset: i64,
        committed: bool,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadOutcome, PartitionError> {
        self.check_serving()?;
        let last_stable_offset = self.txns.last_stable_offset(self.high_watermark);
        let end = if committed { last_stable_offset } else { self.high_watermark };
        match self.log.read(offset, end, max_bytes, min_one) {
            Ok(r) => Ok(ReadOutcome {
                aborted: if committed { self.txns.aborted_between(offset, end) } else { Vec::new() },
                records: r.records,
                high_watermark: self.high_watermark,
                log_start_offset: r.log_start_offset,
                log_end_offset: r.log_end_offset,
                last_stable_offset,
            }),
            Err(LogError::OffsetOutOfRange { offset, log_start, log_end }) => Err(PartitionError::new(
                ResponseError::OffsetOutOfRange,
                format!("offset {offset} is outside [{log_start}, {log_end}]"),
            )),
            Err(e) => Err(self.storage_error(e)),
        }
    }

    /// DescribeProducers: only the leader answers, as in Kafka (clients route it there).
    pub(super) fn describe_producers(&self) -> Result<Vec<ProducerSummary>, PartitionError> {
        self.check_serving()?;
        Ok(self.producers.summaries())
    }

    /// `(offset, timestamp)` for a ListOffsets target; `(-1, -1)` when no record qualifies.
    pub(super) fn list_offset(&self, timestamp: i64, committed: bool) -> Result<(i64, i64), PartitionError> {
        self.check_serving()?;
        match timestamp {
            LATEST => Ok((self.visible_end(committed), -1)),
            EARLIEST | EARLIEST_LOCAL => Ok((self.log.log_start_offset(), -1)),
            // Nothing is tiered: Kafka without remote storage answers -1 too.
            LATEST_TIERED => Ok((-1, -1)),
            MAX_TIMESTAMP => self.max_timestamp_offset(),
            ts => match self.log.offset_for_timestamp(ts) {
                Ok(Some((offset, ts))) if offset < self.high_watermark => Ok((offset, ts)),
                Ok(_) => Ok((-1, -1)),
                Err(e) => Err(self.storage_error(e)),
            },
        }
    }

    /// ListOffsets v0's answer (see [`ReplicaMsg::LegacyOffsets`](super::ReplicaMsg)).
    pub(super) fn legacy_offsets(&self, timestamp: i64, max_num_offsets: i32) -> Result<Vec<i64>, PartitionError> {
        self.check_serving()?;
        let segments = self.log.segment_times().map_err(|e| self.storage_error(e))?;
        let (start, end) = (self.log.log_start_offset(), self.log.log_end_offset());
        let now = super::now_ms();
        Ok(legacy_offsets(&segments, start, end, self.high_watermark, (timestamp, max_num_offsets, now)))
    }

    /// The batch holding the largest timestamp below the high watermark (ListOffsets v7's
    /// MAX_TIMESTAMP): its last offset, as Kafka reports for batches written with CreateTime.
    fn max_timestamp_offset(&self) -> Result<(i64, i64), PartitionError> {
        let mut best = (-1, -1);
        let hw = self.high_watermark;
        self.log
            .for_each_batch_header(|h| {
                if h.last_offset() < hw && h.max_timestamp > best.1 {
                    best = (h.last_offset(), h.max_timestamp);
                }
            })
            .map_err(|e| self.storage_error(e))?;
        Ok(best)
    }

    fn storage_error(&self, e: LogError) -> PartitionError {
        warn!(tp = %self.tp, error = %e, "storage error while reading");
        PartitionError::new(ResponseError::KafkaStorageError, e.to_string())
    }
}

/// Replays every batch header in the log: idempotent producers' sequences, so duplicates are
/// recognised after a restart (less the producers whose batches all lie below the log start,
/// which may sit inside the first segment), the leader epoch history, for truncation, and the
/// partition's transactions (open ones, aborted ones, hence the last stable offset).
pub(super) fn rebuild_from_headers(log: &PartitionLog) -> Result<Rebuilt, LogError> {
    let mut producers = ProducerStateTable::default();
    let mut epochs = LeaderEpochCache::new();
    let mut transactional = Vec::new();
    log.for_each_batch_header(|h| {
        epochs.assign(h.partition_leader_epoch, h.base_offset);
        if h.producer_id < 0 {
            return;
        }
        if h.is_control() {
            producers.record_marker(h.producer_id, h.producer_epoch, h.base_offset);
        } else {
            producers.record(&identity(h), h.base_offset);
        }
        if h.is_transactional() {
            transactional.push((txn_batch(h, None), h.is_control()));
        }
    })?;
    producers.remove_below(log.log_start_offset());
    // Markers are told apart by their one record, read once the header walk is done (a
    // control batch is a few dozen bytes, one per transaction and partition).
    let mut txns = TxnIndex::new();
    for (mut batch, control) in transactional {
        if control {
            let read = log.read(batch.base_offset, batch.base_offset + 1, 1, true)?;
            let Some(marker) = read_marker(&read.records) else {
                warn!(offset = batch.base_offset, "a control batch that is not a transaction marker; skipped");
                continue;
            };
            (batch.marker, batch.coordinator_epoch) = (Some(marker.commit), marker.coordinator_epoch);
        }
        txns.record(&batch);
    }
    txns.remove_below(log.log_start_offset());
    Ok(Rebuilt { producers, epochs, txns })
}

/// What replaying a log rebuilds.
pub(super) struct Rebuilt {
    /// The idempotent producers' state.
    pub producers: ProducerStateTable,
    /// The leader epoch history.
    pub epochs: LeaderEpochCache,
    /// The partition's transactions.
    pub txns: TxnIndex,
}

/// The transaction fields of a batch header; `marker` is what a control batch's marker says.
pub(super) fn txn_batch(h: &BatchHeader, marker: Option<Marker>) -> TxnBatch {
    TxnBatch {
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_offset: h.base_offset,
        last_offset: h.last_offset(),
        transactional: h.is_transactional(),
        marker: marker.map(|m| m.commit),
        coordinator_epoch: marker.map_or(-1, |m| m.coordinator_epoch),
    }
}
