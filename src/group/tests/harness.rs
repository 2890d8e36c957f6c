//! Drives a [`Group`] and keeps the books on its parked requests.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::group::{
    Group, GroupConfig, GroupPhase, JoinRequest, JoinResponse, Reply, SyncRequest, SyncResponse, Token,
};

/// Session timeout every test member asks for.
pub(super) const SESSION: u64 = 10_000;
/// Rebalance timeout every test member asks for.
pub(super) const REBALANCE: u64 = 30_000;

pub(super) const NONE: i16 = 0;
pub(super) const NOT_COORDINATOR: i16 = 16;
pub(super) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(super) const ILLEGAL_GENERATION: i16 = 22;
pub(super) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub(super) const UNKNOWN_MEMBER_ID: i16 = 25;
pub(super) const INVALID_SESSION_TIMEOUT: i16 = 26;
pub(super) const REBALANCE_IN_PROGRESS: i16 = 27;
pub(super) const NON_EMPTY_GROUP: i16 = 68;
pub(super) const GROUP_ID_NOT_FOUND: i16 = 69;
pub(super) const MEMBER_ID_REQUIRED: i16 = 79;
pub(super) const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub(super) const FENCED_INSTANCE_ID: i16 = 82;

/// The broker defaults with this initial rebalance delay.
pub(super) fn config(initial_rebalance_delay_ms: u64) -> GroupConfig {
    GroupConfig { initial_rebalance_delay_ms, ..GroupConfig::default() }
}

/// Protocols named `names`, each with metadata `"{name}:{client}"`.
pub(super) fn protocols(client: &str, names: &[&str]) -> Vec<(String, Bytes)> {
    names.iter().map(|n| (n.to_string(), Bytes::from(format!("{n}:{client}")))).collect()
}

/// A group, a clock, and the ledger of requests waiting for an answer.
pub(super) struct Harness {
    /// The group under test.
    pub(super) group: Group,
    /// The current time.
    pub(super) now: u64,
    /// The last token handed out.
    last_token: Token,
    /// Sent and not answered yet.
    waiting: BTreeSet<Token>,
    /// Every answer, by token.
    answers: BTreeMap<Token, Reply>,
}

impl Harness {
    /// A fresh group with this initial rebalance delay.
    pub(super) fn new(initial_rebalance_delay_ms: u64) -> Self {
        Self::with_config(config(initial_rebalance_delay_ms))
    }

    /// A fresh group with this config.
    pub(super) fn with_config(config: GroupConfig) -> Self {
        let group = Group::new("g".into(), config);
        Self { group, now: 0, last_token: 0, waiting: BTreeSet::new(), answers: BTreeMap::new() }
    }

    /// Books replies: each must answer a request that is waiting.
    pub(super) fn record(&mut self, replies: Vec<Reply>) {
        for reply in replies {
            let token = reply.token();
            assert!(self.waiting.remove(&token), "token {token} answered twice or never sent: {reply:?}");
            self.answers.insert(token, reply);
        }
    }

    /// A v0–3 style join of `client` (no MEMBER_ID_REQUIRED) offering `range`.
    pub(super) fn join_request(&self, member_id: &str, client: &str) -> JoinRequest {
        JoinRequest {
            token: 0,
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: client.into(),
            client_host: format!("/10.0.0.{}", client.len()),
            session_timeout_ms: SESSION as i32,
            rebalance_timeout_ms: REBALANCE as i32,
            protocol_type: "consumer".into(),
            protocols: protocols(client, &["range"]),
            require_known_member_id: false,
            supports_skip_assignment: false,
        }
    }

    /// Sends a join (its token is set here) and books the replies.
    pub(super) fn send_join(&mut self, mut req: JoinRequest) -> Token {
        self.last_token += 1;
        req.token = self.last_token;
        self.waiting.insert(req.token);
        let replies = self.group.join(req, self.now);
        self.record(replies);
        self.last_token
    }

    /// A plain join of `client` with id `member_id`.
    pub(super) fn join(&mut self, member_id: &str, client: &str) -> Token {
        let req = self.join_request(member_id, client);
        self.send_join(req)
    }

    /// The v4 flow: an id-less join answered MEMBER_ID_REQUIRED, then the join with that id.
    /// Returns the id and the token of the second join.
    pub(super) fn join_v4(&mut self, client: &str) -> (String, Token) {
        let mut req = self.join_request("", client);
        req.require_known_member_id = true;
        let first = self.send_join(req.clone());
        let answer = self.join_answer(first).expect("MEMBER_ID_REQUIRED comes at once").clone();
        assert_eq!(answer.error_code, MEMBER_ID_REQUIRED);
        assert!(answer.member_id.starts_with(&format!("{client}-")), "{}", answer.member_id);
        req.member_id = answer.member_id.clone();
        (answer.member_id, self.send_join(req))
    }

    /// The answer to a join, if it came.
    pub(super) fn join_answer(&self, token: Token) -> Option<&JoinResponse> {
        match self.answers.get(&token) {
            Some(Reply::Join(_, response)) => Some(response),
            Some(other) => panic!("token {token} was a join, answered {other:?}"),
            None => None,
        }
    }

    /// The answer to a join, which must have come.
    pub(super) fn joined(&self, token: Token) -> JoinResponse {
        self.join_answer(token).unwrap_or_else(|| panic!("join {token} is still parked")).clone()
    }

    /// Sends a sync of `member_id` for `generation_id` and books the replies.
    pub(super) fn sync(&mut self, member_id: &str, generation_id: i32, assignments: Vec<(String, Bytes)>) -> Token {
        self.last_token += 1;
        let req = SyncRequest {
            token: self.last_token,
            member_id: member_id.into(),
            generation_id,
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments,
        };
        self.send_sync(req)
    }

    /// Sends a prepared sync (its token must be fresh) and books the replies.
    pub(super) fn send_sync(&mut self, req: SyncRequest) -> Token {
        let token = req.token;
        self.last_token = self.last_token.max(token);
        self.waiting.insert(token);
        let replies = self.group.sync(req, self.now);
        self.record(replies);
        token
    }

    /// Sends a v5 sync of static member `instance` that names the protocol `range`.
    pub(super) fn sync_static(&mut self, member_id: &str, instance: &str, generation_id: i32) -> Token {
        let token = self.fresh_token();
        self.send_sync(SyncRequest {
            token,
            member_id: member_id.into(),
            generation_id,
            group_instance_id: Some(instance.into()),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: Vec::new(),
        })
    }

    /// The next token a request built by hand should carry.
    pub(super) fn fresh_token(&mut self) -> Token {
        self.last_token += 1;
        self.last_token
    }

    /// The answer to a sync, if it came.
    pub(super) fn sync_answer(&self, token: Token) -> Option<&SyncResponse> {
        match self.answers.get(&token) {
            Some(Reply::Sync(_, response)) => Some(response),
            Some(other) => panic!("token {token} was a sync, answered {other:?}"),
            None => None,
        }
    }

    /// The answer to a sync, which must have come.
    pub(super) fn synced(&self, token: Token) -> SyncResponse {
        self.sync_answer(token).unwrap_or_else(|| panic!("sync {token} is still parked")).clone()
    }

    /// Whether the request is still parked.
    pub(super) fn is_waiting(&self, token: Token) -> bool {
        self.waiting.contains(&token)
    }

    /// A heartbeat of a dynamic member at the group's current generation.
    pub(super) fn heartbeat(&mut self, member_id: &str) -> i16 {
        let generation = self.group.generation_id();
        self.group.heartbeat(member_id, generation, None, self.now)
    }

    /// A LeaveGroup; books the replies and returns the codes.
    pub(super) fn leave(&mut self, members: &[(&str, Option<&str>)]) -> Vec<i16> {
        let members: Vec<_> = members.iter().map(|(id, i)| (id.to_string(), i.map(str::to_owned))).collect();
        let (codes, replies) = self.group.leave(&members, self.now);
        self.record(replies);
        codes
    }

    /// Moves the clock to `at` and ticks.
    pub(super) fn tick_at(&mut self, at: u64) {
        assert!(at >= self.now, "time runs forward");
        self.now = at;
        let replies = self.group.tick(at);
        self.record(replies);
    }

    /// Moves the clock by `ms` and ticks.
    pub(super) fn advance(&mut self, ms: u64) {
        self.tick_at(self.now + ms);
    }

    /// Ticks at each deadline until the join phase is over.
    pub(super) fn finish_join_phase(&mut self) {
        while self.group.phase() == GroupPhase::PreparingRebalance {
            let at = self.group.next_deadline().expect("a preparing group has a deadline");
            self.tick_at(at.max(self.now));
        }
    }

    /// The leader's id.
    pub(super) fn leader(&self) -> String {
        self.group.leader.clone().expect("the group has a leader")
    }

    /// Every member syncs for the current generation, followers first, then the leader with
    /// assignment `"to:{id}"` for each. Returns the tokens, in `ids` order.
    pub(super) fn sync_all(&mut self, ids: &[String]) -> Vec<Token> {
        let generation = self.group.generation_id();
        let leader = self.leader();
        let mut tokens: BTreeMap<&String, Token> = BTreeMap::new();
        for id in ids.iter().filter(|id| **id != leader) {
            tokens.insert(id, self.sync(id, generation, Vec::new()));
        }
        let assignments = ids.iter().map(|id| (id.clone(), assignment(id))).collect();
        let leader_token = self.sync(&leader, generation, assignments);
        assert_eq!(self.group.phase(), GroupPhase::Stable);
        ids.iter().map(|id| tokens.get(id).copied().unwrap_or(leader_token)).collect()
    }

    /// A Stable group of `clients`, which all join (v4 flow) before the initial delay ends.
    /// Needs a harness with a non-zero delay. Returns their ids.
    pub(super) fn stable_group(&mut self, clients: &[&str]) -> Vec<String> {
        let joins: Vec<_> = clients.iter().map(|c| self.join_v4(c)).collect();
        self.finish_join_phase();
        let ids: Vec<String> = joins.iter().map(|(id, _)| id.clone()).collect();
        for (id, token) in &joins {
            assert_eq!(self.joined(*token).member_id, *id);
        }
        self.sync_all(&ids);
        ids
    }

    /// The requests sent and not answered yet.
    pub(super) fn waiting(&self) -> &BTreeSet<Token> {
        &self.waiting
    }

    /// Every request sent has been answered exactly once.
    pub(super) fn assert_all_answered(&self) {
        assert!(self.waiting.is_empty(), "requests never answered: {:?}", self.waiting);
    }
}

/// The assignment [`Harness::sync_all`] gives `member_id`.
pub(super) fn assignment(member_id: &str) -> Bytes {
    Bytes::from(format!("to:{member_id}"))
}
