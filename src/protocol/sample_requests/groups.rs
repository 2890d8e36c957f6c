//! Realistic consumer-group requests (membership, coordinator lookup, committed offsets) at a
//! given version, for round-trip tests.
//!
//! Each sample sets only fields the version carries, so that encoding then decoding at that
//! version yields the sample again. The story: a group of two consumers of `orders`, the first
//! of which leads and, from JoinGroup v5 on, is a static member.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

use super::{TOPIC, s, topic};

/// The group every group sample talks about.
pub(in crate::protocol) const GROUP: &str = "order-processors";

/// The member id the coordinator gave the group's leader.
pub(in crate::protocol) const LEADER: &str = "rdkafka-6f1c2a9e-3b7d-4e0a-9c55-0d8e1f2a3b4c";

/// The member id of the group's other consumer.
pub(in crate::protocol) const FOLLOWER: &str = "rdkafka-0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d";

/// The leader's `group.instance.id` (static membership, JoinGroup v5+).
pub(in crate::protocol) const INSTANCE: &str = "orders-worker-1";

/// A group id field value.
pub(in crate::protocol) fn group(name: &str) -> GroupId {
    GroupId(s(name))
}

/// Embedded consumer-protocol bytes: the schema version (0) as an i16, then `message` at it.
fn consumer_protocol(message: &impl Encodable) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    message.encode(&mut buf, 0).expect("encode consumer protocol message");
    buf.freeze()
}

/// A consumer's JoinGroup protocol metadata: subscribed to `orders`, no user data.
pub(in crate::protocol) fn subscription() -> Bytes {
    consumer_protocol(&ConsumerProtocolSubscription::default().with_topics(vec![s(TOPIC)]).with_user_data(None))
}

/// A SyncGroup assignment: `partitions` of `orders`, no user data.
pub(in crate::protocol) fn assignment(partitions: &[i32]) -> Bytes {
    let assigned = TopicPartition::default().with_topic(topic(TOPIC)).with_partitions(partitions.to_vec());
    consumer_protocol(
        &ConsumerProtocolAssignment::default().with_assigned_partitions(vec![assigned]).with_user_data(None),
    )
}

/// Commits two partitions of `orders`, one with metadata and one with a null metadata.
pub(super) fn offset_commit(version: i16) -> OffsetCommitRequest {
    let partition = |index: i32, offset: i64, metadata: Option<&str>| {
        let partition = OffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(offset)
            .with_committed_metadata(metadata.map(s));
        if version >= 6 { partition.with_committed_leader_epoch(3) } else { partition }
    };
    let partitions = vec![partition(0, 44, Some("batch-17")), partition(1, 12, None)];
    let topics = vec![OffsetCommitRequestTopic::default().with_name(topic(TOPIC)).with_partitions(partitions)];
    let mut request = OffsetCommitRequest::default()
        .with_group_id(group(GROUP))
        .with_generation_id_or_member_epoch(5)
        .with_member_id(s(LEADER))
        .with_topics(topics);
    if version <= 4 {
        request = request.with_retention_time_ms(86_400_000);
    }
    if version >= 7 {
        request = request.with_group_instance_id(Some(s(INSTANCE)));
    }
    request
}

/// v1 must name its partitions; v2+ asks for all of the group's offsets (null topics).
pub(super) fn offset_fetch(version: i16) -> OffsetFetchRequest {
    if version >= 8 {
        // v8+: several groups, one asking for named partitions (as a v9 member), one for all.
        let named = OffsetFetchRequestTopics::default().with_name(topic(TOPIC)).with_partition_indexes(vec![0, 2]);
        let mut asking = OffsetFetchRequestGroup::default().with_group_id(group(GROUP)).with_topics(Some(vec![named]));
        if version >= 9 {
            asking = asking.with_member_id(Some(s(LEADER))).with_member_epoch(5);
        }
        let all = OffsetFetchRequestGroup::default().with_group_id(group("other-group")).with_topics(None);
        return OffsetFetchRequest::default().with_groups(vec![asking, all]).with_require_stable(true);
    }
    let request = OffsetFetchRequest::default().with_group_id(group(GROUP));
    if version < 2 {
        let named = OffsetFetchRequestTopic::default().with_name(topic(TOPIC)).with_partition_indexes(vec![0, 1, 2]);
        return request.with_topics(Some(vec![named]));
    }
    let request = request.with_topics(None);
    if version >= 7 { request.with_require_stable(true) } else { request }
}

/// Looks up the group's coordinator; v1+ says the key is a group id (key type 0), v4+ asks
/// for two groups at once.
pub(super) fn find_coordinator(version: i16) -> FindCoordinatorRequest {
    if version >= 4 {
        return FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![s(GROUP), s("other-group")]);
    }
    let request = FindCoordinatorRequest::default().with_key(s(GROUP));
    if version >= 1 { request.with_key_type(0) } else { request }
}

/// The leader joins offering range and roundrobin: v0–3 rejoins with its member id, v4+ joins
/// afresh with an empty one, v5+ as a static member, v8+ saying why.
pub(super) fn join_group(version: i16) -> JoinGroupRequest {
    let protocol = |name: &str| JoinGroupRequestProtocol::default().with_name(s(name)).with_metadata(subscription());
    let member_id = if version >= 4 { "" } else { LEADER };
    let mut request = JoinGroupRequest::default()
        .with_group_id(group(GROUP))
        .with_session_timeout_ms(45_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![protocol("range"), protocol("roundrobin")]);
    if version >= 1 {
        request = request.with_rebalance_timeout_ms(300_000);
    }
    if version >= 5 {
        request = request.with_group_instance_id(Some(s(INSTANCE)));
    }
    if version >= 8 {
        request = request.with_reason(Some(s("need to re-join group")));
    }
    request
}

/// The leader's heartbeat in generation 5.
pub(super) fn heartbeat(version: i16) -> HeartbeatRequest {
    let request =
        HeartbeatRequest::default().with_group_id(group(GROUP)).with_generation_id(5).with_member_id(s(LEADER));
    if version >= 3 { request.with_group_instance_id(Some(s(INSTANCE))) } else { request }
}

/// v0–2: the leader leaves. v3+: a batch, one member by member id and one by instance id;
/// v5+ the first says why.
pub(super) fn leave_group(version: i16) -> LeaveGroupRequest {
    let request = LeaveGroupRequest::default().with_group_id(group(GROUP));
    if version < 3 {
        return request.with_member_id(s(LEADER));
    }
    let by_member = MemberIdentity::default().with_member_id(s(FOLLOWER)).with_group_instance_id(None);
    let by_member =
        if version >= 5 { by_member.with_reason(Some(s("the consumer is being closed"))) } else { by_member };
    let by_instance = MemberIdentity::default().with_member_id(s("")).with_group_instance_id(Some(s(INSTANCE)));
    request.with_members(vec![by_member, by_instance])
}

/// The leader hands in the assignments of both members; v5+ names the group's protocol.
pub(super) fn sync_group(version: i16) -> SyncGroupRequest {
    let member = |id: &str, partitions: &[i32]| {
        SyncGroupRequestAssignment::default().with_member_id(s(id)).with_assignment(assignment(partitions))
    };
    let request = SyncGroupRequest::default()
        .with_group_id(group(GROUP))
        .with_generation_id(5)
        .with_member_id(s(LEADER))
        .with_assignments(vec![member(LEADER, &[0, 1]), member(FOLLOWER, &[2])]);
    let request = if version >= 3 { request.with_group_instance_id(Some(s(INSTANCE))) } else { request };
    if version >= 5 {
        request.with_protocol_type(Some(s("consumer"))).with_protocol_name(Some(s("range")))
    } else {
        request
    }
}

/// Describes our group and one that does not exist; v3+ also asks for authorized operations.
pub(super) fn describe_groups(version: i16) -> DescribeGroupsRequest {
    let request = DescribeGroupsRequest::default().with_groups(vec![group(GROUP), group("payments")]);
    if version >= 3 { request.with_include_authorized_operations(true) } else { request }
}

/// Lists every group; v4+ only those that are stable or empty, v5 only classic ones.
pub(super) fn list_groups(version: i16) -> ListGroupsRequest {
    let request = ListGroupsRequest::default();
    let request = if version >= 4 { request.with_states_filter(vec![s("Stable"), s("Empty")]) } else { request };
    if version >= 5 { request.with_types_filter(vec![s("classic")]) } else { request }
}

/// Deletes our group and a stale one.
pub(super) fn delete_groups() -> DeleteGroupsRequest {
    DeleteGroupsRequest::default().with_groups_names(vec![group(GROUP), group("stale-group")])
}

/// Drops the group's offsets of two partitions of `orders` (v0 only).
pub(super) fn offset_delete() -> OffsetDeleteRequest {
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    let partitions = [0, 1].map(|p| OffsetDeleteRequestPartition::default().with_partition_index(p)).to_vec();
    let topics = vec![OffsetDeleteRequestTopic::default().with_name(topic(TOPIC)).with_partitions(partitions)];
    OffsetDeleteRequest::default().with_group_id(group(GROUP)).with_topics(topics)
}
