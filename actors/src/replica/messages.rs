//! The ReplicaActor's mailbox, and the answers and errors it hands back.

use bytes::Bytes;
use chronik::config::NodeId;
use chronik::log::LogConfig;
use chronik::partition::replication::{EpochEndOffset, Truncation};
use chronik::partition::{AbortedTxn, ProducerSummary};
use kafka_protocol::ResponseError;
use ractor::RpcReplyPort;
use serde::Serialize;

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
    /// The log end offset when read (a follower's lag behind its leader).
    pub log_end_offset: i64,
    /// The last stable offset when read: below it every transaction is decided.
    pub last_stable_offset: i64,
    /// For a `read_committed` read: the aborted transactions overlapping what was read.
    pub aborted: Vec<AbortedTxn>,
}

/// A transaction marker a coordinator asks a partition leader to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transaction's producer.
    pub producer_id: i64,
    /// Its epoch (bumped past the producer's when the coordinator fenced it).
    pub producer_epoch: i16,
    /// Commit or abort.
    pub commit: bool,
    /// The coordinator's epoch (the leader epoch of its `__transaction_state` partition).
    pub coordinator_epoch: i32,
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
    /// Offsets below it are durable on every in-sync replica and readable.
    pub high_watermark: i64,
    /// Offsets below it are fsynced here.
    pub durable_end_offset: i64,
    /// Below it every transaction is decided: what `read_committed` consumers see.
    pub last_stable_offset: i64,
    /// Transactions open in this partition.
    pub open_transactions: usize,
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
    /// On a follower: its leader's log end offset, as the last fetch answer said.
    pub leader_log_end_offset: Option<i64>,
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
    /// What it has fsynced, as it last reported; only this counts for the high watermark.
    pub durable_offset: Option<i64>,
    /// When it was last caught up with the leader's log end (ms since the epoch).
    pub last_caught_up_ms: Option<i64>,
    /// Whether the ISR lists it.
    pub in_sync: bool,
}

/// A follower's fetch, as the leader receives and records it.
#[derive(Debug, Clone, Copy)]
pub struct FollowerFetch {
    /// The follower.
    pub replica_id: NodeId,
    /// The leader epoch it follows.
    pub leader_epoch: i32,
    /// First offset wanted, which is also its log end offset: everything below is in its log.
    pub fetch_offset: i64,
    /// Everything below it is fsynced on the follower.
    pub durable_offset: i64,
    /// Its log start offset (for DeleteRecords' low watermark).
    pub log_start_offset: i64,
    /// Byte budget of the answer.
    pub max_bytes: usize,
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
    /// Whether this node's current process is registered in the metadata. Until it is, the
    /// replica leads nothing even where the metadata names this node: the registration gives
    /// its partitions a new leader epoch first.
    pub registered: bool,
    /// The in-sync replica the leader is asked to hand over to, gracefully (a `Handover` of
    /// the current epoch in the metadata).
    pub handover: Option<NodeId>,
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
        /// The client learns the new leader from a successful answer (Produce v10+, KIP-951)
        /// and the batches are not transactional: just after a handover this replica may pass
        /// them on to the new leader rather than refuse them.
        forward: bool,
    },
    /// From a connection: read from `offset`, up to the high watermark (`read_committed`: the
    /// last stable offset).
    Read {
        /// First offset wanted.
        offset: i64,
        /// `read_committed`: stop at the last stable offset and list the aborted transactions.
        committed: bool,
        /// Byte budget for this partition.
        max_bytes: usize,
        /// Return at least one whole batch even if it exceeds `max_bytes`.
        min_one: bool,
        /// Where the records go.
        reply: RpcReplyPort<Result<ReadOutcome, PartitionError>>,
    },
    /// From a long-polling fetch: answer once the high watermark (`read_committed`: the last
    /// stable offset) passes `offset`.
    WaitForData {
        /// The fetch offset.
        offset: i64,
        /// Whether the fetch reads committed transactions only.
        committed: bool,
        /// Fired when data is there.
        reply: RpcReplyPort<()>,
    },
    /// From a connection: ListOffsets for one partition (-1 latest, -2 earliest, -3 max
    /// timestamp, -4 earliest local, else a timestamp). Replies `(offset, timestamp)`.
    ListOffset {
        /// Target timestamp or sentinel.
        timestamp: i64,
        /// `read_committed`: latest is the last stable offset.
        committed: bool,
        /// Where the answer goes.
        reply: RpcReplyPort<Result<(i64, i64), PartitionError>>,
    },
    /// From a connection: ListOffsets v0 for one partition, Kafka's legacy answer of up to
    /// `max_num_offsets` segment offsets at or before `timestamp` (-1 latest, -2 earliest),
    /// newest first and capped at the high watermark.
    LegacyOffsets {
        /// Target time in ms or sentinel.
        timestamp: i64,
        /// At most this many offsets.
        max_num_offsets: i32,
        /// Where the answer goes.
        reply: RpcReplyPort<Result<Vec<i64>, PartitionError>>,
    },
    /// From a transaction coordinator, on the leader: append a commit or abort marker; answered
    /// once every in-sync replica has it.
    WriteMarker {
        /// The marker.
        marker: TxnMarker,
        /// Where the outcome goes.
        reply: RpcReplyPort<Result<AppendOutcome, PartitionError>>,
    },
    /// From DescribeProducers (KIP-664), on the leader: the idempotent producers that wrote
    /// here, as the producer state tracks them.
    DescribeProducers(RpcReplyPort<Result<Vec<ProducerSummary>, PartitionError>>),
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
        /// The fetch.
        fetch: FollowerFetch,
        /// Where the batches go.
        reply: RpcReplyPort<Result<ReadOutcome, PartitionError>>,
    },
    /// From the replication service, on the leader: a follower fsynced its log up to
    /// `durable_offset` (a progress report between fetches); may advance the high watermark.
    FollowerProgress {
        /// The follower.
        replica_id: NodeId,
        /// The leader epoch the follower follows.
        leader_epoch: i32,
        /// Everything below it is fsynced on the follower.
        durable_offset: i64,
    },
    /// From this follower's fetcher: the leader answered OFFSET_OUT_OF_RANGE. A log that runs
    /// past the leader's end is truncated to it; one that ends below the leader's log start is
    /// emptied and restarted there. Replies with the new log end offset.
    OutOfRange {
        /// The leader's log start offset.
        leader_log_start: i64,
        /// The leader's log end offset.
        leader_log_end: i64,
        /// The new log end offset.
        reply: RpcReplyPort<Result<i64, PartitionError>>,
    },
    /// From the replication service: answer once the log end passes `offset` (a follower's
    /// long poll).
    WaitForLogEnd {
        /// The follower's fetch offset.
        offset: i64,
        /// Fired when there is more.
        reply: RpcReplyPort<()>,
    },
    /// From this follower's fetcher: batches copied from the leader, to append unchanged, and
    /// the leader's bounds: its log start is followed (DeleteRecords on every replica).
    /// Replies with the new log end and log start offsets.
    AppendReplicated {
        /// Whole batches starting at this replica's log end offset.
        records: Bytes,
        /// The leader's high watermark with them.
        leader_high_watermark: i64,
        /// The leader's log start offset with them.
        leader_log_start: i64,
        /// The leader's log end offset with them.
        leader_log_end: i64,
        /// The new log end and log start offsets, or why the batches were refused.
        reply: RpcReplyPort<Result<(i64, i64), PartitionError>>,
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
    /// From a connection (DeleteRecords), on the leader: move the log start up to `offset`
    /// (-1: the high watermark), durably, then wait until every in-sync follower's has followed.
    /// Replies with the low watermark then.
    DeleteRecords {
        /// The first offset to keep, at most the high watermark; -1 for the high watermark.
        offset: i64,
        /// How long the followers may take (the request's timeout).
        timeout_ms: i64,
        /// The low watermark, or OFFSET_OUT_OF_RANGE / NOT_LEADER_OR_FOLLOWER /
        /// REQUEST_TIMED_OUT.
        reply: RpcReplyPort<Result<i64, PartitionError>>,
    },
    /// From this follower's fetcher: the latest epoch in this log (-1 when empty).
    LatestEpoch(RpcReplyPort<i32>),
    /// From the ReplicaSupervisor: the partition's leader, epoch or ISR changed.
    SetLeadership(Leadership),
    /// From the ISR proposal task: the proposal finished (applied or refused).
    IsrProposalDone,
    /// From the handover task: the election the handover proposed in `epoch` was refused.
    HandoverFailed {
        /// The leader epoch of the handover.
        epoch: i32,
    },
    /// Timer on the leader: drop followers that stopped fetching from the ISR.
    CheckIsr,
    /// From the admin API: report state.
    Info(RpcReplyPort<ReplicaInfo>),
    /// From the admin API (`cluster verify`): this replica's bounds and, if asked, a digest of
    /// its batches in a range, computed off the actor.
    Digest {
        /// The range and level of detail.
        request: super::digest::DigestRequest,
        /// The answer, or why the range cannot be digested here.
        reply: super::digest::DigestPort,
    },
    /// From the admin API (test builds of the config only): panic on the next append.
    ArmFailPoint,
    /// Timer: delete segments past retention.
    EnforceRetention,
    /// From the LogCleaner: the cleaning this compacted log is due for, if any (cheap: it only
    /// looks at the segments' sizes and offsets). First rolls an active segment older than
    /// `max.compaction.lag.ms` (or `segment.ms`), so a quiet topic's records get cleaned too.
    PlanClean(RpcReplyPort<Option<chronik::log::cleaner::CleanJob>>),
    /// From the LogCleaner: swap a finished cleaning in (or throw it away if the log changed
    /// meanwhile). A failure stops the replica: reopening the log finishes a committed swap.
    ApplyClean {
        /// What the cleaning wrote.
        cleaned: chronik::log::cleaner::CleanedLog,
        /// How it ended.
        reply: RpcReplyPort<chronik::log::cleaner::CleanOutcome>,
    },
    /// Timer: report the high watermark to the node's checkpoint book.
    CheckpointHighWatermark,
    /// From the ReplicaSupervisor: the topic's configs changed (segment and retention limits).
    UpdateConfig(LogConfig),
}
