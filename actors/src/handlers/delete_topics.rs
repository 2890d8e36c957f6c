//! DeleteTopics: remove topics; their replicas stop and their data is deleted.

use std::sync::Arc;

use chronik::cluster::{MetadataCommand, MetadataError};
use chronik::offsets::OFFSETS_TOPIC;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind};

use super::{apply_metadata, metadata_error_code, str_bytes, topic_name};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Handles one DeleteTopics request (by name, v1–v5).
pub async fn handle(ctx: &Arc<NodeContext>, req: DeleteTopicsRequest, version: i16) -> ResponseKind {
    let names: Vec<String> = req.topic_names.iter().map(|n| n.0.to_string()).collect();
    // The offsets topic holds every group's committed offsets; it cannot be deleted.
    let deletable: Vec<&String> = names.iter().filter(|n| n.as_str() != OFFSETS_TOPIC).collect();
    let commands = deletable.iter().map(|name| MetadataCommand::DeleteTopic { name: (*name).clone() }).collect();
    let mut applied = apply_metadata(ctx, commands).await.into_iter();
    let internal =
        || Err(MetadataError::InvalidTopicName { name: OFFSETS_TOPIC.into(), reason: "it is internal".into() });
    let outcomes: Vec<_> = names
        .iter()
        .map(|n| if n == OFFSETS_TOPIC { internal() } else { applied.next().unwrap_or_else(internal) })
        .collect();
    let deleted: Vec<String> = names.iter().zip(&outcomes).filter(|(_, o)| o.is_ok()).map(|(n, _)| n.clone()).collect();
    if !deleted.is_empty()
        && let Some(coordinator) = ctx.coordinator.get()
    {
        // Before answering, so a client that re-creates the topic never sees the old offsets.
        let _ = coordinator.cast(CoordinatorMsg::TopicsDeleted(deleted));
    }
    let responses = names
        .iter()
        .zip(outcomes)
        .map(|(name, outcome)| {
            let r = DeletableTopicResult::default().with_name(Some(topic_name(name)));
            match outcome {
                Ok(()) => r,
                Err(e) if version >= 5 => {
                    r.with_error_code(metadata_error_code(&e)).with_error_message(Some(str_bytes(e.to_string())))
                }
                Err(e) => r.with_error_code(metadata_error_code(&e)),
            }
        })
        .collect();
    ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(responses))
}
