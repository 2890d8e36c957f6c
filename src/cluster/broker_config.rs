//! Broker configs an operator changes at run time (Kafka's dynamic broker configs): which keys,
//! how they are checked, and how they combine with the configuration file. They live in the
//! metadata, so they reach every node and survive restarts.

use std::collections::BTreeMap;

use super::ClusterMetadata;
use super::topic_config::topic_config_def;
use crate::config::NodeId;

/// The entity of the cluster-wide defaults (Kafka's `<default>` broker).
pub const DEFAULT_BROKER_ENTITY: &str = "";

/// The broker keys that may change at run time, each with the topic key it is the default of
/// (and whose catalog entry checks its values).
pub const DYNAMIC_BROKER_CONFIGS: [(&str, &str); 4] = [
    ("log.retention.ms", "retention.ms"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
];

/// Kafka's throttle for a leader's replication traffic; Chronik paces copies on the follower,
/// so a follower copying from this node holds its copy to this rate too.
pub const LEADER_THROTTLE: &str = "leader.replication.throttled.rate";
/// Kafka's throttle for a follower's replication traffic: this node's catch-up copies.
pub const FOLLOWER_THROTTLE: &str = "follower.replication.throttled.rate";
/// The log cleaner's disk budget (read plus written).
pub const CLEANER_IO_RATE: &str = "log.cleaner.io.max.bytes.per.second";
/// The broker keys for rates in bytes per second that may change at run time (none is a topic
/// default). Kafka's unset value is the largest number (unlimited).
pub const DYNAMIC_BROKER_RATES: [&str; 3] = [LEADER_THROTTLE, FOLLOWER_THROTTLE, CLEANER_IO_RATE];

/// Why a run-time broker config cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerConfigError {
    /// The key exists in the file only, or not at all.
    #[error("{0} cannot be changed at run time (dynamic broker configs: {keys})", keys = dynamic_keys())]
    NotDynamic(String),
    /// The value breaks the key's rule.
    #[error("invalid value {value:?} for broker config {key:?}: {reason}")]
    Invalid {
        /// The config name.
        key: String,
        /// The value given.
        value: String,
        /// What is expected.
        reason: String,
    },
}

fn dynamic_keys() -> String {
    let mut keys: Vec<&str> = DYNAMIC_BROKER_CONFIGS.map(|(broker, _)| broker).to_vec();
    keys.extend(DYNAMIC_BROKER_RATES);
    keys.join(", ")
}

/// Whether `broker_key` may change at run time.
pub fn is_dynamic_broker_key(broker_key: &str) -> bool {
    topic_key_of(broker_key).is_some() || DYNAMIC_BROKER_RATES.contains(&broker_key)
}

/// A rate value as the throttles take it: bytes per second, 0 for unlimited (Kafka's default,
/// the largest long or double, and anything from 2^63 up). At least 1: Kafka would stop the
/// traffic at 0, which no operator means.
pub fn parse_rate(value: &str) -> Result<u64, String> {
    let rate: f64 = value.trim().parse().map_err(|_| format!("not a number of bytes per second: {value:?}"))?;
    if rate.is_nan() || rate < 1.0 {
        return Err("a rate must be at least 1 byte per second".into());
    }
    Ok(if rate >= 9.2e18 { 0 } else { rate as u64 })
}

/// The topic key a dynamic broker key is the default of.
pub fn topic_key_of(broker_key: &str) -> Option<&'static str> {
    DYNAMIC_BROKER_CONFIGS.iter().find(|(b, _)| *b == broker_key).map(|(_, t)| *t)
}

/// Checks every key and value of a run-time broker config set.
pub fn validate_broker_configs(configs: &BTreeMap<String, String>) -> Result<(), BrokerConfigError> {
    for (key, value) in configs {
        if DYNAMIC_BROKER_RATES.contains(&key.as_str()) {
            parse_rate(value).map_err(|reason| BrokerConfigError::Invalid {
                key: key.clone(),
                value: value.clone(),
                reason,
            })?;
            continue;
        }
        let topic_key = topic_key_of(key).ok_or_else(|| BrokerConfigError::NotDynamic(key.clone()))?;
        if let Some(why) = topic_config_def(topic_key).and_then(|def| def.rule.check(value)) {
            return Err(BrokerConfigError::Invalid { key: key.clone(), value: value.clone(), reason: why });
        }
    }
    Ok(())
}

/// The run-time values in force on `node`, named by topic key (so they layer like topic
/// overrides): the node's own entity over the cluster-wide default.
pub fn dynamic_log_defaults(metadata: &ClusterMetadata, node: NodeId) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entity in [DEFAULT_BROKER_ENTITY.to_string(), node.to_string()] {
        for (key, value) in metadata.broker_configs.get(&entity).into_iter().flatten() {
            if let Some(topic_key) = topic_key_of(key) {
                out.insert(topic_key.to_string(), value.clone());
            }
        }
    }
    out
}

/// A dynamic value of `broker_key` on `node`: `(value, per_broker)`, the node's own entity
/// first, then the cluster-wide default.
pub fn dynamic_broker_value(metadata: &ClusterMetadata, node: NodeId, broker_key: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (entity, per_broker) in [(node.to_string(), true), (DEFAULT_BROKER_ENTITY.to_string(), false)] {
        if let Some(value) = metadata.broker_configs.get(&entity).and_then(|c| c.get(broker_key)) {
            out.push((value.clone(), per_broker));
        }
    }
    out
}

/// The run-time rate `broker_key` sets on `node` (its own entity over the cluster-wide
/// default), as [`parse_rate`] gives it; `None` when not set.
pub fn dynamic_rate(metadata: &ClusterMetadata, node: NodeId, broker_key: &str) -> Option<u64> {
    dynamic_broker_value(metadata, node, broker_key).into_iter().find_map(|(value, _)| parse_rate(&value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::MetadataCommand;

    fn set(m: &mut ClusterMetadata, entity: &str, pairs: &[(&str, &str)]) {
        let configs = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        m.apply(&MetadataCommand::SetBrokerConfigs { entity: entity.into(), configs }).expect("set");
    }

    #[test]
    fn only_dynamic_keys_with_valid_values_are_accepted() {
        let one = |k: &str, v: &str| validate_broker_configs(&[(k.to_string(), v.to_string())].into());
        assert_eq!(one("log.retention.ms", "60000"), Ok(()));
        assert_eq!(one("log.retention.bytes", "-1"), Ok(()));
        assert!(matches!(one("log.segment.bytes", "10"), Err(BrokerConfigError::Invalid { .. })));
        assert!(matches!(one("log.retention.ms", "soon"), Err(BrokerConfigError::Invalid { .. })));
        let e = one("num.partitions", "3").expect_err("static");
        assert_eq!(e, BrokerConfigError::NotDynamic("num.partitions".into()));
        assert!(e.to_string().contains("log.retention.ms"), "{e}");
    }

    #[test]
    fn rates_are_bytes_per_second_with_kafkas_unlimited_defaults() {
        let one = |k: &str, v: &str| validate_broker_configs(&[(k.to_string(), v.to_string())].into());
        for key in DYNAMIC_BROKER_RATES {
            assert_eq!(one(key, "1048576"), Ok(()), "{key}");
            assert!(matches!(one(key, "0"), Err(BrokerConfigError::Invalid { .. })), "{key}");
            assert!(matches!(one(key, "fast"), Err(BrokerConfigError::Invalid { .. })), "{key}");
        }
        assert_eq!(parse_rate("9223372036854775807"), Ok(0), "Long.MAX_VALUE: unlimited");
        assert_eq!(parse_rate("1.7976931348623157E308"), Ok(0), "Double.MAX_VALUE: unlimited");
        assert_eq!(parse_rate("2.5e6"), Ok(2_500_000));
        let mut m = ClusterMetadata::default();
        set(&mut m, "", &[(FOLLOWER_THROTTLE, "1000")]);
        set(&mut m, "2", &[(FOLLOWER_THROTTLE, "5000")]);
        assert_eq!(dynamic_rate(&m, 2, FOLLOWER_THROTTLE), Some(5000));
        assert_eq!(dynamic_rate(&m, 1, FOLLOWER_THROTTLE), Some(1000));
        assert_eq!(dynamic_rate(&m, 1, CLEANER_IO_RATE), None);
        assert!(is_dynamic_broker_key(LEADER_THROTTLE) && is_dynamic_broker_key("log.retention.ms"));
    }

    #[test]
    fn a_brokers_own_value_wins_over_the_cluster_default() {
        let mut m = ClusterMetadata::default();
        set(&mut m, "", &[("log.retention.ms", "1000"), ("log.segment.bytes", "4096")]);
        set(&mut m, "2", &[("log.retention.ms", "2000")]);
        let expected = [("retention.ms".into(), "1000".into()), ("segment.bytes".into(), "4096".into())].into();
        assert_eq!(dynamic_log_defaults(&m, 1), expected);
        assert_eq!(dynamic_log_defaults(&m, 2)["retention.ms"], "2000");
        assert_eq!(dynamic_broker_value(&m, 2, "log.retention.ms"), [("2000".into(), true), ("1000".into(), false)]);
        set(&mut m, "", &[]);
        assert!(!m.broker_configs.contains_key(""), "an empty set removes the entity");
        assert_eq!(dynamic_log_defaults(&m, 1), BTreeMap::new());
    }
}
