//! JoinGroup: admission checks, new members (MEMBER_ID_REQUIRED, static replacement), and
//! known members rejoining in each phase (Kafka's `handleJoinGroup` and its helpers).

use super::member::{Member, millis};
use super::{Group, GroupPhase, JoinRequest, JoinResponse, MemberId, Reply, Token, code, join_error, sync_error};

impl Group {
    /// Handles a JoinGroup. The answer to `req` may be among the returned replies or come from
    /// a later call (when the join phase ends); the replies may also answer other members'
    /// parked requests.
    pub fn join(&mut self, req: JoinRequest, now_ms: u64) -> Vec<Reply> {
        let mut out = Vec::new();
        self.handle_join(req, now_ms, &mut out);
        // Any join may be the last one the phase waits for.
        self.try_complete_join(now_ms, &mut out);
        out
    }

    /// The checks every JoinGroup passes first, in Kafka's order, then the new/known split.
    fn handle_join(&mut self, req: JoinRequest, now_ms: u64, out: &mut Vec<Reply>) {
        let (min, max) = (self.config.min_session_timeout_ms, self.config.max_session_timeout_ms);
        if !(min..=max).contains(&req.session_timeout_ms) {
            out.push(join_error(req.token, &req.member_id, code::INVALID_SESSION_TIMEOUT));
        } else if !self.accepts_joining(&req.member_id) {
            // Kafka drops a known member it turns away, so the rebalance can go on without it.
            self.remove_member(&req.member_id, out);
            out.push(join_error(req.token, "", code::GROUP_MAX_SIZE_REACHED));
        } else if self.phase == GroupPhase::Dead {
            out.push(join_error(req.token, &req.member_id, code::COORDINATOR_NOT_AVAILABLE));
        } else if !self.supports_protocols(&req) {
            out.push(join_error(req.token, &req.member_id, code::INCONSISTENT_GROUP_PROTOCOL));
        } else if req.member_id.is_empty() {
            self.join_new_member(req, now_ms, out);
        } else {
            self.join_known_member(req, now_ms, out);
        }
    }

    /// Kafka's `acceptJoiningMember`: while preparing, count members that have rejoined (the
    /// group may be over a lowered limit, and this lets the last rejoiners be turned away);
    /// otherwise count all members.
    fn accepts_joining(&self, member_id: &str) -> bool {
        let max = self.config.max_size;
        if max == 0 {
            return true;
        }
        let known = self.member(member_id);
        match self.phase {
            GroupPhase::Empty | GroupPhase::Dead => true,
            GroupPhase::PreparingRebalance => {
                let joined = self.members.iter().filter(|m| m.awaiting_join.is_some()).count();
                known.is_some_and(|m| m.awaiting_join.is_some()) || joined < max
            }
            GroupPhase::CompletingRebalance | GroupPhase::Stable => known.is_some() || self.members.len() < max,
        }
    }

    /// Kafka's `supportsProtocols`: the first member only needs a protocol type and at least
    /// one protocol; later ones must match the type and share a protocol with every member.
    fn supports_protocols(&self, req: &JoinRequest) -> bool {
        if self.phase == GroupPhase::Empty {
            return !req.protocol_type.is_empty() && !req.protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(req.protocol_type.as_str())
            && req.protocols.iter().any(|(name, _)| self.members.iter().all(|m| m.supports(name)))
    }

    /// A member without an id: a static one replaces its previous incarnation or is added; a
    /// dynamic one is added, or (v4+) first told its id with MEMBER_ID_REQUIRED.
    fn join_new_member(&mut self, req: JoinRequest, now_ms: u64, out: &mut Vec<Reply>) {
        let prefix = req.group_instance_id.clone().unwrap_or_else(|| req.client_id.clone());
        let new_id = self.generate_member_id(&prefix, now_ms);
        let previous = req.group_instance_id.as_deref().and_then(|i| self.static_member_id(i)).map(str::to_owned);
        if let Some(old_id) = previous {
            self.replace_static_member(&old_id, new_id, &req, now_ms, out);
        } else if req.group_instance_id.is_none() && req.require_known_member_id {
            // The id is only remembered: a client that never comes back with it must not hold
            // a place in the group. It lapses after the session timeout it asked for.
            let lapses = now_ms.saturating_add(millis(req.session_timeout_ms));
            self.pending_members.insert(new_id.clone(), lapses);
            out.push(join_error(req.token, &new_id, code::MEMBER_ID_REQUIRED));
        } else {
            self.add_member_and_rebalance(new_id, &req, now_ms, out);
        }
    }

    /// A member with an id: a pending one is added now; a known one rejoins according to the
    /// phase (Kafka's `doCurrentMemberJoinGroup`).
    fn join_known_member(&mut self, req: JoinRequest, now_ms: u64, out: &mut Vec<Reply>) {
        // Pending ids are only handed to dynamic members; a static rejoin is validated below.
        if req.group_instance_id.is_none() && self.pending_members.contains_key(&req.member_id) {
            return self.add_member_and_rebalance(req.member_id.clone(), &req, now_ms, out);
        }
        if let Err(error) = self.validate_current_member(&req.member_id, req.group_instance_id.as_deref()) {
            return out.push(join_error(req.token, &req.member_id, error));
        }
        let unchanged = self.member(&req.member_id).is_some_and(|m| m.matches(&req.protocols));
        match self.phase {
            GroupPhase::PreparingRebalance => self.update_member(&req, out),
            // It may have missed the answer to its join: give it again.
            GroupPhase::CompletingRebalance if unchanged => {
                let with_members = self.is_leader(&req.member_id);
                out.push(self.generation_answer(req.token, &req.member_id, with_members, self.leader_or_empty()));
            }
            // A follower with nothing new gets the current generation; the leader rejoining
            // asks for a new assignment (e.g. after a topic metadata change), as in Kafka.
            GroupPhase::Stable if unchanged && !self.is_leader(&req.member_id) => {
                out.push(self.generation_answer(req.token, &req.member_id, false, self.leader_or_empty()));
            }
            GroupPhase::CompletingRebalance | GroupPhase::Stable => {
                self.update_member(&req, out);
                self.prepare_rebalance(now_ms, out);
            }
            GroupPhase::Empty | GroupPhase::Dead => {
                out.push(join_error(req.token, &req.member_id, code::UNKNOWN_MEMBER_ID))
            }
        }
    }

    /// Adds a member parked in its join, and starts a rebalance if none is under way.
    fn add_member_and_rebalance(&mut self, id: MemberId, req: &JoinRequest, now_ms: u64, out: &mut Vec<Reply>) {
        if self.phase == GroupPhase::PreparingRebalance && self.generation_id == 0 {
            self.new_member_added = true;
        }
        self.pending_members.remove(&id);
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.push(Member::joining(id, req, now_ms));
        if self.can_rebalance() {
            self.prepare_rebalance(now_ms, out);
        }
    }

    /// A known member's rejoin: new protocols and timeouts, and its join parked. A join it
    /// already had parked is superseded (the client retried, likely on a new connection) and
    /// answered REBALANCE_IN_PROGRESS so it rejoins, not leaked.
    fn update_member(&mut self, req: &JoinRequest, out: &mut Vec<Reply>) {
        if let Some(member) = self.member_mut(&req.member_id) {
            member.update_from(req);
            if let Some(old) = member.awaiting_join.replace(req.token) {
                out.push(join_error(old, &req.member_id, code::REBALANCE_IN_PROGRESS));
            }
        }
    }

    /// Kafka's `updateStaticMemberAndRebalance`: the instance's member gets `new_id`, and
    /// whoever still waits under the old id is fenced. In a Stable group whose protocol does not
    /// change, no rebalance is needed: the member keeps its assignment and is answered at once.
    /// Before JoinGroup v9 the answer names the *previous* leader id, so a rejoining leader does
    /// not compute an assignment a Stable group would never distribute; from v9 it names the
    /// real leader, lists the members to it and sets `skip_assignment` instead.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: MemberId,
        req: &JoinRequest,
        now_ms: u64,
        out: &mut Vec<Reply>,
    ) {
        let previous_leader = self.leader_or_empty();
        self.rename_member(old_id, &new_id, out);
        if let Some(member) = self.member_mut(&new_id) {
            member.touch(now_ms);
            member.update_from(req);
            member.awaiting_join = Some(req.token);
        }
        match self.phase {
            GroupPhase::Stable if self.select_protocol() == self.protocol_name => {
                let token = self.member_mut(&new_id).and_then(|m| m.awaiting_join.take()).unwrap_or(req.token);
                let answer = if req.supports_skip_assignment {
                    // KIP-814: the leader learns it leads and sees the members (to watch their
                    // subscriptions' metadata), but must not assign.
                    let leads = self.is_leader(&new_id);
                    let answer = self.generation_response(&new_id, leads, self.leader_or_empty());
                    JoinResponse { skip_assignment: leads, ..answer }
                } else {
                    self.generation_response(&new_id, false, previous_leader)
                };
                out.push(Reply::Join(token, answer));
            }
            // In CompletingRebalance the leader may be assigning to the old id: start over.
            GroupPhase::Stable | GroupPhase::CompletingRebalance => self.prepare_rebalance(now_ms, out),
            GroupPhase::PreparingRebalance | GroupPhase::Empty | GroupPhase::Dead => {}
        }
    }

    /// Gives a static member its new id, fencing the requests parked under the old one.
    fn rename_member(&mut self, old_id: &str, new_id: &str, out: &mut Vec<Reply>) {
        if let Some(member) = self.member_mut(old_id) {
            if let Some(token) = member.awaiting_join.take() {
                out.push(join_error(token, old_id, code::FENCED_INSTANCE_ID));
            }
            if let Some(token) = member.awaiting_sync.take() {
                out.push(sync_error(token, code::FENCED_INSTANCE_ID));
            }
            member.id = new_id.to_owned();
        }
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_owned());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_owned());
        }
    }

    /// The leader's id, or `""` when there is none.
    pub(super) fn leader_or_empty(&self) -> String {
        self.leader.clone().unwrap_or_default()
    }

    /// The current generation's JoinGroup answer for `member_id`; `with_members` for the
    /// leader's copy, which lists every member with its metadata.
    pub(super) fn generation_answer(&self, token: Token, member_id: &str, with_members: bool, leader: String) -> Reply {
        Reply::Join(token, self.generation_response(member_id, with_members, leader))
    }

    /// The body of [`Self::generation_answer`].
    pub(super) fn generation_response(&self, member_id: &str, with_members: bool, leader: String) -> JoinResponse {
        JoinResponse {
            error_code: code::NONE,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_owned(),
            members: if with_members { self.members_metadata() } else { Vec::new() },
            skip_assignment: false,
        }
    }
}
