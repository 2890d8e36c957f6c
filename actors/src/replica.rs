//! `ReplicaActor`: one per hosted partition. It owns the partition's log and idempotent-producer
//! state, appends produce batches, serves reads, and answers acks once the WalFlusher reports
//! the data durable. The high watermark is the durable log end: consumers never read a record
//! that a crash could take back.

mod append;
mod follower;
mod leader;
mod read;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik::config::NodeId;
use chronik::log::{LogConfig, PartitionLog};
use chronik::partition::ProducerStateTable;
use chronik::partition::replication::{EpochEndOffset, IsrTracker, LeaderEpochCache, Truncation};
use kafka_protocol::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tracing::{info, warn};

use crate::context::{NodeContext, TopicPartition};
use crate::directory::{MailboxGauge, Registration, TaskGuard};

/// A per-partition Kafka error: the code sent to the client and a message for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    /// Kafka error code.
    pub code: i16,
    /// Human-readable detail.
    pub message: String,
}

impl PartitionError {
    /// Builds an error from a Kafka error kind.
    pub fn new(kind: ResponseError, message: impl Into<String>) -> Self {
        Self { code: kind.code(), message: message.into() }
    }
}

/// A successful produce to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset given to the first record of the request's first batch.
    pub base_offset: i64,
    /// The partition's log start offset when answered.
    pub log_start_offset: i64,
}

/// Records read from a partition.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    /// Whole batches, straight from the segment files.
    pub records: Bytes,
    /// The high watermark when read.
    pub high_watermark: i64,
    /// The log start offset when read.
    pub log_start_offset: i64,
}

/// What `/admin/partitions` shows about a replica.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaInfo {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Next offset to be assigned.
    pub log_end_offset: i64,
    /// Offsets below it are durable and readable.
    pub high_watermark: i64,
    /// Segment files.
    pub segments: usize,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Idempotent producers tracked.
    pub producers: usize,
    /// `leader` or `follower`.
    pub role: &'static str,
    /// The leader epoch this replica acts under.
    pub leader_epoch: i32,
    /// On the leader: each follower's progress as its fetches report it.
    pub followers: Vec<FollowerInfo>,
}

/// A follower's progress as its leader sees it.
#[derive(Debug, Clone, Serialize)]
pub struct FollowerInfo {
    /// The follower's node id.
    pub id: NodeId,
    /// Its log end offset (its last fetch offset), if it fetched in this leadership.
    pub log_end_offset: Option<i64>,
    /// When it was last caught up with the leader's log end (ms since the epoch).
    pub last_caught_up_ms: Option<i64>,
    /// Whether the ISR lists it.
    pub in_sync: bool,
}

/// Who leads a partition and who is in sync, as the metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// The leader's node id.
    pub leader: NodeId,
    /// The leader's epoch, stamped into the batches it appends.
    pub leader_epoch: i32,
    /// The in-sync replicas (leader included).
    pub isr: Vec<NodeId>,
    /// Every replica, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// Smallest ISR for an acks=all produce (the topic's `min.insync.replicas`).
    pub min_insync: i16,
}

/// The replica's mailbox.
pub enum ReplicaMsg {
    /// From a connection: append the batches of one produce partition (already split and
    /// CRC-checked). Replies once the data is durable here (acks=1) or on every in-sync replica
    /// (acks=all), or with a Kafka error; `reply` is `None` for acks=0.
    Append {
        /// The batches, in order.
        batches: Vec<Bytes>,
        /// acks=all: wait for the high watermark, and refuse when the ISR is too small.
        acks_all: bool,
        /// Where the outcome goes.
        reply: Option<RpcReplyPort<Result<AppendOutcome, PartitionError>>>,
    },
    /// From a connection: read from `offset`, up to the high watermark.
    Read {
        /// First offset wanted.
        offset: i64,
        /// Byte budget for this partition.
        max_bytes: usize,
        /// Return at least one whole batch even if it exceeds `max_bytes`.
        min_one: bool,
        /// Where the records go.
        reply: RpcReplyPort<Result<ReadOutcome, PartitionError>>,
    },
    /// From a long-polling fetch: answer once the high watermark passes `offset`.
    WaitForData {
        /// The fetch offset.
        offset: i64,
        /// Fired when data is there.
        reply: RpcReplyPort<()>,
    },
    /// From a connection: ListOffsets for one partition (-1 latest, -2 earliest, else a
    /// timestamp). Replies `(offset, timestamp)`.
    ListOffset {
        /// Target timestamp or sentinel.
        timestamp: i64,
        /// Where the answer goes.
        reply: RpcReplyPort<Result<(i64, i64), PartitionError>>,
    },
    /// From the WalFlusher (via the sync task): everything below `upto` is on disk.
    Flushed {
        /// Log end offset covered by the fsync.
        upto: i64,
    },
    /// From the sync task: the fsync failed or the flusher went away; nothing was made durable.
    FlushFailed {
        /// Why.
        reason: String,
    },
    /// From the replication service, on the leader: a follower fetches from `fetch_offset`,
    /// which is also its log end offset. Replies with batches up to the log end (possibly none).
    ReplicaFetch {
        /// The follower.
        replica_id: NodeId,
        /// The leader epoch the follower follows.
        leader_epoch: i32,
        /// First offset wanted; everything below is in the follower's log.
        fetch_offset: i64,
        /// Byte budget.
        max_bytes: usize,
        /// Where the batches go.
        reply: RpcReplyPort<Result<ReadOutcome, PartitionError>>,
    },
    /// From the replication service: answer once the log end passes `offset` (a follower's
    /// long poll).
    WaitForLogEnd {
        /// The follower's fetch offset.
        offset: i64,
        /// Fired when there is more.
        reply: RpcReplyPort<()>,
    },
    /// From this follower's fetcher: batches copied from the leader, to append unchanged.
    /// Replies with the new log end offset.
    AppendReplicated {
        /// Whole batches starting at this replica's log end offset.
        records: Bytes,
        /// The leader's high watermark with them.
        leader_high_watermark: i64,
        /// The new log end offset, or why the batches were refused.
        reply: RpcReplyPort<Result<i64, PartitionError>>,
    },
    /// From the replication service (a follower's question) or OffsetForLeaderEpoch: where this
    /// leader's log ends for `epoch` — the largest known epoch ≤ it and the start of the next.
    EpochEndOffset {
        /// The epoch asked about.
        epoch: i32,
        /// `None` when this replica knows no epoch ≤ the asked one (or is not the leader).
        reply: RpcReplyPort<Result<Option<EpochEndOffset>, PartitionError>>,
    },
    /// From this follower's fetcher, before fetching under a leader: truncate what the leader's
    /// answer shows this log has and the leader does not. Replies where the log now ends, and
    /// whether another round of asking is needed.
    TruncateToLeader {
        /// The leader's answer for this log's latest epoch.
        answer: Option<EpochEndOffset>,
        /// The outcome.
        reply: RpcReplyPort<Result<Truncation, PartitionError>>,
    },
    /// From this follower's fetcher: the latest epoch in this log (-1 when empty).
    LatestEpoch(RpcReplyPort<i32>),
    /// From the ReplicaSupervisor: the partition's leader, epoch or ISR changed.
    SetLeadership(Leadership),
    /// From the ISR proposal task: the proposal finished (applied or refused).
    IsrProposalDone,
    /// Timer on the leader: drop followers that stopped fetching from the ISR.
    CheckIsr,
    /// From the admin API: report state.
    Info(RpcReplyPort<ReplicaInfo>),
    /// From the admin API (test builds of the config only): panic on the next append.
    ArmFailPoint,
    /// Timer: delete segments past retention.
    EnforceRetention,
    /// From the ReplicaSupervisor: the topic's configs changed (segment and retention limits).
    UpdateConfig(LogConfig),
}

/// Everything a replica needs to start, or to be restarted the same way.
#[derive(Debug, Clone)]
pub struct ReplicaArgs {
    /// The partition.
    pub tp: TopicPartition,
    /// Its directory under `<data-dir>/topics/`.
    pub dir: PathBuf,
    /// Segment and retention settings (broker defaults + topic overrides).
    pub log_config: LogConfig,
    /// Who leads the partition, as the metadata says.
    pub leadership: Leadership,
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Gauge created by the supervisor so senders can count before `pre_start` ends.
    pub gauge: MailboxGauge,
    /// How many times this partition's actor has been restarted.
    pub restarts: u32,
}

/// A produce waiting for its data to become durable (acks=1) or committed (acks=all).
struct ParkedAck {
    /// Answer once the durable log end (acks=1) or the high watermark (acks=all) reaches this.
    target: i64,
    /// Whether it waits for the high watermark.
    acks_all: bool,
    /// The answer.
    outcome: Result<AppendOutcome, PartitionError>,
    /// Where it goes.
    reply: RpcReplyPort<Result<AppendOutcome, PartitionError>>,
}

/// The replica's state.
pub struct ReplicaState {
    /// The partition.
    tp: TopicPartition,
    /// The on-disk log.
    log: PartitionLog,
    /// Idempotent producers' recent batches, rebuilt from the log on start.
    producers: ProducerStateTable,
    /// Which leader epoch wrote which offsets, rebuilt from the batch headers on start.
    epochs: LeaderEpochCache,
    /// Offsets below it are on every in-sync replica and durable here; consumers see only
    /// these.
    high_watermark: i64,
    /// Durable log end: the first offset not yet known to be on disk here.
    durable_end: i64,
    /// Who leads, in which epoch, with which ISR.
    leadership: Leadership,
    /// On the leader: each follower's progress, and the high watermark over the ISR.
    followers: Option<IsrTracker>,
    /// An ISR change is being proposed; no second one until it is done.
    isr_pending: bool,
    /// On a follower: the task fetching from the leader, and its `/admin/actors` entry.
    fetcher: Option<(TaskGuard, crate::directory::TaskRegistration)>,
    /// Produces waiting for durability, in offset order.
    parked_acks: VecDeque<ParkedAck>,
    /// Long-poll fetches waiting for the high watermark to pass their offset.
    parked_fetches: Vec<(i64, RpcReplyPort<()>)>,
    /// Follower fetches waiting for the log end to pass their offset.
    parked_log_end: Vec<(i64, RpcReplyPort<()>)>,
    /// A sync request is with the flusher; more appends just wait for the next round.
    sync_in_flight: bool,
    /// Test fail point: panic on the next append.
    fail_next_append: bool,
    /// Shared node context (flusher, config).
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct ReplicaActor;

impl Actor for ReplicaActor {
    type Msg = ReplicaMsg;
    type State = ReplicaState;
    type Arguments = ReplicaArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ReplicaMsg>,
        args: ReplicaArgs,
    ) -> Result<ReplicaState, ActorProcessingErr> {
        let name = format!("replica:{}", args.tp);
        let registration =
            args.ctx.directory.register(&myself.get_cell(), name, "ReplicaActor", args.restarts, args.gauge.clone());
        let now = now_ms();
        let (mut log, report) = PartitionLog::open(&args.dir, args.log_config.clone(), now)?;
        // Whatever recovery kept may still be only in the page cache (a restart after a panic):
        // make it durable before anything derived from it is acknowledged.
        log.flush()?;
        let (producers, epochs) = read::rebuild_from_headers(&log)?;
        info!(tp = %args.tp, log_start = report.log_start_offset, log_end = report.log_end_offset,
            truncated_bytes = report.truncated_bytes, producers = producers.len(), restarts = args.restarts,
            "replica started");
        let interval = Duration::from_millis(args.ctx.config.storage.retention_check_interval_ms);
        myself.send_interval(interval, || ReplicaMsg::EnforceRetention);
        let check = Duration::from_millis((args.ctx.config.replication.replica_lag_max_ms / 4).max(100));
        myself.send_interval(check, || ReplicaMsg::CheckIsr);
        let end = log.log_end_offset();
        let mut state = ReplicaState {
            high_watermark: end,
            durable_end: end,
            tp: args.tp,
            log,
            producers,
            epochs,
            leadership: args.leadership.clone(),
            followers: None,
            isr_pending: false,
            fetcher: None,
            parked_acks: VecDeque::new(),
            parked_fetches: Vec::new(),
            parked_log_end: Vec::new(),
            sync_in_flight: false,
            fail_next_append: false,
            ctx: args.ctx,
            registration,
        };
        state.take_role(&myself);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<ReplicaMsg>,
        msg: ReplicaMsg,
        state: &mut ReplicaState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            ReplicaMsg::Append { batches, acks_all, reply } => state.append(&myself, batches, acks_all, reply)?,
            ReplicaMsg::ReplicaFetch { replica_id, leader_epoch, fetch_offset, max_bytes, reply } => {
                let _ = reply.send(state.replica_fetch(&myself, replica_id, leader_epoch, fetch_offset, max_bytes));
            }
            ReplicaMsg::WaitForLogEnd { offset, reply } => state.park_log_end(offset, reply),
            ReplicaMsg::AppendReplicated { records, leader_high_watermark, reply } => {
                let result = state.append_replicated(&myself, records, leader_high_watermark)?;
                let _ = reply.send(result);
            }
            ReplicaMsg::SetLeadership(leadership) => state.set_leadership(&myself, leadership),
            ReplicaMsg::EpochEndOffset { epoch, reply } => {
                let _ = reply.send(state.epoch_end_offset(epoch));
            }
            ReplicaMsg::TruncateToLeader { answer, reply } => {
                let _ = reply.send(state.truncate_to_leader(answer)?);
            }
            ReplicaMsg::LatestEpoch(reply) => {
                let _ = reply.send(state.epochs.latest_epoch().unwrap_or(-1));
            }
            ReplicaMsg::IsrProposalDone => state.isr_pending = false,
            ReplicaMsg::CheckIsr => state.check_isr(&myself),
            ReplicaMsg::Read { offset, max_bytes, min_one, reply } => {
                let _ = reply.send(state.read(offset, max_bytes, min_one));
            }
            ReplicaMsg::WaitForData { offset, reply } => state.park_fetch(offset, reply),
            ReplicaMsg::ListOffset { timestamp, reply } => {
                let _ = reply.send(state.list_offset(timestamp));
            }
            ReplicaMsg::Flushed { upto } => state.flushed(&myself, upto),
            ReplicaMsg::FlushFailed { reason } => {
                // Acks must not go out for data that may not be on disk; restarting recovers the
                // log from what the disk really holds, and clients retry the dropped requests.
                return Err(format!("{}: fsync failed: {reason}", state.tp).into());
            }
            ReplicaMsg::Info(reply) => {
                let _ = reply.send(state.info());
            }
            ReplicaMsg::ArmFailPoint => {
                warn!(tp = %state.tp, "fail point armed: the next append panics");
                state.fail_next_append = true;
            }
            ReplicaMsg::UpdateConfig(config) => {
                info!(tp = %state.tp, ?config, "log config updated");
                state.log.set_config(config)?;
            }
            ReplicaMsg::EnforceRetention => {
                let deleted = state.log.enforce_retention(now_ms())?;
                if !deleted.is_empty() {
                    info!(tp = %state.tp, segments = ?deleted, log_start = state.log.log_start_offset(), "retention deleted segments");
                }
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<ReplicaMsg>, state: &mut ReplicaState) -> Result<(), ActorProcessingErr> {
        state.log.flush()?;
        Ok(())
    }
}

impl ReplicaState {
    fn park_fetch(&mut self, offset: i64, reply: RpcReplyPort<()>) {
        if self.high_watermark > offset {
            let _ = reply.send(());
            return;
        }
        // Fetches that timed out leave closed ports behind; drop them so an idle partition's
        // list stays as long as the number of waiting consumers.
        self.parked_fetches.retain(|(_, r)| !r.is_closed());
        self.parked_fetches.push((offset, reply));
    }

    fn info(&self) -> ReplicaInfo {
        ReplicaInfo {
            topic: self.tp.topic.to_string(),
            partition: self.tp.partition,
            log_start_offset: self.log.log_start_offset(),
            log_end_offset: self.log.log_end_offset(),
            high_watermark: self.high_watermark,
            segments: self.log.segment_count(),
            size_bytes: self.log.size_bytes(),
            producers: self.producers.len(),
            role: if self.followers.is_some() { "leader" } else { "follower" },
            leader_epoch: self.leadership.leader_epoch,
            followers: self.follower_infos(),
        }
    }
}

/// Milliseconds since the Unix epoch (Kafka's timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
