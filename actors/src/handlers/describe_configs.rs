//! DescribeConfigs: every Kafka topic config of a topic (override, broker setting or default,
//! with synonyms when asked) and this broker's settings (read-only), each with its source.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::cluster::{
    BrokerValue, ClusterMetadata, ConfigSource, ConfigSynonym, ConfigType, DYNAMIC_BROKER_CONFIGS, DescribedConfig,
    describe_topic_configs, dynamic_broker_value, is_dynamic_broker_key,
};
use chronik::config::Config;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};

use super::str_bytes;
use crate::context::NodeContext;
use crate::log_levels;

/// Resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
/// Kafka's DYNAMIC_BROKER_LOGGER_CONFIG source, which every logger reports.
const LOGGER_SOURCE: i8 = 6;

/// One reported config.
struct Entry {
    described: DescribedConfig,
    read_only: bool,
}

/// Handles one DescribeConfigs request.
pub fn handle(ctx: &Arc<NodeContext>, req: DescribeConfigsRequest, version: i16) -> ResponseKind {
    let results = req.resources.iter().map(|res| describe(ctx, res, req.include_synonyms, version)).collect();
    ResponseKind::DescribeConfigs(DescribeConfigsResponse::default().with_results(results))
}

fn describe(ctx: &NodeContext, res: &DescribeConfigsResource, synonyms: bool, version: i16) -> DescribeConfigsResult {
    let name = res.resource_name.as_str();
    // Kafka sends a null message on success; the codec's default is "".
    let base = DescribeConfigsResult::default()
        .with_resource_type(res.resource_type)
        .with_resource_name(res.resource_name.clone())
        .with_error_message(None);
    let fail = |kind: ResponseError, message: String| {
        base.clone().with_error_code(kind.code()).with_error_message(Some(str_bytes(message)))
    };
    let metadata = ctx.metadata();
    let dynamic = |broker_key: &str| dynamic_values(ctx, &metadata, broker_key);
    let entries = match res.resource_type {
        TOPIC => match metadata.topics.get(name) {
            Some(topic) => topic_configs(ctx, &metadata, &topic.configs)
                .into_iter()
                .map(|described| Entry { described, read_only: false })
                .collect(),
            None => return fail(ResponseError::UnknownTopicOrPartition, format!("topic {name:?} does not exist")),
        },
        BROKER if name.is_empty() || name == ctx.config.node_id.to_string() => broker_entries(&ctx.config, &dynamic),
        BROKER => {
            return fail(ResponseError::InvalidRequest, format!("this is broker {}, not {name:?}", ctx.config.node_id));
        }
        BROKER_LOGGER if name == ctx.config.node_id.to_string() => {
            let loggers = log_levels::levels().map(|l| l.describe()).unwrap_or_default();
            let wanted =
                |key: &str| res.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == key));
            let configs = loggers.into_iter().filter(|(logger, _)| wanted(logger)).map(|(logger, level)| {
                let r = DescribeConfigsResourceResult::default()
                    .with_name(str_bytes(logger))
                    .with_value(Some(str_bytes(level)))
                    .with_read_only(false)
                    .with_config_source(LOGGER_SOURCE);
                if version >= 3 { r.with_config_type(ConfigType::String as i8) } else { r }
            });
            return base.with_configs(configs.collect());
        }
        BROKER_LOGGER => {
            return fail(ResponseError::InvalidRequest, format!("this is broker {}, not {name:?}", ctx.config.node_id));
        }
        other => return fail(ResponseError::InvalidRequest, format!("resource type {other} is not supported")),
    };
    let wanted = |key: &str| res.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == key));
    let configs =
        entries.into_iter().filter(|e| wanted(e.described.name)).map(|e| config_result(e, synonyms, version)).collect();
    base.with_configs(configs)
}

fn config_result(e: Entry, synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let d = &e.described;
    let r = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(d.name))
        .with_value(Some(str_bytes(d.value())))
        .with_read_only(e.read_only)
        .with_config_source(d.source() as i8);
    let r = if synonyms { r.with_synonyms(d.synonyms.iter().map(synonym).collect()) } else { r };
    if version >= 3 { r.with_config_type(d.kind as i8) } else { r }
}

fn synonym(s: &ConfigSynonym) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(s.name.clone()))
        .with_value(Some(str_bytes(s.value.clone())))
        .with_source(s.source as i8)
}

/// Every topic config of a topic with `overrides` as this broker reports it: the override,
/// else the broker's setting (run time, file), else the default. CreateTopics v5+ answers
/// with the same list, so a new topic's configs read the same both ways.
pub(super) fn topic_configs(
    ctx: &NodeContext,
    metadata: &ClusterMetadata,
    overrides: &BTreeMap<String, String>,
) -> Vec<DescribedConfig> {
    let dynamic = |broker_key: &str| dynamic_values(ctx, metadata, broker_key);
    describe_topic_configs(overrides, |key| broker_value(&ctx.config, key, &dynamic))
}

/// Run-time values of `broker_key` on this node, highest precedence first.
fn dynamic_values(ctx: &NodeContext, metadata: &ClusterMetadata, broker_key: &str) -> Vec<(String, ConfigSource)> {
    dynamic_broker_value(metadata, ctx.config.node_id, broker_key)
        .into_iter()
        .map(|(value, own)| (value, if own { ConfigSource::DynamicBroker } else { ConfigSource::DynamicDefaultBroker }))
        .collect()
}

/// Run-time values of a broker key on this node, highest precedence first.
type Dynamic<'a> = &'a dyn Fn(&str) -> Vec<(String, ConfigSource)>;

/// The broker's value for a topic config it covers: set at run time, in the file, and the
/// value the file leaves it at.
fn broker_value(config: &Config, topic_key: &str, dynamic: Dynamic<'_>) -> Option<BrokerValue> {
    let dynamic = DYNAMIC_BROKER_CONFIGS.iter().find(|(_, t)| *t == topic_key).map_or(Vec::new(), |(b, _)| dynamic(b));
    let pick = |f: fn(&Config) -> String| BrokerValue {
        dynamic: dynamic.clone(),
        value: f(config),
        default: f(&Config::default()),
    };
    Some(match topic_key {
        "retention.ms" => pick(|c| c.storage.retention_ms.to_string()),
        "retention.bytes" => pick(|c| c.storage.retention_bytes.to_string()),
        "segment.bytes" => pick(|c| c.storage.segment_bytes.to_string()),
        "segment.ms" => pick(|c| c.storage.segment_ms.to_string()),
        "min.insync.replicas" => pick(|c| c.min_insync_replicas.to_string()),
        // No batch can be larger than a request: that is the broker's effective limit.
        "max.message.bytes" => pick(|c| c.kafka.max_request_bytes.to_string()),
        _ => return None,
    })
}

/// A file rate as Kafka writes it: 0 (unlimited here) is Kafka's largest long.
fn rate(bytes_per_sec: u64) -> String {
    match bytes_per_sec {
        0 => i64::MAX.to_string(),
        r => r.to_string(),
    }
}

/// This broker's settings; a setting is DYNAMIC_BROKER_CONFIG or DYNAMIC_DEFAULT_BROKER_CONFIG
/// when an operator set it at run time, STATIC_BROKER_CONFIG when the file changed it from the
/// default (and always for the node's identity and addresses), else DEFAULT_CONFIG. Only the
/// run-time keys are not read-only.
fn broker_entries(config: &Config, dynamic: Dynamic<'_>) -> Vec<Entry> {
    use ConfigType::{Boolean, Double, Int, List, Long, String as Str};
    type Getter = fn(&Config) -> String;
    let settings: [(&'static str, ConfigType, bool, Getter); 18] = [
        ("broker.id", Int, true, |c| c.node_id.to_string()),
        ("node.id", Int, true, |c| c.node_id.to_string()),
        ("listeners", List, true, |c| format!("PLAINTEXT://{}", c.kafka_bind())),
        ("advertised.listeners", List, true, |c| format!("PLAINTEXT://{}", c.advertised_kafka())),
        ("num.partitions", Int, false, |c| c.kafka.num_partitions.to_string()),
        ("default.replication.factor", Int, false, |c| c.replication_factor.to_string()),
        ("min.insync.replicas", Int, false, |c| c.min_insync_replicas.to_string()),
        ("auto.create.topics.enable", Boolean, false, |c| c.kafka.auto_create_topics.to_string()),
        ("log.cleanup.policy", List, false, |_| "delete".to_string()),
        ("log.retention.ms", Long, false, |c| c.storage.retention_ms.to_string()),
        ("log.retention.bytes", Long, false, |c| c.storage.retention_bytes.to_string()),
        ("log.segment.bytes", Int, false, |c| c.storage.segment_bytes.to_string()),
        ("log.roll.ms", Long, false, |c| c.storage.segment_ms.to_string()),
        ("compression.type", Str, false, |_| "producer".to_string()),
        ("socket.request.max.bytes", Int, false, |c| c.kafka.max_request_bytes.to_string()),
        ("leader.replication.throttled.rate", Long, false, |_| i64::MAX.to_string()),
        ("follower.replication.throttled.rate", Long, false, |c| rate(c.replication.rebalance_max_bytes_per_sec)),
        ("log.cleaner.io.max.bytes.per.second", Double, false, |c| rate(c.storage.cleaner_io_max_bytes_per_sec)),
    ];
    let defaults = Config::default();
    settings
        .into_iter()
        .map(|(name, kind, identity, get)| {
            let (value, default) = (get(config), get(&defaults));
            let alterable = is_dynamic_broker_key(name);
            let mut synonyms: Vec<ConfigSynonym> = dynamic(name)
                .into_iter()
                .map(|(value, source)| ConfigSynonym { name: name.into(), value, source })
                .collect();
            if identity || value != default {
                synonyms.push(ConfigSynonym { name: name.into(), value, source: ConfigSource::StaticBroker });
            }
            if !identity {
                synonyms.push(ConfigSynonym { name: name.into(), value: default, source: ConfigSource::Default });
            }
            Entry { described: DescribedConfig { name, kind, synonyms }, read_only: !alterable }
        })
        .collect()
}
