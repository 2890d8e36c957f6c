//! The produce path of a replica: sequence checks, append, and acks parked until durable.

use bytes::Bytes;
use chronik::log::{BatchHeader, LogError};
use chronik::partition::{BatchIdentity, SequenceCheck};
use kafka_protocol::ResponseError;
use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::oneshot;
use tracing::error;

use super::{AppendOutcome, ParkedAck, PartitionError, ReplicaMsg, ReplicaState, now_ms};
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
    }
}

impl ReplicaState {
    pub(super) fn append(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        batches: Vec<Bytes>,
        reply: Option<AppendReply>,
    ) -> Result<(), ActorProcessingErr> {
        if self.fail_next_append {
            panic!("fail point replica_panic tripped on {}", self.tp);
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
                Ok((target, outcome)) if target > self.high_watermark => {
                    self.parked_acks.push_back(ParkedAck { target, outcome: Ok(outcome), reply });
                }
                other => {
                    let _ = reply.send(other.map(|(_, outcome)| outcome));
                }
            }
        }
        self.request_sync(myself);
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
            match self.producers.check(&id) {
                SequenceCheck::Append => {
                    let mut owned = batch.to_vec();
                    let info = self.log.append(&mut owned, self.leader_epoch, now)?;
                    self.producers.record(&id, info.base_offset);
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

    /// Asks the WalFlusher to make the log durable up to its current end, unless a request is
    /// already out: appends arriving meanwhile ride on the next round (group commit).
    pub(super) fn request_sync(&mut self, myself: &ActorRef<ReplicaMsg>) {
        let upto = self.log.log_end_offset();
        if self.sync_in_flight || upto <= self.high_watermark {
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

    /// Everything below `upto` is durable: advance the high watermark, answer what waited.
    pub(super) fn flushed(&mut self, myself: &ActorRef<ReplicaMsg>, upto: i64) {
        self.sync_in_flight = false;
        if upto > self.high_watermark {
            self.high_watermark = upto;
            while self.parked_acks.front().is_some_and(|a| a.target <= upto) {
                if let Some(ack) = self.parked_acks.pop_front() {
                    let _ = ack.reply.send(ack.outcome);
                }
            }
            let (ready, waiting) = std::mem::take(&mut self.parked_fetches).into_iter().partition(|(o, _)| *o < upto);
            self.parked_fetches = waiting;
            for (_, reply) in ready {
                let _ = reply.send(());
            }
        }
        self.request_sync(myself);
    }
}
