//! CreatePartitions: grow topics; new partitions are placed like the first ones, or where a
//! manual assignment puts them (checked as Kafka's controller does).

use std::sync::Arc;

use chronik::cluster::{MetadataCommand, MetadataError};
use chronik::config::NodeId;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind};

use super::{apply_metadata, metadata_error_code, str_bytes, topic_name};
use crate::context::NodeContext;

/// Handles one CreatePartitions request.
pub async fn handle(ctx: &Arc<NodeContext>, req: CreatePartitionsRequest) -> ResponseKind {
    let metadata = ctx.metadata();
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.name.0.to_string();
        let outcome = match assignments(topic) {
            Err(message) => Err((ResponseError::InvalidReplicaAssignment.code(), message)),
            Ok(assignments) => {
                let command = MetadataCommand::CreatePartitions { name: name.clone(), count: topic.count, assignments };
                // validate_only: apply to a copy and throw it away.
                let result = if req.validate_only {
                    metadata.as_ref().clone().apply(&command).map(|_| ())
                } else {
                    apply_metadata(ctx, vec![command])
                        .await
                        .pop()
                        .unwrap_or(Err(MetadataError::Unavailable("no answer".into())))
                };
                result.map_err(|e| (metadata_error_code(&e), e.to_string()))
            }
        };
        let r = CreatePartitionsTopicResult::default().with_name(topic_name(&name));
        results.push(match outcome {
            Ok(()) => r,
            Err((code, message)) => r.with_error_code(code).with_error_message(Some(str_bytes(message))),
        });
    }
    ResponseKind::CreatePartitions(CreatePartitionsResponse::default().with_results(results))
}

/// The request's manual assignment as node ids (empty: none given); a negative broker id is
/// refused here, the rest by the metadata's checks.
fn assignments(topic: &CreatePartitionsTopic) -> Result<Vec<Vec<NodeId>>, String> {
    let Some(given) = &topic.assignments else { return Ok(Vec::new()) };
    if given.is_empty() {
        return Err("the manual assignment is empty".to_string());
    }
    given
        .iter()
        .map(|a| {
            a.broker_ids
                .iter()
                .map(|id| NodeId::try_from(id.0).map_err(|_| format!("broker id {} is not valid", id.0)))
                .collect()
        })
        .collect()
}
