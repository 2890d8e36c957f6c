//! CreateTopics: validate every topic, then create the valid ones in one metadata change.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::cluster::{ClusterMetadata, MetadataCommand, validate_topic_configs};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, ResponseKind};

use super::{apply_metadata, metadata_error_code, str_bytes, topic_name};
use crate::context::NodeContext;

/// Handles one CreateTopics request.
pub async fn handle(ctx: &Arc<NodeContext>, req: CreateTopicsRequest) -> ResponseKind {
    let metadata = ctx.metadata();
    let mut results: Vec<CreatableTopicResult> = Vec::with_capacity(req.topics.len());
    let mut commands = Vec::new();
    let mut slots = Vec::new();
    for topic in &req.topics {
        let name = topic.name.0.to_string();
        // Kafka sends a null message on success; the codec's default is "".
        let result = CreatableTopicResult::default().with_name(topic_name(&name)).with_error_message(None);
        match command_for(ctx, &metadata, topic) {
            Err((code, message)) => {
                results.push(result.with_error_code(code).with_error_message(Some(str_bytes(message))))
            }
            Ok(command) => {
                slots.push(results.len());
                results.push(result);
                commands.push(command);
            }
        }
    }
    if !req.validate_only && !commands.is_empty() {
        for (slot, outcome) in slots.into_iter().zip(apply_metadata(ctx, commands).await) {
            if let Err(e) = outcome {
                let r = std::mem::take(&mut results[slot]);
                results[slot] =
                    r.with_error_code(metadata_error_code(&e)).with_error_message(Some(str_bytes(e.to_string())));
            }
        }
    }
    ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(results))
}

/// The command for one requested topic, with the broker's defaults filled in.
fn command_for(
    ctx: &NodeContext,
    metadata: &ClusterMetadata,
    topic: &CreatableTopic,
) -> Result<MetadataCommand, (i16, String)> {
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        if let Some(value) = &c.value {
            configs.insert(c.name.to_string(), value.to_string());
        }
    }
    validate_topic_configs(&configs).map_err(|e| (ResponseError::InvalidConfig.code(), e.to_string()))?;
    let name = topic.name.0.to_string();
    let id = uuid::Uuid::new_v4();
    if !topic.assignments.is_empty() {
        let assignments = manual_assignment(topic)?;
        metadata.check_assignment(&name, &assignments).map_err(|e| (metadata_error_code(&e), e.to_string()))?;
        let (partitions, replication_factor) = (assignments.len() as i32, assignments[0].len() as i16);
        return Ok(MetadataCommand::CreateTopic { name, id, partitions, replication_factor, configs, assignments });
    }
    let partitions = if topic.num_partitions == -1 { ctx.config.kafka.num_partitions } else { topic.num_partitions };
    let replication_factor =
        if topic.replication_factor == -1 { ctx.config.replication_factor } else { topic.replication_factor };
    metadata
        .check_create_topic(&name, partitions, replication_factor)
        .map_err(|e| (metadata_error_code(&e), e.to_string()))?;
    Ok(MetadataCommand::CreateTopic { name, id, partitions, replication_factor, configs, assignments: Vec::new() })
}

/// The manual assignment as replicas per partition, checked the way Kafka's controller checks
/// the request itself (the brokers named are checked against the metadata by the caller).
fn manual_assignment(topic: &CreatableTopic) -> Result<Vec<Vec<u64>>, (i16, String)> {
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        let msg = "both numPartitions or replicationFactor and replicasAssignments were set; both cannot be used at the same time";
        return Err((ResponseError::InvalidRequest.code(), msg.into()));
    }
    let invalid = |msg: String| (ResponseError::InvalidReplicaAssignment.code(), msg);
    let mut by_partition = BTreeMap::new();
    for a in &topic.assignments {
        let replicas = a
            .broker_ids
            .iter()
            .map(|b| u64::try_from(b.0).map_err(|_| invalid(format!("broker id {} is negative", b.0))))
            .collect::<Result<Vec<u64>, _>>()?;
        if by_partition.insert(a.partition_index, replicas).is_some() {
            return Err(invalid(format!("partition {} is assigned twice", a.partition_index)));
        }
    }
    if by_partition.keys().copied().ne(0..by_partition.len() as i32) {
        return Err(invalid("partitions should be a consecutive 0-based integer sequence".into()));
    }
    Ok(by_partition.into_values().collect())
}
