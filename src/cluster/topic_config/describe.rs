//! What DescribeConfigs reports for a topic: every Kafka topic config with its value, where the
//! value comes from, and its synonyms (the override, the broker key, the default), as Kafka does.

use std::collections::BTreeMap;

use super::catalog::{ConfigType, TOPIC_CONFIGS};

/// Where a config value comes from (DescribeConfigs `config_source`, v1+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A topic override (Kafka's `DYNAMIC_TOPIC_CONFIG`).
    TopicConfig = 1,
    /// Set at run time for this broker (`DYNAMIC_BROKER_CONFIG`).
    DynamicBroker = 2,
    /// Set at run time for every broker (`DYNAMIC_DEFAULT_BROKER_CONFIG`).
    DynamicDefaultBroker = 3,
    /// The broker's configuration file (`STATIC_BROKER_CONFIG`).
    StaticBroker = 4,
    /// Nobody set it: the built-in default (`DEFAULT_CONFIG`).
    Default = 5,
}

/// One place a config's value could come from, in the order Kafka applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The name under which it is set there (the topic key or the broker key).
    pub name: String,
    /// Its value there.
    pub value: String,
    /// Where that is.
    pub source: ConfigSource,
}

/// One config as DescribeConfigs reports it; the value in effect is the first synonym's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// The topic key.
    pub name: &'static str,
    /// Its type.
    pub kind: ConfigType,
    /// Where a value is set, highest precedence first; never empty (the default comes last).
    pub synonyms: Vec<ConfigSynonym>,
}

impl DescribedConfig {
    /// The value in effect.
    pub fn value(&self) -> &str {
        self.synonyms.first().map_or("", |s| s.value.as_str())
    }

    /// Where the value in effect comes from.
    pub fn source(&self) -> ConfigSource {
        self.synonyms.first().map_or(ConfigSource::Default, |s| s.source)
    }
}

/// A broker setting that a topic config falls back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerValue {
    /// Values set at run time (sources [`ConfigSource::DynamicBroker`] and
    /// [`ConfigSource::DynamicDefaultBroker`]), highest precedence first.
    pub dynamic: Vec<(String, ConfigSource)>,
    /// The value in the broker's configuration.
    pub value: String,
    /// The value it has when the file does not set it.
    pub default: String,
}

/// Every topic config for a topic with `overrides`; `broker` gives the broker's value for a
/// topic key the broker configuration covers (`None`: Kafka's default applies).
pub fn describe_topic_configs(
    overrides: &BTreeMap<String, String>,
    broker: impl Fn(&str) -> Option<BrokerValue>,
) -> Vec<DescribedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let broker_name = def.broker_key.unwrap_or(def.name);
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push(ConfigSynonym {
                    name: def.name.into(),
                    value: v.clone(),
                    source: ConfigSource::TopicConfig,
                });
            }
            let default = match broker(def.name) {
                Some(b) => {
                    for (value, source) in b.dynamic {
                        synonyms.push(ConfigSynonym { name: broker_name.into(), value, source });
                    }
                    if b.value != b.default {
                        let source = ConfigSource::StaticBroker;
                        synonyms.push(ConfigSynonym { name: broker_name.into(), value: b.value, source });
                    }
                    b.default
                }
                None => def.default.to_string(),
            };
            synonyms.push(ConfigSynonym { name: broker_name.into(), value: default, source: ConfigSource::Default });
            DescribedConfig { name: def.name, kind: def.kind, synonyms }
        })
        .collect()
}
