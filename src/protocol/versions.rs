//! The APIs this broker advertises, and the ApiVersions answers built from them.
//!
//! Every version between an API's min and max must be implemented: kafkajs picks
//! min(its max, our max) and ignores our minimum. Never list an API without a handler
//! (librdkafka calls whatever is listed, e.g. telemetry).

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

/// Kafka's UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// Shorthand for a table row's inclusive version range.
const fn v(min: i16, max: i16) -> VersionRange {
    VersionRange { min, max }
}

/// Every API this broker answers, with the inclusive version range it advertises.
///
/// Adding an API is one row here plus its handler. Each range must lie within what kafka-protocol decodes (a unit test
/// checks that), except ListOffsets v0, decoded by [`list_offsets_v0`](super::list_offsets_v0).
pub const ADVERTISED_APIS: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, v(3, 11)),
    (ApiKey::Fetch, v(4, 17)),
    (ApiKey::ListOffsets, v(0, 9)),
    (ApiKey::Metadata, v(0, 12)),
    (ApiKey::OffsetCommit, v(2, 9)),
    (ApiKey::OffsetFetch, v(1, 9)),
    (ApiKey::FindCoordinator, v(0, 5)),
    (ApiKey::JoinGroup, v(0, 9)),
    (ApiKey::Heartbeat, v(0, 4)),
    (ApiKey::LeaveGroup, v(0, 5)),
    (ApiKey::SyncGroup, v(0, 5)),
    (ApiKey::DescribeGroups, v(0, 5)),
    (ApiKey::ListGroups, v(0, 5)),
    (ApiKey::DescribeConfigs, v(1, 4)),
    (ApiKey::AlterConfigs, v(0, 2)),
    (ApiKey::IncrementalAlterConfigs, v(0, 1)),
    (ApiKey::DescribeCluster, v(0, 1)),
    (ApiKey::ApiVersions, v(0, 4)),
    (ApiKey::CreateTopics, v(2, 7)),
    (ApiKey::DeleteTopics, v(1, 6)),
    (ApiKey::InitProducerId, v(0, 5)),
    (ApiKey::AddPartitionsToTxn, v(0, 3)),
    (ApiKey::AddOffsetsToTxn, v(0, 3)),
    (ApiKey::EndTxn, v(0, 3)),
    (ApiKey::TxnOffsetCommit, v(0, 3)),
    (ApiKey::DescribeTransactions, v(0, 0)),
    (ApiKey::ListTransactions, v(0, 1)),
    (ApiKey::OffsetForLeaderEpoch, v(2, 4)),
    (ApiKey::CreatePartitions, v(0, 3)),
    (ApiKey::DeleteGroups, v(0, 2)),
    (ApiKey::DeleteRecords, v(0, 2)),
    (ApiKey::DescribeLogDirs, v(1, 4)),
    (ApiKey::OffsetDelete, v(0, 0)),
    (ApiKey::DescribeProducers, v(0, 0)),
    (ApiKey::ElectLeaders, v(0, 2)),
    (ApiKey::ListPartitionReassignments, v(0, 0)),
    (ApiKey::AlterPartitionReassignments, v(0, 1)),
    (ApiKey::SaslHandshake, v(0, 1)),
    (ApiKey::SaslAuthenticate, v(0, 2)),
    (ApiKey::DescribeUserScramCredentials, v(0, 0)),
    (ApiKey::AlterUserScramCredentials, v(0, 0)),
    (ApiKey::DescribeAcls, v(1, 3)),
    (ApiKey::CreateAcls, v(1, 3)),
    (ApiKey::DeleteAcls, v(1, 3)),
];

/// The advertised version range of `key`, or `None` if this broker does not serve it.
pub fn supported_range(key: ApiKey) -> Option<VersionRange> {
    ADVERTISED_APIS.iter().find(|(k, _)| *k == key).map(|(_, range)| *range)
}

/// The advertised table in ApiVersions form.
fn api_keys() -> Vec<ApiVersion> {
    ADVERTISED_APIS
        .iter()
        .map(|(key, range)| {
            ApiVersion::default().with_api_key(*key as i16).with_min_version(range.min).with_max_version(range.max)
        })
        .collect()
}

/// The successful answer to an ApiVersions request: error 0, the table, throttle 0.
///
/// Supported/finalized features stay empty and `finalized_features_epoch` at its default (-1),
/// so a v3 answer carries no tagged fields: needless ones break librdkafka before 2.2. Every
/// version gets the same content; `_request_version` is the place for version-dependent
/// content should it ever be needed. The caller encodes it at the request's version.
pub fn api_versions_response(_request_version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(0).with_api_keys(api_keys()).with_throttle_time_ms(0)
}

/// The answer to an ApiVersions request newer than ours: UNSUPPORTED_VERSION (35) plus the
/// table, so the client can retry with a version we list.
///
/// The caller must encode it at version 0: the client cannot know any other layout yet.
pub fn api_versions_unsupported() -> ApiVersionsResponse {
    api_versions_response(0).with_error_code(UNSUPPORTED_VERSION)
}

/// Whether ListOffsets (v1+) accepts a target timestamp at `version`: any from 0 on; among the
/// negative ones only the sentinels that version knows (-1 latest and -2 earliest always, -3
/// max timestamp from v7, -4 earliest local from v8, -5 latest tiered from v9), as Kafka's
/// `isListOffsetsTimestampUnsupported`.
pub fn list_offsets_timestamp_supported(timestamp: i64, version: i16) -> bool {
    match timestamp {
        t if t >= 0 => true,
        -1 | -2 => true,
        -3 => version >= 7,
        -4 => version >= 8,
        -5 => version >= 9,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_offsets_negative_timestamps_are_only_the_sentinels_of_the_version() {
        assert!(list_offsets_timestamp_supported(0, 1) && list_offsets_timestamp_supported(1_700_000_000_000, 7));
        assert!(list_offsets_timestamp_supported(-1, 1) && list_offsets_timestamp_supported(-2, 1));
        assert!(!list_offsets_timestamp_supported(-3, 6) && list_offsets_timestamp_supported(-3, 7));
        assert!(!list_offsets_timestamp_supported(-4, 7) && list_offsets_timestamp_supported(-4, 8));
        assert!(!list_offsets_timestamp_supported(-5, 8) && list_offsets_timestamp_supported(-5, 9));
        assert!(!list_offsets_timestamp_supported(-7, 3) && !list_offsets_timestamp_supported(i64::MIN, 7));
    }

    #[test]
    fn table_is_exactly_the_advertised_ranges() {
        let expected = [
            (ApiKey::ApiVersions, 0, 4),
            (ApiKey::Metadata, 0, 12),
            (ApiKey::Produce, 3, 11),
            (ApiKey::Fetch, 4, 17),
            (ApiKey::ListOffsets, 0, 9),
            (ApiKey::CreateTopics, 2, 7),
            (ApiKey::DeleteTopics, 1, 6),
            (ApiKey::CreatePartitions, 0, 3),
            (ApiKey::DescribeConfigs, 1, 4),
            (ApiKey::InitProducerId, 0, 5),
            (ApiKey::AddPartitionsToTxn, 0, 3),
            (ApiKey::AddOffsetsToTxn, 0, 3),
            (ApiKey::EndTxn, 0, 3),
            (ApiKey::TxnOffsetCommit, 0, 3),
            (ApiKey::DescribeTransactions, 0, 0),
            (ApiKey::ListTransactions, 0, 1),
            (ApiKey::OffsetForLeaderEpoch, 2, 4),
            (ApiKey::OffsetCommit, 2, 9),
            (ApiKey::OffsetFetch, 1, 9),
            (ApiKey::FindCoordinator, 0, 5),
            (ApiKey::JoinGroup, 0, 9),
            (ApiKey::Heartbeat, 0, 4),
            (ApiKey::LeaveGroup, 0, 5),
            (ApiKey::SyncGroup, 0, 5),
            (ApiKey::DescribeGroups, 0, 5),
            (ApiKey::ListGroups, 0, 5),
            (ApiKey::DeleteGroups, 0, 2),
            (ApiKey::AlterConfigs, 0, 2),
            (ApiKey::IncrementalAlterConfigs, 0, 1),
            (ApiKey::DescribeCluster, 0, 1),
            (ApiKey::DeleteRecords, 0, 2),
            (ApiKey::DescribeLogDirs, 1, 4),
            (ApiKey::OffsetDelete, 0, 0),
            (ApiKey::DescribeProducers, 0, 0),
            (ApiKey::ElectLeaders, 0, 2),
            (ApiKey::ListPartitionReassignments, 0, 0),
            (ApiKey::AlterPartitionReassignments, 0, 1),
            (ApiKey::SaslHandshake, 0, 1),
            (ApiKey::SaslAuthenticate, 0, 2),
            (ApiKey::DescribeUserScramCredentials, 0, 0),
            (ApiKey::AlterUserScramCredentials, 0, 0),
            (ApiKey::DescribeAcls, 1, 3),
            (ApiKey::CreateAcls, 1, 3),
            (ApiKey::DeleteAcls, 1, 3),
        ];
        assert_eq!(ADVERTISED_APIS.len(), expected.len());
        for (key, min, max) in expected {
            assert_eq!(supported_range(key), Some(v(min, max)), "{key:?}");
        }
        assert_eq!(supported_range(ApiKey::WriteTxnMarkers), None);
    }

    #[test]
    fn table_has_no_duplicates_and_fits_the_crate() {
        for (i, (key, range)) in ADVERTISED_APIS.iter().enumerate() {
            assert!(ADVERTISED_APIS[i + 1..].iter().all(|(k, _)| k != key), "{key:?} listed twice");
            let crate_range = key.valid_versions();
            assert!(range.min <= range.max, "{key:?} has an empty range");
            let legacy_min = if *key == ApiKey::ListOffsets { 0 } else { crate_range.min };
            assert!(
                legacy_min <= range.min && range.max <= crate_range.max,
                "{key:?} {range} exceeds kafka-protocol's {crate_range}"
            );
        }
    }

    #[test]
    fn ok_answer_lists_the_table_without_features() {
        let response = api_versions_response(3);
        assert_eq!(response.error_code, 0);
        assert_eq!(response.throttle_time_ms, 0);
        assert_eq!(response.api_keys.len(), ADVERTISED_APIS.len());
        assert!(response.supported_features.is_empty());
        assert!(response.finalized_features.is_empty());
        assert_eq!(response.finalized_features_epoch, -1);
        assert!(!response.zk_migration_ready);
        let metadata = response.api_keys.iter().find(|a| a.api_key == ApiKey::Metadata as i16).expect("metadata row");
        assert_eq!((metadata.min_version, metadata.max_version), (0, 12));
    }

    #[test]
    fn unsupported_answer_carries_error_35_and_the_table() {
        let response = api_versions_unsupported();
        assert_eq!(response.error_code, 35);
        assert_eq!(response.api_keys, api_versions_response(0).api_keys);
    }
}
