//! DescribeConfigs: the effective configs of topics (overrides over broker defaults) and of
//! this broker (read-only).

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::config::Config;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};

use super::str_bytes;
use crate::context::NodeContext;

/// Resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Config sources.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
/// Config types (v3+).
const BOOLEAN: i8 = 1;
const INT: i8 = 3;
const LONG: i8 = 5;
const LIST: i8 = 7;

/// One reported config.
struct Entry {
    name: &'static str,
    value: String,
    kind: i8,
    source: i8,
    read_only: bool,
}

/// Handles one DescribeConfigs request.
pub fn handle(ctx: &Arc<NodeContext>, req: DescribeConfigsRequest, version: i16) -> ResponseKind {
    let results = req.resources.iter().map(|res| describe(ctx, res, version)).collect();
    ResponseKind::DescribeConfigs(DescribeConfigsResponse::default().with_results(results))
}

fn describe(ctx: &NodeContext, res: &DescribeConfigsResource, version: i16) -> DescribeConfigsResult {
    let name = res.resource_name.as_str();
    let base = DescribeConfigsResult::default()
        .with_resource_type(res.resource_type)
        .with_resource_name(res.resource_name.clone());
    let fail = |kind: ResponseError, message: String| {
        base.clone().with_error_code(kind.code()).with_error_message(Some(str_bytes(message)))
    };
    let entries = match res.resource_type {
        TOPIC => match ctx.metadata().topics.get(name) {
            Some(topic) => topic_entries(&ctx.config, &topic.configs),
            None => return fail(ResponseError::UnknownTopicOrPartition, format!("topic {name:?} does not exist")),
        },
        BROKER if name.is_empty() || name == ctx.config.node_id.to_string() => broker_entries(&ctx.config),
        BROKER => {
            return fail(ResponseError::InvalidRequest, format!("this is broker {}, not {name:?}", ctx.config.node_id));
        }
        other => return fail(ResponseError::InvalidRequest, format!("resource type {other} is not supported")),
    };
    let wanted = |key: &str| res.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == key));
    let configs = entries
        .into_iter()
        .filter(|e| wanted(e.name))
        .map(|e| {
            let r = DescribeConfigsResourceResult::default()
                .with_name(str_bytes(e.name))
                .with_value(Some(str_bytes(e.value)))
                .with_read_only(e.read_only)
                .with_config_source(e.source);
            if version >= 3 { r.with_config_type(e.kind) } else { r }
        })
        .collect();
    base.with_configs(configs)
}

fn topic_entries(config: &Config, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
    let s = &config.storage;
    let defaults = [
        ("cleanup.policy", "delete".to_string(), LIST),
        ("retention.ms", s.retention_ms.to_string(), LONG),
        ("retention.bytes", s.retention_bytes.to_string(), LONG),
        ("segment.bytes", s.segment_bytes.to_string(), INT),
        ("segment.ms", s.segment_ms.to_string(), LONG),
        ("min.insync.replicas", config.min_insync_replicas.to_string(), INT),
        ("max.message.bytes", config.kafka.max_request_bytes.to_string(), INT),
    ];
    defaults
        .into_iter()
        .map(|(name, default, kind)| match overrides.get(name) {
            Some(v) => Entry { name, value: v.clone(), kind, source: DYNAMIC_TOPIC_CONFIG, read_only: false },
            None => Entry { name, value: default, kind, source: DEFAULT_CONFIG, read_only: false },
        })
        .collect()
}

fn broker_entries(config: &Config) -> Vec<Entry> {
    let s = &config.storage;
    let entries = [
        ("broker.id", config.node_id.to_string(), INT),
        ("listeners", format!("PLAINTEXT://{}", config.kafka_bind()), LIST),
        ("advertised.listeners", format!("PLAINTEXT://{}", config.advertised_kafka()), LIST),
        ("num.partitions", config.kafka.num_partitions.to_string(), INT),
        ("default.replication.factor", config.replication_factor.to_string(), INT),
        ("min.insync.replicas", config.min_insync_replicas.to_string(), INT),
        ("auto.create.topics.enable", config.kafka.auto_create_topics.to_string(), BOOLEAN),
        ("log.retention.ms", s.retention_ms.to_string(), LONG),
        ("log.retention.bytes", s.retention_bytes.to_string(), LONG),
        ("log.segment.bytes", s.segment_bytes.to_string(), INT),
        ("socket.request.max.bytes", config.kafka.max_request_bytes.to_string(), INT),
    ];
    entries
        .into_iter()
        .map(|(name, value, kind)| Entry { name, value, kind, source: STATIC_BROKER_CONFIG, read_only: true })
        .collect()
}
