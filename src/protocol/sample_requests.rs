//! Realistic requests for every advertised API at a given version, for round-trip tests.
//!
//! Each sample sets only fields the version carries, so that encoding then decoding at that
//! version yields the sample again.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// The consumer-group samples, and the group, members and embedded consumer-protocol bytes
/// the group response samples share.
pub(super) mod groups;

/// The admin-client samples (config changes, cluster description), and the config resource
/// the admin response samples share.
pub(super) mod admin;

/// The records-management samples (DeleteRecords, DescribeLogDirs).
mod records;

/// The transaction samples.
mod txn;

/// The topic every sample talks about.
pub(super) const TOPIC: &str = "orders";

/// A string field value.
pub(super) fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// A topic name field value.
pub(super) fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

/// An idempotent v2 record batch of two records, as a producer sends it.
pub(super) fn record_batch() -> Bytes {
    let record = |sequence: i32, value: &'static str| Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: 1000,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: i64::from(sequence),
        sequence,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::from_static(value.as_bytes())),
        headers: IndexMap::new(),
    };
    let records = [record(0, "first"), record(1, "second")];
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode sample batch");
    buf.freeze()
}

/// A request frame (without size prefix) as a client encodes it: header + body.
pub(super) fn client_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    body: &RequestKind,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(s));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, api.request_header_version(version)).expect("encode request header");
    body.encode(&mut buf, version).expect("encode request body");
    buf.freeze()
}

/// A realistic request of `api` at `version`; panics for an API without a sample.
pub(super) fn sample_request(api: ApiKey, version: i16) -> RequestKind {
    match api {
        ApiKey::ApiVersions => RequestKind::ApiVersions(api_versions(version)),
        ApiKey::Metadata => RequestKind::Metadata(metadata(version)),
        ApiKey::Produce => RequestKind::Produce(produce()),
        ApiKey::Fetch => RequestKind::Fetch(fetch(version)),
        ApiKey::ListOffsets => RequestKind::ListOffsets(list_offsets(version)),
        ApiKey::CreateTopics => RequestKind::CreateTopics(create_topics()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(delete_topics(version)),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(create_partitions()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(describe_configs(version)),
        ApiKey::InitProducerId => RequestKind::InitProducerId(init_producer_id(version)),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(offset_for_leader_epoch(version)),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(groups::offset_commit(version)),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(groups::offset_fetch(version)),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(groups::find_coordinator(version)),
        ApiKey::JoinGroup => RequestKind::JoinGroup(groups::join_group(version)),
        ApiKey::Heartbeat => RequestKind::Heartbeat(groups::heartbeat(version)),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(groups::leave_group(version)),
        ApiKey::SyncGroup => RequestKind::SyncGroup(groups::sync_group(version)),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(groups::describe_groups(version)),
        ApiKey::ListGroups => RequestKind::ListGroups(groups::list_groups(version)),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(groups::delete_groups()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(admin::alter_configs()),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(admin::incremental_alter_configs()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(admin::describe_cluster(version)),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(records::delete_records()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(records::describe_log_dirs(version)),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(groups::offset_delete()),
        ApiKey::DescribeProducers => RequestKind::DescribeProducers(admin::describe_producers()),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(admin::elect_leaders(version)),
        ApiKey::AlterPartitionReassignments => {
            RequestKind::AlterPartitionReassignments(admin::alter_partition_reassignments())
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(admin::list_partition_reassignments())
        }
        ApiKey::SaslHandshake => {
            RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-512")))
        }
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL")),
        ),
        ApiKey::DescribeUserScramCredentials => {
            RequestKind::DescribeUserScramCredentials(admin::describe_user_scram_credentials())
        }
        ApiKey::AlterUserScramCredentials => {
            RequestKind::AlterUserScramCredentials(admin::alter_user_scram_credentials())
        }
        ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(txn::add_partitions_to_txn()),
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(txn::add_offsets_to_txn()),
        ApiKey::EndTxn => RequestKind::EndTxn(txn::end_txn()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(txn::txn_offset_commit(version)),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(txn::describe_transactions()),
        ApiKey::ListTransactions => RequestKind::ListTransactions(txn::list_transactions(version)),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(admin::describe_acls()),
        ApiKey::CreateAcls => RequestKind::CreateAcls(admin::create_acls()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(admin::delete_acls()),
        other => panic!("no sample request for {other:?}"),
    }
}

fn api_versions(version: i16) -> ApiVersionsRequest {
    let request = ApiVersionsRequest::default();
    if version < 3 {
        return request;
    }
    request.with_client_software_name(s("librdkafka")).with_client_software_version(s("2.16.0"))
}

fn metadata(version: i16) -> MetadataRequest {
    let topics = vec![MetadataRequestTopic::default().with_name(Some(topic(TOPIC)))];
    let mut request = MetadataRequest::default().with_topics(Some(topics));
    if version >= 4 {
        request = request.with_allow_auto_topic_creation(false);
    }
    if (8..=10).contains(&version) {
        request = request.with_include_cluster_authorized_operations(true);
    }
    if version >= 8 {
        request = request.with_include_topic_authorized_operations(true);
    }
    request
}

fn produce() -> ProduceRequest {
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(record_batch()));
    ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default().with_name(topic(TOPIC)).with_partition_data(vec![partition])])
}

fn fetch_partition(version: i16) -> FetchPartition {
    let mut partition =
        FetchPartition::default().with_partition(0).with_fetch_offset(42).with_partition_max_bytes(1 << 20);
    if version >= 5 {
        partition = partition.with_log_start_offset(0);
    }
    if version >= 9 {
        partition = partition.with_current_leader_epoch(3);
    }
    if version >= 12 {
        partition = partition.with_last_fetched_epoch(2);
    }
    if version >= 17 {
        partition = partition.with_replica_directory_id(uuid::Uuid::from_u128(9));
    }
    partition
}

/// From v13 topics are named by id.
fn fetch(version: i16) -> FetchRequest {
    let named = FetchTopic::default().with_partitions(vec![fetch_partition(version)]);
    let named =
        if version >= 13 { named.with_topic_id(uuid::Uuid::from_u128(7)) } else { named.with_topic(topic(TOPIC)) };
    let topics = vec![named];
    let mut request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(1)
        .with_topics(topics);
    if version >= 7 {
        let forgotten = ForgottenTopic::default().with_partitions(vec![1]);
        let forgotten = if version >= 13 {
            forgotten.with_topic_id(uuid::Uuid::from_u128(8))
        } else {
            forgotten.with_topic(topic("old"))
        };
        request = request.with_session_id(7).with_session_epoch(2).with_forgotten_topics_data(vec![forgotten]);
    }
    if version >= 11 {
        request = request.with_rack_id(s("rack-a"));
    }
    request
}

fn list_offsets(version: i16) -> ListOffsetsRequest {
    let mut partition = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1);
    if version >= 4 {
        partition = partition.with_current_leader_epoch(3);
    }
    let topics = vec![ListOffsetsTopic::default().with_name(topic(TOPIC)).with_partitions(vec![partition])];
    let mut request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(topics);
    if version >= 2 {
        request = request.with_isolation_level(1);
    }
    request
}

fn create_topics() -> CreateTopicsRequest {
    let config = CreatableTopicConfig::default().with_name(s("retention.ms")).with_value(Some(s("60000")));
    let new_topic = CreatableTopic::default()
        .with_name(topic(TOPIC))
        .with_num_partitions(3)
        .with_replication_factor(1)
        .with_configs(vec![config]);
    CreateTopicsRequest::default().with_topics(vec![new_topic]).with_timeout_ms(30_000).with_validate_only(false)
}

/// From v6 one topic by name and one by id; before, names only.
fn delete_topics(version: i16) -> DeleteTopicsRequest {
    let request = DeleteTopicsRequest::default().with_timeout_ms(30_000);
    if version < 6 {
        return request.with_topic_names(vec![topic(TOPIC)]);
    }
    let by_name = DeleteTopicState::default().with_name(Some(topic(TOPIC)));
    let by_id = DeleteTopicState::default().with_name(None).with_topic_id(uuid::Uuid::from_u128(7));
    request.with_topics(vec![by_name, by_id])
}

fn create_partitions() -> CreatePartitionsRequest {
    let grow = CreatePartitionsTopic::default().with_name(topic(TOPIC)).with_count(6).with_assignments(None);
    CreatePartitionsRequest::default().with_topics(vec![grow]).with_timeout_ms(30_000).with_validate_only(true)
}

fn describe_configs(version: i16) -> DescribeConfigsRequest {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s(TOPIC))
        .with_configuration_keys(Some(vec![s("retention.ms"), s("cleanup.policy")]));
    let mut request = DescribeConfigsRequest::default().with_resources(vec![resource]).with_include_synonyms(true);
    if version >= 3 {
        request = request.with_include_documentation(true);
    }
    request
}

fn init_producer_id(version: i16) -> InitProducerIdRequest {
    let mut request = InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
    if version >= 3 {
        request = request.with_producer_id(ProducerId(1000)).with_producer_epoch(4);
    }
    request
}

fn offset_for_leader_epoch(version: i16) -> OffsetForLeaderEpochRequest {
    let partition =
        OffsetForLeaderPartition::default().with_partition(0).with_current_leader_epoch(3).with_leader_epoch(2);
    let topics = vec![OffsetForLeaderTopic::default().with_topic(topic(TOPIC)).with_partitions(vec![partition])];
    let mut request = OffsetForLeaderEpochRequest::default().with_topics(topics);
    if version >= 3 {
        request = request.with_replica_id(BrokerId(-1));
    }
    request
}
