//! DeleteRecords: moves each named partition's log start offset up to the requested offset
//! (-1: the high watermark) on its leader, which makes it durable before answering with the
//! new log start (the low watermark); followers follow it through replication. Bad arguments
//! are answered at once with Kafka's codes: an unknown partition (UNKNOWN_TOPIC_OR_PARTITION),
//! an offset above the high watermark or below -1 (OFFSET_OUT_OF_RANGE), a partition led
//! elsewhere (NOT_LEADER_OR_FOLLOWER), `__consumer_offsets` (INVALID_TOPIC_EXCEPTION, as Kafka:
//! the group coordinator's state lives there).

use std::sync::Arc;

use chronik::offsets::OFFSETS_TOPIC;
use futures::future::join_all;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_request::DeleteRecordsTopic;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

use super::{ask_replica, replica_for};
use crate::context::NodeContext;
use crate::replica::{PartitionError, ReplicaMsg};

/// Handles one DeleteRecords request; its partitions are handled concurrently.
pub async fn handle(ctx: &Arc<NodeContext>, req: DeleteRecordsRequest) -> ResponseKind {
    let topics = join_all(req.topics.iter().map(|t| topic(ctx, t))).await;
    ResponseKind::DeleteRecords(DeleteRecordsResponse::default().with_topics(topics))
}

async fn topic(ctx: &NodeContext, topic: &DeleteRecordsTopic) -> DeleteRecordsTopicResult {
    let name = topic.name.0.as_str();
    let partitions = join_all(topic.partitions.iter().map(|p| async move {
        let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
        match delete(ctx, name, p.partition_index, p.offset).await {
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

async fn delete(ctx: &NodeContext, topic: &str, partition: i32, offset: i64) -> Result<i64, PartitionError> {
    if topic == OFFSETS_TOPIC {
        let msg = format!("cannot delete records of the internal topic {topic}");
        return Err(PartitionError::new(ResponseError::InvalidTopicException, msg));
    }
    let replica = replica_for(ctx, topic, partition)?;
    ask_replica(&replica, |reply| ReplicaMsg::DeleteRecords { offset, reply }).await
}
