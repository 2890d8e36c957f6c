//! DeleteGroups (v0–v2): removes empty groups and their committed offsets.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId, ResponseKind};

use super::{ask_coordinator, str_bytes};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Handles one DeleteGroups request.
pub async fn handle(ctx: &Arc<NodeContext>, req: DeleteGroupsRequest) -> ResponseKind {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.0.to_string()).collect();
    let msg = |reply| CoordinatorMsg::Delete { groups: ids.clone(), reply };
    let results = match ask_coordinator(ctx, msg, Duration::from_secs(10)).await {
        Ok(r) => r,
        Err(code) => ids.into_iter().map(|id| (id, code)).collect(),
    };
    let results = results
        .into_iter()
        .map(|(id, code)| DeletableGroupResult::default().with_group_id(GroupId(str_bytes(id))).with_error_code(code))
        .collect();
    ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(results))
}
