//! SyncGroup: followers wait for the leader's assignments, which the leader's own SyncGroup
//! brings (Kafka's `handleSyncGroup`, `setAndPropagateAssignment`).

use std::collections::HashMap;

use bytes::Bytes;

use super::{Group, GroupPhase, Reply, SyncRequest, SyncResponse, code, sync_error};

impl Group {
    /// Handles a SyncGroup. During CompletingRebalance it is parked until the leader's arrives;
    /// the leader's answers every parked one (its own included) and makes the group Stable.
    pub fn sync(&mut self, req: SyncRequest, now_ms: u64) -> Vec<Reply> {
        let mut out = Vec::new();
        if let Err(error) = self.validate_sync(&req) {
            out.push(sync_error(req.token, error));
            return out;
        }
        match self.phase {
            GroupPhase::Empty => out.push(sync_error(req.token, code::UNKNOWN_MEMBER_ID)),
            GroupPhase::PreparingRebalance => out.push(sync_error(req.token, code::REBALANCE_IN_PROGRESS)),
            GroupPhase::Dead => out.push(sync_error(req.token, code::COORDINATOR_NOT_AVAILABLE)),
            GroupPhase::CompletingRebalance => self.park_sync(req, now_ms, &mut out),
            GroupPhase::Stable => {
                self.sync_received(&req.member_id);
                let assignment = match self.member_mut(&req.member_id) {
                    Some(member) => {
                        member.touch(now_ms);
                        member.assignment.clone()
                    }
                    None => Bytes::new(),
                };
                out.push(Reply::Sync(req.token, self.sync_response(assignment)));
            }
        }
        out
    }

    /// Kafka's `validateSyncGroup`: the member, its generation, and (v5+) the protocol it
    /// believes the group uses.
    fn validate_sync(&self, req: &SyncRequest) -> Result<(), i16> {
        if self.phase == GroupPhase::Dead {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        }
        self.validate_current_member(&req.member_id, req.group_instance_id.as_deref())?;
        let mismatch = |given: &Option<String>, ours: &Option<String>| given.is_some() && given != ours;
        if req.generation_id != self.generation_id {
            Err(code::ILLEGAL_GENERATION)
        } else if mismatch(&req.protocol_type, &self.protocol_type) || mismatch(&req.protocol_name, &self.protocol_name)
        {
            Err(code::INCONSISTENT_GROUP_PROTOCOL)
        } else {
            Ok(())
        }
    }

    /// Parks a sync while the group waits for the leader's; the leader's completes them all.
    /// A sync the member already had parked is superseded (the client retried) and answered
    /// REBALANCE_IN_PROGRESS rather than leaked.
    fn park_sync(&mut self, req: SyncRequest, now_ms: u64, out: &mut Vec<Reply>) {
        let Some(member) = self.member_mut(&req.member_id) else { return };
        if let Some(old) = member.awaiting_sync.replace(req.token) {
            out.push(sync_error(old, code::REBALANCE_IN_PROGRESS));
        }
        self.sync_received(&req.member_id);
        if self.is_leader(&req.member_id) {
            self.distribute_assignments(req.assignments, now_ms, out);
            self.phase = GroupPhase::Stable;
        }
    }

    /// The member has synced this generation; once all have, nobody is removed for not syncing.
    fn sync_received(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    /// Stores the leader's assignments (a member the leader left out gets an empty one;
    /// entries for unknown ids are ignored; of duplicates the last wins, as in Kafka) and
    /// answers every parked sync, restarting those members' sessions.
    fn distribute_assignments(&mut self, assignments: Vec<(String, Bytes)>, now_ms: u64, out: &mut Vec<Reply>) {
        let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
        let template = self.sync_response(Bytes::new());
        for member in &mut self.members {
            member.assignment = by_member.remove(&member.id).unwrap_or_default();
            if let Some(token) = member.awaiting_sync.take() {
                out.push(Reply::Sync(
                    token,
                    SyncResponse { assignment: member.assignment.clone(), ..template.clone() },
                ));
                member.touch(now_ms);
            }
        }
    }

    /// A successful SyncGroup answer carrying `assignment`.
    fn sync_response(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error_code: code::NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }
}
