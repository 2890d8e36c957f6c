use super::*;
use crate::records::{TimestampRule, TopicRules};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn valid(k: &str, v: &str) -> bool {
    validate_topic_configs(&map(&[(k, v)])).is_ok()
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
    assert_eq!(validate_topic_configs(&map(&[("colour", "blue")])), Err(TopicConfigError::Unknown("colour".into())));
    for (k, v) in [("retention.ms", "soon"), ("segment.bytes", "10"), ("cleanup.policy", "shred")] {
        assert!(!valid(k, v), "{k}={v}");
    }
}

#[test]
fn kafka_topic_configs_are_accepted_with_kafkas_validation() {
    let accepted = [
        ("message.timestamp.type", "LogAppendTime"),
        ("message.timestamp.type", "CreateTime"),
        ("message.timestamp.difference.max.ms", "3600000"),
        ("message.timestamp.before.max.ms", "0"),
        ("message.timestamp.after.max.ms", "9223372036854775807"),
        ("message.format.version", "2.8"),
        ("message.format.version", "3.0-IV1"),
        ("message.format.version", "0.10.2"),
        ("message.format.version", "0.10.2.1"),
        ("compression.type", "zstd"),
        ("min.cleanable.dirty.ratio", "0.25"),
        ("unclean.leader.election.enable", "TRUE"),
        ("leader.replication.throttled.replicas", "*"),
        ("follower.replication.throttled.replicas", "0:1,1:2"),
        ("compression.gzip.level", "-1"),
        ("max.message.bytes", "2097152"),
        ("cleanup.policy", ""),
    ];
    for (k, v) in accepted {
        assert!(valid(k, v), "{k}={v} should be accepted");
    }
    let refused = [
        ("message.timestamp.type", "createtime"),
        ("message.timestamp.difference.max.ms", "-1"),
        ("message.timestamp.before.max.ms", "soon"),
        ("message.format.version", "4.5"),
        ("message.format.version", "3.0-IV"),
        ("message.format.version", "0.10"),
        ("compression.type", "brotli"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("unclean.leader.election.enable", "yes"),
        ("leader.replication.throttled.replicas", "0-1"),
        ("compression.gzip.level", "0"),
        ("max.message.bytes", "2147483648"),
        ("min.insync.replicas", "0"),
        ("cleanup.policy", "delete,shred"),
    ];
    for (k, v) in refused {
        assert!(!valid(k, v), "{k}={v} should be refused");
    }
}

#[test]
fn the_catalog_is_sorted_and_every_default_passes_its_own_rule() {
    let names: Vec<&str> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted);
    for d in TOPIC_CONFIGS {
        assert_eq!(d.rule.check(d.default), None, "{}'s default {:?}", d.name, d.default);
    }
}

#[test]
fn list_operations_work_as_in_kafka() {
    assert_eq!(apply_list_op("cleanup.policy", "delete", ListOp::Append, "compact").unwrap(), "delete,compact");
    assert_eq!(apply_list_op("cleanup.policy", "delete", ListOp::Append, "delete").unwrap(), "delete");
    assert_eq!(apply_list_op("cleanup.policy", "compact,delete", ListOp::Subtract, "compact").unwrap(), "delete");
    assert_eq!(apply_list_op("cleanup.policy", "delete", ListOp::Subtract, "delete").unwrap(), "");
    assert_eq!(apply_list_op("cleanup.policy", "", ListOp::Append, "delete").unwrap(), "delete");
    assert_eq!(
        apply_list_op("leader.replication.throttled.replicas", "0:1", ListOp::Append, "1:1, 0:1").unwrap(),
        "0:1,1:1"
    );
    assert!(matches!(
        apply_list_op("retention.ms", "1000", ListOp::Append, "5"),
        Err(TopicConfigError::NotAList { op: "APPEND", .. })
    ));
    assert!(matches!(apply_list_op("colour", "", ListOp::Subtract, "red"), Err(TopicConfigError::Unknown(_))));
}

#[test]
fn a_cleanup_policy_without_delete_turns_retention_off() {
    let c = effective_log_config(&LogConfig::default(), &map(&[("cleanup.policy", ""), ("retention.ms", "5")]));
    assert_eq!((c.retention_ms, c.retention_bytes), (-1, -1));
    let c = effective_log_config(&LogConfig::default(), &map(&[("cleanup.policy", "delete"), ("retention.ms", "5")]));
    assert_eq!(c.retention_ms, 5);
}

#[test]
fn describe_reports_sources_and_synonyms_as_kafka_does() {
    let broker = |key: &str| match key {
        // The file sets retention; segment.bytes is at its default.
        "retention.ms" => Some(BrokerValue { dynamic: vec![], value: "1000".into(), default: "604800000".into() }),
        "segment.bytes" => {
            Some(BrokerValue { dynamic: vec![], value: "1073741824".into(), default: "1073741824".into() })
        }
        // Set at run time for every broker, the file leaves it at the default.
        "retention.bytes" => Some(BrokerValue {
            dynamic: vec![("1000000".into(), ConfigSource::DynamicDefaultBroker)],
            value: "-1".into(),
            default: "-1".into(),
        }),
        _ => None,
    };
    let described = describe_topic_configs(&map(&[("segment.bytes", "4096")]), broker);
    let get = |name: &str| described.iter().find(|d| d.name == name).expect(name).clone();
    assert_eq!(described.len(), TOPIC_CONFIGS.len());

    let segment = get("segment.bytes");
    assert_eq!((segment.value(), segment.source()), ("4096", ConfigSource::TopicConfig));
    let syn: Vec<(&str, &str, ConfigSource)> =
        segment.synonyms.iter().map(|s| (s.name.as_str(), s.value.as_str(), s.source)).collect();
    assert_eq!(
        syn,
        [
            ("segment.bytes", "4096", ConfigSource::TopicConfig),
            ("log.segment.bytes", "1073741824", ConfigSource::Default)
        ]
    );

    let retention = get("retention.ms");
    assert_eq!((retention.value(), retention.source()), ("1000", ConfigSource::StaticBroker));
    assert_eq!(retention.synonyms[0].name, "log.retention.ms");
    assert_eq!(retention.synonyms[1].source, ConfigSource::Default);

    let bytes = get("retention.bytes");
    assert_eq!((bytes.value(), bytes.source()), ("1000000", ConfigSource::DynamicDefaultBroker));
    assert_eq!(bytes.synonyms[0].name, "log.retention.bytes");
    assert_eq!(bytes.synonyms[1].source, ConfigSource::Default);

    let compression = get("compression.type");
    assert_eq!((compression.value(), compression.source()), ("producer", ConfigSource::Default));
    let remote = get("remote.storage.enable");
    assert_eq!(remote.synonyms[0].name, "remote.storage.enable", "no broker key: the topic key names the default");
}

#[test]
fn produce_rules_follow_the_overrides_and_kafkas_timestamp_fallbacks() {
    let rules = |pairs: &[(&str, &str)]| topic_produce_rules(&map(pairs), 1_000_000);
    let create_time = |before_ms, after_ms| TimestampRule::CreateTime { before_ms, after_ms };
    assert_eq!(
        rules(&[]),
        TopicRules { max_batch_bytes: 1_000_000, timestamps: create_time(i64::MAX, i64::MAX), keys_required: false }
    );
    assert_eq!(rules(&[("max.message.bytes", "2048")]).max_batch_bytes, 2048);
    assert_eq!(rules(&[("max.message.bytes", "5000000")]).max_batch_bytes, 1_000_000, "the request limit caps it");
    assert_eq!(rules(&[("message.timestamp.type", "LogAppendTime")]).timestamps, TimestampRule::LogAppendTime);
    // The deprecated difference bounds both sides unless before/after set their own.
    let difference = [("message.timestamp.difference.max.ms", "60000")];
    assert_eq!(rules(&difference).timestamps, create_time(60_000, 60_000));
    let mixed = [("message.timestamp.difference.max.ms", "60000"), ("message.timestamp.after.max.ms", "1000")];
    assert_eq!(rules(&mixed).timestamps, create_time(60_000, 1000));
    assert_eq!(rules(&[("message.timestamp.before.max.ms", "5")]).timestamps, create_time(5, i64::MAX));
}

#[test]
fn compact_policies_turn_compaction_on_with_their_settings() {
    let plain = effective_log_config(&LogConfig::default(), &map(&[("cleanup.policy", "delete")]));
    assert_eq!(plain.compaction, None);
    let overrides = map(&[
        ("cleanup.policy", "compact"),
        ("delete.retention.ms", "2000"),
        ("min.compaction.lag.ms", "5"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ]);
    validate_topic_configs(&overrides).expect("valid");
    let c = effective_log_config(&LogConfig::default(), &overrides);
    let compaction = c.compaction.expect("compacted");
    assert_eq!((compaction.delete_retention_ms, compaction.min_lag_ms), (2000, 5));
    assert_eq!(compaction.min_dirty_ratio, 0.01);
    assert_eq!((c.retention_ms, c.retention_bytes), (-1, -1), "compact alone keeps records by key, not by age");
    let both = effective_log_config(&LogConfig::default(), &map(&[("cleanup.policy", "compact,delete")]));
    assert!(both.compaction.is_some() && both.retention_ms == LogConfig::default().retention_ms);
    assert!(is_compacted(&map(&[("cleanup.policy", "delete,compact")])) && !is_compacted(&map(&[])));
}
