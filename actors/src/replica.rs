//! `ReplicaActor`: one per hosted partition. It owns the partition's log and idempotent-producer
//! state, appends produce batches, serves reads, and answers acks once the WalFlusher reports
//! the data durable. The high watermark is the smallest durable log end over the in-sync
//! replicas: consumers never read a record that a crash, even of every node at once, could take
//! back. It is checkpointed in the node's [`HighWatermarkBook`], the leader-epoch history beside
//! the log.

mod append;
mod checkpoint;
mod delete_records;
pub mod digest;
mod fetcher;
mod follow_link;
mod follower;
mod forward;
mod handover;
mod leader;
mod messages;
mod read;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chronik::log::{LogConfig, PartitionLog};
use chronik::partition::checkpoints::PartitionKey;
use chronik::partition::replication::{IsrTracker, LeaderEpochCache};
use chronik::partition::{ProducerStateTable, TxnIndex};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{info, warn};

use crate::context::{NodeContext, TopicPartition};
use crate::directory::{MailboxGauge, Registration, TaskGuard};

pub use checkpoint::HighWatermarkBook;
pub use follow_link::FollowLinks;
pub(crate) use forward::append_passed_on;
pub use messages::{
    AppendOutcome, FollowerFetch, FollowerInfo, Leadership, PartitionError, ReadOutcome, ReplicaInfo, ReplicaMsg,
    TxnMarker,
};

/// Everything a replica needs to start, or to be restarted the same way.
#[derive(Debug, Clone)]
pub struct ReplicaArgs {
    /// The partition.
    pub tp: TopicPartition,
    /// Its topic's id (what the node's high watermark checkpoint is keyed by).
    pub topic_id: uuid::Uuid,
    /// The node's high watermarks, where this replica starts from and reports to.
    pub hw_book: Arc<HighWatermarkBook>,
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

/// A long-poll fetch waiting for data.
struct ParkedFetch {
    /// It wants offsets from here on.
    offset: i64,
    /// It reads committed transactions only (waits for the last stable offset).
    committed: bool,
    /// Fired when there is data.
    reply: RpcReplyPort<()>,
}

/// The replica's state.
pub struct ReplicaState {
    /// The partition.
    tp: TopicPartition,
    /// The on-disk log.
    log: PartitionLog,
    /// Idempotent producers' recent batches, rebuilt from the log on start.
    producers: ProducerStateTable,
    /// Open and aborted transactions, rebuilt from the log on start: the last stable offset.
    txns: TxnIndex,
    /// Which leader epoch wrote which offsets, rebuilt from the batch headers on start.
    epochs: LeaderEpochCache,
    /// Offsets below it are on every in-sync replica and durable here; consumers see only
    /// these.
    high_watermark: i64,
    /// Durable log end: the first offset not yet known to be on disk here.
    durable_end: i64,
    /// The durable log end as the follower's fetcher sees it, to report to the leader.
    durable_tx: tokio::sync::watch::Sender<i64>,
    /// This partition in the node's high watermark book.
    hw_key: PartitionKey,
    /// The node's high watermarks, reported to on a timer and at stop.
    hw_book: Arc<HighWatermarkBook>,
    /// Who leads, in which epoch, with which ISR.
    leadership: Leadership,
    /// After a restart as the leader: the epoch it led in. It leads again only in a later one
    /// (`BumpLeaderEpoch`), since a failure may have cost it records its followers copied.
    fenced_epoch: Option<i32>,
    /// On the leader: each follower's progress, and the high watermark over the ISR.
    followers: Option<IsrTracker>,
    /// An ISR change is being proposed; no second one until it is done.
    isr_pending: bool,
    /// On the leader: a graceful handover under way (writes are refused meanwhile).
    handover: Option<handover::HandoverState>,
    /// The leader epoch whose handover ran out of time or was refused: not tried again in it.
    handover_expired: Option<i32>,
    /// Just after handing the leadership over: passes produces on to the new leader.
    forwarder: Option<forward::Forwarder>,
    /// On the leader: DeleteRecords requests waiting for the followers' log starts.
    pending_deletes: Vec<delete_records::PendingDelete>,
    /// On a follower: the leader's log end offset as its last fetch answer said (for the lag
    /// DescribeLogDirs reports); `None` until one arrived under the current leadership.
    leader_log_end: Option<i64>,
    /// On a follower: the task fetching from the leader, and its `/admin/actors` entry.
    fetcher: Option<(TaskGuard, crate::directory::TaskRegistration)>,
    /// Produces waiting for durability, in offset order.
    parked_acks: VecDeque<ParkedAck>,
    /// Long-poll fetches waiting for the high watermark (or last stable offset) to pass their
    /// offset.
    parked_fetches: Vec<ParkedFetch>,
    /// Follower fetches waiting for the log end to pass their offset.
    parked_log_end: Vec<(i64, RpcReplyPort<()>)>,
    /// A sync request is with the flusher; more appends just wait for the next round.
    sync_in_flight: bool,
    /// The log was truncated while a sync was in flight: its answer covers nothing.
    sync_stale: bool,
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
        let (log, report, rebuilt) = crate::blocking::disk(|| -> Result<_, ActorProcessingErr> {
            let (mut log, report) = PartitionLog::open(&args.dir, args.log_config.clone(), now)?;
            // Whatever recovery kept may still be only in the page cache (a restart after a
            // panic): make it durable before anything derived from it is acknowledged.
            log.flush()?;
            let rebuilt = read::rebuild_from_headers(&log)?;
            Ok((log, report, rebuilt))
        })?;
        let read::Rebuilt { producers, mut epochs, txns } = rebuilt;
        let hw_key = (args.topic_id, args.tp.partition);
        let high_watermark = checkpoint::recover(&args.tp, &log, &mut epochs, args.hw_book.get(&hw_key));
        args.hw_book.report(hw_key, high_watermark);
        info!(tp = %args.tp, log_start = report.log_start_offset, log_end = report.log_end_offset,
            high_watermark, truncated_bytes = report.truncated_bytes, producers = producers.len(),
            restarts = args.restarts, "replica started");
        let interval = Duration::from_millis(args.ctx.config.storage.retention_check_interval_ms);
        myself.send_interval(interval, || ReplicaMsg::EnforceRetention);
        let check = Duration::from_millis((args.ctx.config.replication.replica_lag_max_ms / 4).max(100));
        myself.send_interval(check, || ReplicaMsg::CheckIsr);
        myself.send_interval(checkpoint::INTERVAL, || ReplicaMsg::CheckpointHighWatermark);
        let end = log.log_end_offset();
        let me = args.ctx.config.node_id;
        let fenced_epoch = (args.restarts > 0 && args.leadership.leader == me).then_some(args.leadership.leader_epoch);
        if let Some(epoch) = fenced_epoch {
            tokio::spawn(leader::request_new_epoch(args.ctx.clone(), args.tp.clone(), epoch));
        }
        let mut state = ReplicaState {
            high_watermark,
            durable_end: end,
            durable_tx: tokio::sync::watch::Sender::new(end),
            hw_key,
            hw_book: args.hw_book,
            tp: args.tp,
            log,
            producers,
            txns,
            epochs,
            leadership: args.leadership.clone(),
            fenced_epoch,
            followers: None,
            leader_log_end: None,
            isr_pending: false,
            handover: None,
            handover_expired: None,
            forwarder: None,
            pending_deletes: Vec::new(),
            fetcher: None,
            parked_acks: VecDeque::new(),
            parked_fetches: Vec::new(),
            parked_log_end: Vec::new(),
            sync_in_flight: false,
            sync_stale: false,
            fail_next_append: false,
            ctx: args.ctx,
            registration,
        };
        // Transactions the log shows open keep taking their producer's writes after a restart.
        for (producer_id, open) in state.txns.ongoing() {
            state.ctx.transactions.register(state.tp.clone(), producer_id, open.producer_epoch);
        }
        state.take_role(&myself)?;
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
            ReplicaMsg::Append { batches, acks_all, reply, forward } => {
                state.append(&myself, batches, acks_all, reply, forward)?
            }
            ReplicaMsg::ReplicaFetch { fetch, reply } => {
                let _ = reply.send(state.replica_fetch(&myself, fetch));
            }
            ReplicaMsg::FollowerProgress { replica_id, leader_epoch, durable_offset } => {
                state.follower_progress(&myself, replica_id, leader_epoch, durable_offset);
            }
            ReplicaMsg::OutOfRange { leader_log_start, leader_log_end, reply } => {
                let _ = reply.send(state.out_of_range(leader_log_start, leader_log_end)?);
            }
            ReplicaMsg::WaitForLogEnd { offset, reply } => state.park_log_end(offset, reply),
            ReplicaMsg::AppendReplicated {
                records,
                leader_high_watermark,
                leader_log_start,
                leader_log_end,
                reply,
            } => {
                let leader = follower::LeaderBounds {
                    high_watermark: leader_high_watermark,
                    log_start: leader_log_start,
                    log_end: leader_log_end,
                };
                let result = state.append_replicated(&myself, records, leader)?;
                let _ = reply.send(result);
            }
            ReplicaMsg::DeleteRecords { offset, timeout_ms, reply } => {
                state.delete_records(offset, timeout_ms, reply)?
            }
            ReplicaMsg::SetLeadership(leadership) => state.set_leadership(&myself, leadership)?,
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
            ReplicaMsg::HandoverFailed { epoch } => state.handover_failed(epoch),
            ReplicaMsg::CheckIsr => {
                state.check_isr(&myself);
                state.maybe_hand_over(&myself);
                state.answer_deletes();
            }
            ReplicaMsg::Read { offset, committed, max_bytes, min_one, reply } => {
                let _ = reply.send(state.read(offset, committed, max_bytes, min_one));
            }
            ReplicaMsg::WaitForData { offset, committed, reply } => state.park_fetch(offset, committed, reply),
            ReplicaMsg::ListOffset { timestamp, committed, reply } => {
                let _ = reply.send(state.list_offset(timestamp, committed));
            }
            ReplicaMsg::WriteMarker { marker, reply } => state.write_marker(&myself, marker, reply)?,
            ReplicaMsg::LegacyOffsets { timestamp, max_num_offsets, reply } => {
                let _ = reply.send(state.legacy_offsets(timestamp, max_num_offsets));
            }
            ReplicaMsg::DescribeProducers(reply) => {
                let _ = reply.send(state.describe_producers());
            }
            ReplicaMsg::Flushed { upto } => state.flushed(&myself, upto),
            ReplicaMsg::FlushFailed { reason } => {
                // Acks must not go out for data that may not be on disk; restarting recovers the
                // log from what the disk really holds, and clients retry the dropped requests.
                return Err(format!("{}: fsync failed: {reason}", state.tp).into());
            }
            ReplicaMsg::Digest { request, reply } => state.digest(request, reply),
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
            ReplicaMsg::CheckpointHighWatermark => state.checkpoint_high_watermark(),
            ReplicaMsg::PlanClean(reply) => {
                let now = now_ms();
                if state.log.roll_if_compaction_due(now)? {
                    info!(tp = %state.tp, "rolled a compacted log's idle active segment: older than max.compaction.lag.ms or segment.ms");
                }
                // Only decided transactions are cleaned, and their aborted records go.
                let stable = state.txns.last_stable_offset(state.high_watermark);
                let aborted = state.txns.aborted_between(state.log.log_start_offset(), stable);
                let _ = reply.send(state.log.plan_clean(now, stable).map(|job| job.with_aborted(aborted)));
            }
            ReplicaMsg::ApplyClean { cleaned, reply } => {
                let outcome = state.log.apply_clean(cleaned)?;
                if outcome.applied {
                    state.forget_cleaned_markers();
                }
                let _ = reply.send(outcome);
            }
            ReplicaMsg::EnforceRetention => {
                let deleted = state.log.enforce_retention(now_ms())?;
                if !deleted.is_empty() {
                    info!(tp = %state.tp, segments = ?deleted, log_start = state.log.log_start_offset(), "retention deleted segments");
                    state.log_start_moved();
                }
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<ReplicaMsg>, state: &mut ReplicaState) -> Result<(), ActorProcessingErr> {
        state.log.flush()?;
        state.write_checkpoints()?;
        Ok(())
    }
}

impl ReplicaState {
    fn park_fetch(&mut self, offset: i64, committed: bool, reply: RpcReplyPort<()>) {
        // Not leading: answer now, and the fetch's read says so.
        if self.visible_end(committed) > offset || self.followers.is_none() {
            let _ = reply.send(());
            return;
        }
        // Fetches that timed out leave closed ports behind; drop them so an idle partition's
        // list stays as long as the number of waiting consumers.
        self.parked_fetches.retain(|p| !p.reply.is_closed());
        self.parked_fetches.push(ParkedFetch { offset, committed, reply });
    }

    /// Where what a consumer may read ends: the high watermark, or for `read_committed` the
    /// last stable offset.
    pub(super) fn visible_end(&self, committed: bool) -> i64 {
        if committed { self.txns.last_stable_offset(self.high_watermark) } else { self.high_watermark }
    }

    fn info(&self) -> ReplicaInfo {
        ReplicaInfo {
            topic: self.tp.topic.to_string(),
            partition: self.tp.partition,
            log_start_offset: self.log.log_start_offset(),
            log_end_offset: self.log.log_end_offset(),
            high_watermark: self.high_watermark,
            durable_end_offset: self.durable_end,
            last_stable_offset: self.txns.last_stable_offset(self.high_watermark),
            open_transactions: self.txns.ongoing().len(),
            segments: self.log.segment_count(),
            size_bytes: self.log.size_bytes(),
            producers: self.producers.len(),
            role: self.role(),
            leader_epoch: self.leadership.leader_epoch,
            leader_log_end_offset: self.leader_log_end,
            followers: self.follower_infos(),
        }
    }
}

/// Milliseconds since the Unix epoch (Kafka's timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
