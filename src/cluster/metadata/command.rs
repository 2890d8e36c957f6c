//! The metadata commands, their results and their errors: what travels through the Raft log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{NodeInfo, ScramCredential};
use crate::cluster::acl::AclBinding;
use crate::config::NodeId;

/// A change to the metadata. Applied in the same order everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Registers a broker or updates its address.
    RegisterNode(NodeInfo),
    /// Creates a topic; replicas are assigned round-robin over the registered nodes, unless
    /// `assignments` names them.
    CreateTopic {
        /// Topic name (validated).
        name: String,
        /// The id to give it (chosen by the proposer so every replica of the log agrees).
        id: Uuid,
        /// Number of partitions.
        partitions: i32,
        /// Replicas per partition.
        replication_factor: i16,
        /// Config overrides.
        configs: BTreeMap<String, String>,
        /// A manual assignment (CreateTopics `assignments`): partition p's replicas, preferred
        /// leader first; when given it fixes the partition count and replication factor. Empty
        /// (and absent in commands logged before it existed) means round-robin placement.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        assignments: Vec<Vec<NodeId>>,
    },
    /// Deletes a topic and all its partitions.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Grows a topic to `count` partitions.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// The new total partition count.
        count: i32,
        /// A manual assignment of the new partitions (CreatePartitions `assignments`), one
        /// replica list per new partition, preferred leader first. Empty (and absent in commands
        /// logged before it existed) means round-robin placement.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        assignments: Vec<Vec<NodeId>>,
    },
    /// Replaces a topic's config overrides (AlterConfigs; IncrementalAlterConfigs computes the
    /// resulting set first). The overrides were validated by the proposer.
    SetTopicConfigs {
        /// Topic name.
        name: String,
        /// The complete new set of overrides.
        configs: BTreeMap<String, String>,
    },
    /// Sets or (with `None`) deletes a user's SCRAM credential for one mechanism
    /// (AlterUserScramCredentials, `cluster user`). Validated by the proposer.
    SetScramCredential {
        /// The user name.
        user: String,
        /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
        mechanism: String,
        /// The new credential; `None` deletes it.
        credential: Option<ScramCredential>,
    },
    /// Adds an ACL (CreateAcls); one already present is left as it is. Validated by the proposer.
    CreateAcl(AclBinding),
    /// Removes an ACL (DeleteAcls); one already gone is no error.
    DeleteAcl(AclBinding),
    /// Reserves the next block of idempotent producer ids.
    AllocateProducerIds {
        /// How many ids the block holds.
        count: i64,
    },
    /// The partition leader's new in-sync replica set. Applied only if `leader_epoch` is still
    /// the partition's epoch, so a deposed leader cannot rewrite the ISR.
    UpdateIsr {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The epoch of the leader proposing it.
        leader_epoch: i32,
        /// The new ISR, a subset of the replicas that includes the leader.
        isr: Vec<NodeId>,
    },
    /// A new leader for a partition whose leader was fenced (or leaves it), chosen from its ISR
    /// (never an out-of-sync replica: no unclean election). Bumps the leader epoch.
    ElectLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The new leader.
        leader: NodeId,
        /// The new epoch: exactly one above the current, so a repeated election is refused.
        leader_epoch: i32,
        /// The ISR under the new leader (the fenced leader left out). Intersected with the ISR
        /// at apply time, so a replica that left the ISR meanwhile does not come back.
        isr: Vec<NodeId>,
    },
    /// An unclean election: the out-of-sync replica `leader` takes over a partition with no live
    /// in-sync replica, alone in the ISR, one epoch up. Whatever only the old ISR held is lost;
    /// the old leader truncates to the new leader's log when it returns. Refused unless the
    /// topic sets `unclean.leader.election.enable`.
    ElectUncleanLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The new leader, a replica.
        leader: NodeId,
        /// The new epoch: exactly one above the current.
        leader_epoch: i32,
    },
    /// Asks the leader of `leader_epoch` to hand its leadership over to the in-sync replica `to`
    /// gracefully (see [`super::Handover`]): the leader itself then proposes the `ElectLeader`.
    BeginHandover {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The in-sync replica to take over.
        to: NodeId,
        /// The current leader epoch; another one is refused.
        leader_epoch: i32,
    },
    /// A partition's new replica list (the rebalancer: first current ∪ new, then the target).
    /// It must keep the leader; replicas it drops leave the ISR, replicas it adds join the ISR
    /// only once the leader sees them caught up.
    ReassignPartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The new replica list, preferred leader first.
        replicas: Vec<NodeId>,
    },
    /// An operator's reassignment (AlterPartitionReassignments): the partition is to move to
    /// `replicas`, and stay there ([`super::Placement`]). The rebalancer carries it out with the
    /// same safe steps as its own moves. A list that only reorders the current replicas takes
    /// effect at once. `None` cancels the reassignment under way: the partition returns to the
    /// replicas it started from, by the same steps.
    AlterReassignment {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The replicas to move to, preferred leader first; `None` cancels.
        replicas: Option<Vec<NodeId>>,
        /// Refuse a target with another replica count than the partition had before any
        /// reassignment began (KIP-860, `allow_replication_factor_change = false`). Absent in
        /// entries written before it existed: allowed, as it was then.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_replication_factor: bool,
    },
    /// Starts removing a voter: no new replica is placed on it and the rebalancer moves its
    /// replicas to the other voters; once it holds none, it leaves the Raft membership.
    DrainNode {
        /// The node to drain.
        node: NodeId,
    },
    /// Gives the cluster its identity and broker-wide defaults, once: the first one applied wins
    /// and later ones change nothing (a new Raft leader proposes it when none is set).
    InitCluster {
        /// The cluster id, reported by `/admin/health` and checked by `add-node`.
        cluster_id: String,
        /// The `min.insync.replicas` of topics that do not override it.
        min_insync_replicas: i16,
    },
    /// A broker process started (KRaft's broker registration): every partition it leads gets a
    /// new leader epoch before it serves again, so no offset is ever written twice in one epoch.
    /// After an unclean shutdown its log may have lost a tail it had acknowledged: it leaves
    /// every ISR (rejoining once caught up), and the partitions it led move to another in-sync
    /// replica when there is one (KIP-966).
    RegisterBroker {
        /// The broker.
        node: NodeId,
        /// Random per process start; registering the same incarnation again changes nothing.
        incarnation: u64,
        /// Whether the previous process flushed everything and stopped cleanly.
        clean_shutdown: bool,
    },
    /// A broker's replica of a partition failed past its restart budget and is offline: it
    /// leaves the ISR and, if it led, leadership moves to another in-sync replica (new epoch).
    ReplicaOffline {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The broker whose replica is offline.
        node: NodeId,
    },
    /// A leader's replica restarted after a failure (a disk error may have cost it unsynced
    /// data its followers copied): it leads on only in a new epoch, so its followers truncate
    /// what it lost instead of keeping records it writes anew at the same offsets. Applied only
    /// while `leader` leads in `leader_epoch`.
    BumpLeaderEpoch {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The restarted leader.
        leader: NodeId,
        /// The epoch it led in before the restart.
        leader_epoch: i32,
    },
    /// Pauses or resumes the rebalancer (operator action): while paused it plans but proposes
    /// no step, so replica moves hold where they are; a step already proposed still lands.
    SetRebalancePaused {
        /// Whether rebalancing is paused.
        paused: bool,
    },
    /// Replaces the run-time configs of a broker entity (validated by the caller, as topic
    /// configs are); an empty set removes the entity.
    SetBrokerConfigs {
        /// `""` for the cluster-wide default, else the broker's node id.
        entity: String,
        /// The complete new set (broker config names).
        configs: BTreeMap<String, String>,
    },
    /// A command from a leader-only actor (rebalancer, controller), valid only under the Raft
    /// leadership it was planned in: applied only if its entry was appended in `term` by
    /// `leader`, so a deposed leader's plan never lands through the next leader. The leader's id
    /// matters because openraft orders leaders by term and then node id: two candidates of one
    /// term can both lead, one after the other.
    AsLeader {
        /// The term the proposer led in.
        term: u64,
        /// The proposer, leader in `term` (absent in commands logged before it was recorded:
        /// then only the term is checked).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<NodeId>,
        /// The command.
        command: Box<MetadataCommand>,
    },
}

impl MetadataCommand {
    /// The command's name, for log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RegisterNode(_) => "RegisterNode",
            Self::CreateTopic { .. } => "CreateTopic",
            Self::DeleteTopic { .. } => "DeleteTopic",
            Self::CreatePartitions { .. } => "CreatePartitions",
            Self::SetTopicConfigs { .. } => "SetTopicConfigs",
            Self::AllocateProducerIds { .. } => "AllocateProducerIds",
            Self::UpdateIsr { .. } => "UpdateIsr",
            Self::ElectLeader { .. } => "ElectLeader",
            Self::ElectUncleanLeader { .. } => "ElectUncleanLeader",
            Self::BeginHandover { .. } => "BeginHandover",
            Self::ReassignPartition { .. } => "ReassignPartition",
            Self::AlterReassignment { .. } => "AlterReassignment",
            Self::DrainNode { .. } => "DrainNode",
            Self::InitCluster { .. } => "InitCluster",
            Self::RegisterBroker { .. } => "RegisterBroker",
            Self::ReplicaOffline { .. } => "ReplicaOffline",
            Self::BumpLeaderEpoch { .. } => "BumpLeaderEpoch",
            Self::SetRebalancePaused { .. } => "SetRebalancePaused",
            Self::SetBrokerConfigs { .. } => "SetBrokerConfigs",
            Self::SetScramCredential { .. } => "SetScramCredential",
            Self::CreateAcl(_) => "CreateAcl",
            Self::DeleteAcl(_) => "DeleteAcl",
            Self::AsLeader { command, .. } => command.name(),
        }
    }
}

/// Why a command could not be applied; each maps to a Kafka error code at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MetadataError {
    /// The topic name breaks Kafka's naming rules.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The offending name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// CreateTopic for a name that exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// A command names a topic that does not exist.
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    /// Partition count out of range.
    #[error("invalid partition count {count} for topic {topic:?}: {reason}")]
    InvalidPartitions {
        /// Topic name.
        topic: String,
        /// The requested count.
        count: i32,
        /// Why it is refused.
        reason: String,
    },
    /// A manual replica assignment that cannot be used (CreateTopics).
    #[error("invalid replica assignment for topic {topic:?}: {reason}")]
    InvalidReplicaAssignment {
        /// Topic name.
        topic: String,
        /// Why it is refused.
        reason: String,
    },
    /// The metadata could not be changed right now (retriable).
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
    /// A partition change from a leader whose epoch is no longer current.
    #[error("leader epoch {got} is stale; the partition is at epoch {current}")]
    StaleLeaderEpoch {
        /// The partition's epoch.
        current: i32,
        /// The epoch in the command.
        got: i32,
    },
    /// An ISR that leaves out the leader or names a non-replica.
    #[error("ISR {isr:?} must include the leader and only replicas {replicas:?}")]
    InvalidIsr {
        /// The proposed ISR.
        isr: Vec<NodeId>,
        /// The partition's replicas.
        replicas: Vec<NodeId>,
    },
    /// A node that cannot be drained (DrainNode).
    #[error("Cannot remove node {node}: {reason}")]
    CannotDrain {
        /// The node.
        node: NodeId,
        /// Why not.
        reason: String,
    },
    /// Deleting a SCRAM credential that does not exist.
    #[error("user {user:?} has no {mechanism} credential")]
    NoScramCredential {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: String,
    },
    /// A leader-only command planned in a term that is over.
    #[error("proposed by the Raft leader of term {planned}, but appended in term {current}")]
    StaleTerm {
        /// The term it was planned in.
        planned: u64,
        /// The term its entry was appended in.
        current: u64,
    },
    /// A leader-only command whose planner was deposed by a later leader of the same term.
    #[error(
        "proposed by node {planner}, Raft leader in term {term}, but appended by node {appender}, a later leader of that term"
    )]
    StaleLeader {
        /// The term.
        term: u64,
        /// The node that planned it.
        planner: NodeId,
        /// The node whose leadership appended it.
        appender: NodeId,
    },
    /// A reassignment step that would weaken the partition's durability.
    #[error("unsafe reassignment of {topic}-{partition}: {reason}")]
    UnsafeReassignment {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// Which rule it breaks.
        reason: String,
    },
    /// A cancellation for a partition with no reassignment under way.
    #[error("no reassignment of {topic}-{partition} is in progress")]
    NoReassignmentInProgress {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// An unclean election for a topic that does not allow it.
    #[error("unclean leader election is not enabled for topic {0:?} (unclean.leader.election.enable)")]
    UncleanElectionDisabled(String),
    /// A reassignment would change the replication factor where the request forbids it.
    #[error(
        "the replication factor of {topic}-{partition} would change from {from} to {to}, but \
         allow_replication_factor_change is false"
    )]
    ReplicationFactorChange {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// Replicas before the reassignment.
        from: usize,
        /// Replicas asked for.
        to: usize,
    },
    /// More replicas asked for than there are (live) voting brokers.
    #[error("replication factor {requested} is larger than the {available} available broker(s)")]
    InvalidReplicationFactor {
        /// Requested replication factor.
        requested: i16,
        /// Brokers registered.
        available: usize,
    },
}

/// What applying a command produced besides the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// The change is made; nothing to hand back.
    Done,
    /// `AllocateProducerIds`: the first id of the reserved block.
    ProducerIds {
        /// First id of the block; the block is `first..first + count`.
        first: i64,
    },
}
