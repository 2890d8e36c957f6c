//! LeaveGroup: one member (v0–v2) or a batch by member or instance id (v3–v5). v4 is the
//! flexible encoding; v5 gives each leaving member's reason, which is only logged (as Kafka does).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, ResponseKind};

use super::{ask_coordinator, owned, str_bytes};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Handles one LeaveGroup request.
pub async fn handle(ctx: &Arc<NodeContext>, req: LeaveGroupRequest, version: i16) -> ResponseKind {
    for m in &req.members {
        if let Some(reason) = &m.reason {
            tracing::debug!(group = %req.group_id.0, member = %m.member_id, %reason, "leave group");
        }
    }
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members.iter().map(|m| (m.member_id.to_string(), owned(&m.group_instance_id))).collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let group_id = req.group_id.0.to_string();
    let msg = |reply| CoordinatorMsg::Leave { group_id, members: members.clone(), reply };
    let (top, codes) = match ask_coordinator(ctx, msg, Duration::from_secs(10)).await {
        Ok(answer) => answer,
        Err(code) => (code, vec![code; members.len()]),
    };
    if version < 3 {
        let code = if top != 0 { top } else { codes.first().copied().unwrap_or(0) };
        return ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(code));
    }
    let responses = members
        .into_iter()
        .zip(codes)
        .map(|((member_id, instance), code)| {
            MemberResponse::default()
                .with_member_id(str_bytes(member_id))
                .with_group_instance_id(instance.map(str_bytes))
                .with_error_code(code)
        })
        .collect();
    ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(top).with_members(responses))
}
