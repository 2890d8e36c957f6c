//! Every topic config Kafka 3.9 defines: its type, its validation, its default, the broker key
//! it falls back to, and whether Chronik acts on it. Configs Chronik does not act on are still
//! accepted, stored and reported, so tools that set them (Connect, Streams, kafka-ui) work; they
//! are listed as inert in `docs/operations.md`.

/// A config's type as DescribeConfigs (v3+) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Boolean = 1,
    /// Free text (restricted by the [`Rule`]).
    String = 2,
    /// A 32-bit integer.
    Int = 3,
    /// A 64-bit integer.
    Long = 5,
    /// A floating-point number.
    Double = 6,
    /// Comma-separated values; IncrementalAlterConfigs can APPEND to and SUBTRACT from it.
    List = 7,
}

/// How a value is validated (Kafka's `ConfigDef` validators).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// An integer in `min..=max` (the range also bounds the type: i32 for Int, i64 for Long).
    Range {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// `-1` (the codec's default) or an integer in `min..=max`.
    RangeOrMinusOne {
        /// Smallest accepted value other than -1.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A number in `min..=max`.
    Ratio {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// `true` or `false` (any case, as Kafka parses booleans).
    Boolean,
    /// One of these strings (Kafka's `ValidString.in`; case-sensitive).
    OneOf(&'static [&'static str]),
    /// A list whose every element is one of these (Kafka's `ValidList.in`); may be empty.
    ListOf(&'static [&'static str]),
    /// `*` or a list of `partition:broker` pairs (Kafka's throttled-replicas validator).
    ThrottledReplicas,
    /// A Kafka release, `0.8.0` … `3.9`, optionally with `-IVn` (the deprecated
    /// `message.format.version`, which Kafka ignores from 3.0 on).
    KafkaVersion,
}

/// One topic config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopicConfigDef {
    /// The topic-level name.
    pub name: &'static str,
    /// Its type.
    pub kind: ConfigType,
    /// How a value is validated.
    pub rule: Rule,
    /// Kafka's default, used where the broker config has no counterpart.
    pub default: &'static str,
    /// The broker key a topic without an override falls back to (Kafka's synonym).
    pub broker_key: Option<&'static str>,
    /// Whether Chronik changes its behaviour by this config; false means accepted and inert.
    pub acts: bool,
}

const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;
/// Kafka's default for the unbounded `*.ms` and `flush.*` configs: `Long.MAX_VALUE`.
const LONG_MAX: &str = "9223372036854775807";

const fn def(
    name: &'static str,
    kind: ConfigType,
    rule: Rule,
    default: &'static str,
    broker_key: Option<&'static str>,
    acts: bool,
) -> TopicConfigDef {
    TopicConfigDef { name, kind, rule, default, broker_key, acts }
}

const fn long(min: i64) -> Rule {
    Rule::Range { min, max: I64 }
}

const fn int(min: i64) -> Rule {
    Rule::Range { min, max: I32 }
}

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

/// Kafka 3.9's topic configs, sorted by name (DescribeConfigs reports them in this order).
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def("cleanup.policy", List, Rule::ListOf(&["compact", "delete"]), "delete", Some("log.cleanup.policy"), true),
    def(
        "compression.gzip.level",
        Int,
        Rule::RangeOrMinusOne { min: 1, max: 9 },
        "-1",
        Some("compression.gzip.level"),
        false,
    ),
    def("compression.lz4.level", Int, Rule::Range { min: 1, max: 17 }, "9", Some("compression.lz4.level"), false),
    def(
        "compression.type",
        Str,
        Rule::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "producer",
        Some("compression.type"),
        false,
    ),
    def(
        "compression.zstd.level",
        Int,
        Rule::Range { min: -131072, max: 22 },
        "3",
        Some("compression.zstd.level"),
        false,
    ),
    def("delete.retention.ms", Long, long(0), "86400000", Some("log.cleaner.delete.retention.ms"), false),
    def("file.delete.delay.ms", Long, long(0), "60000", Some("log.segment.delete.delay.ms"), false),
    def("flush.messages", Long, long(1), LONG_MAX, Some("log.flush.interval.messages"), false),
    def("flush.ms", Long, long(0), LONG_MAX, Some("log.flush.interval.ms"), false),
    def("follower.replication.throttled.replicas", List, Rule::ThrottledReplicas, "", None, false),
    def("index.interval.bytes", Int, int(0), "4096", Some("log.index.interval.bytes"), false),
    def("leader.replication.throttled.replicas", List, Rule::ThrottledReplicas, "", None, false),
    def("local.retention.bytes", Long, long(-2), "-2", Some("log.local.retention.bytes"), false),
    def("local.retention.ms", Long, long(-2), "-2", Some("log.local.retention.ms"), false),
    def("max.compaction.lag.ms", Long, long(1), LONG_MAX, Some("log.cleaner.max.compaction.lag.ms"), false),
    def("max.message.bytes", Int, int(0), "1048588", Some("message.max.bytes"), false),
    def(
        "message.downconversion.enable",
        Boolean,
        Rule::Boolean,
        "true",
        Some("log.message.downconversion.enable"),
        false,
    ),
    def("message.format.version", Str, Rule::KafkaVersion, "3.0-IV1", Some("log.message.format.version"), false),
    def("message.timestamp.after.max.ms", Long, long(0), LONG_MAX, Some("log.message.timestamp.after.max.ms"), false),
    def("message.timestamp.before.max.ms", Long, long(0), LONG_MAX, Some("log.message.timestamp.before.max.ms"), false),
    def(
        "message.timestamp.difference.max.ms",
        Long,
        long(0),
        LONG_MAX,
        Some("log.message.timestamp.difference.max.ms"),
        false,
    ),
    def(
        "message.timestamp.type",
        Str,
        Rule::OneOf(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
        Some("log.message.timestamp.type"),
        false,
    ),
    def(
        "min.cleanable.dirty.ratio",
        Double,
        Rule::Ratio { min: 0.0, max: 1.0 },
        "0.5",
        Some("log.cleaner.min.cleanable.ratio"),
        false,
    ),
    def("min.compaction.lag.ms", Long, long(0), "0", Some("log.cleaner.min.compaction.lag.ms"), false),
    def("min.insync.replicas", Int, int(1), "1", Some("min.insync.replicas"), true),
    def("preallocate", Boolean, Rule::Boolean, "false", Some("log.preallocate"), false),
    def("remote.log.copy.disable", Boolean, Rule::Boolean, "false", None, false),
    def("remote.log.delete.on.disable", Boolean, Rule::Boolean, "false", None, false),
    def("remote.storage.enable", Boolean, Rule::Boolean, "false", None, false),
    def("retention.bytes", Long, long(-1), "-1", Some("log.retention.bytes"), true),
    def("retention.ms", Long, long(-1), "604800000", Some("log.retention.ms"), true),
    // Kafka accepts 14 bytes and up; Chronik keeps its 1 KiB floor, since a smaller segment
    // would roll on nearly every batch, and index positions are 32-bit.
    def(
        "segment.bytes",
        Int,
        Rule::Range { min: 1024, max: u32::MAX as i64 },
        "1073741824",
        Some("log.segment.bytes"),
        true,
    ),
    def("segment.index.bytes", Int, int(4), "10485760", Some("log.index.size.max.bytes"), false),
    def("segment.jitter.ms", Long, long(0), "0", Some("log.roll.jitter.ms"), false),
    def("segment.ms", Long, long(1), "604800000", Some("log.roll.ms"), true),
    def(
        "unclean.leader.election.enable",
        Boolean,
        Rule::Boolean,
        "false",
        Some("unclean.leader.election.enable"),
        true,
    ),
];

/// The definition of `name`, if it is a Kafka topic config.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Releases `message.format.version` accepts, as Kafka's `MetadataVersion` names them.
const KAFKA_VERSIONS: &[&str] = &[
    "0.8.0", "0.8.1", "0.8.2", "0.9.0", "0.10.0", "0.10.1", "0.10.2", "0.11.0", "1.0", "1.1", "2.0", "2.1", "2.2",
    "2.3", "2.4", "2.5", "2.6", "2.7", "2.8", "3.0", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9",
];

impl Rule {
    /// Why `value` is not acceptable, or `None` when it is.
    pub fn check(&self, value: &str) -> Option<String> {
        let ok = match *self {
            Rule::Range { min, max } => parse_int(value).is_some_and(|v| (min..=max).contains(&v)),
            Rule::RangeOrMinusOne { min, max } => parse_int(value).is_some_and(|v| v == -1 || (min..=max).contains(&v)),
            Rule::Ratio { min, max } => value.trim().parse::<f64>().is_ok_and(|v| (min..=max).contains(&v)),
            Rule::Boolean => value.trim().eq_ignore_ascii_case("true") || value.trim().eq_ignore_ascii_case("false"),
            Rule::OneOf(allowed) => allowed.contains(&value.trim()),
            Rule::ListOf(allowed) => split_list(value).iter().all(|v| allowed.contains(&v.as_str())),
            Rule::ThrottledReplicas => throttled_replicas_ok(value),
            Rule::KafkaVersion => kafka_version_ok(value),
        };
        (!ok).then(|| self.expectation())
    }

    /// What the rule expects, in words.
    fn expectation(&self) -> String {
        match self {
            Rule::Range { min, max } => format!("an integer between {min} and {max}"),
            Rule::RangeOrMinusOne { min, max } => format!("-1 or an integer between {min} and {max}"),
            Rule::Ratio { min, max } => format!("a number between {min} and {max}"),
            Rule::Boolean => "true or false".to_string(),
            Rule::OneOf(allowed) => format!("one of {}", allowed.join(", ")),
            Rule::ListOf(allowed) => format!("a comma-separated list of {}", allowed.join(", ")),
            Rule::ThrottledReplicas => "* or a comma-separated list of partition:broker".to_string(),
            Rule::KafkaVersion => "a Kafka version such as 2.8 or 3.0-IV1".to_string(),
        }
    }
}

fn parse_int(value: &str) -> Option<i64> {
    value.trim().parse::<i64>().ok()
}

/// A list value's elements as Kafka parses a LIST: split on commas, trimmed; "" is empty.
pub fn split_list(value: &str) -> Vec<String> {
    if value.trim().is_empty() {
        return Vec::new();
    }
    value.split(',').map(|v| v.trim().to_string()).collect()
}

fn throttled_replicas_ok(value: &str) -> bool {
    let items = split_list(value);
    if items.len() == 1 && items[0] == "*" {
        return true;
    }
    items.iter().all(|item| {
        item.split_once(':').is_some_and(|(p, b)| p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok())
    })
}

fn kafka_version_ok(value: &str) -> bool {
    let (release, iv) = match value.split_once("-IV") {
        Some((release, iv)) => (release, Some(iv)),
        None => (value, None),
    };
    if iv.is_some_and(|iv| iv.is_empty() || !iv.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    // Kafka reads "0.10.2.1" as 0.10.2 and "2.8.1" as 2.8: the parts after the release are ignored.
    let parts: Vec<&str> = release.split('.').collect();
    if parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let significant = if parts.first() == Some(&"0") { 3 } else { 2 };
    if parts.len() < significant {
        return false;
    }
    KAFKA_VERSIONS.contains(&parts[..significant].join(".").as_str())
}
