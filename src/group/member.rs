//! One member of a group: what it supports, its assignment, its session, and the requests of
//! its that wait for an answer.

use bytes::Bytes;

use super::types::{JoinRequest, MemberId, Token};

/// How long a member that has just been added may wait in its first JoinGroup. Its session
/// cannot be checked meanwhile (it has no generation to heartbeat with), and a client that
/// gave up and retried would otherwise leave a defunct member behind. Kafka's
/// `NewMemberJoinTimeoutMs`.
pub(super) const NEW_MEMBER_JOIN_TIMEOUT_MS: u64 = 5 * 60 * 1000;

/// A member of the group.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// Its id; changes only when a static member is replaced.
    pub(super) id: MemberId,
    /// `group.instance.id` of a static member.
    pub(super) instance_id: Option<String>,
    /// Its `client.id`, for DescribeGroups.
    pub(super) client_id: String,
    /// Its address, for DescribeGroups.
    pub(super) client_host: String,
    /// Silence longer than this removes it.
    pub(super) session_timeout_ms: u64,
    /// How long it may take to rejoin; the group waits for the largest of these.
    pub(super) rebalance_timeout_ms: u64,
    /// (name, metadata), most preferred first.
    pub(super) protocols: Vec<(String, Bytes)>,
    /// What the leader assigned it in the current generation.
    pub(super) assignment: Bytes,
    /// Its JoinGroup waiting for the join phase to end.
    pub(super) awaiting_join: Option<Token>,
    /// Its SyncGroup waiting for the leader's assignments.
    pub(super) awaiting_sync: Option<Token>,
    /// Added during the current join phase and not yet part of a generation.
    pub(super) is_new: bool,
    /// When it is removed unless it shows a sign of life first.
    pub(super) session_deadline: u64,
}

/// Milliseconds from a client's i32 field; a negative value counts as 0.
pub(super) fn millis(value: i32) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The rebalance timeout a JoinGroup asks for. Kafka's schema says a request without one uses
/// the session timeout (v0 has no such field; its default is -1), and clients that leave the
/// field unset send 0 (kafkajs' `joinGroup`): taken literally, 0 would remove every member
/// before its SyncGroup could arrive, so 0 or less counts as not given.
pub(super) fn rebalance_millis(req: &JoinRequest) -> u64 {
    if req.rebalance_timeout_ms > 0 { millis(req.rebalance_timeout_ms) } else { millis(req.session_timeout_ms) }
}

impl Member {
    /// A new member from its JoinGroup, parked in that JoinGroup.
    pub(super) fn joining(id: MemberId, req: &JoinRequest, now_ms: u64) -> Self {
        Self {
            id,
            instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: millis(req.session_timeout_ms),
            rebalance_timeout_ms: rebalance_millis(req),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(req.token),
            awaiting_sync: None,
            is_new: true,
            session_deadline: now_ms.saturating_add(NEW_MEMBER_JOIN_TIMEOUT_MS),
        }
    }

    /// Takes the protocols and timeouts of a rejoin (Kafka 3.x refreshes the timeouts too).
    pub(super) fn update_from(&mut self, req: &JoinRequest) {
        self.protocols = req.protocols.clone();
        self.session_timeout_ms = millis(req.session_timeout_ms);
        self.rebalance_timeout_ms = rebalance_millis(req);
    }

    /// A sign of life: the session starts over.
    pub(super) fn touch(&mut self, now_ms: u64) {
        self.session_deadline = now_ms.saturating_add(self.session_timeout_ms);
    }

    /// When the session expires, if it can. A parked request stands in for heartbeats (the
    /// client cannot send any while it waits), except for a member added in this join phase,
    /// whose first JoinGroup is bounded by [`NEW_MEMBER_JOIN_TIMEOUT_MS`] (Kafka's
    /// `hasSatisfiedHeartbeat`).
    pub(super) fn expiry(&self) -> Option<u64> {
        let parked = self.awaiting_join.is_some() || self.awaiting_sync.is_some();
        if parked && !self.is_new { None } else { Some(self.session_deadline) }
    }

    /// Whether it offers the protocol `name`.
    pub(super) fn supports(&self, name: &str) -> bool {
        self.protocols.iter().any(|(p, _)| p == name)
    }

    /// Whether a rejoin carries exactly the protocols (names, metadata, order) it has.
    pub(super) fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// Its metadata for `protocol`; empty if it does not support it.
    pub(super) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(p, _)| p == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    /// Its vote: the first protocol of its preference list among `candidates`.
    pub(super) fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols.iter().map(|(p, _)| p.as_str()).find(|p| candidates.contains(p))
    }
}
