//! JoinGroup (v0–v9): parks until the group's join phase completes.
//!
//! v6 is the flexible encoding; v7 echoes the protocol type and may leave the protocol name
//! null; v8 carries the client's reason, which is only logged (as Kafka does); v9 lets a static
//! leader rejoining a Stable group be told to skip the assignment (KIP-814).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chronik::group::{JoinRequest, JoinResponse};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};

use super::{ask_coordinator, owned, str_bytes};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Handles one JoinGroup request.
pub async fn handle(
    ctx: &Arc<NodeContext>,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    peer: SocketAddr,
) -> ResponseKind {
    let group_id = req.group_id.0.to_string();
    let rebalance_timeout_ms = if version == 0 { req.session_timeout_ms } else { req.rebalance_timeout_ms };
    if group_id.is_empty() {
        return encode(failed(ResponseError::InvalidGroupId.code()), version);
    }
    let request = JoinRequest {
        token: 0,
        member_id: req.member_id.to_string(),
        group_instance_id: owned(&req.group_instance_id),
        client_id,
        client_host: format!("/{}", peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    if let Some(reason) = &req.reason {
        tracing::debug!(group = %group_id, member = %request.member_id, %reason, "join group");
    }
    // The answer may legitimately take the whole rebalance timeout.
    let timeout = Duration::from_millis(rebalance_timeout_ms.max(0) as u64) + Duration::from_secs(30);
    let msg = |reply| CoordinatorMsg::Join { group_id, request, reply };
    let answer = ask_coordinator(ctx, msg, timeout).await.unwrap_or_else(failed);
    encode(answer, version)
}

fn failed(code: i16) -> JoinResponse {
    JoinResponse {
        error_code: code,
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        member_id: String::new(),
        members: Vec::new(),
        skip_assignment: false,
    }
}

fn encode(r: JoinResponse, version: i16) -> ResponseKind {
    let members = r
        .members
        .into_iter()
        .map(|m| {
            let member =
                JoinGroupResponseMember::default().with_member_id(str_bytes(m.member_id)).with_metadata(m.metadata);
            if version >= 5 { member.with_group_instance_id(m.group_instance_id.map(str_bytes)) } else { member }
        })
        .collect();
    // Not nullable before v7: an unknown protocol is the empty string.
    let protocol_name = if version >= 7 { r.protocol_name } else { Some(r.protocol_name.unwrap_or_default()) };
    let mut response = JoinGroupResponse::default()
        .with_error_code(r.error_code)
        .with_generation_id(r.generation_id)
        .with_protocol_name(protocol_name.map(str_bytes))
        .with_leader(str_bytes(r.leader))
        .with_member_id(str_bytes(r.member_id))
        .with_members(members);
    if version >= 7 {
        response = response.with_protocol_type(r.protocol_type.map(str_bytes));
    }
    if version >= 9 {
        response = response.with_skip_assignment(r.skip_assignment);
    }
    ResponseKind::JoinGroup(response)
}
