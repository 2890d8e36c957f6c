use prometheus::TextEncoder;
use prometheus::proto::MetricType;

use super::*;
use crate::admin::groups::LagView;
use crate::replica::FollowerInfo;
use crate::request_metrics::RequestMetrics;

fn info(topic: &str, partition: i32, role: &'static str, followers: Vec<FollowerInfo>) -> ReplicaInfo {
    ReplicaInfo {
        leader_log_end_offset: None,
        topic: topic.into(),
        partition,
        log_start_offset: 5,
        log_end_offset: 100,
        high_watermark: 90,
        durable_end_offset: 100,
        last_stable_offset: 90,
        open_transactions: 0,
        segments: 1,
        size_bytes: 4096,
        producers: 0,
        role,
        leader_epoch: 3,
        followers,
    }
}

fn follower(id: u64, fetched: Option<i64>, in_sync: bool) -> FollowerInfo {
    FollowerInfo { id, log_end_offset: fetched, durable_offset: fetched, last_caught_up_ms: None, in_sync }
}

fn actor(name: &str, restarts: u32, mailbox_len: i64, children: Vec<ActorNode>) -> ActorNode {
    ActorNode { name: name.into(), role: "Role".into(), status: "running".into(), restarts, mailbox_len, children }
}

fn text(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    TextEncoder::new().encode_utf8(families, &mut out).expect("encodes");
    out
}

/// The value of the sample line starting with `start` (labels are in name order).
fn sample(text: &str, start: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(start))?;
    line.rsplit_once(' ')?.1.parse().ok()
}

#[test]
fn partition_offsets_and_leader_replication() {
    let leader = info("t", 0, "leader", vec![follower(2, Some(97), true), follower(3, None, false)]);
    let infos = [leader, info("t", 1, "follower", Vec::new())];
    let t = text(&partitions(&infos, &[]).expect("families"));
    assert_eq!(sample(&t, r#"chronik_partition_high_watermark_offset{partition="0",topic="t"}"#), Some(90.0));
    assert_eq!(sample(&t, r#"chronik_partition_log_end_offset{partition="1",topic="t"}"#), Some(100.0));
    assert_eq!(sample(&t, r#"chronik_partition_size_bytes{partition="1",topic="t"}"#), Some(4096.0));
    assert_eq!(sample(&t, r#"chronik_partition_replica_lag_offsets{partition="0",replica="2",topic="t"}"#), Some(3.0));
    assert!(!t.contains(r#"replica="3""#), "a follower that never fetched has no lag sample:\n{t}");
    assert_eq!(sample(&t, r#"chronik_partition_in_sync_replicas{partition="0",topic="t"}"#), Some(2.0));
    assert!(!t.contains(r#"chronik_partition_in_sync_replicas{partition="1""#), "only the leader reports the ISR");
    assert_eq!(sample(&t, "chronik_under_replicated_partitions "), Some(1.0));
    assert_eq!(sample(&t, "chronik_offline_partitions "), Some(0.0));
}

#[test]
fn offline_replicas_with_escaped_reasons() {
    let offline = [(TopicPartition::new("t", 4), "fsync \"failed\"\nat C:\\x".to_string())];
    let t = text(&partitions(&[], &offline).expect("families"));
    let line = r#"chronik_partition_offline{partition="4",reason="fsync \"failed\"\nat C:\\x",topic="t"} 1"#;
    assert!(t.lines().any(|l| l == line), "{t}");
    assert_eq!(sample(&t, "chronik_offline_partitions "), Some(1.0));
    assert_eq!(sample(&t, "chronik_under_replicated_partitions "), Some(0.0));
}

#[test]
fn group_lag() {
    let lag = |partition, lag| LagView {
        topic: "t".into(),
        partition,
        committed_offset: 0,
        high_watermark: None,
        last_stable_offset: None,
        lag,
    };
    let g = GroupView {
        group_id: "g".into(),
        state: "Empty".into(),
        protocol_type: String::new(),
        generation: None,
        members: Vec::new(),
        partitions: vec![lag(0, Some(20)), lag(1, None)],
        total_lag: 20,
    };
    let t = text(&groups(&[g]).expect("families"));
    assert_eq!(sample(&t, r#"chronik_group_lag_offsets{group="g",partition="0",topic="t"}"#), Some(20.0));
    assert!(!t.contains(r#"partition="1""#), "no lag known, no sample:\n{t}");
}

#[test]
fn actor_restarts_are_a_counter() {
    let tree = actor("node-1", 0, 0, vec![actor("replica:t-0", 2, 5, Vec::new())]);
    let t = text(&actors(&tree).expect("families"));
    assert!(t.contains("# TYPE chronik_actor_restarts_total counter"), "{t}");
    assert_eq!(sample(&t, r#"chronik_actor_restarts_total{name="replica:t-0",role="Role"}"#), Some(2.0));
    assert_eq!(sample(&t, r#"chronik_actor_mailbox_messages{name="replica:t-0",role="Role"}"#), Some(5.0));
    assert_eq!(sample(&t, r#"chronik_actor_restarts_total{name="node-1",role="Role"}"#), Some(0.0));
}

/// Every family `/metrics` can export, each with at least one series.
fn every_family() -> Vec<MetricFamily> {
    let requests = RequestMetrics::default();
    requests.record(kafka_protocol::messages::ApiKey::Produce);
    requests.observe(kafka_protocol::messages::ApiKey::Produce, std::time::Duration::from_millis(1));
    let leader = info("t", 0, "leader", vec![follower(2, Some(97), true)]);
    let offline = [(TopicPartition::new("t", 1), "x".to_string())];
    let lag = LagView {
        topic: "t".into(),
        partition: 0,
        committed_offset: 0,
        high_watermark: None,
        last_stable_offset: None,
        lag: Some(1),
    };
    let g = GroupView {
        group_id: "g".into(),
        state: "Empty".into(),
        protocol_type: String::new(),
        generation: None,
        members: Vec::new(),
        partitions: vec![lag],
        total_lag: 1,
    };
    let mut all = requests.gather();
    all.extend(partitions(&[leader], &offline).expect("partitions"));
    all.extend(groups(&[g]).expect("groups"));
    all.extend(actors(&actor("node-1", 0, 0, Vec::new())).expect("actors"));
    all.extend(transactions(&["Ongoing"]).expect("transactions"));
    all
}

#[test]
fn names_follow_prometheus_conventions() {
    // Unit (or counted thing) suffixes; `chronik_partition_offline` is a 0/1 state with labels.
    const SUFFIXES: [&str; 8] =
        ["_seconds", "_bytes", "_offset", "_offsets", "_messages", "_partitions", "_replicas", "_transactions"];
    let families = every_family();
    assert_eq!(families.len(), 19, "{:?}", families.iter().map(|f| f.name()).collect::<Vec<_>>());
    for f in &families {
        let name = f.name();
        assert!(name.starts_with("chronik_"), "{name}");
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
        let is_counter = f.get_field_type() == MetricType::COUNTER;
        assert_eq!(name.ends_with("_total"), is_counter, "{name}: `_total` exactly on counters");
        let base = name.trim_end_matches("_total");
        let has_unit = SUFFIXES.iter().any(|s| base.ends_with(s));
        let known_unitless = ["chronik_requests", "chronik_actor_restarts", "chronik_partition_offline"];
        assert!(has_unit || known_unitless.contains(&base), "{name} names no unit");
        assert!(!f.help().is_empty(), "{name} has no help");
    }
}

#[test]
fn transactions_are_counted_by_state() {
    let families = transactions(&["Ongoing", "Ongoing", "CompleteCommit"]).expect("families");
    let t = text(&families);
    assert_eq!(sample(&t, r#"chronik_transactions{state="Ongoing"}"#), Some(2.0));
    assert_eq!(sample(&t, r#"chronik_transactions{state="CompleteCommit"}"#), Some(1.0));
    assert_eq!(sample(&t, r#"chronik_transactions{state="PrepareAbort"}"#), Some(0.0));
}
