//! AlterConfigs (v0–v2): replaces a topic's config overrides, or a broker entity's run-time
//! configs, with the given set. Running replicas pick up new segment and retention limits at
//! once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::cluster::{
    BrokerConfigError, DEFAULT_BROKER_ENTITY, MetadataCommand, validate_broker_configs, validate_topic_configs,
};
use chronik::config::NodeId;
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
            BROKER => set_broker_configs(ctx, res.resource_name.as_str(), configs, req.validate_only).await,
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
    apply(ctx, MetadataCommand::SetTopicConfigs { name: topic.to_string(), configs }).await
}

/// The broker entity a resource name means: `""` (every broker's default) or a member's node
/// id, as Kafka names them.
pub(super) fn broker_entity(ctx: &NodeContext, name: &str) -> Result<String, (i16, String)> {
    if name == DEFAULT_BROKER_ENTITY {
        return Ok(name.to_string());
    }
    match name.parse::<NodeId>() {
        Ok(id) if ctx.metadata().nodes.contains_key(&id) => Ok(id.to_string()),
        _ => Err((ResponseError::InvalidRequest.code(), format!("broker {name:?} is not a member of this cluster"))),
    }
}

/// Validates the complete new run-time config set of a broker entity (see
/// [`broker_entity`]) and, unless `validate_only`, applies it through the metadata.
pub(super) async fn set_broker_configs(
    ctx: &NodeContext,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let entity = broker_entity(ctx, name)?;
    validate_broker_configs(&configs).map_err(|e| {
        let code = match e {
            BrokerConfigError::NotDynamic(_) => ResponseError::InvalidRequest,
            BrokerConfigError::Invalid { .. } => ResponseError::InvalidConfig,
        };
        (code.code(), e.to_string())
    })?;
    if validate_only {
        return Ok(());
    }
    apply(ctx, MetadataCommand::SetBrokerConfigs { entity, configs }).await
}

async fn apply(ctx: &NodeContext, command: MetadataCommand) -> Result<(), (i16, String)> {
    match apply_metadata(ctx, vec![command]).await.pop() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err((metadata_error_code(&e), e.to_string())),
        None => Err((ResponseError::RequestTimedOut.code(), "no answer from the metadata actor".into())),
    }
}

/// Why a resource type cannot be altered.
pub(super) fn not_alterable(resource_type: i8) -> (i16, String) {
    (ResponseError::InvalidRequest.code(), format!("resource type {resource_type} cannot be altered"))
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
