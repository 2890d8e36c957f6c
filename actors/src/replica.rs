//! `ReplicaActor`: one per hosted partition. It owns the partition's log and idempotent-producer
//! state, appends produce batches, serves reads, and answers acks once the WalFlusher reports
//! the data durable. The high watermark is the durable log end: consumers never read a record
//! that a crash could take back.

mod append;
mod read;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik::log::{LogConfig, PartitionLog};
use chronik::partition::ProducerStateTable;
use kafka_protocol::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tracing::{info, warn};

use crate::context::{NodeContext, TopicPartition};
use crate::directory::{MailboxGauge, Registration};

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
}

/// The replica's mailbox.
pub enum ReplicaMsg {
    /// From a connection: append the batches of one produce partition (already split and
    /// CRC-checked). Replies once the data is durable, or with a Kafka error; `reply` is `None`
    /// for acks=0.
    Append {
        /// The batches, in order.
        batches: Vec<Bytes>,
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
    /// Leader epoch stamped into appended batches.
    pub leader_epoch: i32,
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Gauge created by the supervisor so senders can count before `pre_start` ends.
    pub gauge: MailboxGauge,
    /// How many times this partition's actor has been restarted.
    pub restarts: u32,
}

/// A produce waiting for its data to become durable.
struct ParkedAck {
    /// Answer once the high watermark reaches this offset.
    target: i64,
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
    /// Durable log end: the first offset not yet known to be on disk.
    high_watermark: i64,
    /// Leader epoch stamped into appended batches.
    leader_epoch: i32,
    /// Produces waiting for durability, in offset order.
    parked_acks: VecDeque<ParkedAck>,
    /// Long-poll fetches waiting for the high watermark to pass their offset.
    parked_fetches: Vec<(i64, RpcReplyPort<()>)>,
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
        let producers = read::rebuild_producer_state(&log)?;
        info!(tp = %args.tp, log_start = report.log_start_offset, log_end = report.log_end_offset,
            truncated_bytes = report.truncated_bytes, producers = producers.len(), restarts = args.restarts,
            "replica started");
        let interval = Duration::from_millis(args.ctx.config.storage.retention_check_interval_ms);
        myself.send_interval(interval, || ReplicaMsg::EnforceRetention);
        Ok(ReplicaState {
            high_watermark: log.log_end_offset(),
            tp: args.tp,
            log,
            producers,
            leader_epoch: args.leader_epoch,
            parked_acks: VecDeque::new(),
            parked_fetches: Vec::new(),
            sync_in_flight: false,
            fail_next_append: false,
            ctx: args.ctx,
            registration,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ReplicaMsg>,
        msg: ReplicaMsg,
        state: &mut ReplicaState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            ReplicaMsg::Append { batches, reply } => state.append(&myself, batches, reply)?,
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
        }
    }
}

/// Milliseconds since the Unix epoch (Kafka's timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
