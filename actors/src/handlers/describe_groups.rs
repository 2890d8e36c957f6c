//! DescribeGroups (v0–v5): state, protocol and members of groups; an unknown group is "Dead",
//! one coordinated elsewhere gets NOT_COORDINATOR.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ResponseKind};

use super::{ask_coordinator, str_bytes};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Handles one DescribeGroups request.
pub async fn handle(ctx: &Arc<NodeContext>, req: DescribeGroupsRequest, version: i16) -> ResponseKind {
    let ids: Vec<String> = req.groups.iter().map(|g| g.0.to_string()).collect();
    let msg = |reply| CoordinatorMsg::Describe { groups: ids.clone(), reply };
    let described = match ask_coordinator(ctx, msg, Duration::from_secs(10)).await {
        Ok(d) => d,
        Err(code) => {
            let failed = ids
                .into_iter()
                .map(|id| DescribedGroup::default().with_group_id(GroupId(str_bytes(id))).with_error_code(code));
            return ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(failed.collect()));
        }
    };
    let groups = described
        .into_iter()
        .map(|(id, description)| {
            let group = DescribedGroup::default().with_group_id(GroupId(str_bytes(id)));
            let d = match description {
                Ok(Some(d)) => d,
                Ok(None) => return group.with_group_state(str_bytes("Dead")),
                Err(code) => return group.with_error_code(code),
            };
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    let member = DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment);
                    if version >= 4 {
                        member.with_group_instance_id(m.group_instance_id.map(str_bytes))
                    } else {
                        member
                    }
                })
                .collect();
            group
                .with_group_state(str_bytes(d.state.to_string()))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol))
                .with_members(members)
        })
        .collect();
    ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(groups))
}
