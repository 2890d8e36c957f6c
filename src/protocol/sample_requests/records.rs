//! Realistic records-management requests at a given version, for round-trip tests. The story:
//! an operator deletes the records of `orders` before offset 40 on partition 0 and up to the
//! high watermark on partition 1, then asks where partitions of `orders` live on disk.

use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::*;

use super::{TOPIC, topic};

/// Delete before 40 on partition 0, up to the high watermark (-1) on partition 1.
pub(super) fn delete_records() -> DeleteRecordsRequest {
    let partition =
        |index: i32, offset: i64| DeleteRecordsPartition::default().with_partition_index(index).with_offset(offset);
    let orders =
        DeleteRecordsTopic::default().with_name(topic(TOPIC)).with_partitions(vec![partition(0, 40), partition(1, -1)]);
    DeleteRecordsRequest::default().with_topics(vec![orders]).with_timeout_ms(30_000)
}

/// Partitions 0 and 2 of `orders`; the null list (every partition) is the other common form,
/// kept for odd versions.
pub(super) fn describe_log_dirs(version: i16) -> DescribeLogDirsRequest {
    let topics = (version % 2 == 0)
        .then(|| vec![DescribableLogDirTopic::default().with_topic(topic(TOPIC)).with_partitions(vec![0, 2])]);
    DescribeLogDirsRequest::default().with_topics(topics)
}
