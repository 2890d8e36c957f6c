//! Realistic responses for every advertised API at a given version, for round-trip tests.
//!
//! Each sample sets only fields the version carries, so that encoding then decoding at that
//! version yields the sample again.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use super::sample_requests::{TOPIC, record_batch, s, topic};
use super::versions::api_versions_response;

/// The consumer-group samples.
mod groups;

/// The admin-client samples (config changes, cluster description).
mod admin;

/// The records-management samples (DeleteRecords, DescribeLogDirs).
mod records;

/// The transaction samples.
mod txn;

/// Decodes a response frame as a client would: size prefix, header, body. Asserts the size
/// prefix matches and nothing trails the body; returns the correlation id and the body.
pub(super) fn decode_response_frame(api: ApiKey, version: i16, mut frame: Bytes) -> (i32, ResponseKind) {
    let len = frame.get_i32();
    assert_eq!(usize::try_from(len).ok(), Some(frame.len()), "{api:?} v{version}: size prefix");
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .unwrap_or_else(|e| panic!("{api:?} v{version}: response header: {e:#}"));
    let body = ResponseKind::decode(api, &mut frame, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: response body: {e:#}"));
    assert!(frame.is_empty(), "{api:?} v{version}: {} bytes trail the body", frame.len());
    (header.correlation_id, body)
}

/// A realistic response of `api` at `version`; panics for an API without a sample.
pub(super) fn sample_response(api: ApiKey, version: i16) -> ResponseKind {
    match api {
        ApiKey::ApiVersions => ResponseKind::ApiVersions(api_versions_response(version)),
        ApiKey::Metadata => ResponseKind::Metadata(metadata(version)),
        ApiKey::Produce => ResponseKind::Produce(produce(version)),
        ApiKey::Fetch => ResponseKind::Fetch(fetch(version)),
        ApiKey::ListOffsets => ResponseKind::ListOffsets(list_offsets(version)),
        ApiKey::CreateTopics => ResponseKind::CreateTopics(create_topics(version)),
        ApiKey::DeleteTopics => ResponseKind::DeleteTopics(delete_topics(version)),
        ApiKey::CreatePartitions => ResponseKind::CreatePartitions(create_partitions()),
        ApiKey::DescribeConfigs => ResponseKind::DescribeConfigs(describe_configs(version)),
        ApiKey::InitProducerId => ResponseKind::InitProducerId(init_producer_id()),
        ApiKey::OffsetForLeaderEpoch => ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch()),
        ApiKey::OffsetCommit => ResponseKind::OffsetCommit(groups::offset_commit(version)),
        ApiKey::OffsetFetch => ResponseKind::OffsetFetch(groups::offset_fetch(version)),
        ApiKey::FindCoordinator => ResponseKind::FindCoordinator(groups::find_coordinator(version)),
        ApiKey::JoinGroup => ResponseKind::JoinGroup(groups::join_group(version)),
        ApiKey::Heartbeat => ResponseKind::Heartbeat(groups::heartbeat(version)),
        ApiKey::LeaveGroup => ResponseKind::LeaveGroup(groups::leave_group(version)),
        ApiKey::SyncGroup => ResponseKind::SyncGroup(groups::sync_group(version)),
        ApiKey::DescribeGroups => ResponseKind::DescribeGroups(groups::describe_groups(version)),
        ApiKey::ListGroups => ResponseKind::ListGroups(groups::list_groups(version)),
        ApiKey::DeleteGroups => ResponseKind::DeleteGroups(groups::delete_groups()),
        ApiKey::AlterConfigs => ResponseKind::AlterConfigs(admin::alter_configs()),
        ApiKey::IncrementalAlterConfigs => ResponseKind::IncrementalAlterConfigs(admin::incremental_alter_configs()),
        ApiKey::DescribeCluster => ResponseKind::DescribeCluster(admin::describe_cluster(version)),
        ApiKey::DeleteRecords => ResponseKind::DeleteRecords(records::delete_records()),
        ApiKey::DescribeLogDirs => ResponseKind::DescribeLogDirs(records::describe_log_dirs(version)),
        ApiKey::OffsetDelete => ResponseKind::OffsetDelete(groups::offset_delete()),
        ApiKey::DescribeProducers => ResponseKind::DescribeProducers(admin::describe_producers()),
        ApiKey::ElectLeaders => ResponseKind::ElectLeaders(admin::elect_leaders(version)),
        ApiKey::AlterPartitionReassignments => {
            ResponseKind::AlterPartitionReassignments(admin::alter_partition_reassignments())
        }
        ApiKey::ListPartitionReassignments => {
            ResponseKind::ListPartitionReassignments(admin::list_partition_reassignments())
        }
        ApiKey::SaslHandshake => ResponseKind::SaslHandshake(SaslHandshakeResponse::default().with_mechanisms(vec![
            s("PLAIN"),
            s("SCRAM-SHA-256"),
            s("SCRAM-SHA-512"),
        ])),
        ApiKey::SaslAuthenticate => ResponseKind::SaslAuthenticate(admin::sasl_authenticate(version)),
        ApiKey::DescribeUserScramCredentials => {
            ResponseKind::DescribeUserScramCredentials(admin::describe_user_scram_credentials())
        }
        ApiKey::AlterUserScramCredentials => {
            ResponseKind::AlterUserScramCredentials(admin::alter_user_scram_credentials())
        }
        ApiKey::AddPartitionsToTxn => ResponseKind::AddPartitionsToTxn(txn::add_partitions_to_txn()),
        ApiKey::AddOffsetsToTxn => ResponseKind::AddOffsetsToTxn(txn::add_offsets_to_txn()),
        ApiKey::EndTxn => ResponseKind::EndTxn(txn::end_txn()),
        ApiKey::TxnOffsetCommit => ResponseKind::TxnOffsetCommit(txn::txn_offset_commit()),
        ApiKey::DescribeTransactions => ResponseKind::DescribeTransactions(txn::describe_transactions()),
        ApiKey::ListTransactions => ResponseKind::ListTransactions(txn::list_transactions()),
        ApiKey::DescribeAcls => ResponseKind::DescribeAcls(admin::describe_acls()),
        ApiKey::CreateAcls => ResponseKind::CreateAcls(admin::create_acls()),
        ApiKey::DeleteAcls => ResponseKind::DeleteAcls(admin::delete_acls()),
        other => panic!("no sample response for {other:?}"),
    }
}

fn metadata_partition(version: i16) -> MetadataResponsePartition {
    let mut partition = MetadataResponsePartition::default()
        .with_error_code(0)
        .with_partition_index(0)
        .with_leader_id(BrokerId(1))
        .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
        .with_isr_nodes(vec![BrokerId(1)]);
    if version >= 5 {
        partition = partition.with_offline_replicas(vec![BrokerId(2)]);
    }
    if version >= 7 {
        partition = partition.with_leader_epoch(3);
    }
    partition
}

fn metadata(version: i16) -> MetadataResponse {
    let mut broker =
        MetadataResponseBroker::default().with_node_id(BrokerId(1)).with_host(s("localhost")).with_port(9092);
    let mut found = MetadataResponseTopic::default()
        .with_name(Some(topic(TOPIC)))
        .with_partitions(vec![metadata_partition(version)]);
    let missing = MetadataResponseTopic::default().with_error_code(3).with_name(Some(topic("missing")));
    let mut response = MetadataResponse::default();
    if version >= 1 {
        broker = broker.with_rack(Some(s("rack-a")));
        response = response.with_controller_id(BrokerId(1));
    }
    if version >= 2 {
        response = response.with_cluster_id(Some(s("chronik-cluster")));
    }
    if version >= 3 {
        response = response.with_throttle_time_ms(0);
    }
    if version >= 8 {
        found = found.with_topic_authorized_operations(0x0ff8);
    }
    response.with_brokers(vec![broker]).with_topics(vec![found, missing])
}

fn produce(version: i16) -> ProduceResponse {
    let mut partition = PartitionProduceResponse::default()
        .with_index(0)
        .with_error_code(0)
        .with_base_offset(42)
        .with_log_append_time_ms(-1);
    if version >= 5 {
        partition = partition.with_log_start_offset(0);
    }
    let failed = PartitionProduceResponse::default().with_index(1).with_error_code(45).with_base_offset(-1);
    let mut moved = PartitionProduceResponse::default().with_index(2).with_error_code(6).with_base_offset(-1);
    let mut response = ProduceResponse::default().with_throttle_time_ms(0);
    if version >= 10 {
        // KIP-951: the leader to go to instead, and its address.
        let leader = produce_response::LeaderIdAndEpoch::default().with_leader_id(BrokerId(2)).with_leader_epoch(5);
        moved = moved.with_current_leader(leader);
        let endpoint =
            produce_response::NodeEndpoint::default().with_node_id(BrokerId(2)).with_host(s("b2")).with_port(9093);
        response = response.with_node_endpoints(vec![endpoint]);
    }
    let topic_response = TopicProduceResponse::default()
        .with_name(topic(TOPIC))
        .with_partition_responses(vec![partition, failed, moved]);
    response.with_responses(vec![topic_response])
}

fn fetch(version: i16) -> FetchResponse {
    let mut partition = PartitionData::default()
        .with_partition_index(0)
        .with_error_code(0)
        .with_high_watermark(44)
        .with_last_stable_offset(44)
        .with_aborted_transactions(None)
        .with_records(Some(record_batch()));
    if version >= 5 {
        partition = partition.with_log_start_offset(0);
    }
    let mut moved = PartitionData::default().with_partition_index(1).with_error_code(6).with_high_watermark(-1);
    let mut response = FetchResponse::default().with_throttle_time_ms(0);
    if version >= 16 {
        // KIP-951: the leader to go to instead, and its address.
        let leader = fetch_response::LeaderIdAndEpoch::default().with_leader_id(BrokerId(2)).with_leader_epoch(5);
        moved = moved.with_current_leader(leader);
        let endpoint =
            fetch_response::NodeEndpoint::default().with_node_id(BrokerId(2)).with_host(s("b2")).with_port(9093);
        response = response.with_node_endpoints(vec![endpoint]);
    }
    // From v13 the topic is named by id.
    let answered = FetchableTopicResponse::default().with_partitions(vec![partition, moved]);
    let answered = if version >= 13 {
        answered.with_topic_id(uuid::Uuid::from_u128(7))
    } else {
        answered.with_topic(topic(TOPIC))
    };
    response = response.with_responses(vec![answered]);
    if version >= 7 {
        response = response.with_error_code(0).with_session_id(7);
    }
    response
}

fn list_offsets(version: i16) -> ListOffsetsResponse {
    let mut partition = ListOffsetsPartitionResponse::default()
        .with_partition_index(0)
        .with_error_code(0)
        .with_timestamp(-1)
        .with_offset(44);
    if version >= 4 {
        partition = partition.with_leader_epoch(3);
    }
    let topics = vec![ListOffsetsTopicResponse::default().with_name(topic(TOPIC)).with_partitions(vec![partition])];
    ListOffsetsResponse::default().with_topics(topics)
}

/// From v5 the created topic is described (KIP-525), from v7 with its id.
fn create_topics(version: i16) -> CreateTopicsResponse {
    let mut created = CreatableTopicResult::default().with_name(topic(TOPIC)).with_error_code(0);
    if version >= 5 {
        let config = CreatableTopicConfigs::default()
            .with_name(s("retention.ms"))
            .with_value(Some(s("60000")))
            .with_config_source(1);
        created = created.with_num_partitions(3).with_replication_factor(1).with_configs(Some(vec![config]));
    }
    if version >= 7 {
        created = created.with_topic_id(uuid::Uuid::from_u128(7));
    }
    let exists = CreatableTopicResult::default()
        .with_name(topic("taken"))
        .with_error_code(36)
        .with_error_message(Some(s("Topic 'taken' already exists.")));
    CreateTopicsResponse::default().with_topics(vec![created, exists])
}

fn delete_topics(version: i16) -> DeleteTopicsResponse {
    let mut deleted = DeletableTopicResult::default().with_name(Some(topic(TOPIC))).with_error_code(0);
    if version >= 5 {
        deleted = deleted.with_error_message(None);
    }
    if version < 6 {
        return DeleteTopicsResponse::default().with_responses(vec![deleted]);
    }
    let unknown_id = DeletableTopicResult::default()
        .with_name(None)
        .with_topic_id(uuid::Uuid::from_u128(7))
        .with_error_code(100)
        .with_error_message(Some(s("This server does not host this topic ID.")));
    deleted = deleted.with_topic_id(uuid::Uuid::from_u128(3));
    DeleteTopicsResponse::default().with_responses(vec![deleted, unknown_id])
}

fn create_partitions() -> CreatePartitionsResponse {
    let result = CreatePartitionsTopicResult::default()
        .with_name(topic(TOPIC))
        .with_error_code(37)
        .with_error_message(Some(s("Topic has 6 partitions; requested 6.")));
    CreatePartitionsResponse::default().with_results(vec![result])
}

fn describe_configs(version: i16) -> DescribeConfigsResponse {
    let mut config = DescribeConfigsResourceResult::default()
        .with_name(s("retention.ms"))
        .with_value(Some(s("604800000")))
        .with_read_only(false)
        .with_config_source(5)
        .with_is_sensitive(false);
    if version >= 3 {
        config = config.with_config_type(5).with_documentation(None);
    }
    let result = DescribeConfigsResult::default()
        .with_error_code(0)
        .with_resource_type(2)
        .with_resource_name(s(TOPIC))
        .with_configs(vec![config]);
    DescribeConfigsResponse::default().with_results(vec![result])
}

fn init_producer_id() -> InitProducerIdResponse {
    InitProducerIdResponse::default().with_error_code(0).with_producer_id(ProducerId(1000)).with_producer_epoch(0)
}

fn offset_for_leader_epoch() -> OffsetForLeaderEpochResponse {
    let partition =
        EpochEndOffset::default().with_error_code(0).with_partition(0).with_leader_epoch(3).with_end_offset(44);
    let topics = vec![OffsetForLeaderTopicResult::default().with_topic(topic(TOPIC)).with_partitions(vec![partition])];
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
