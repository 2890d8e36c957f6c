//! The values that go in and out of a [`Group`](super::Group): its limits, the JoinGroup and
//! SyncGroup requests and answers, and what DescribeGroups shows.

use std::fmt;

use bytes::Bytes;

/// A member id as the coordinator hands it out (`"{client_id}-…"`).
pub type MemberId = String;

/// A request waiting for its answer is identified by the token the actor gave it.
pub type Token = u64;

/// Broker-wide limits every group applies (Kafka's `group.*` broker configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    pub min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    pub max_session_timeout_ms: i32,
    /// How long an empty group's first join waits for more members before generation 1
    /// completes (`group.initial.rebalance.delay.ms`); 0 completes it at once.
    pub initial_rebalance_delay_ms: u64,
    /// Most members a group may have (`group.max.size`); 0 means no limit.
    pub max_size: usize,
}

impl Default for GroupConfig {
    /// Kafka's defaults, except `max_size`, which Kafka leaves at `i32::MAX`.
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: 0,
        }
    }
}

/// JoinGroup v0–9, already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// How the actor recognises the answer, which may come from a later call.
    pub token: Token,
    /// `""` for a member that has no id yet.
    pub member_id: String,
    /// `group.instance.id` of a static member (v5+).
    pub group_instance_id: Option<String>,
    /// The client's `client.id`; the prefix of a generated member id.
    pub client_id: String,
    /// The client's address, for DescribeGroups.
    pub client_host: String,
    /// Silence longer than this removes the member.
    pub session_timeout_ms: i32,
    /// How long the member may take to rejoin during a rebalance (v0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// `consumer`, `connect`, …; every member of a group must agree.
    pub protocol_type: String,
    /// (name, metadata) of each protocol the member supports, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member must first fetch its id (MEMBER_ID_REQUIRED) and rejoin.
    pub require_known_member_id: bool,
    /// JoinGroup v9+ (KIP-814): the client understands `skip_assignment`, so a static leader
    /// rejoining a Stable group can be told it leads without being asked to assign.
    pub supports_skip_assignment: bool,
}

/// One member in the leader's JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// The member's id.
    pub member_id: String,
    /// Its `group.instance.id`, if static.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol (the consumer's subscription).
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// 0, or the Kafka error code.
    pub error_code: i16,
    /// The generation the member joined; -1 with an error.
    pub generation_id: i32,
    /// The group's protocol type; `None` with an error.
    pub protocol_type: Option<String>,
    /// The protocol chosen for this generation; `None` with an error.
    pub protocol_name: Option<String>,
    /// The leader's member id; `""` with an error.
    pub leader: String,
    /// The id the member must use from now on (also set with MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// Every member with its metadata; non-empty only in the leader's answer.
    pub members: Vec<JoinedMember>,
    /// JoinGroup v9+: the leader must not compute an assignment (a static leader rejoining a
    /// Stable group, which keeps the assignment it has).
    pub skip_assignment: bool,
}

/// SyncGroup v0–5, already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// How the actor recognises the answer, which may come from a later call.
    pub token: Token,
    /// The member sending it.
    pub member_id: String,
    /// The generation the member believes it is in.
    pub generation_id: i32,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// v5+: must match the group's protocol type when given.
    pub protocol_type: Option<String>,
    /// v5+: must match the generation's protocol when given.
    pub protocol_name: Option<String>,
    /// (member id, assignment); only the leader sends them.
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// 0, or the Kafka error code.
    pub error_code: i16,
    /// The group's protocol type; `None` with an error.
    pub protocol_type: Option<String>,
    /// The generation's protocol; `None` with an error.
    pub protocol_name: Option<String>,
    /// This member's assignment, as the leader wrote it; empty with an error.
    pub assignment: Bytes,
}

/// An answer for a request, routed by its token to the connection that waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Answers the JoinGroup that carried the token.
    Join(Token, JoinResponse),
    /// Answers the SyncGroup that carried the token.
    Sync(Token, SyncResponse),
}

impl Reply {
    /// The token of the request this answers.
    pub fn token(&self) -> Token {
        match self {
            Self::Join(token, _) | Self::Sync(token, _) => *token,
        }
    }

    /// The error code of the answer (0 = success).
    pub fn error_code(&self) -> i16 {
        match self {
            Self::Join(_, r) => r.error_code,
            Self::Sync(_, r) => r.error_code,
        }
    }
}

/// Where a group is in its life cycle; `Display` gives Kafka's state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupPhase {
    /// No members (possibly committed offsets only).
    Empty,
    /// Waiting for the members to (re)join before a new generation.
    PreparingRebalance,
    /// A generation exists; waiting for the leader's assignments.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted; the actor should drop it.
    Dead,
}

impl fmt::Display for GroupPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        })
    }
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member's id.
    pub member_id: String,
    /// Its `group.instance.id`, if static.
    pub group_instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// Its address.
    pub client_host: String,
    /// Its metadata for the chosen protocol; empty unless the group is Stable (as in Kafka).
    pub metadata: Bytes,
    /// Its assignment; empty unless the group is Stable (as in Kafka).
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Its phase (Kafka's state name via `Display`).
    pub state: GroupPhase,
    /// The members' protocol type; empty if no member ever joined.
    pub protocol_type: String,
    /// The chosen protocol; empty unless the group is Stable (as in Kafka).
    pub protocol: String,
    /// The current generation: 0 before the first, one more per completed rebalance
    /// (DescribeGroups does not carry it; the admin API shows it).
    pub generation_id: i32,
    /// The members, in the order they joined.
    pub members: Vec<MemberDescription>,
}
