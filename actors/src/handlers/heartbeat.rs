//! Heartbeat (v0–v4): keeps a member's session alive; tells it when to rejoin. v4 only adds
//! the flexible encoding.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, ResponseKind};

use super::{ask_coordinator, owned};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Handles one Heartbeat request.
pub async fn handle(ctx: &Arc<NodeContext>, req: HeartbeatRequest) -> ResponseKind {
    let msg = |reply| CoordinatorMsg::Heartbeat {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        generation_id: req.generation_id,
        group_instance_id: owned(&req.group_instance_id),
        reply,
    };
    let code = ask_coordinator(ctx, msg, Duration::from_secs(10)).await.unwrap_or_else(|code| code);
    ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code))
}
