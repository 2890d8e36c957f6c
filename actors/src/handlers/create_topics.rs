//! CreateTopics: validate every topic, then create the valid ones in one metadata change.
//!
//! From v5 (KIP-525) a created topic's answer also carries its partition count, replication
//! factor and every config as DescribeConfigs reports it; from v7 its topic id. A topic that
//! fails carries none of that: Kafka resets them (-1, -1, no configs, the zero id) and leaves
//! `topic_config_error_code` at 0, which is only for configs it may not show.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chronik::cluster::{ClusterMetadata, DescribedConfig, MetadataCommand, validate_topic_configs};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, ResponseKind};

use super::describe_configs::topic_configs;
use super::{apply_metadata, metadata_error_code, str_bytes, topic_name};
use crate::context::NodeContext;

/// The first version whose answer describes the created topic (KIP-525).
const DESCRIBES_CREATED: i16 = 5;

/// Handles one CreateTopics request.
pub async fn handle(ctx: &Arc<NodeContext>, req: CreateTopicsRequest, version: i16) -> ResponseKind {
    let metadata = ctx.metadata();
    let mut results: Vec<CreatableTopicResult> = Vec::with_capacity(req.topics.len());
    let mut commands = Vec::new();
    let mut slots = Vec::new();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for topic in &req.topics {
        *copies.entry(topic.name.0.as_str()).or_default() += 1;
    }
    let mut answered = HashSet::new();
    for topic in &req.topics {
        let name = topic.name.0.to_string();
        if copies[name.as_str()] > 1 {
            // As Kafka: a name given twice creates nothing and is answered once.
            if answered.insert(name.clone()) {
                let message = "Found multiple entries for this topic.".to_string();
                results.push(failed(&name, ResponseError::InvalidRequest.code(), message));
            }
            continue;
        }
        match command_for(ctx, &metadata, topic) {
            Err((code, message)) => results.push(failed(&name, code, message)),
            Ok(command) => {
                slots.push(results.len());
                let result = succeeded(&name);
                // validate_only too: Kafka answers with what the topic would be.
                results.push(if version >= DESCRIBES_CREATED {
                    describe_created(ctx, &metadata, result, &command)
                } else {
                    result
                });
                commands.push(command);
            }
        }
    }
    if !req.validate_only && !commands.is_empty() {
        for (slot, outcome) in slots.into_iter().zip(apply_metadata(ctx, commands).await) {
            if let Err(e) = outcome {
                let name = results[slot].name.0.to_string();
                results[slot] = failed(&name, metadata_error_code(&e), e.to_string());
            }
        }
    }
    ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(results))
}

/// A topic's answer before anything is known of it. Kafka sends a null message on success;
/// the codec's default is "".
fn succeeded(name: &str) -> CreatableTopicResult {
    CreatableTopicResult::default().with_name(topic_name(name)).with_error_message(None)
}

/// A failed topic's answer: the codec's defaults are Kafka's reset values (-1 partitions,
/// -1 replication factor, no configs, the zero id).
fn failed(name: &str, code: i16, message: String) -> CreatableTopicResult {
    succeeded(name).with_error_code(code).with_error_message(Some(str_bytes(message)))
}

/// Adds what the v5+ answer says of a topic `command` creates (or would create).
fn describe_created(
    ctx: &NodeContext,
    metadata: &ClusterMetadata,
    result: CreatableTopicResult,
    command: &MetadataCommand,
) -> CreatableTopicResult {
    let MetadataCommand::CreateTopic { id, partitions, replication_factor, configs, .. } = command else {
        return result;
    };
    result
        .with_topic_id(*id)
        .with_num_partitions(*partitions)
        .with_replication_factor(*replication_factor)
        .with_configs(Some(creatable_configs(topic_configs(ctx, metadata, configs))))
}

/// The described configs in CreateTopics' form, sorted by name as Kafka sends them. Topic
/// configs are never read-only, and none is sensitive.
fn creatable_configs(described: Vec<DescribedConfig>) -> Vec<CreatableTopicConfigs> {
    let mut configs: Vec<CreatableTopicConfigs> = described
        .iter()
        .map(|d| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(d.name))
                .with_value(Some(str_bytes(d.value())))
                .with_read_only(false)
                .with_config_source(d.source() as i8)
                .with_is_sensitive(false)
        })
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    configs
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

#[cfg(test)]
mod tests {
    use chronik::cluster::{BrokerValue, ConfigSource, describe_topic_configs};

    use super::*;

    #[test]
    fn created_configs_are_every_topic_config_sorted_with_describe_configs_sources() {
        let overrides = BTreeMap::from([("retention.ms".to_string(), "60000".to_string())]);
        let broker = |key: &str| {
            (key == "segment.bytes").then(|| BrokerValue {
                dynamic: vec![("2048".into(), ConfigSource::DynamicDefaultBroker)],
                value: "1024".into(),
                default: "1073741824".into(),
            })
        };
        let described = describe_topic_configs(&overrides, broker);
        let configs = creatable_configs(described.clone());
        assert_eq!(configs.len(), described.len());
        assert!(configs.windows(2).all(|w| w[0].name < w[1].name), "sorted by name");
        let get = |name: &str| configs.iter().find(|c| c.name.as_str() == name).expect(name);
        let retention = get("retention.ms");
        assert_eq!((retention.value.as_deref(), retention.config_source), (Some("60000"), 1));
        let segment = get("segment.bytes");
        assert_eq!((segment.value.as_deref(), segment.config_source), (Some("2048"), 3));
        let cleanup = get("cleanup.policy");
        assert_eq!((cleanup.value.as_deref(), cleanup.config_source), (Some("delete"), 5));
        assert!(configs.iter().all(|c| !c.read_only && !c.is_sensitive));
    }

    #[test]
    fn a_failed_topic_carries_kafkas_reset_values() {
        let r = failed("t", ResponseError::TopicAlreadyExists.code(), "exists".into());
        assert_eq!((r.error_code, r.error_message.as_deref()), (36, Some("exists")));
        assert_eq!((r.num_partitions, r.replication_factor), (-1, -1));
        assert_eq!((r.configs, r.topic_id, r.topic_config_error_code), (Some(Vec::new()), uuid::Uuid::nil(), 0));
        assert_eq!(succeeded("t").error_message, None);
    }
}
