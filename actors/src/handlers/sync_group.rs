//! SyncGroup (v0–v5): the leader hands in the assignments; everyone gets theirs.
//!
//! v4 is the flexible encoding; v5 names the protocol type and name the member believes the
//! group uses (checked by the group) and echoes the group's in the answer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik::group::SyncRequest;
use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};

use super::{ask_coordinator, owned, str_bytes};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Followers wait for the leader, who may take up to its rebalance timeout; the group's own
/// timers answer them well before this.
const SYNC_TIMEOUT: Duration = Duration::from_secs(600);

/// Handles one SyncGroup request.
pub async fn handle(ctx: &Arc<NodeContext>, req: SyncGroupRequest, version: i16) -> ResponseKind {
    let request = SyncRequest {
        token: 0,
        member_id: req.member_id.to_string(),
        generation_id: req.generation_id,
        group_instance_id: owned(&req.group_instance_id),
        protocol_type: owned(&req.protocol_type),
        protocol_name: owned(&req.protocol_name),
        assignments: req.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect(),
    };
    let group_id = req.group_id.0.to_string();
    let msg = |reply| CoordinatorMsg::Sync { group_id, request, reply };
    let response = match ask_coordinator(ctx, msg, SYNC_TIMEOUT).await {
        Ok(r) if version >= 5 => SyncGroupResponse::default()
            .with_protocol_type(r.protocol_type.map(str_bytes))
            .with_protocol_name(r.protocol_name.map(str_bytes))
            .with_error_code(r.error_code)
            .with_assignment(r.assignment),
        Ok(r) => SyncGroupResponse::default().with_error_code(r.error_code).with_assignment(r.assignment),
        Err(code) => SyncGroupResponse::default().with_error_code(code).with_assignment(Bytes::new()),
    };
    ResponseKind::SyncGroup(response)
}
