//! Realistic consumer-group responses (membership, coordinator lookup, committed offsets) at a
//! given version, for round-trip tests.
//!
//! Each sample sets only fields the version carries, so that encoding then decoding at that
//! version yields the sample again. They answer the requests in `sample_requests::groups`.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;

use crate::protocol::sample_requests::groups::{FOLLOWER, GROUP, INSTANCE, LEADER, assignment, group, subscription};
use crate::protocol::sample_requests::{TOPIC, s, topic};

/// Kafka's UNKNOWN_MEMBER_ID error code.
const UNKNOWN_MEMBER_ID: i16 = 25;

/// Kafka's REBALANCE_IN_PROGRESS error code.
const REBALANCE_IN_PROGRESS: i16 = 27;

/// Kafka's OFFSET_METADATA_TOO_LARGE error code.
const OFFSET_METADATA_TOO_LARGE: i16 = 12;

/// Kafka's NON_EMPTY_GROUP error code.
const NON_EMPTY_GROUP: i16 = 68;

/// One partition committed, one refused for oversized metadata.
pub(super) fn offset_commit(version: i16) -> OffsetCommitResponse {
    let partition = |index: i32, error_code: i16| {
        OffsetCommitResponsePartition::default().with_partition_index(index).with_error_code(error_code)
    };
    let partitions = vec![partition(0, 0), partition(1, OFFSET_METADATA_TOO_LARGE)];
    let topics = vec![OffsetCommitResponseTopic::default().with_name(topic(TOPIC)).with_partitions(partitions)];
    let response = OffsetCommitResponse::default().with_topics(topics);
    if version >= 3 { response.with_throttle_time_ms(0) } else { response }
}

/// Partition 0 has a committed offset (with its leader epoch from v5); partition 2 has none.
pub(super) fn offset_fetch(version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        return offset_fetch_groups();
    }
    let mut committed = OffsetFetchResponsePartition::default()
        .with_partition_index(0)
        .with_committed_offset(44)
        .with_metadata(Some(s("batch-17")))
        .with_error_code(0);
    if version >= 5 {
        committed = committed.with_committed_leader_epoch(3);
    }
    let none = OffsetFetchResponsePartition::default()
        .with_partition_index(2)
        .with_committed_offset(-1)
        .with_metadata(Some(s("")))
        .with_error_code(0);
    let topics =
        vec![OffsetFetchResponseTopic::default().with_name(topic(TOPIC)).with_partitions(vec![committed, none])];
    let mut response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response = response.with_error_code(0);
    }
    if version >= 3 {
        response = response.with_throttle_time_ms(0);
    }
    response
}

/// v8+: the same two partitions for the first group; the second group's coordinator is
/// elsewhere.
fn offset_fetch_groups() -> OffsetFetchResponse {
    let committed = OffsetFetchResponsePartitions::default()
        .with_partition_index(0)
        .with_committed_offset(44)
        .with_committed_leader_epoch(3)
        .with_metadata(Some(s("batch-17")));
    let none = OffsetFetchResponsePartitions::default()
        .with_partition_index(2)
        .with_committed_offset(-1)
        .with_metadata(Some(s("")));
    let topics =
        vec![OffsetFetchResponseTopics::default().with_name(topic(TOPIC)).with_partitions(vec![committed, none])];
    let found = OffsetFetchResponseGroup::default().with_group_id(group(GROUP)).with_topics(topics);
    let elsewhere = OffsetFetchResponseGroup::default().with_group_id(group("other-group")).with_error_code(16);
    OffsetFetchResponse::default().with_groups(vec![found, elsewhere]).with_throttle_time_ms(0)
}

/// This broker coordinates the group (v0–v3); v4+ answers per key, one not found yet.
pub(super) fn find_coordinator(version: i16) -> FindCoordinatorResponse {
    if version >= 4 {
        // v4+: one row per key asked, each with its own error.
        let found = Coordinator::default().with_key(s(GROUP)).with_node_id(BrokerId(1)).with_host(s("localhost"));
        let missing = Coordinator::default()
            .with_key(s("other-group"))
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(15)
            .with_error_message(Some(s("__consumer_offsets is being created")));
        return FindCoordinatorResponse::default().with_coordinators(vec![found.with_port(9092), missing]);
    }
    let response = FindCoordinatorResponse::default()
        .with_error_code(0)
        .with_node_id(BrokerId(1))
        .with_host(s("localhost"))
        .with_port(9092);
    if version >= 1 { response.with_throttle_time_ms(0).with_error_message(None) } else { response }
}

/// The leader's answer: generation 5 chose range (of type consumer, v7+), and lists both
/// members' subscriptions; v9 tells it to skip the assignment.
pub(super) fn join_group(version: i16) -> JoinGroupResponse {
    let member = |id: &str, instance: Option<&str>| {
        let member = JoinGroupResponseMember::default().with_member_id(s(id)).with_metadata(subscription());
        if version >= 5 { member.with_group_instance_id(instance.map(s)) } else { member }
    };
    let response = JoinGroupResponse::default()
        .with_error_code(0)
        .with_generation_id(5)
        .with_protocol_name(Some(s("range")))
        .with_leader(s(LEADER))
        .with_member_id(s(LEADER))
        .with_members(vec![member(LEADER, Some(INSTANCE)), member(FOLLOWER, None)]);
    let response = if version >= 2 { response.with_throttle_time_ms(0) } else { response };
    let response = if version >= 7 { response.with_protocol_type(Some(s("consumer"))) } else { response };
    // A static leader rejoining a Stable group: it sees the members but keeps the assignment.
    if version >= 9 { response.with_skip_assignment(true) } else { response }
}

/// Tells the member a rebalance started, so it rejoins.
pub(super) fn heartbeat(version: i16) -> HeartbeatResponse {
    let response = HeartbeatResponse::default().with_error_code(REBALANCE_IN_PROGRESS);
    if version >= 1 { response.with_throttle_time_ms(0) } else { response }
}

/// v0–2: the member left. v3: per member, the follower left and the instance id was unknown.
pub(super) fn leave_group(version: i16) -> LeaveGroupResponse {
    let mut response = LeaveGroupResponse::default().with_error_code(0);
    if version >= 1 {
        response = response.with_throttle_time_ms(0);
    }
    if version < 3 {
        return response;
    }
    let by_member = MemberResponse::default().with_member_id(s(FOLLOWER)).with_group_instance_id(None);
    let by_instance = MemberResponse::default()
        .with_member_id(s(""))
        .with_group_instance_id(Some(s(INSTANCE)))
        .with_error_code(UNKNOWN_MEMBER_ID);
    response.with_members(vec![by_member, by_instance])
}

/// The leader's own assignment; v5+ with the group's protocol type and name.
pub(super) fn sync_group(version: i16) -> SyncGroupResponse {
    let response = SyncGroupResponse::default().with_error_code(0).with_assignment(assignment(&[0, 1]));
    let response = if version >= 1 { response.with_throttle_time_ms(0) } else { response };
    if version >= 5 {
        response.with_protocol_type(Some(s("consumer"))).with_protocol_name(Some(s("range")))
    } else {
        response
    }
}

/// Our group, stable with its leader (a static member from v4); the unknown one is Dead.
pub(super) fn describe_groups(version: i16) -> DescribeGroupsResponse {
    let mut member = DescribedGroupMember::default()
        .with_member_id(s(LEADER))
        .with_client_id(s("rdkafka"))
        .with_client_host(s("/127.0.0.1"))
        .with_member_metadata(subscription())
        .with_member_assignment(assignment(&[0, 1, 2]));
    if version >= 4 {
        member = member.with_group_instance_id(Some(s(INSTANCE)));
    }
    let mut stable = DescribedGroup::default()
        .with_error_code(0)
        .with_group_id(group(GROUP))
        .with_group_state(s("Stable"))
        .with_protocol_type(s("consumer"))
        .with_protocol_data(s("range"))
        .with_members(vec![member]);
    if version >= 3 {
        // READ (3), DELETE (6) and DESCRIBE (8), as bits.
        stable = stable.with_authorized_operations(1 << 3 | 1 << 6 | 1 << 8);
    }
    let dead =
        DescribedGroup::default().with_error_code(0).with_group_id(group("payments")).with_group_state(s("Dead"));
    let response = DescribeGroupsResponse::default().with_groups(vec![stable, dead]);
    if version >= 1 { response.with_throttle_time_ms(0) } else { response }
}

/// A consumer group and a Connect group; v4 adds their states, v5 their (classic) type.
pub(super) fn list_groups(version: i16) -> ListGroupsResponse {
    let listed = |id: &str, protocol_type: &str, state: &str| {
        let listed = ListedGroup::default().with_group_id(group(id)).with_protocol_type(s(protocol_type));
        let listed = if version >= 4 { listed.with_group_state(s(state)) } else { listed };
        if version >= 5 { listed.with_group_type(s("classic")) } else { listed }
    };
    let groups = vec![listed(GROUP, "consumer", "Stable"), listed("connect-s3-sink", "connect", "Empty")];
    let response = ListGroupsResponse::default().with_error_code(0).with_groups(groups);
    if version >= 1 { response.with_throttle_time_ms(0) } else { response }
}

/// Our group still has members; the stale one is gone.
pub(super) fn delete_groups() -> DeleteGroupsResponse {
    let result = |id: &str, error_code: i16| {
        DeletableGroupResult::default().with_group_id(group(id)).with_error_code(error_code)
    };
    let results = vec![result(GROUP, NON_EMPTY_GROUP), result("stale-group", 0)];
    DeleteGroupsResponse::default().with_throttle_time_ms(0).with_results(results)
}

/// Partition 0 is still consumed by a member; partition 1's offset is gone.
pub(super) fn offset_delete() -> OffsetDeleteResponse {
    use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
    let partition =
        |p: i32, code: i16| OffsetDeleteResponsePartition::default().with_partition_index(p).with_error_code(code);
    let partitions = vec![partition(0, GROUP_SUBSCRIBED_TO_TOPIC), partition(1, 0)];
    let topics = vec![OffsetDeleteResponseTopic::default().with_name(topic(TOPIC)).with_partitions(partitions)];
    OffsetDeleteResponse::default().with_throttle_time_ms(0).with_topics(topics)
}

/// Kafka's GROUP_SUBSCRIBED_TO_TOPIC error code.
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
