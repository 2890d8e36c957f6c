//! Heartbeat, OffsetCommit validation, LeaveGroup, and the end of a group (DeleteGroups,
//! unloading) — Kafka's `handleHeartbeat`, `validateOffsetCommit`/`doCommitOffsets`,
//! `handleLeaveGroup`, `handleDeleteGroups`, `onGroupUnloaded`.

use super::{Group, GroupPhase, Reply, code, join_error, sync_error};

impl Group {
    /// Handles a Heartbeat and answers its error code. A member in good standing has its
    /// session restarted; during PreparingRebalance it is told to rejoin (27). During
    /// CompletingRebalance the answer is 0, as in Kafka: the member already has the new
    /// generation and may heartbeat while waiting to sync.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        generation_id: i32,
        group_instance_id: Option<&str>,
        now_ms: u64,
    ) -> i16 {
        if self.phase == GroupPhase::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(error) = self.validate_current_member(member_id, group_instance_id) {
            return error;
        }
        if generation_id != self.generation_id {
            return code::ILLEGAL_GENERATION;
        }
        let answer = match self.phase {
            GroupPhase::Empty | GroupPhase::Dead => return code::UNKNOWN_MEMBER_ID,
            GroupPhase::PreparingRebalance => code::REBALANCE_IN_PROGRESS,
            GroupPhase::CompletingRebalance | GroupPhase::Stable => code::NONE,
        };
        if let Some(member) = self.member_mut(member_id) {
            member.touch(now_ms);
        }
        answer
    }

    /// Validates an OffsetCommit and answers 0 or its error code. Generation < 0 with no member
    /// id and no instance id is a "simple" commit (a consumer that assigns itself partitions),
    /// allowed only while the group has no members. Otherwise the member must be current and
    /// of this generation; during CompletingRebalance the commit is refused with
    /// REBALANCE_IN_PROGRESS, during PreparingRebalance it is allowed (the heartbeat tells the
    /// member to rejoin). An accepted member commit restarts its session, as a heartbeat would.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        generation_id: i32,
        group_instance_id: Option<&str>,
        now_ms: u64,
    ) -> i16 {
        if self.phase == GroupPhase::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        if generation_id < 0 && member_id.is_empty() && group_instance_id.is_none() {
            return if self.phase == GroupPhase::Empty { code::NONE } else { code::UNKNOWN_MEMBER_ID };
        }
        if let Err(error) = self.validate_current_member(member_id, group_instance_id) {
            return error;
        }
        if generation_id != self.generation_id {
            return code::ILLEGAL_GENERATION;
        }
        match self.phase {
            GroupPhase::Stable | GroupPhase::PreparingRebalance => {
                if let Some(member) = self.member_mut(member_id) {
                    member.touch(now_ms);
                }
                code::NONE
            }
            GroupPhase::CompletingRebalance => code::REBALANCE_IN_PROGRESS,
            GroupPhase::Empty | GroupPhase::Dead => code::UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup v0–2 (one member) and v3+ (a batch, each by member id, or by instance id alone
    /// with an empty member id): one error code per entry, in order, plus the replies completed
    /// by the resulting rebalance. A Dead group answers COORDINATOR_NOT_AVAILABLE for each entry
    /// (Kafka puts it in the top-level error instead).
    pub fn leave(&mut self, members: &[(String, Option<String>)], now_ms: u64) -> (Vec<i16>, Vec<Reply>) {
        let mut out = Vec::new();
        if self.phase == GroupPhase::Dead {
            return (vec![code::COORDINATOR_NOT_AVAILABLE; members.len()], out);
        }
        let codes =
            members.iter().map(|(id, instance)| self.leave_one(id, instance.as_deref(), now_ms, &mut out)).collect();
        (codes, out)
    }

    /// One entry of a LeaveGroup.
    fn leave_one(&mut self, member_id: &str, instance_id: Option<&str>, now_ms: u64, out: &mut Vec<Reply>) -> i16 {
        if member_id.is_empty() {
            // An administrator removing a static member knows only its instance id.
            let Some(current) = instance_id.and_then(|i| self.static_member_id(i)).map(str::to_owned) else {
                return code::UNKNOWN_MEMBER_ID;
            };
            self.remove_member_and_rebalance(&current, now_ms, out);
        } else if self.pending_members.remove(member_id).is_some() {
            // The join phase may have been waiting only for this id to come back.
            self.try_complete_join(now_ms, out);
        } else {
            if let Err(error) = self.validate_current_member(member_id, instance_id) {
                return error;
            }
            self.remove_member_and_rebalance(member_id, now_ms, out);
        }
        code::NONE
    }

    /// DeleteGroups: only an Empty group can be deleted; it becomes Dead. An Empty group has no
    /// members, so no request is parked and the list is empty; it is there so an owner can
    /// treat every transition alike. Errors: NON_EMPTY_GROUP (68) in any other phase (Kafka
    /// decides by phase, so a group still finishing a rebalance without members counts as
    /// non-empty), GROUP_ID_NOT_FOUND (69) if already Dead.
    pub fn delete(&mut self) -> Result<Vec<Reply>, i16> {
        match self.phase {
            GroupPhase::Empty => {
                self.phase = GroupPhase::Dead;
                self.pending_members.clear();
                self.join_timer = None;
                self.sync_deadline = None;
                Ok(Vec::new())
            }
            GroupPhase::Dead => Err(code::GROUP_ID_NOT_FOUND),
            GroupPhase::PreparingRebalance | GroupPhase::CompletingRebalance | GroupPhase::Stable => {
                Err(code::NON_EMPTY_GROUP)
            }
        }
    }

    /// Makes the group Dead whatever its phase (the coordinator stops or moves it elsewhere)
    /// and answers every parked request NOT_COORDINATOR, so the clients look for the new
    /// coordinator (Kafka's `onGroupUnloaded`). Members are forgotten.
    pub fn unload(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        for member in self.members.drain(..) {
            if let Some(token) = member.awaiting_join {
                out.push(join_error(token, &member.id, code::NOT_COORDINATOR));
            }
            if let Some(token) = member.awaiting_sync {
                out.push(sync_error(token, code::NOT_COORDINATOR));
            }
        }
        self.phase = GroupPhase::Dead;
        self.leader = None;
        self.pending_members.clear();
        self.pending_sync.clear();
        self.join_timer = None;
        self.sync_deadline = None;
        out
    }
}
