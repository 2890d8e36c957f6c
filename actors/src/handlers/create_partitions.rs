//! CreatePartitions: grow topics; new partitions are placed like the first ones.

use std::sync::Arc;

use chronik::cluster::{MetadataCommand, MetadataError};
use kafka_protocol::ResponseError;
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
        let outcome = if topic.assignments.is_some() {
            Err((
                ResponseError::InvalidReplicaAssignment.code(),
                "manual replica assignment is not supported".to_string(),
            ))
        } else {
            let command = MetadataCommand::CreatePartitions { name: name.clone(), count: topic.count };
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
        };
        let r = CreatePartitionsTopicResult::default().with_name(topic_name(&name));
        results.push(match outcome {
            Ok(()) => r,
            Err((code, message)) => r.with_error_code(code).with_error_message(Some(str_bytes(message))),
        });
    }
    ResponseKind::CreatePartitions(CreatePartitionsResponse::default().with_results(results))
}
