//! Realistic records-management responses at a given version, for round-trip tests.

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::*;

use crate::protocol::sample_requests::{TOPIC, s, topic};

/// Kafka's OFFSET_OUT_OF_RANGE error code.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// Partition 0's low watermark is now 40; partition 1's offset was above its high watermark.
pub(super) fn delete_records() -> DeleteRecordsResponse {
    let ok = DeleteRecordsPartitionResult::default().with_partition_index(0).with_low_watermark(40).with_error_code(0);
    let refused = DeleteRecordsPartitionResult::default()
        .with_partition_index(1)
        .with_low_watermark(-1)
        .with_error_code(OFFSET_OUT_OF_RANGE);
    let orders = DeleteRecordsTopicResult::default().with_name(topic(TOPIC)).with_partitions(vec![ok, refused]);
    DeleteRecordsResponse::default().with_throttle_time_ms(0).with_topics(vec![orders])
}

/// One data directory holding a leader (no lag) and a follower 12 offsets behind; v4 adds the
/// file system's size.
pub(super) fn describe_log_dirs(version: i16) -> DescribeLogDirsResponse {
    let partition = |index: i32, size: i64, lag: i64| {
        DescribeLogDirsPartition::default()
            .with_partition_index(index)
            .with_partition_size(size)
            .with_offset_lag(lag)
            .with_is_future_key(false)
    };
    let orders = DescribeLogDirsTopic::default()
        .with_name(topic(TOPIC))
        .with_partitions(vec![partition(0, 4_096, 0), partition(2, 1_024, 12)]);
    let mut dir = DescribeLogDirsResult::default()
        .with_error_code(0)
        .with_log_dir(s("/var/lib/chronik"))
        .with_topics(vec![orders]);
    if version >= 4 {
        dir = dir.with_total_bytes(107_374_182_400).with_usable_bytes(53_687_091_200);
    }
    DescribeLogDirsResponse::default().with_throttle_time_ms(0).with_results(vec![dir])
}
