//! `GroupCoordinator`: consumer groups and their committed offsets. Group membership is the
//! pure state machine of `chronik::group`, one per group, driven by requests and a 100 ms tick;
//! committed offsets are appended to the internal `__consumer_offsets` topic through its
//! replicas (so they are as durable as any produce) and cached here for OffsetFetch.
//!
//! As in Kafka, each node coordinates the groups of the offsets partitions it leads
//! ([`ownership`]): it follows the metadata, reads a newly led partition back before serving its
//! groups (COORDINATOR_LOAD_IN_PROGRESS meanwhile) and unloads the groups of a partition it no
//! longer leads. Requests for any other group answer NOT_COORDINATOR, so clients ask
//! FindCoordinator again. Starting never waits for the metadata: a node of a cluster with no
//! Raft leader yet starts coordinating nothing.
//!
//! Each group's membership is written to the same partition whenever a generation settles
//! (`chronik::group::durable`), so after a restart or a move the new coordinator takes the
//! members back in their generation: heartbeats and commits go on, with no rebalance.
//!
//! # Layout
//! - [`ownership`]: which partitions a node leads and what changes with the metadata (pure).
//! - `loading`: following the metadata: load, serve and unload partitions.
//! - `offsets_store`: creating, reading back and appending to `__consumer_offsets`.
//! - `requests`: how each group request is answered.
//! - `offset_delete`: OffsetDelete.

mod appends;
pub(crate) mod loading;
mod offset_delete;
pub(crate) mod offsets_store;
pub mod ownership;
mod requests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::{ClusterMetadata, MetadataError};
use chronik::group::{
    Group, GroupConfig, GroupDescription, GroupSnapshot, JoinRequest, JoinResponse, SyncRequest, SyncResponse, Token,
};
use chronik::offsets::{CommittedOffset, OffsetKey};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration, TaskGuard};
use crate::replica::PartitionError;
use ownership::Ownership;

/// Topic and partition of a committed offset.
pub type OffsetPartition = (String, i32);

/// Committed offsets by group.
pub type GroupOffsets = HashMap<String, BTreeMap<OffsetPartition, CommittedOffset>>;

/// Commits of open transactions, by producer id.
pub type OpenTxnCommits = HashMap<i64, Vec<chronik::offsets::OffsetRecord>>;

/// Settled memberships by group.
pub type GroupSnapshots = HashMap<String, GroupSnapshot>;

/// What reading one offsets partition back gives.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The committed offsets of its groups.
    pub offsets: GroupOffsets,
    /// Commits of transactions still open, by producer.
    pub open_txns: OpenTxnCommits,
    /// Its groups' last settled memberships.
    pub groups: GroupSnapshots,
}

/// OffsetFetch's answer: per partition its error code (UNSTABLE_OFFSET_COMMIT where a stable
/// offset was required and a transaction's commit is pending) and its committed offset (`None`
/// where nothing is committed).
pub type FetchedOffsets = Vec<FetchedOffset>;

/// One partition of an OffsetFetch answer: its error code and committed offset.
pub type FetchedOffset = (OffsetPartition, i16, Option<CommittedOffset>);

/// DescribeGroups' answer for one group: its description (`None` for one that does not exist)
/// or its error code.
pub type Described = (String, Result<Option<GroupDescription>, i16>);

/// One group as listed by ListGroups / `/admin/groups`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// The members' protocol type (`consumer` for consumers); empty for offsets-only groups.
    pub protocol_type: String,
    /// Kafka's state name.
    pub state: String,
}

/// The coordinator's mailbox.
pub enum CoordinatorMsg {
    /// JoinGroup. Answered when the join phase completes, or at once with an error.
    Join {
        /// Group id.
        group_id: String,
        /// The request (its token is set by the coordinator).
        request: JoinRequest,
        /// Where the answer goes.
        reply: RpcReplyPort<JoinResponse>,
    },
    /// SyncGroup. Followers wait for the leader's assignments.
    Sync {
        /// Group id.
        group_id: String,
        /// The request (its token is set by the coordinator).
        request: SyncRequest,
        /// Where the answer goes.
        reply: RpcReplyPort<SyncResponse>,
    },
    /// Heartbeat; answers an error code.
    Heartbeat {
        /// Group id.
        group_id: String,
        /// Member.
        member_id: String,
        /// Member's generation.
        generation_id: i32,
        /// Static member id.
        group_instance_id: Option<String>,
        /// Error code (0 = fine).
        reply: RpcReplyPort<i16>,
    },
    /// LeaveGroup for one or more members; answers one error code per member.
    Leave {
        /// Group id.
        group_id: String,
        /// (member id, instance id) pairs.
        members: Vec<(String, Option<String>)>,
        /// Group-level error code and one code per member.
        reply: RpcReplyPort<(i16, Vec<i16>)>,
    },
    /// OffsetCommit: validate against the group, persist, then cache. Answers one error code
    /// per offset, in the order given.
    Commit {
        /// Group id.
        group_id: String,
        /// Member committing ("" for a simple commit).
        member_id: String,
        /// Its generation (-1 for a simple commit).
        generation_id: i32,
        /// Static member id.
        group_instance_id: Option<String>,
        /// The offsets.
        offsets: Vec<(OffsetPartition, CommittedOffset)>,
        /// TxnOffsetCommit: the transaction's producer id and epoch; the offsets take effect
        /// when its commit marker reaches the group's offsets partition.
        transaction: Option<(i64, i16)>,
        /// Codes per offset.
        reply: RpcReplyPort<Vec<i16>>,
    },
    /// From the commit task: the offsets batch is durable (or failed); cache and answer.
    CommitDone {
        /// The offsets partition appended to.
        partition: i32,
        /// Records that were written, tombstones included.
        records: Vec<(OffsetKey, Option<CommittedOffset>)>,
        /// Outcome of the append.
        result: Result<(), PartitionError>,
        /// The original commit's per-offset codes so far, and where they go.
        codes: Vec<i16>,
        /// Where the answer goes (`None` for internal writes such as group deletion).
        reply: Option<RpcReplyPort<Vec<i16>>>,
        /// The producer of a transactional commit: its records wait for the marker.
        producer_id: Option<i64>,
    },
    /// From a transaction's marker on offsets partition `partition`: the producer's pending
    /// transactional commits take effect (commit) or are dropped (abort).
    TxnMarker {
        /// The offsets partition.
        partition: i32,
        /// The transaction's producer.
        producer_id: i64,
        /// Commit (else abort).
        commit: bool,
    },
    /// OffsetFetch: the committed offsets of a group, all or those asked for.
    FetchOffsets {
        /// Group id.
        group_id: String,
        /// Partitions asked for; `None` = every committed one.
        partitions: Option<Vec<OffsetPartition>>,
        /// OffsetFetch v7+'s `require_stable`: a partition with a transactional commit pending
        /// answers UNSTABLE_OFFSET_COMMIT (the client retries) instead of the older offset.
        require_stable: bool,
        /// The committed offsets, or the group's error code (NOT_COORDINATOR,
        /// COORDINATOR_LOAD_IN_PROGRESS).
        reply: RpcReplyPort<Result<FetchedOffsets, i16>>,
    },
    /// ListGroups: the groups coordinated here, with COORDINATOR_LOAD_IN_PROGRESS (as in Kafka)
    /// while some of this node's offsets partitions are still being read back.
    List(RpcReplyPort<(i16, Vec<GroupListing>)>),
    /// DescribeGroups.
    Describe {
        /// Group ids.
        groups: Vec<String>,
        /// An answer per group.
        reply: RpcReplyPort<Vec<Described>>,
    },
    /// DeleteGroups: empty groups only; their offsets are deleted too.
    Delete {
        /// Group ids.
        groups: Vec<String>,
        /// An error code per group.
        reply: RpcReplyPort<Vec<(String, i16)>>,
    },
    /// OffsetDelete: drops committed offsets of partitions the group's members do not consume.
    /// Answered once the tombstones are durable.
    DeleteOffsets {
        /// Group id.
        group_id: String,
        /// The partitions, in the request's order.
        partitions: Vec<OffsetPartition>,
        /// A code per partition, or the group's error code.
        reply: RpcReplyPort<Result<Vec<i16>, i16>>,
    },
    /// From DeleteTopics, after the topics are gone: their committed offsets go too (as in
    /// Kafka), so a topic re-created under the same name starts with no stale positions.
    TopicsDeleted(Vec<String>),
    /// Timer: session expiry, join-phase deadlines.
    Tick,
    /// From the metadata watch: the metadata changed; load or unload offsets partitions.
    MetadataChanged(Arc<ClusterMetadata>),
    /// From a load task: an offsets partition was read back; its groups can be served.
    Loaded {
        /// The offsets partition.
        partition: i32,
        /// Which load this is (a stale one, of a partition unloaded meanwhile, is ignored).
        load_id: u64,
        /// What was read.
        loaded: Loaded,
    },
    /// From FindCoordinator: `__consumer_offsets` is missing; propose it (once at a time).
    CreateOffsetsTopic,
    /// From the creation task: how the proposal of `__consumer_offsets` ended.
    OffsetsTopicCreated(Result<(), MetadataError>),
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct CoordinatorArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The coordinator's state.
pub struct CoordinatorState {
    /// Groups with members (or that had some since the start).
    groups: HashMap<String, Group>,
    /// Durable committed offsets of the groups coordinated here (served partitions only).
    offsets: GroupOffsets,
    /// The membership last written (or read back) for each group coordinated here; a group's
    /// record is written again only when what it should be differs.
    stored: GroupSnapshots,
    /// Joins waiting for the join phase to complete.
    waiting_joins: HashMap<Token, RpcReplyPort<JoinResponse>>,
    /// Syncs waiting for the leader's assignments.
    waiting_syncs: HashMap<Token, RpcReplyPort<SyncResponse>>,
    /// Next request token.
    next_token: Token,
    /// The metadata the coordinator last followed (to see which topics were deleted since).
    metadata: Arc<ClusterMetadata>,
    /// The offsets partitions this node leads according to `metadata`.
    ownership: Ownership,
    /// Each led offsets partition's load state; exactly the keys of `ownership.led`.
    partitions: HashMap<i32, LedPartition>,
    /// Identifies the next load, so a stale `Loaded` is recognised.
    next_load: u64,
    /// The proposal of `__consumer_offsets` in flight, if any.
    creating: Option<TaskGuard>,
    /// Per offsets partition, its appends in flight and the offset fetches waiting for them.
    appends: HashMap<i32, Appends>,
    /// Durable commits of open transactions, by offsets partition and producer: they take
    /// effect at the transaction's commit marker.
    txn_commits: HashMap<(i32, i64), Vec<chronik::offsets::OffsetRecord>>,
    /// Forwards metadata changes to this actor; stops with it.
    _watch: TaskGuard,
    /// Limits applied to every group.
    group_config: GroupConfig,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// One offsets partition's appends, in order.
#[derive(Default)]
struct Appends {
    /// The completion of the latest append: the next append's `CommitDone` waits for it, so
    /// commits reach the cache in the order they were appended.
    tail: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Appends started.
    started: u64,
    /// Appends whose `CommitDone` was handled.
    done: u64,
    /// OffsetFetches that came in behind appends still in flight, each with the number of
    /// appends it waits for: a client that pipelines a fetch after its commits reads them, as
    /// Kafka's one-request-at-a-time connections guarantee.
    fetches: Vec<(u64, ParkedFetch)>,
}

/// An OffsetFetch waiting for earlier commits.
struct ParkedFetch {
    /// Group id.
    group_id: String,
    /// Partitions asked for; `None` = every committed one.
    partitions: Option<Vec<OffsetPartition>>,
    /// Whether a pending transactional commit makes a partition's answer UNSTABLE_OFFSET_COMMIT.
    require_stable: bool,
    /// Where the answer goes.
    reply: RpcReplyPort<Result<FetchedOffsets, i16>>,
}

/// Where one led offsets partition stands.
enum LedPartition {
    /// Its commits are being read back; its groups' requests answer COORDINATOR_LOAD_IN_PROGRESS.
    Loading {
        /// Matches the `Loaded` of this load.
        load_id: u64,
        /// Commits of an earlier leadership that became durable during the load: they may be
        /// past what the load read, so they are applied on top of it.
        pending: Vec<(OffsetKey, Option<CommittedOffset>)>,
        /// The load task (aborted if the partition is unloaded first).
        _task: TaskGuard,
    },
    /// Loaded: its groups are coordinated here.
    Serving,
}

/// The actor.
pub struct GroupCoordinator;

/// How often group timers are checked.
const TICK: Duration = Duration::from_millis(100);

impl Actor for GroupCoordinator {
    type Msg = CoordinatorMsg;
    type State = CoordinatorState;
    type Arguments = CoordinatorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: CoordinatorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "group-coordinator".into(),
            "GroupCoordinator",
            args.restarts,
            MailboxGauge::default(),
        );
        let gauge = registration.gauge().clone();
        let (watch, metadata) = loading::watch_metadata(&ctx, &myself, CoordinatorMsg::MetadataChanged);
        let g = &ctx.config.groups;
        let group_config = GroupConfig {
            min_session_timeout_ms: g.min_session_timeout_ms,
            max_session_timeout_ms: g.max_session_timeout_ms,
            initial_rebalance_delay_ms: g.initial_rebalance_delay_ms,
            max_size: g.max_size,
        };
        let mut state = CoordinatorState {
            groups: HashMap::new(),
            offsets: HashMap::new(),
            stored: HashMap::new(),
            waiting_joins: HashMap::new(),
            waiting_syncs: HashMap::new(),
            next_token: 0,
            metadata: Arc::default(),
            ownership: Ownership::default(),
            partitions: HashMap::new(),
            next_load: 0,
            creating: None,
            appends: HashMap::new(),
            txn_commits: HashMap::new(),
            _watch: watch,
            group_config,
            ctx,
            registration,
        };
        state.start_serving(&myself, metadata).await;
        myself.send_interval(TICK, || CoordinatorMsg::Tick);
        state.ctx.coordinator.set(myself, gauge);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        state.handle(&myself, msg);
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // Answer every parked join and sync (NOT_COORDINATOR) so no client waits on us.
        let replies: Vec<_> = state.groups.values_mut().flat_map(|g| g.unload()).collect();
        state.route(replies);
        Ok(())
    }
}
