//! What of a group outlives its coordinator. As in Kafka, a group's membership is written to
//! the offsets topic each time a generation settles (the leader's SyncGroup makes it Stable):
//! a coordinator that loads the group after a failover or restart takes its members back, so
//! their heartbeats and commits go on in the same generation instead of failing with
//! UNKNOWN_MEMBER_ID and forcing a rebalance. A group that empties or is deleted has its
//! record deleted.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::member::Member;
use super::{Group, GroupConfig, GroupPhase, MemberId};

/// A Stable group as written to the offsets topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// The settled generation.
    pub generation_id: i32,
    /// The members' protocol type (`consumer` for consumers).
    pub protocol_type: Option<String>,
    /// The protocol the members chose.
    pub protocol_name: Option<String>,
    /// The member that computed the assignments.
    pub leader: Option<MemberId>,
    /// The members, in the order they joined.
    pub members: Vec<MemberSnapshot>,
}

/// One member of a [`GroupSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSnapshot {
    /// Its id.
    pub id: MemberId,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// Its address.
    pub client_host: String,
    /// Its session timeout.
    pub session_timeout_ms: u64,
    /// Its rebalance timeout.
    pub rebalance_timeout_ms: u64,
    /// (name, metadata) of the protocols it offers, most preferred first.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// What the leader assigned it.
    pub assignment: Vec<u8>,
}

/// What the coordinator should have written of a group, as of now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durable {
    /// A Stable group: this snapshot.
    Keep(GroupSnapshot),
    /// An Empty or Dead group: no record.
    Delete,
    /// Mid-rebalance: whatever was written last stands, as in Kafka (a coordinator that takes
    /// over meanwhile restores the last settled generation, and the members rejoin from it).
    Unsettled,
}

impl Group {
    /// What the coordinator should have written of this group now.
    pub fn durable(&self) -> Durable {
        match self.phase {
            GroupPhase::Stable => Durable::Keep(GroupSnapshot {
                generation_id: self.generation_id,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol_name.clone(),
                leader: self.leader.clone(),
                members: self.members.iter().map(Member::snapshot).collect(),
            }),
            GroupPhase::Empty | GroupPhase::Dead => Durable::Delete,
            GroupPhase::PreparingRebalance | GroupPhase::CompletingRebalance => Durable::Unsettled,
        }
    }

    /// The group `snapshot` describes, Stable, on a coordinator that has just loaded it at
    /// `now_ms`: each member's session starts now, so members that lived on while no
    /// coordinator answered have a full session to find this one. A snapshot without members
    /// (never written, but read from a log all the same) gives an Empty group.
    pub fn restore(group_id: String, config: GroupConfig, snapshot: GroupSnapshot, now_ms: u64) -> Self {
        let mut group = Self::new(group_id, config);
        if snapshot.members.is_empty() {
            return group;
        }
        group.phase = GroupPhase::Stable;
        group.generation_id = snapshot.generation_id;
        group.protocol_type = snapshot.protocol_type;
        group.protocol_name = snapshot.protocol_name;
        group.members = snapshot.members.into_iter().map(|m| Member::restored(m, now_ms)).collect();
        let leader = snapshot.leader.filter(|l| group.member(l).is_some());
        group.leader = leader.or_else(|| group.members.first().map(|m| m.id.clone()));
        group
    }
}

impl Member {
    /// What a snapshot keeps of it.
    fn snapshot(&self) -> MemberSnapshot {
        MemberSnapshot {
            id: self.id.clone(),
            instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            session_timeout_ms: self.session_timeout_ms,
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            protocols: self.protocols.iter().map(|(name, meta)| (name.clone(), meta.to_vec())).collect(),
            assignment: self.assignment.to_vec(),
        }
    }

    /// A member of a restored generation, its session starting at `now_ms`.
    fn restored(m: MemberSnapshot, now_ms: u64) -> Self {
        Self {
            id: m.id,
            instance_id: m.instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            session_timeout_ms: m.session_timeout_ms,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            protocols: m.protocols.into_iter().map(|(name, meta)| (name, Bytes::from(meta))).collect(),
            assignment: Bytes::from(m.assignment),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            session_deadline: now_ms.saturating_add(m.session_timeout_ms),
        }
    }
}
