//! Per-topic configuration overrides (Kafka's names): validation against Kafka 3.9's catalog,
//! IncrementalAlterConfigs' list operations, and how overrides combine with broker defaults.

mod catalog;
mod describe;

use std::collections::BTreeMap;

pub use catalog::{ConfigType, Rule, TOPIC_CONFIGS, TopicConfigDef, split_list, topic_config_def};
pub use describe::{BrokerValue, ConfigSource, ConfigSynonym, DescribedConfig, describe_topic_configs};

use crate::log::{Compaction, LogConfig};
use crate::records::{TimestampRule, TopicRules};

/// A topic config that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    /// Not a config Kafka defines for topics.
    #[error("unknown topic config {0:?}")]
    Unknown(String),
    /// Known, but the value is not acceptable.
    #[error("invalid value {value:?} for topic config {key:?}: {reason}")]
    InvalidValue {
        /// The config name.
        key: String,
        /// The value given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// APPEND or SUBTRACT on a config that is not a list.
    #[error("{op} is not allowed for config key {key:?}: it is not a list")]
    NotAList {
        /// The config name.
        key: String,
        /// `APPEND` or `SUBTRACT`.
        op: &'static str,
    },
}

/// Rejects unknown keys and values Kafka's validators refuse.
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), TopicConfigError> {
    for (key, value) in configs {
        let invalid =
            |reason: String| TopicConfigError::InvalidValue { key: key.clone(), value: value.clone(), reason };
        let def = topic_config_def(key).ok_or_else(|| TopicConfigError::Unknown(key.clone()))?;
        if let Some(reason) = def.rule.check(value) {
            return Err(invalid(reason));
        }
    }
    Ok(())
}

/// A list operation of IncrementalAlterConfigs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOp {
    /// Adds the values not already present, at the end (Kafka's APPEND).
    Append,
    /// Removes every occurrence of the values (Kafka's SUBTRACT).
    Subtract,
}

/// The value of list config `key` after `op` with `values` (comma-separated), starting from
/// `current`: the topic's override, else the default it falls back to.
pub fn apply_list_op(key: &str, current: &str, op: ListOp, values: &str) -> Result<String, TopicConfigError> {
    let def = topic_config_def(key).ok_or_else(|| TopicConfigError::Unknown(key.to_string()))?;
    if def.kind != ConfigType::List {
        let op = if op == ListOp::Append { "APPEND" } else { "SUBTRACT" };
        return Err(TopicConfigError::NotAList { key: key.to_string(), op });
    }
    let mut list = split_list(current);
    let given = split_list(values);
    match op {
        ListOp::Append => {
            for v in given {
                if !list.contains(&v) {
                    list.push(v);
                }
            }
        }
        ListOp::Subtract => list.retain(|v| !given.contains(v)),
    }
    Ok(list.join(","))
}

/// The broker's defaults with the topic's (validated) overrides applied. A `cleanup.policy`
/// without `delete` turns retention off, as in Kafka.
pub fn effective_log_config(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let mut c = defaults.clone();
    let get = |key: &str| overrides.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(v) = get("retention.ms") {
        c.retention_ms = v;
    }
    if let Some(v) = get("retention.bytes") {
        c.retention_bytes = v;
    }
    if let Some(v) = get("segment.bytes") {
        c.segment_bytes = v as u64;
    }
    if let Some(v) = get("segment.ms") {
        c.segment_ms = v as u64;
    }
    if let Some(policy) = overrides.get("cleanup.policy") {
        let policy = split_list(policy);
        if !policy.iter().any(|p| p == "delete") {
            c.retention_ms = -1;
            c.retention_bytes = -1;
        }
        if policy.iter().any(|p| p == "compact") {
            let mut compaction = Compaction::default();
            if let Some(v) = get("delete.retention.ms") {
                compaction.delete_retention_ms = v;
            }
            if let Some(v) = get("min.compaction.lag.ms") {
                compaction.min_lag_ms = v;
            }
            if let Some(v) = get("max.compaction.lag.ms") {
                compaction.max_lag_ms = v;
            }
            if let Some(v) = overrides.get("min.cleanable.dirty.ratio").and_then(|v| v.trim().parse::<f64>().ok()) {
                compaction.min_dirty_ratio = v;
            }
            c.compaction = Some(compaction);
        }
    }
    c
}

/// Whether the topic's `cleanup.policy` asks for compaction (produce then requires keys).
pub fn is_compacted(overrides: &BTreeMap<String, String>) -> bool {
    overrides.get("cleanup.policy").is_some_and(|p| split_list(p).iter().any(|p| p == "compact"))
}

/// What the topic's overrides ask of produced batches. `max.message.bytes` falls back to
/// `broker_max_batch_bytes` (the request limit), the `message.timestamp.*` family to Kafka's
/// defaults. As in Kafka 3.9, the deprecated `message.timestamp.difference.max.ms` bounds
/// either side of the window that its `before`/`after` successor leaves unlimited.
pub fn topic_produce_rules(overrides: &BTreeMap<String, String>, broker_max_batch_bytes: usize) -> TopicRules {
    let long = |key: &str| overrides.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    let max_batch_bytes = long("max.message.bytes")
        .and_then(|v| usize::try_from(v).ok())
        .map_or(broker_max_batch_bytes, |v| v.min(broker_max_batch_bytes));
    let log_append_time = overrides.get("message.timestamp.type").is_some_and(|v| v.trim() == "LogAppendTime");
    let timestamps = if log_append_time {
        TimestampRule::LogAppendTime
    } else {
        let difference = long("message.timestamp.difference.max.ms").unwrap_or(i64::MAX);
        let side = |key: &str| long(key).filter(|v| *v != i64::MAX).unwrap_or(difference);
        TimestampRule::CreateTime {
            before_ms: side("message.timestamp.before.max.ms"),
            after_ms: side("message.timestamp.after.max.ms"),
        }
    };
    TopicRules { max_batch_bytes, timestamps, keys_required: is_compacted(overrides) }
}

#[cfg(test)]
mod tests;
