//! Every advertised API at every advertised version: a client-encoded request parses back to
//! what was sent, and an encoded response decodes (as a client would) back to what was sent.

use kafka_protocol::messages::{ApiKey, RequestKind};

use super::frame::{Parsed, encode_response, parse_request};
use super::sample_requests::{client_frame, record_batch, sample_request};
use super::sample_responses::{decode_response_frame, sample_response};
use super::versions::{ADVERTISED_APIS, supported_range};

/// Parses a client-encoded sample request at `version` and checks every field survived.
fn request_round_trip(api: ApiKey, version: i16) {
    let sent = sample_request(api, version);
    let correlation_id = 1000 + i32::from(version);
    let frame = client_frame(api, version, correlation_id, Some("chronik-test"), &sent);
    let parsed = match parse_request(frame) {
        Ok(Parsed::Request(parsed)) => parsed,
        other => panic!("{api:?} v{version}: expected a request, got {other:?}"),
    };
    assert_eq!(parsed.api_key, api, "{api:?} v{version}");
    assert_eq!(parsed.api_version, version, "{api:?} v{version}");
    assert_eq!(parsed.correlation_id, correlation_id, "{api:?} v{version}");
    assert_eq!(parsed.client_id.as_deref(), Some("chronik-test"), "{api:?} v{version}");
    assert_eq!(parsed.body, sent, "{api:?} v{version}: body changed in transit");
    if let RequestKind::Produce(produce) = &parsed.body {
        let records = produce.topic_data[0].partition_data[0].records.as_ref();
        assert_eq!(records, Some(&record_batch()), "Produce v{version}: records");
    }
}

/// Encodes a sample response at `version` and decodes it back as a client would.
fn response_round_trip(api: ApiKey, version: i16) {
    let sent = sample_response(api, version);
    let correlation_id = -7 - i32::from(version);
    let frame =
        encode_response(api, version, correlation_id, &sent).unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
    let (got_correlation_id, got) = decode_response_frame(api, version, frame);
    assert_eq!(got_correlation_id, correlation_id, "{api:?} v{version}");
    assert_eq!(got, sent, "{api:?} v{version}: body changed in transit");
}

/// Both round trips for every version `api` advertises that the crate encodes (ListOffsets
/// v0 has its own codec and tests in `list_offsets_v0`).
fn every_version(api: ApiKey) {
    let range = supported_range(api).expect("advertised");
    for version in range.min.max(api.valid_versions().min)..=range.max {
        request_round_trip(api, version);
        response_round_trip(api, version);
    }
}

/// One test per advertised API, so a failure names its API; `COVERED` lets a test check that
/// a new table row gets a test too.
macro_rules! round_trip_tests {
    ($($name:ident => $api:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                every_version(ApiKey::$api);
            }
        )+
        const COVERED: &[ApiKey] = &[$(ApiKey::$api),+];
    };
}

round_trip_tests! {
    api_versions_every_version => ApiVersions,
    metadata_every_version => Metadata,
    produce_every_version => Produce,
    fetch_every_version => Fetch,
    list_offsets_every_version => ListOffsets,
    create_topics_every_version => CreateTopics,
    delete_topics_every_version => DeleteTopics,
    create_partitions_every_version => CreatePartitions,
    describe_configs_every_version => DescribeConfigs,
    init_producer_id_every_version => InitProducerId,
    add_partitions_to_txn_every_version => AddPartitionsToTxn,
    add_offsets_to_txn_every_version => AddOffsetsToTxn,
    end_txn_every_version => EndTxn,
    txn_offset_commit_every_version => TxnOffsetCommit,
    describe_transactions_every_version => DescribeTransactions,
    list_transactions_every_version => ListTransactions,
    offset_for_leader_epoch_every_version => OffsetForLeaderEpoch,
    offset_commit_every_version => OffsetCommit,
    offset_fetch_every_version => OffsetFetch,
    find_coordinator_every_version => FindCoordinator,
    join_group_every_version => JoinGroup,
    heartbeat_every_version => Heartbeat,
    leave_group_every_version => LeaveGroup,
    sync_group_every_version => SyncGroup,
    describe_groups_every_version => DescribeGroups,
    list_groups_every_version => ListGroups,
    delete_groups_every_version => DeleteGroups,
    alter_configs_every_version => AlterConfigs,
    incremental_alter_configs_every_version => IncrementalAlterConfigs,
    describe_cluster_every_version => DescribeCluster,
    delete_records_every_version => DeleteRecords,
    describe_log_dirs_every_version => DescribeLogDirs,
    offset_delete_every_version => OffsetDelete,
    describe_producers_every_version => DescribeProducers,
    elect_leaders_every_version => ElectLeaders,
    list_partition_reassignments_every_version => ListPartitionReassignments,
    alter_partition_reassignments_every_version => AlterPartitionReassignments,
    sasl_handshake_every_version => SaslHandshake,
    sasl_authenticate_every_version => SaslAuthenticate,
    describe_user_scram_credentials_every_version => DescribeUserScramCredentials,
    alter_user_scram_credentials_every_version => AlterUserScramCredentials,
    describe_acls_every_version => DescribeAcls,
    create_acls_every_version => CreateAcls,
    delete_acls_every_version => DeleteAcls,
}

#[test]
fn every_advertised_api_has_a_round_trip_test() {
    for (api, _) in ADVERTISED_APIS {
        assert!(COVERED.contains(api), "{api:?} is advertised but has no round-trip test");
    }
}

#[test]
fn every_truncation_of_every_sample_is_an_error() {
    // Cutting bytes off the end never changes a count that was already written, so this
    // cannot trip kafka-protocol's allocate-by-claimed-count hazard.
    for (api, range) in ADVERTISED_APIS {
        for version in range.min.max(api.valid_versions().min)..=range.max {
            let frame = client_frame(*api, version, 1, Some("cut"), &sample_request(*api, version));
            for len in 0..frame.len() {
                let result = parse_request(frame.slice(..len));
                assert!(result.is_err(), "{api:?} v{version} cut at {len}: {result:?}");
            }
        }
    }
}
