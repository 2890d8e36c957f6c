//! The follower side of replication: a fetcher task streams batches from the leader over the wal
//! port and the replica appends them unchanged (same offsets, same bytes, same epochs).

use std::time::Duration;

use bytes::Bytes;
use chronik::log::{BatchHeader, split_batches};
use futures::{SinkExt, StreamExt};
use kafka_protocol::ResponseError;
use ractor::{ActorProcessingErr, ActorRef};
use tracing::{debug, info, warn};

use super::append::identity;
use super::{PartitionError, ReplicaMsg, ReplicaState, now_ms};
use crate::context::{NodeContext, TopicPartition};
use crate::directory::TaskGuard;
use crate::replication_service::proto::replication_client::ReplicationClient;
use crate::replication_service::proto::{EpochRequest, FetchRequest};
use chronik::partition::replication::{EpochEndOffset, Truncation, truncation_point};

/// Pause before reconnecting after the stream failed or the leader refused.
const RETRY: Duration = Duration::from_millis(200);
/// Longest wait for this replica's own actor.
const ASK: Duration = Duration::from_secs(30);

impl ReplicaState {
    /// Appends batches copied from the leader. A batch already here (a resent answer) is
    /// skipped; one that leaves a gap is refused, and the fetcher starts again from this log's
    /// end.
    pub(super) fn append_replicated(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        records: Bytes,
        leader_high_watermark: i64,
    ) -> Result<Result<i64, PartitionError>, ActorProcessingErr> {
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
            // A disk failure is this actor's to restart from; a gap is the leader's answer to
            // an older request and is simply fetched again.
            match self.log.append_replicated(&batch, now) {
                Ok(_) => {}
                Err(e @ chronik::log::LogError::NotContiguous { .. }) => {
                    return Ok(Err(PartitionError::new(ResponseError::OffsetOutOfRange, e.to_string())));
                }
                Err(e) => return Err(e.into()),
            }
            self.epochs.assign(header.partition_leader_epoch, header.base_offset);
            if header.producer_id >= 0 {
                // Idempotence survives a leader change: the sequence state travels with the log.
                self.producers.record(&identity(&header), header.base_offset);
            }
        }
        // A follower's high watermark is the leader's, as far as its own log reaches.
        self.high_watermark = self.high_watermark.max(leader_high_watermark.min(self.log.log_end_offset()));
        self.request_sync(myself);
        Ok(Ok(self.log.log_end_offset()))
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
            self.epochs.truncate_from_end(offset);
            let (producers, _) = super::read::rebuild_from_headers(&self.log)?;
            self.producers = producers;
            self.high_watermark = self.high_watermark.min(offset);
            self.durable_end = self.durable_end.min(offset);
        }
        Ok(Ok(truncation))
    }
}

/// Starts the fetcher for this follower, unless the leader is unknown (no node entry).
pub(super) fn start(
    state: &ReplicaState,
    myself: &ActorRef<ReplicaMsg>,
) -> Option<(TaskGuard, crate::directory::TaskRegistration)> {
    let l = &state.leadership;
    let leader = state.ctx.metadata().nodes.get(&l.leader).cloned()?;
    let fetch = Fetch {
        ctx: state.ctx.clone(),
        replica: myself.clone(),
        tp: state.tp.clone(),
        leader_id: l.leader,
        leader_wal: leader.wal,
        leader_epoch: l.leader_epoch,
    };
    info!(tp = %state.tp, leader = l.leader, epoch = l.leader_epoch, "following the partition leader");
    let name = format!("replication:{} <- node {}", state.tp, l.leader);
    let entry = state.ctx.directory.register_task(&myself.get_cell(), name, "ReplicationStream");
    Some((TaskGuard(tokio::spawn(fetch.run())), entry))
}

/// One follower's fetch loop.
struct Fetch {
    /// The node's shared context (channels, config).
    ctx: std::sync::Arc<NodeContext>,
    /// The replica the batches go to.
    replica: ActorRef<ReplicaMsg>,
    /// The partition.
    tp: TopicPartition,
    /// The leader's node id (for logs).
    leader_id: u64,
    /// The leader's replication address.
    leader_wal: String,
    /// The epoch being followed.
    leader_epoch: i32,
}

impl Fetch {
    /// Streams until the task is aborted (the role changed), reconnecting after failures.
    async fn run(self) {
        loop {
            if let Err(e) = self.stream().await {
                debug!(tp = %self.tp, leader = self.leader_id, error = %e, "replication stream ended; reconnecting");
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    fn request(&self, fetch_offset: i64) -> FetchRequest {
        let r = &self.ctx.config.replication;
        FetchRequest {
            topic: self.tp.topic.to_string(),
            partition: self.tp.partition,
            replica_id: self.ctx.config.node_id,
            leader_epoch: self.leader_epoch,
            fetch_offset,
            max_bytes: r.fetch_max_bytes,
            max_wait_ms: u32::try_from(r.fetch_max_wait_ms).unwrap_or(u32::MAX),
        }
    }

    /// Bulk copies of a replica outside the ISR share the node's copy rate, so moving a
    /// partition leaves producers their share of disk and network. A replica in the ISR, or
    /// one that has reached the leader's high watermark, is never held back: it must keep up
    /// with new writes.
    async fn pace(&self, copied: usize, log_end: i64, leader_high_watermark: i64) {
        if log_end >= leader_high_watermark {
            return;
        }
        let me = self.ctx.config.node_id;
        let metadata = self.ctx.metadata();
        if metadata.partition(&self.tp.topic, self.tp.partition).is_none_or(|p| p.isr.contains(&me)) {
            return;
        }
        let wait = self.ctx.copy_throttle.charge(copied, std::time::Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Asks the leader where its log ends for this log's latest epoch and truncates to it, until
    /// the two logs agree (KIP-101/279: usually one round).
    async fn truncate_to_leader(
        &self,
        client: &mut ReplicationClient<tonic::transport::Channel>,
    ) -> Result<(), String> {
        const ROUNDS: usize = 16;
        for _ in 0..ROUNDS {
            let epoch = match self.replica.call(ReplicaMsg::LatestEpoch, Some(ASK)).await {
                Ok(ractor::rpc::CallResult::Success(epoch)) => epoch,
                _ => return Err("the replica did not answer".into()),
            };
            if epoch < 0 {
                return Ok(());
            }
            let request = EpochRequest {
                topic: self.tp.topic.to_string(),
                partition: self.tp.partition,
                current_leader_epoch: self.leader_epoch,
                epoch,
            };
            let answer = client.epoch_end_offset(request).await.map_err(|s| s.message().to_string())?.into_inner();
            if answer.error_code != 0 {
                return Err(answer.error_message);
            }
            let answer = EpochEndOffset::from_wire(answer.epoch, answer.end_offset);
            let msg = |reply| ReplicaMsg::TruncateToLeader { answer, reply };
            match self.replica.call(msg, Some(ASK)).await {
                Ok(ractor::rpc::CallResult::Success(Ok(Truncation::Complete { .. }))) => return Ok(()),
                Ok(ractor::rpc::CallResult::Success(Ok(Truncation::Partial { .. }))) => {}
                Ok(ractor::rpc::CallResult::Success(Err(e))) => return Err(e.message),
                _ => return Err("the replica did not answer".into()),
            }
        }
        Err(format!("the log did not converge with the leader's in {ROUNDS} rounds"))
    }

    /// One stream: agree with the leader's log, then request from this log's end, append each
    /// answer, request again.
    async fn stream(&self) -> Result<(), String> {
        let channel = self.ctx.peers.channel(&self.leader_wal)?;
        let mut client = ReplicationClient::new(channel).max_decoding_message_size(usize::MAX >> 1);
        self.truncate_to_leader(&mut client).await?;
        let log_end = match self.replica.call(ReplicaMsg::Info, Some(ASK)).await {
            Ok(ractor::rpc::CallResult::Success(info)) => info.log_end_offset,
            _ => return Err("the replica did not answer".into()),
        };
        let (mut requests, rx) = futures::channel::mpsc::channel(1);
        requests.send(self.request(log_end)).await.map_err(|e| e.to_string())?;
        let mut responses = client.follow(rx).await.map_err(|s| s.message().to_string())?.into_inner();
        while let Some(response) = responses.next().await {
            let response = response.map_err(|s| s.message().to_string())?;
            if response.error_code != 0 {
                warn!(tp = %self.tp, leader = self.leader_id, code = response.error_code, error = %response.error_message,
                    "the leader refused a fetch");
                return Err(response.error_message);
            }
            let copied = response.records.len();
            let msg = |reply| ReplicaMsg::AppendReplicated {
                records: response.records,
                leader_high_watermark: response.high_watermark,
                reply,
            };
            let next = match self.replica.call(msg, Some(ASK)).await {
                Ok(ractor::rpc::CallResult::Success(Ok(end))) => end,
                Ok(ractor::rpc::CallResult::Success(Err(e))) => return Err(e.message),
                _ => return Err("the replica did not answer".into()),
            };
            self.pace(copied, next, response.high_watermark).await;
            requests.send(self.request(next)).await.map_err(|e| e.to_string())?;
        }
        Err("the leader closed the stream".into())
    }
}
