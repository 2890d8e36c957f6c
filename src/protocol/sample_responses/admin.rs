//! Realistic admin-client responses (config changes, cluster description) at a given version,
//! for round-trip tests.
//!
//! Each sample sets only fields the version carries, so that encoding then decoding at that
//! version yields the sample again. They answer the requests in `sample_requests::admin`.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::*;
use kafka_protocol::messages::{alter_configs_response as legacy, incremental_alter_configs_response as incremental};

use crate::protocol::sample_requests::admin::{MISSING_TOPIC, TOPIC_RESOURCE};
use crate::protocol::sample_requests::{TOPIC, s};

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION error code.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// The overrides of `orders` were replaced.
pub(super) fn alter_configs() -> AlterConfigsResponse {
    let result = legacy::AlterConfigsResourceResponse::default()
        .with_error_code(0)
        .with_error_message(None)
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(s(TOPIC));
    AlterConfigsResponse::default().with_throttle_time_ms(0).with_responses(vec![result])
}

/// `orders` was altered; the missing topic was not.
pub(super) fn incremental_alter_configs() -> IncrementalAlterConfigsResponse {
    let result = |name: &str, error_code: i16, message: Option<&str>| {
        incremental::AlterConfigsResourceResponse::default()
            .with_error_code(error_code)
            .with_error_message(message.map(s))
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(s(name))
    };
    let results = vec![
        result(TOPIC, 0, None),
        result(MISSING_TOPIC, UNKNOWN_TOPIC_OR_PARTITION, Some("Topic 'missing' does not exist.")),
    ];
    IncrementalAlterConfigsResponse::default().with_throttle_time_ms(0).with_responses(results)
}

/// Two brokers, one without a rack, broker 1 the controller; v1 echoes the endpoint type.
pub(super) fn describe_cluster(version: i16) -> DescribeClusterResponse {
    let broker = |id: i32, port: i32, rack: Option<&str>| {
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(id))
            .with_host(s("localhost"))
            .with_port(port)
            .with_rack(rack.map(s))
    };
    let response = DescribeClusterResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(0)
        .with_error_message(None)
        .with_cluster_id(s("chronik-cluster"))
        .with_controller_id(BrokerId(1))
        .with_brokers(vec![broker(1, 9092, Some("rack-a")), broker(2, 9093, None)])
        // CREATE (5), ALTER (7), DESCRIBE (8), DESCRIBE_CONFIGS (10), ALTER_CONFIGS (11), as bits.
        .with_cluster_authorized_operations(1 << 5 | 1 << 7 | 1 << 8 | 1 << 10 | 1 << 11);
    if version >= 1 { response.with_endpoint_type(1) } else { response }
}

/// Partition 0 had one idempotent producer; partition 1 is led elsewhere.
pub(super) fn describe_producers() -> DescribeProducersResponse {
    use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
    let producer = ProducerState::default()
        .with_producer_id(ProducerId(4001))
        .with_producer_epoch(0)
        .with_last_sequence(9)
        .with_last_timestamp(1_700_000_000_123)
        .with_coordinator_epoch(-1)
        .with_current_txn_start_offset(-1);
    let partitions = vec![
        PartitionResponse::default().with_partition_index(0).with_active_producers(vec![producer]),
        PartitionResponse::default()
            .with_partition_index(1)
            .with_error_code(NOT_LEADER_OR_FOLLOWER)
            .with_error_message(Some(s("orders-1 is led by node 2, not this one"))),
    ];
    let topics = vec![TopicResponse::default().with_name(TopicName(s(TOPIC))).with_partitions(partitions)];
    DescribeProducersResponse::default().with_throttle_time_ms(0).with_topics(topics)
}

/// Kafka's NOT_LEADER_OR_FOLLOWER error code.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// Partition 0 got its preferred leader back; partition 1 already had it (the top-level error
/// from v1).
pub(super) fn elect_leaders(version: i16) -> ElectLeadersResponse {
    use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
    let rows = vec![
        PartitionResult::default().with_partition_id(0).with_error_code(0),
        PartitionResult::default().with_partition_id(1).with_error_code(84),
    ];
    let results = vec![ReplicaElectionResult::default().with_topic(TopicName(s(TOPIC))).with_partition_result(rows)];
    let response = ElectLeadersResponse::default().with_throttle_time_ms(0).with_replica_election_results(results);
    if version >= 1 { response.with_error_code(0) } else { response }
}

/// Partition 0 is moving from nodes 1 and 2 to 1 and 4; partition 1 is not moving.
pub(super) fn list_partition_reassignments() -> ListPartitionReassignmentsResponse {
    use kafka_protocol::messages::list_partition_reassignments_response::{
        OngoingPartitionReassignment, OngoingTopicReassignment,
    };
    let moving = OngoingPartitionReassignment::default()
        .with_partition_index(0)
        .with_replicas(vec![BrokerId(1), BrokerId(2), BrokerId(4)])
        .with_adding_replicas(vec![BrokerId(4)])
        .with_removing_replicas(vec![BrokerId(2)]);
    let topics = vec![OngoingTopicReassignment::default().with_name(TopicName(s(TOPIC))).with_partitions(vec![moving])];
    ListPartitionReassignmentsResponse::default().with_throttle_time_ms(0).with_error_code(0).with_topics(topics)
}

/// Partition 0's move was accepted; partition 1 had none to cancel.
pub(super) fn alter_partition_reassignments() -> AlterPartitionReassignmentsResponse {
    use kafka_protocol::messages::alter_partition_reassignments_response::{
        ReassignablePartitionResponse, ReassignableTopicResponse,
    };
    let rows = vec![
        ReassignablePartitionResponse::default().with_partition_index(0).with_error_code(0),
        ReassignablePartitionResponse::default()
            .with_partition_index(1)
            .with_error_code(85)
            .with_error_message(Some(s("no reassignment of orders-1 is in progress"))),
    ];
    let responses = vec![ReassignableTopicResponse::default().with_name(TopicName(s(TOPIC))).with_partitions(rows)];
    AlterPartitionReassignmentsResponse::default().with_throttle_time_ms(0).with_error_code(0).with_responses(responses)
}

/// The server-first SCRAM message; v1 and later say how long the session holds.
pub(super) fn sasl_authenticate(version: i16) -> SaslAuthenticateResponse {
    let response = SaslAuthenticateResponse::default().with_auth_bytes(bytes::Bytes::from_static(
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    ));
    if version >= 1 { response.with_session_lifetime_ms(3_600_000) } else { response }
}

/// alice holds a SCRAM-SHA-512 credential; bob is unknown.
pub(super) fn describe_user_scram_credentials() -> DescribeUserScramCredentialsResponse {
    use describe_user_scram_credentials_response::{CredentialInfo, DescribeUserScramCredentialsResult};
    let alice = DescribeUserScramCredentialsResult::default()
        .with_user(s("alice"))
        .with_credential_infos(vec![CredentialInfo::default().with_mechanism(2).with_iterations(8192)]);
    let bob = DescribeUserScramCredentialsResult::default()
        .with_user(s("bob"))
        .with_error_code(91)
        .with_error_message(Some(s("attempt to describe a user credential that does not exist")));
    DescribeUserScramCredentialsResponse::default().with_results(vec![alice, bob])
}

/// alice's credential was stored; bob had none to delete.
pub(super) fn alter_user_scram_credentials() -> AlterUserScramCredentialsResponse {
    use alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
    let results = vec![
        AlterUserScramCredentialsResult::default().with_user(s("alice")),
        AlterUserScramCredentialsResult::default()
            .with_user(s("bob"))
            .with_error_code(91)
            .with_error_message(Some(s("user \"bob\" has no SCRAM-SHA-256 credential"))),
    ];
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// alice's ACLs on `orders`: read on the name, write on the prefix.
pub(super) fn describe_acls() -> DescribeAclsResponse {
    use describe_acls_response::{AclDescription, DescribeAclsResource};
    let alice = |op| {
        AclDescription::default()
            .with_principal(s("User:alice"))
            .with_host(s("*"))
            .with_operation(op)
            .with_permission_type(3)
    };
    let resource = |pattern, op| {
        DescribeAclsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(TOPIC))
            .with_pattern_type(pattern)
            .with_acls(vec![alice(op)])
    };
    DescribeAclsResponse::default().with_resources(vec![resource(3, 3), resource(4, 4)])
}

/// Two ACLs created; the third named a pattern the broker refuses.
pub(super) fn create_acls() -> CreateAclsResponse {
    use create_acls_response::AclCreationResult;
    CreateAclsResponse::default().with_results(vec![
        AclCreationResult::default(),
        AclCreationResult::default(),
        AclCreationResult::default()
            .with_error_code(42)
            .with_error_message(Some(s("the pattern type must be LITERAL or PREFIXED, not MATCH"))),
    ])
}

/// alice's one group ACL was deleted.
pub(super) fn delete_acls() -> DeleteAclsResponse {
    use delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
    let acl = DeleteAclsMatchingAcl::default()
        .with_resource_type(3)
        .with_resource_name(s("alice-group"))
        .with_principal(s("User:alice"))
        .with_host(s("*"))
        .with_operation(3)
        .with_permission_type(3);
    DeleteAclsResponse::default()
        .with_filter_results(vec![DeleteAclsFilterResult::default().with_matching_acls(vec![acl])])
}
