//! Consumer-group membership: the state machine of Kafka's group coordinator for the classic
//! protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, with MEMBER_ID_REQUIRED and static
//! membership), as a pure engine.
//!
//! One [`Group`] per group id. The actor that owns it feeds it requests and timer ticks, each
//! with the current time (`now_ms`), and routes the [`Reply`]s it returns by token: a JoinGroup
//! or SyncGroup may be parked and answered by a later call (another member's join, the leader's
//! sync, a tick). Every parked request gets exactly one answer, even when its member is
//! removed, fenced or superseded.
//!
//! The states and their transitions follow Kafka's `GroupCoordinator` (3.x where it differs
//! from 2.x):
//! `Empty → PreparingRebalance → CompletingRebalance → Stable`, back to `PreparingRebalance` when
//! membership or metadata changes, to `Empty` when the last member goes, and `Dead` once deleted.
//!
//! # Layout
//! - [`types`]: the config, requests, answers and descriptions.
//! - `member`: one member, its session and its parked requests.
//! - `join`: JoinGroup, including MEMBER_ID_REQUIRED and static-member replacement.
//! - `rebalance`: the join phase (its timers, completion, protocol vote) and member removal.
//! - `sync`: SyncGroup and the distribution of the leader's assignments.
//! - `liveness`: Heartbeat, OffsetCommit validation, LeaveGroup, deletion.
//! - `timers`: [`Group::tick`] and [`Group::next_deadline`].
//! - `durable`: what of a group is written to the offsets topic, and restoring it.
//! - [`assignment`]: what a consumer's assignment bytes say, for operators.
//! - [`subscription`]: the topics members subscribe to, and OffsetDelete's rules on them.

pub mod assignment;
mod durable;
mod join;
mod liveness;
mod member;
mod rebalance;
pub mod subscription;
mod sync;
mod timers;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

pub use durable::{Durable, GroupSnapshot, MemberSnapshot};
pub use types::{
    GroupConfig, GroupDescription, GroupPhase, JoinRequest, JoinResponse, JoinedMember, MemberDescription, MemberId,
    Reply, SyncRequest, SyncResponse, Token,
};

use member::Member;

/// The Kafka error codes this module answers with.
mod code {
    use kafka_protocol::ResponseError as E;

    pub(super) const NONE: i16 = 0;
    pub(super) const COORDINATOR_NOT_AVAILABLE: i16 = E::CoordinatorNotAvailable.code();
    pub(super) const NOT_COORDINATOR: i16 = E::NotCoordinator.code();
    pub(super) const ILLEGAL_GENERATION: i16 = E::IllegalGeneration.code();
    pub(super) const INCONSISTENT_GROUP_PROTOCOL: i16 = E::InconsistentGroupProtocol.code();
    pub(super) const UNKNOWN_MEMBER_ID: i16 = E::UnknownMemberId.code();
    pub(super) const INVALID_SESSION_TIMEOUT: i16 = E::InvalidSessionTimeout.code();
    pub(super) const REBALANCE_IN_PROGRESS: i16 = E::RebalanceInProgress.code();
    pub(super) const NON_EMPTY_GROUP: i16 = E::NonEmptyGroup.code();
    pub(super) const GROUP_ID_NOT_FOUND: i16 = E::GroupIdNotFound.code();
    pub(super) const MEMBER_ID_REQUIRED: i16 = E::MemberIdRequired.code();
    pub(super) const GROUP_MAX_SIZE_REACHED: i16 = E::GroupMaxSizeReached.code();
    pub(super) const FENCED_INSTANCE_ID: i16 = E::FencedInstanceId.code();
}

/// The timer of the join phase (only while PreparingRebalance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinTimer {
    /// Kafka's `InitialDelayedJoin`, armed when an Empty group gets its first member: never
    /// completes early; when it fires and members were added meanwhile, it waits once more
    /// (at most `delay_ms`), as long as `remaining_ms` of the rebalance timeout is left.
    InitialDelay {
        /// When it fires.
        deadline: u64,
        /// The wait that ends at `deadline`.
        delay_ms: u64,
        /// What is left of the rebalance timeout after this wait.
        remaining_ms: u64,
    },
    /// Kafka's `DelayedJoin`: completes as soon as every member has rejoined, or at the
    /// deadline without those that did not.
    Rebalance {
        /// The end of the rebalance timeout.
        deadline: u64,
    },
}

impl JoinTimer {
    /// When it fires.
    fn deadline(&self) -> u64 {
        match self {
            Self::InitialDelay { deadline, .. } | Self::Rebalance { deadline } => *deadline,
        }
    }
}

/// One consumer group's membership state machine.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group id, for the actor's bookkeeping and logs.
    group_id: String,
    /// The broker's limits.
    config: GroupConfig,
    /// The current state.
    phase: GroupPhase,
    /// Bumped each time a join phase completes (also when it leaves the group Empty).
    generation_id: i32,
    /// Set by the first member to join an empty member list; every later member must match.
    protocol_type: Option<String>,
    /// The protocol the members voted for in the current generation.
    protocol_name: Option<String>,
    /// The member that computes the assignments; `None` only when there are no members.
    leader: Option<MemberId>,
    /// In the order they joined: "the first member" is the one that joined earliest.
    members: Vec<Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, with when they lapse if the client never
    /// rejoins. They hold up the join phase, as in Kafka.
    pending_members: BTreeMap<MemberId, u64>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pending_sync: BTreeSet<MemberId>,
    /// When members still in `pending_sync` are removed (Kafka's `DelayedSync`).
    sync_deadline: Option<u64>,
    /// The join phase's timer.
    join_timer: Option<JoinTimer>,
    /// A member was added during the initial delay, so the delay may be extended.
    new_member_added: bool,
    /// Makes generated member ids unique within this group.
    member_seq: u64,
}

impl Group {
    /// An Empty group at generation 0.
    pub fn new(group_id: String, config: GroupConfig) -> Self {
        Self {
            group_id,
            config,
            phase: GroupPhase::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            sync_deadline: None,
            join_timer: None,
            new_member_added: false,
            member_seq: 0,
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The current state.
    pub fn phase(&self) -> GroupPhase {
        self.phase
    }

    /// The current generation (0 before the first join phase completes).
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// Whether the group has no members (ids awaiting MEMBER_ID_REQUIRED rejoins don't count).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// What DescribeGroups shows. As in Kafka, the protocol, metadata and assignments are
    /// shown only while Stable.
    pub fn describe(&self) -> GroupDescription {
        let stable_protocol = match (self.phase, &self.protocol_name) {
            (GroupPhase::Stable, Some(name)) => Some(name.as_str()),
            _ => None,
        };
        let members = self
            .members
            .iter()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: stable_protocol.map(|p| m.metadata(p)).unwrap_or_default(),
                assignment: stable_protocol.map(|_| m.assignment.clone()).unwrap_or_default(),
            })
            .collect();
        GroupDescription {
            state: self.phase,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: stable_protocol.unwrap_or_default().to_owned(),
            generation_id: self.generation_id,
            members,
        }
    }

    /// The member with this id.
    fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == member_id)
    }

    /// The member with this id, mutably.
    fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == member_id)
    }

    /// The current member id of the static member with this `group.instance.id`.
    fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.members.iter().find(|m| m.instance_id.as_deref() == Some(instance_id)).map(|m| m.id.as_str())
    }

    /// Kafka's `validateCurrentMember`: a static member's instance id must map to this member
    /// id (else FENCED_INSTANCE_ID, or UNKNOWN_MEMBER_ID if unknown); a dynamic member must
    /// exist.
    fn validate_current_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        match instance_id {
            Some(instance) => match self.static_member_id(instance) {
                Some(current) if current != member_id => Err(code::FENCED_INSTANCE_ID),
                Some(_) => Ok(()),
                None => Err(code::UNKNOWN_MEMBER_ID),
            },
            None if self.member(member_id).is_none() => Err(code::UNKNOWN_MEMBER_ID),
            None => Ok(()),
        }
    }

    /// How long the group waits for members to rejoin: the largest of their rebalance timeouts.
    fn rebalance_timeout_ms(&self) -> u64 {
        self.members.iter().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0)
    }

    /// Whether the leader is `member_id`.
    fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// A fresh member id, `"{prefix}-{now_ms}-{seq}"`: the sequence makes it unique within the
    /// group, the time keeps a re-created group from handing out an id of its predecessor.
    /// (Kafka appends a random UUID; this keeps the engine deterministic.)
    fn generate_member_id(&mut self, prefix: &str, now_ms: u64) -> MemberId {
        self.member_seq += 1;
        format!("{prefix}-{now_ms}-{}", self.member_seq)
    }
}

/// A JoinGroup answer carrying only an error (Kafka's `JoinGroupResult(memberId, error)`).
fn join_error(token: Token, member_id: &str, error_code: i16) -> Reply {
    Reply::Join(
        token,
        JoinResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
            skip_assignment: false,
        },
    )
}

/// A SyncGroup answer carrying only an error.
fn sync_error(token: Token, error_code: i16) -> Reply {
    Reply::Sync(token, SyncResponse { error_code, protocol_type: None, protocol_name: None, assignment: Bytes::new() })
}
