//! AlterConfigs (v0–v2): replaces a topic's config overrides with the given set. Running
//! replicas pick up new segment and retention limits at once. Broker configs are read-only.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::cluster::{MetadataCommand, validate_topic_configs};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::{apply_metadata, metadata_error_code, str_bytes};
use crate::context::NodeContext;

/// Resource types.
pub(super) const TOPIC: i8 = 2;
pub(super) const BROKER: i8 = 4;

/// Handles one AlterConfigs request.
pub async fn handle(ctx: &Arc<NodeContext>, req: AlterConfigsRequest) -> ResponseKind {
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in &req.resources {
        let configs: BTreeMap<String, String> =
            res.configs.iter().filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string()))).collect();
        let outcome = match res.resource_type {
            TOPIC => set_topic_configs(ctx, res.resource_name.as_str(), configs, req.validate_only).await,
            other => Err(not_alterable(other)),
        };
        responses.push(response(res.resource_type, res.resource_name.clone(), outcome));
    }
    ResponseKind::AlterConfigs(AlterConfigsResponse::default().with_responses(responses))
}

/// Validates the complete new set of overrides of `topic` and, unless `validate_only`,
/// applies it through the metadata.
pub(super) async fn set_topic_configs(
    ctx: &NodeContext,
    topic: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    if !ctx.metadata().topics.contains_key(topic) {
        return Err((ResponseError::UnknownTopicOrPartition.code(), format!("topic {topic:?} does not exist")));
    }
    validate_topic_configs(&configs).map_err(|e| (ResponseError::InvalidConfig.code(), e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    let command = MetadataCommand::SetTopicConfigs { name: topic.to_string(), configs };
    match apply_metadata(ctx, vec![command]).await.pop() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err((metadata_error_code(&e), e.to_string())),
        None => Err((ResponseError::RequestTimedOut.code(), "no answer from the metadata actor".into())),
    }
}

/// Why a resource type cannot be altered.
pub(super) fn not_alterable(resource_type: i8) -> (i16, String) {
    let message = match resource_type {
        BROKER => "broker configs are read-only; set them in the configuration file".to_string(),
        other => format!("resource type {other} cannot be altered"),
    };
    (ResponseError::InvalidRequest.code(), message)
}

/// One resource's answer (the same shape for AlterConfigs and IncrementalAlterConfigs).
pub(super) fn response(
    resource_type: i8,
    name: StrBytes,
    outcome: Result<(), (i16, String)>,
) -> AlterConfigsResourceResponse {
    let r = AlterConfigsResourceResponse::default().with_resource_type(resource_type).with_resource_name(name);
    match outcome {
        // Kafka sends a null message on success; the codec's default is "".
        Ok(()) => r.with_error_message(None),
        Err((code, message)) => r.with_error_code(code).with_error_message(Some(str_bytes(message))),
    }
}
