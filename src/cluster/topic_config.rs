//! Per-topic configuration overrides (Kafka's names) and how they combine with broker defaults.

use std::collections::BTreeMap;

use crate::log::LogConfig;

/// A topic config that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    /// Not a config this broker knows.
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
}

/// Rejects unknown keys and values that do not parse.
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), TopicConfigError> {
    for (key, value) in configs {
        let invalid = |reason: &str| TopicConfigError::InvalidValue {
            key: key.clone(),
            value: value.clone(),
            reason: reason.to_string(),
        };
        match key.as_str() {
            "cleanup.policy" if value != "delete" => return Err(invalid("only \"delete\" is supported")),
            "cleanup.policy" => {}
            "retention.ms" | "retention.bytes" => {
                value.parse::<i64>().ok().filter(|v| *v >= -1).ok_or_else(|| invalid("-1 or a positive integer"))?;
            }
            "segment.bytes" => {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|v| (1024..=u32::MAX as u64).contains(v))
                    .ok_or_else(|| invalid("an integer between 1024 and 4294967295"))?;
            }
            "segment.ms" | "min.insync.replicas" => {
                value.parse::<u64>().ok().filter(|v| *v >= 1).ok_or_else(|| invalid("a positive integer"))?;
            }
            _ => return Err(TopicConfigError::Unknown(key.clone())),
        }
    }
    Ok(())
}

/// The broker's defaults with the topic's (validated) overrides applied.
pub fn effective_log_config(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let mut c = defaults.clone();
    let get = |key: &str| overrides.get(key).and_then(|v| v.parse::<i64>().ok());
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
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn known_keys_validate_and_override() {
        let overrides = map(&[("retention.ms", "1000"), ("segment.bytes", "4096"), ("cleanup.policy", "delete")]);
        validate_topic_configs(&overrides).expect("valid");
        let c = effective_log_config(&LogConfig::default(), &overrides);
        assert_eq!(c.retention_ms, 1000);
        assert_eq!(c.segment_bytes, 4096);
        assert_eq!(c.retention_bytes, LogConfig::default().retention_bytes);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert_eq!(
            validate_topic_configs(&map(&[("colour", "blue")])),
            Err(TopicConfigError::Unknown("colour".into()))
        );
        for (k, v) in [("retention.ms", "soon"), ("segment.bytes", "10"), ("cleanup.policy", "compact")] {
            assert!(validate_topic_configs(&map(&[(k, v)])).is_err(), "{k}={v}");
        }
    }
}
