//! The produce path of a replica: sequence checks, append, and acks parked until durable.

use bytes::Bytes;
use chronik::log::{BatchHeader, LogError};
use chronik::partition::replication::check_before_append;
use chronik::partition::{BatchIdentity, SequenceCheck};
use chronik::txn::{encode_marker, read_marker};
use kafka_protocol::ResponseError;
use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::oneshot;
use tracing::error;

use super::forward::PassedOn;
use super::read::txn_batch;
use super::{AppendOutcome, ParkedAck, PartitionError, ReplicaMsg, ReplicaState, TxnMarker, now_ms};
use crate::wal_flusher::WalFlusherMsg;

type AppendReply = RpcReplyPort<Result<AppendOutcome, PartitionError>>;

/// The identity the sequence rules look at.
pub(super) fn identity(h: &BatchHeader) -> BatchIdentity {
    BatchIdentity {
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        last_sequence: h.last_sequence(),
        record_count: h.record_count,
        last_offset_delta: h.last_offset_delta,
        max_timestamp: h.max_timestamp,
    }
}

impl ReplicaState {
    /// Appends one produce partition's batches. `forward`: refused as NOT_LEADER_OR_FOLLOWER just
    /// after a handover, it is passed on to the new leader instead (see `forward`).
    pub(super) fn append(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        batches: Vec<Bytes>,
        acks_all: bool,
        mut reply: Option<AppendReply>,
        forward: bool,
    ) -> Result<(), ActorProcessingErr> {
        if self.fail_next_append {
            panic!("fail point replica_panic tripped on {}", self.tp);
        }
        if let Err(e) = self.may_append(acks_all) {
            if forward && e.code == ResponseError::NotLeaderOrFollower.code() {
                match self.pass_on(PassedOn { batches, acks_all, reply }) {
                    Ok(()) => return Ok(()),
                    Err(refused) => reply = refused.reply,
                }
            }
            if let Some(reply) = reply {
                let _ = reply.send(Err(e));
            }
            return Ok(());
        }
        let result = match self.append_batches(batches) {
            Ok(result) => result,
            Err(e) => {
                error!(tp = %self.tp, error = %e, "append failed; restarting the replica");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(PartitionError::new(ResponseError::KafkaStorageError, e.to_string())));
                }
                return Err(e.into());
            }
        };
        if let Some(reply) = reply {
            match result {
                Ok((target, outcome)) => {
                    self.parked_acks.push_back(ParkedAck { target, acks_all, outcome: Ok(outcome), reply });
                    self.complete_acks();
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        self.log_end_grew();
        self.request_sync(myself);
        Ok(())
    }

    /// Only the leader takes produces; acks=all needs `min.insync.replicas` in sync first
    /// (NOT_ENOUGH_REPLICAS, nothing written).
    fn may_append(&self, acks_all: bool) -> Result<(), PartitionError> {
        let l = &self.leadership;
        if l.leader != self.ctx.config.node_id || self.followers.is_none() {
            let msg = format!("{} is led by node {}", self.tp, l.leader);
            return Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg));
        }
        self.check_handover()?;
        if acks_all && let Err(e) = check_before_append(l.isr.len(), l.min_insync) {
            return Err(PartitionError { code: e.code(), message: format!("{}: {e}", self.tp) });
        }
        Ok(())
    }

    /// Appends what the sequence rules allow. The inner error is the client's; the outer one
    /// is the disk's, fatal for this actor.
    #[allow(clippy::type_complexity)]
    fn append_batches(
        &mut self,
        batches: Vec<Bytes>,
    ) -> Result<Result<(i64, AppendOutcome), PartitionError>, LogError> {
        let mut base_offset = None;
        let now = now_ms();
        for batch in batches {
            let header = BatchHeader::parse(&batch)?;
            let id = identity(&header);
            // Only the broker's own transaction markers are control batches here (produced
            // ones are refused before): they carry no sequence.
            let check = if header.is_control() { SequenceCheck::Append } else { self.producers.check(&id) };
            match check {
                SequenceCheck::Append => {
                    let mut owned = batch.to_vec();
                    let info = self.log.append(&mut owned, self.leadership.leader_epoch, now)?;
                    // Recorded in the batch header, so no checkpoint write (see `append_replicated`).
                    self.epochs.assign(self.leadership.leader_epoch, info.base_offset);
                    // The log may have stamped the batch (LogAppendTime): its timestamp counts.
                    let appended =
                        BatchHeader { base_offset: info.base_offset, max_timestamp: info.max_timestamp, ..header };
                    self.record_batch(&appended, &owned);
                    base_offset.get_or_insert(info.base_offset);
                }
                SequenceCheck::Duplicate { base_offset: original } => {
                    base_offset.get_or_insert(original);
                }
                SequenceCheck::OutOfOrder { expected, got } => {
                    let msg = format!("producer {}: expected sequence {expected}, got {got}", id.producer_id);
                    return Ok(Err(PartitionError::new(ResponseError::OutOfOrderSequenceNumber, msg)));
                }
                SequenceCheck::StaleEpoch { current, got } => {
                    let msg = format!("producer {}: epoch {got} is older than {current}", id.producer_id);
                    return Ok(Err(PartitionError::new(ResponseError::InvalidProducerEpoch, msg)));
                }
            }
        }
        let outcome = AppendOutcome {
            base_offset: base_offset.unwrap_or(self.log.log_end_offset()),
            log_start_offset: self.log.log_start_offset(),
        };
        // A duplicate's original may itself still be waiting for its fsync: answer it no earlier
        // than everything appended so far.
        Ok(Ok((self.log.log_end_offset(), outcome)))
    }

    /// Records an appended batch (the leader's or a copied one) in the producer state and the
    /// transaction index.
    pub(super) fn record_batch(&mut self, header: &BatchHeader, batch: &[u8]) {
        if header.producer_id < 0 {
            return;
        }
        if header.is_control() {
            self.producers.record_marker(header.producer_id, header.producer_epoch, header.base_offset);
            // The transaction is over here: later transactional writes need a new registration.
            self.ctx.transactions.ended(&self.tp, header.producer_id, header.producer_epoch);
        } else {
            self.producers.record(&identity(header), header.base_offset);
        }
        if header.is_transactional() {
            let marker = match header.is_control() {
                true => match read_marker(batch) {
                    Some(marker) => Some(marker),
                    None => return,
                },
                false => None,
            };
            self.txns.record(&txn_batch(header, marker));
        }
    }

    /// From a transaction coordinator: appends the commit or abort marker of `producer_id`'s
    /// transaction, answered like an acks=all produce (once every in-sync replica has it). A
    /// marker of a producer epoch older than the producer's here, or of a coordinator older than
    /// the one that wrote the producer's last marker here, is a stale coordinator's.
    pub(super) fn write_marker(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        marker: TxnMarker,
        reply: AppendReply,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(newest) = self.txns.coordinator_epoch(marker.producer_id)
            && marker.coordinator_epoch < newest
        {
            let msg = format!(
                "producer {}: marker of coordinator epoch {} after one of epoch {newest}",
                marker.producer_id, marker.coordinator_epoch
            );
            let _ = reply.send(Err(PartitionError::new(ResponseError::TransactionCoordinatorFenced, msg)));
            return Ok(());
        }
        if let Some(current) = self.producers.epoch_of(marker.producer_id)
            && current > marker.producer_epoch
        {
            let msg = format!(
                "producer {}: marker epoch {} is older than {current}",
                marker.producer_id, marker.producer_epoch
            );
            let _ = reply.send(Err(PartitionError::new(ResponseError::InvalidProducerEpoch, msg)));
            return Ok(());
        }
        let batch =
            encode_marker(marker.producer_id, marker.producer_epoch, marker.commit, marker.coordinator_epoch, now_ms());
        self.append(myself, vec![batch], true, Some(reply), false)
    }

    /// Asks the WalFlusher to make the log durable up to its current end, unless a request is
    /// already out: appends arriving meanwhile ride on the next round (group commit).
    pub(super) fn request_sync(&mut self, myself: &ActorRef<ReplicaMsg>) {
        let upto = self.log.log_end_offset();
        if self.sync_in_flight || upto <= self.durable_end {
            return;
        }
        let Some(flusher) = self.ctx.flusher.get() else {
            self.retry_sync_later(myself);
            return;
        };
        let (tx, rx) = oneshot::channel();
        let msg = WalFlusherMsg::Sync { handle: self.log.sync_handle(), reply: tx.into() };
        if flusher.cast(msg).is_err() {
            self.retry_sync_later(myself);
            return;
        }
        self.sync_in_flight = true;
        let me = myself.clone();
        tokio::spawn(async move {
            let msg = match rx.await {
                Ok(Ok(())) => ReplicaMsg::Flushed { upto },
                Ok(Err(reason)) => ReplicaMsg::FlushFailed { reason },
                // The flusher restarted with our request: nothing was lost, ask again.
                Err(_) => ReplicaMsg::Flushed { upto: i64::MIN },
            };
            let _ = me.cast(msg);
        });
    }

    /// The flusher is being restarted; a `Flushed` that covers nothing re-triggers the request.
    fn retry_sync_later(&mut self, myself: &ActorRef<ReplicaMsg>) {
        self.sync_in_flight = true;
        myself.send_after(std::time::Duration::from_millis(10), || ReplicaMsg::Flushed { upto: i64::MIN });
    }

    /// Everything below `upto` is durable here: the high watermark may move, acks may go out,
    /// and a follower's fetcher reports it to the leader.
    pub(super) fn flushed(&mut self, myself: &ActorRef<ReplicaMsg>, upto: i64) {
        self.sync_in_flight = false;
        // After a truncation while the fsync ran, offsets below `upto` may have been rewritten
        // since it began: it proves nothing, and the next round covers them.
        let upto = if std::mem::take(&mut self.sync_stale) { i64::MIN } else { upto };
        if upto > self.durable_end {
            self.durable_end = upto;
            self.durable_tx.send_replace(upto);
            self.advance_high_watermark();
            self.maybe_hand_over(myself);
        }
        self.request_sync(myself);
    }
}
