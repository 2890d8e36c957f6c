//! The join phase: starting it, its timers, completing it into a new generation (protocol
//! vote, leader, answers), and removing members (Kafka's `prepareRebalance`, `onCompleteJoin`,
//! `removeMemberAndUpdateGroup`, `GroupMetadata.selectProtocol`).

use bytes::Bytes;

use super::member::Member;
use super::{Group, GroupPhase, JoinResponse, JoinTimer, JoinedMember, Reply, code, join_error, sync_error};

impl Group {
    /// Whether a change of membership may start a rebalance now (Kafka's `canRebalance`).
    pub(super) fn can_rebalance(&self) -> bool {
        matches!(self.phase, GroupPhase::Empty | GroupPhase::Stable | GroupPhase::CompletingRebalance)
    }

    /// Enters PreparingRebalance: members waiting for assignments are told to rejoin, and the
    /// join phase's timer is armed (the initial delay when the group was Empty).
    pub(super) fn prepare_rebalance(&mut self, now_ms: u64, out: &mut Vec<Reply>) {
        if self.phase == GroupPhase::CompletingRebalance {
            self.fail_syncs(code::REBALANCE_IN_PROGRESS, now_ms, out);
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let rebalance_timeout = self.rebalance_timeout_ms();
        self.join_timer = Some(if self.phase == GroupPhase::Empty {
            let delay_ms = self.config.initial_rebalance_delay_ms;
            JoinTimer::InitialDelay {
                deadline: now_ms.saturating_add(delay_ms),
                delay_ms,
                remaining_ms: rebalance_timeout.saturating_sub(delay_ms),
            }
        } else {
            JoinTimer::Rebalance { deadline: now_ms.saturating_add(rebalance_timeout) }
        });
        self.phase = GroupPhase::PreparingRebalance;
        self.try_complete_join(now_ms, out);
    }

    /// Kafka's `resetAndPropagateAssignmentError`: assignments are void, parked syncs get `error`.
    fn fail_syncs(&mut self, error: i16, now_ms: u64, out: &mut Vec<Reply>) {
        for member in &mut self.members {
            member.assignment = Bytes::new();
            if let Some(token) = member.awaiting_sync.take() {
                out.push(sync_error(token, error));
                // Its session was on hold while it waited; it starts over now.
                member.touch(now_ms);
            }
        }
    }

    /// Ends the join phase if it can end now: every member rejoined (not during the initial
    /// delay, which always runs its course), or its timer is due.
    pub(super) fn try_complete_join(&mut self, now_ms: u64, out: &mut Vec<Reply>) {
        // Loops only when an initial delay is extended by zero.
        while self.phase == GroupPhase::PreparingRebalance {
            match self.join_timer {
                Some(JoinTimer::InitialDelay { deadline, delay_ms, remaining_ms }) if now_ms >= deadline => {
                    if self.new_member_added && remaining_ms != 0 {
                        self.new_member_added = false;
                        let next = self.config.initial_rebalance_delay_ms.min(remaining_ms);
                        self.join_timer = Some(JoinTimer::InitialDelay {
                            deadline: now_ms.saturating_add(next),
                            delay_ms: next,
                            remaining_ms: remaining_ms.saturating_sub(delay_ms),
                        });
                    } else {
                        self.complete_join(now_ms, out);
                    }
                }
                Some(JoinTimer::Rebalance { deadline }) if now_ms >= deadline || self.all_joined() => {
                    self.complete_join(now_ms, out);
                }
                _ => return,
            }
        }
    }

    /// Every member has a parked join and no handed-out id is still expected back.
    fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.iter().all(|m| m.awaiting_join.is_some())
    }

    /// Kafka's `onCompleteJoin`: dynamic members that did not rejoin are dropped (static ones
    /// stay until their session ends), and the next generation starts with the rest.
    fn complete_join(&mut self, now_ms: u64, out: &mut Vec<Reply>) {
        self.join_timer = None;
        let missing: Vec<_> = self
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &missing {
            self.remove_member(id, out);
        }
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Only static members are left and none rejoined: give them another rebalance
            // timeout (their sessions may end meanwhile). At least 1 ms, so a tick progresses.
            let wait = self.rebalance_timeout_ms().max(1);
            self.join_timer = Some(JoinTimer::Rebalance { deadline: now_ms.saturating_add(wait) });
            return;
        }
        self.init_next_generation();
        if self.phase == GroupPhase::CompletingRebalance {
            self.answer_joins(now_ms, out);
        }
    }

    /// Keeps the leader if it rejoined, else makes the first member that did the leader.
    /// False if nobody rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        if self.leader.as_deref().and_then(|id| self.member(id)).is_some_and(|m| m.awaiting_join.is_some()) {
            return true;
        }
        match self.members.iter().find(|m| m.awaiting_join.is_some()) {
            Some(joined) => {
                self.leader = Some(joined.id.clone());
                true
            }
            None => false,
        }
    }

    /// Kafka's `initNextGeneration`: a new generation id, and the protocol voted for
    /// (CompletingRebalance), or no protocol when nobody is left (Empty).
    fn init_next_generation(&mut self) {
        self.generation_id = self.generation_id.saturating_add(1);
        self.pending_sync.clear();
        self.new_member_added = false;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.phase = GroupPhase::Empty;
        } else {
            self.protocol_name = self.select_protocol();
            self.phase = GroupPhase::CompletingRebalance;
        }
    }

    /// Answers every parked join with the new generation (the leader's answer lists all
    /// members), restarts every session, and expects a SyncGroup from every member within the
    /// rebalance timeout.
    fn answer_joins(&mut self, now_ms: u64, out: &mut Vec<Reply>) {
        let leader = self.leader_or_empty();
        let template = self.generation_response("", false, leader.clone());
        let everyone = self.members_metadata();
        for member in &mut self.members {
            if let Some(token) = member.awaiting_join.take() {
                let members = if member.id == leader { everyone.clone() } else { Vec::new() };
                out.push(Reply::Join(
                    token,
                    JoinResponse { member_id: member.id.clone(), members, ..template.clone() },
                ));
            }
            member.touch(now_ms);
            member.is_new = false;
            self.pending_sync.insert(member.id.clone());
        }
        self.sync_deadline = Some(now_ms.saturating_add(self.rebalance_timeout_ms()));
    }

    /// Every member with its metadata for the generation's protocol, for the leader.
    pub(super) fn members_metadata(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        let entry = |m: &Member| JoinedMember {
            member_id: m.id.clone(),
            group_instance_id: m.instance_id.clone(),
            metadata: m.metadata(protocol),
        };
        self.members.iter().map(entry).collect()
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports, each member votes
    /// for its most preferred one and the most votes win. Kafka breaks ties arbitrarily; here
    /// the protocol that got its first vote earliest (in join order) wins.
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect();
        let mut tally: Vec<(&str, usize)> = Vec::new();
        for vote in self.members.iter().filter_map(|m| m.vote(&candidates)) {
            match tally.iter_mut().find(|(name, _)| *name == vote) {
                Some((_, votes)) => *votes += 1,
                None => tally.push((vote, 1)),
            }
        }
        // `max_by_key` keeps the last of equals; reversed, that is the earliest.
        tally.into_iter().rev().max_by_key(|(_, votes)| *votes).map(|(name, _)| name.to_owned())
    }

    /// Removes a member (or a handed-out id) without touching the phase. Its parked requests are
    /// answered UNKNOWN_MEMBER_ID: the client is still there and must rejoin as a new member.
    pub(super) fn remove_member(&mut self, member_id: &str, out: &mut Vec<Reply>) {
        self.pending_members.remove(member_id);
        self.pending_sync.remove(member_id);
        let Some(index) = self.members.iter().position(|m| m.id == member_id) else { return };
        let member = self.members.remove(index);
        if let Some(token) = member.awaiting_join {
            out.push(join_error(token, "", code::UNKNOWN_MEMBER_ID));
        }
        if let Some(token) = member.awaiting_sync {
            out.push(sync_error(token, code::UNKNOWN_MEMBER_ID));
        }
        if self.is_leader(member_id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
    }

    /// Kafka's `removeMemberAndUpdateGroup`: removes a member, then rebalances (Stable,
    /// CompletingRebalance) or checks whether the join phase can end without it.
    pub(super) fn remove_member_and_rebalance(&mut self, member_id: &str, now_ms: u64, out: &mut Vec<Reply>) {
        self.remove_member(member_id, out);
        match self.phase {
            GroupPhase::Stable | GroupPhase::CompletingRebalance => self.prepare_rebalance(now_ms, out),
            GroupPhase::PreparingRebalance => self.try_complete_join(now_ms, out),
            GroupPhase::Empty | GroupPhase::Dead => {}
        }
    }
}
