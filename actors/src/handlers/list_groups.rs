//! ListGroups (v0–v5): every group coordinated by this broker that has members or committed
//! offsets (clients ask every broker). v4 filters by state; v5 by group type (KIP-848), and
//! every group here is a `classic` one.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, ResponseKind};

use super::{ask_coordinator, str_bytes};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// The type of every group this broker runs: JoinGroup/SyncGroup groups, not KIP-848 ones.
const CLASSIC: &str = "classic";

/// Handles one ListGroups request.
pub async fn handle(ctx: &Arc<NodeContext>, req: ListGroupsRequest, version: i16) -> ResponseKind {
    let (code, listings) = match ask_coordinator(ctx, CoordinatorMsg::List, Duration::from_secs(10)).await {
        Ok(answer) => answer,
        Err(code) => return ResponseKind::ListGroups(ListGroupsResponse::default().with_error_code(code)),
    };
    let wanted = |state: &str| {
        req.states_filter.is_empty() || req.states_filter.iter().any(|s| s.as_str().eq_ignore_ascii_case(state))
    };
    let classic_wanted =
        req.types_filter.is_empty() || req.types_filter.iter().any(|t| t.as_str().eq_ignore_ascii_case(CLASSIC));
    let groups = listings
        .into_iter()
        .filter(|g| classic_wanted && wanted(&g.state))
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            let listed = if version >= 4 { listed.with_group_state(str_bytes(g.state)) } else { listed };
            if version >= 5 { listed.with_group_type(str_bytes(CLASSIC)) } else { listed }
        })
        .collect();
    ResponseKind::ListGroups(ListGroupsResponse::default().with_error_code(code).with_groups(groups))
}
