//! The follower side of replication, in the replica: appending the batches its fetcher
//! (`fetcher.rs`) copies from the leader unchanged (same offsets, same bytes, same epochs), and
//! cutting the log where it diverges from the leader's.

use bytes::Bytes;
use chronik::log::{BatchHeader, split_batches};
use kafka_protocol::ResponseError;
use ractor::{ActorProcessingErr, ActorRef};
use tracing::{info, warn};

use super::{PartitionError, ReplicaMsg, ReplicaState, now_ms};
use chronik::partition::replication::{EpochEndOffset, LeaderEpochCache, Truncation, truncation_point};

/// The leader's bounds, as one fetch answer reports them.
#[derive(Debug, Clone, Copy)]
pub(super) struct LeaderBounds {
    /// Its high watermark.
    pub high_watermark: i64,
    /// Its log start offset.
    pub log_start: i64,
    /// Its log end offset.
    pub log_end: i64,
}

impl ReplicaState {
    /// Appends batches copied from the leader. A batch already here (a resent answer) is
    /// skipped; one that leaves a gap is refused, and the fetcher starts again from this log's
    /// end. Then follows the leader's high watermark and log start as far as this log reaches.
    pub(super) fn append_replicated(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        records: Bytes,
        leader: LeaderBounds,
    ) -> Result<Result<(i64, i64), PartitionError>, ActorProcessingErr> {
        if self.followers.is_some() {
            let msg = format!("{} is led here", self.tp);
            return Ok(Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg)));
        }
        let batches = match split_batches(&records) {
            Ok(batches) => batches,
            Err(e) => return Ok(Err(PartitionError::new(ResponseError::CorruptMessage, e.to_string()))),
        };
        let now = now_ms();
        for batch in batches {
            let header = match BatchHeader::parse(&batch) {
                Ok(h) => h,
                Err(e) => return Ok(Err(PartitionError::new(ResponseError::CorruptMessage, e.to_string()))),
            };
            if header.next_offset() <= self.log.log_end_offset() {
                continue;
            }
            self.take_batch_across_log_start(&header)?;
            // A disk failure is this actor's to restart from; a gap is the leader's answer to
            // an older request and is simply fetched again.
            match self.log.append_replicated(&batch, now) {
                Ok(_) => {}
                Err(e @ chronik::log::LogError::NotContiguous { .. }) => {
                    return Ok(Err(PartitionError::new(ResponseError::OffsetOutOfRange, e.to_string())));
                }
                Err(e) => return Err(e.into()),
            }
            // No checkpoint write: the batch header records this epoch, and a restart rebuilds
            // the history from the headers (`checkpoint::recover`).
            self.epochs.assign(header.partition_leader_epoch, header.base_offset);
            // Idempotence and transactions survive a leader change: their state travels with
            // the log.
            self.record_batch(&header, &batch);
        }
        // A follower's high watermark is the leader's, as far as its own log reaches.
        self.high_watermark = self.high_watermark.max(leader.high_watermark.min(self.log.log_end_offset()));
        self.follow_leader_log_start(leader.log_start)?;
        self.leader_log_end = Some(leader.log_end);
        self.request_sync(myself);
        Ok(Ok((self.log.log_end_offset(), self.log.log_start_offset())))
    }

    /// An empty log whose end lies inside the batch the leader sent (the leader's log start,
    /// moved by DeleteRecords, is inside it) takes the whole batch: it restarts at the batch's
    /// base, as Kafka's follower does, and the leader's log start is followed right after.
    fn take_batch_across_log_start(&mut self, header: &BatchHeader) -> Result<(), ActorProcessingErr> {
        let (start, end) = (self.log.log_start_offset(), self.log.log_end_offset());
        if start == end && header.base_offset < end {
            info!(tp = %self.tp, log_start = start, batch_base = header.base_offset,
                "the leader's first batch starts below this empty log's start; restarting the log at it");
            self.log.reset_to(header.base_offset)?;
            self.after_truncation(header.base_offset)?;
        }
        Ok(())
    }
}

impl ReplicaState {
    /// On the leader: where its log ends for `epoch` (KIP-101).
    pub(super) fn epoch_end_offset(&self, epoch: i32) -> Result<Option<EpochEndOffset>, PartitionError> {
        if self.followers.is_none() {
            let msg = format!("{} is led by node {}", self.tp, self.leadership.leader);
            return Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg));
        }
        Ok(self.epochs.end_offset_for(epoch, self.log.log_end_offset()))
    }

    /// On a follower: cuts the records the leader does not have (an old leader's unreplicated
    /// tail), so the next fetch continues a log identical to the leader's.
    pub(super) fn truncate_to_leader(
        &mut self,
        answer: Option<EpochEndOffset>,
    ) -> Result<Result<Truncation, PartitionError>, ActorProcessingErr> {
        if self.followers.is_some() {
            let msg = format!("{} is led here", self.tp);
            return Ok(Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg)));
        }
        let end = self.log.log_end_offset();
        let truncation = truncation_point(&self.epochs, end, self.high_watermark, answer);
        let offset = truncation.offset().max(self.log.log_start_offset());
        if offset < end {
            warn!(tp = %self.tp, from = end, to = offset, ?answer, "truncating to the leader's log");
            self.log.truncate_to(offset)?;
            self.after_truncation(offset)?;
        }
        Ok(Ok(truncation))
    }

    /// On a follower: the leader refused a fetch as out of range although the epochs agreed (or
    /// could not be compared). A log running past the leader's end is cut to it; one ending below
    /// the leader's log start is emptied and restarted there, as Kafka's follower does. Either
    /// way the follower never asks for the same refused range again.
    pub(super) fn out_of_range(
        &mut self,
        leader_log_start: i64,
        leader_log_end: i64,
    ) -> Result<Result<i64, PartitionError>, ActorProcessingErr> {
        if self.followers.is_some() {
            let msg = format!("{} is led here", self.tp);
            return Ok(Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg)));
        }
        let (start, end) = (self.log.log_start_offset(), self.log.log_end_offset());
        let (hw, tp) = (self.high_watermark, &self.tp);
        if end > leader_log_end && leader_log_end >= start {
            warn!(%tp, log_end = end, leader_log_end, high_watermark = hw, "the log runs past the leader's; truncating");
            self.log.truncate_to(leader_log_end)?;
            self.after_truncation(leader_log_end)?;
        } else if end > leader_log_end || end < leader_log_start {
            warn!(%tp, log_start = start, log_end = end, leader_log_start, leader_log_end, high_watermark = hw,
                "the log lies outside the leader's; starting over at the leader's log start");
            self.log.reset_to(leader_log_start)?;
            self.epochs = LeaderEpochCache::new();
            self.after_truncation(leader_log_start)?;
            self.high_watermark = self.high_watermark.max(leader_log_start);
        }
        Ok(Ok(self.log.log_end_offset()))
    }

    /// Brings the state derived from the log in line after it was cut to end at `offset`.
    fn after_truncation(&mut self, offset: i64) -> Result<(), ActorProcessingErr> {
        self.epochs.truncate_from_end(offset);
        self.checkpoint_epochs()?;
        let rebuilt = super::read::rebuild_from_headers(&self.log)?;
        self.producers = rebuilt.producers;
        self.txns = rebuilt.txns;
        self.high_watermark = self.high_watermark.min(offset);
        self.durable_end = self.durable_end.min(offset);
        self.durable_tx.send_replace(self.durable_end);
        self.sync_stale = self.sync_in_flight;
        Ok(())
    }
}
