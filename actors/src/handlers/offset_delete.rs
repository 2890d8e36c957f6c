//! OffsetDelete (v0): deletes a group's committed offsets of partitions its members do not
//! consume. A group-level error (GROUP_ID_NOT_FOUND, NOT_COORDINATOR, …) is the whole answer,
//! as in Kafka; otherwise each partition gets its code.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, ResponseKind};

use super::{ask_coordinator, topic_name};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Handles one OffsetDelete request.
pub async fn handle(ctx: &Arc<NodeContext>, req: OffsetDeleteRequest) -> ResponseKind {
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), p.partition_index)))
        .collect();
    let msg = |reply| CoordinatorMsg::DeleteOffsets { group_id: req.group_id.0.to_string(), partitions, reply };
    let response = match ask_coordinator(ctx, msg, Duration::from_secs(30)).await.and_then(|r| r) {
        Ok(codes) => OffsetDeleteResponse::default().with_topics(topics(&req, codes)),
        Err(code) => OffsetDeleteResponse::default().with_error_code(code),
    };
    ResponseKind::OffsetDelete(response)
}

/// The per-partition answer: one code per partition, in the request's order.
fn topics(req: &OffsetDeleteRequest, codes: Vec<i16>) -> Vec<OffsetDeleteResponseTopic> {
    let mut codes = codes.into_iter();
    req.topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(topic_name(&topic.name.0)).with_partitions(partitions)
        })
        .collect()
}
