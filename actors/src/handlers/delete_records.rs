//! DeleteRecords: moves each named partition's log start offset up to the requested offset
//! (-1: the high watermark) on its leader, which makes it durable, and answers once every
//! in-sync follower's log start has followed (through replication) with the low watermark, or
//! REQUEST_TIMED_OUT after the request's timeout. Bad arguments
//! are answered at once with Kafka's codes: an unknown partition (UNKNOWN_TOPIC_OR_PARTITION),
//! an offset above the high watermark or below -1 (OFFSET_OUT_OF_RANGE), a partition led
//! elsewhere (NOT_LEADER_OR_FOLLOWER), `__consumer_offsets` (INVALID_TOPIC_EXCEPTION, as Kafka:
//! the group coordinator's state lives there).

use std::sync::Arc;
use std::time::Duration;

use chronik::offsets::OFFSETS_TOPIC;
use futures::future::join_all;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_request::DeleteRecordsTopic;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

use super::{ask_replica_within, replica_for};
use crate::context::NodeContext;
use crate::replica::{PartitionError, ReplicaMsg};

/// How much longer than the request's timeout the replica may take to answer (its own deadline
/// check runs with the ISR check, every few hundred ms).
const ASK_SLACK: Duration = Duration::from_secs(5);

/// Handles one DeleteRecords request; its partitions are handled concurrently.
pub async fn handle(ctx: &Arc<NodeContext>, req: DeleteRecordsRequest) -> ResponseKind {
    let topics = join_all(req.topics.iter().map(|t| topic(ctx, t, req.timeout_ms))).await;
    ResponseKind::DeleteRecords(DeleteRecordsResponse::default().with_topics(topics))
}

async fn topic(ctx: &NodeContext, topic: &DeleteRecordsTopic, timeout_ms: i32) -> DeleteRecordsTopicResult {
    let name = topic.name.0.as_str();
    let partitions = join_all(topic.partitions.iter().map(|p| async move {
        let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
        match delete(ctx, name, p.partition_index, p.offset, timeout_ms).await {
            Ok(low_watermark) => r.with_low_watermark(low_watermark),
            Err(e) => {
                tracing::debug!(topic = name, partition = p.partition_index, offset = p.offset, error = %e.message,
                    "DeleteRecords refused");
                r.with_low_watermark(-1).with_error_code(e.code)
            }
        }
    }))
    .await;
    DeleteRecordsTopicResult::default().with_name(topic.name.clone()).with_partitions(partitions)
}

async fn delete(
    ctx: &NodeContext,
    topic: &str,
    partition: i32,
    offset: i64,
    timeout_ms: i32,
) -> Result<i64, PartitionError> {
    if topic == OFFSETS_TOPIC {
        let msg = format!("cannot delete records of the internal topic {topic}");
        return Err(PartitionError::new(ResponseError::InvalidTopicException, msg));
    }
    let replica = replica_for(ctx, topic, partition)?;
    let msg = |reply| ReplicaMsg::DeleteRecords { offset, timeout_ms: i64::from(timeout_ms), reply };
    // The replica answers REQUEST_TIMED_OUT itself once `timeout_ms` has passed.
    ask_replica_within(&replica, msg, Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)) + ASK_SLACK).await
}
