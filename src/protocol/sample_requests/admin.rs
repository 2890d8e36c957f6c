//! Realistic admin-client requests (config changes, cluster description) at a given version,
//! for round-trip tests.
//!
//! Each sample sets only fields the version carries, so that encoding then decoding at that
//! version yields the sample again. The story: an operator shortens the retention of `orders`
//! and drops its cleanup policy override, then asks who is in the cluster.

use kafka_protocol::messages::*;
use kafka_protocol::messages::{alter_configs_request as legacy, incremental_alter_configs_request as incremental};

use super::{TOPIC, s};

/// Kafka's config resource type for a topic.
pub(in crate::protocol) const TOPIC_RESOURCE: i8 = 2;

/// The topic no broker hosts, whose config change must fail.
pub(in crate::protocol) const MISSING_TOPIC: &str = "missing";

/// IncrementalAlterConfigs operation: set the value.
const SET: i8 = 0;

/// IncrementalAlterConfigs operation: remove the override, back to the default.
const DELETE: i8 = 1;

/// The whole override set of `orders`: retention one day, `cleanup.policy` null (no override).
pub(super) fn alter_configs() -> AlterConfigsRequest {
    let config = |name: &str, value: Option<&str>| {
        legacy::AlterableConfig::default().with_name(s(name)).with_value(value.map(s))
    };
    let resource = legacy::AlterConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(s(TOPIC))
        .with_configs(vec![config("retention.ms", Some("86400000")), config("cleanup.policy", None)]);
    AlterConfigsRequest::default().with_resources(vec![resource]).with_validate_only(false)
}

/// Sets retention and deletes the cleanup policy override of `orders`; sets retention of a
/// topic that does not exist.
pub(super) fn incremental_alter_configs() -> IncrementalAlterConfigsRequest {
    let config = |name: &str, operation: i8, value: Option<&str>| {
        incremental::AlterableConfig::default()
            .with_name(s(name))
            .with_config_operation(operation)
            .with_value(value.map(s))
    };
    let resource = |name: &str, configs: Vec<incremental::AlterableConfig>| {
        incremental::AlterConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(s(name))
            .with_configs(configs)
    };
    let orders = vec![config("retention.ms", SET, Some("86400000")), config("cleanup.policy", DELETE, None)];
    let missing = vec![config("retention.ms", SET, Some("3600000"))];
    IncrementalAlterConfigsRequest::default()
        .with_resources(vec![resource(TOPIC, orders), resource(MISSING_TOPIC, missing)])
        .with_validate_only(false)
}

/// Describes the cluster with its authorized operations; v1 asks for the brokers' endpoints
/// (endpoint type 1) explicitly.
pub(super) fn describe_cluster(version: i16) -> DescribeClusterRequest {
    let request = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    if version >= 1 { request.with_endpoint_type(1) } else { request }
}

/// Which producers wrote to partitions 0 and 1 of `orders` (v0 only).
pub(super) fn describe_producers() -> DescribeProducersRequest {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    let topics = vec![TopicRequest::default().with_name(super::topic(TOPIC)).with_partition_indexes(vec![0, 1])];
    DescribeProducersRequest::default().with_topics(topics)
}

/// Preferred leaders back for partitions 0 and 1 of `orders` (the election type from v1).
pub(super) fn elect_leaders(version: i16) -> ElectLeadersRequest {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    let topics = vec![TopicPartitions::default().with_topic(super::topic(TOPIC)).with_partitions(vec![0, 1])];
    let request = ElectLeadersRequest::default().with_topic_partitions(Some(topics)).with_timeout_ms(60_000);
    if version >= 1 { request.with_election_type(0) } else { request }
}

/// Which of partitions 0 and 1 of `orders` are being moved (v0 only).
pub(super) fn list_partition_reassignments() -> ListPartitionReassignmentsRequest {
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    let topics = vec![
        ListPartitionReassignmentsTopics::default().with_name(super::topic(TOPIC)).with_partition_indexes(vec![0, 1]),
    ];
    ListPartitionReassignmentsRequest::default().with_timeout_ms(60_000).with_topics(Some(topics))
}

/// Move partition 0 of `orders` to nodes 1, 2 and 4; cancel partition 1's move (v0 only).
pub(super) fn alter_partition_reassignments() -> AlterPartitionReassignmentsRequest {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    let partitions = vec![
        ReassignablePartition::default().with_partition_index(0).with_replicas(Some(vec![
            BrokerId(1),
            BrokerId(2),
            BrokerId(4),
        ])),
        ReassignablePartition::default().with_partition_index(1).with_replicas(None),
    ];
    let topics = vec![ReassignableTopic::default().with_name(super::topic(TOPIC)).with_partitions(partitions)];
    AlterPartitionReassignmentsRequest::default().with_timeout_ms(60_000).with_topics(topics)
}

/// Describe alice's credentials.
pub(super) fn describe_user_scram_credentials() -> DescribeUserScramCredentialsRequest {
    let users = vec![describe_user_scram_credentials_request::UserName::default().with_name(s("alice"))];
    DescribeUserScramCredentialsRequest::default().with_users(Some(users))
}

/// Give alice a SCRAM-SHA-512 credential (mechanism 2); drop bob's SCRAM-SHA-256 one (1).
pub(super) fn alter_user_scram_credentials() -> AlterUserScramCredentialsRequest {
    use alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion};
    let upsert = ScramCredentialUpsertion::default()
        .with_name(s("alice"))
        .with_mechanism(2)
        .with_iterations(8192)
        .with_salt(bytes::Bytes::from_static(b"0123456789abcdef"))
        .with_salted_password(bytes::Bytes::from(vec![7u8; 64]));
    let delete = ScramCredentialDeletion::default().with_name(s("bob")).with_mechanism(1);
    AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsert]).with_deletions(vec![delete])
}

/// Kafka's ACL codes the samples use: topic, group; literal, prefixed; read, write; allow.
const ACL_TOPIC: i8 = 2;
const ACL_GROUP: i8 = 3;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const ALLOW: i8 = 3;

/// Which ACLs apply to alice on `orders` (a match filter).
pub(super) fn describe_acls() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(ACL_TOPIC)
        .with_resource_name_filter(Some(s(TOPIC)))
        .with_pattern_type_filter(2)
        .with_principal_filter(Some(s("User:alice")))
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

/// alice may read `orders` and her group, and write every topic starting with it.
pub(super) fn create_acls() -> CreateAclsRequest {
    use create_acls_request::AclCreation;
    let acl = |rt, name: &str, pattern_type, op| {
        AclCreation::default()
            .with_resource_type(rt)
            .with_resource_name(s(name))
            .with_resource_pattern_type(pattern_type)
            .with_principal(s("User:alice"))
            .with_host(s("*"))
            .with_operation(op)
            .with_permission_type(ALLOW)
    };
    CreateAclsRequest::default().with_creations(vec![
        acl(ACL_TOPIC, TOPIC, LITERAL, READ),
        acl(ACL_TOPIC, TOPIC, PREFIXED, WRITE),
        acl(ACL_GROUP, "alice-group", LITERAL, READ),
    ])
}

/// Drop every ACL of alice's on groups.
pub(super) fn delete_acls() -> DeleteAclsRequest {
    let filter = delete_acls_request::DeleteAclsFilter::default()
        .with_resource_type_filter(ACL_GROUP)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(Some(s("User:alice")))
        .with_host_filter(Some(s("*")))
        .with_operation(1)
        .with_permission_type(ALLOW);
    DeleteAclsRequest::default().with_filters(vec![filter])
}
