//! Scrape-time families: pure functions from what the replicas, groups and actors reported to
//! Prometheus families (a fresh registry per scrape, so a partition that moved away or an actor
//! that stopped leaves no stale series behind).

use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::admin::groups::GroupView;
use crate::context::TopicPartition;
use crate::directory::ActorNode;
use crate::replica::ReplicaInfo;

/// A per-partition gauge: metric name, help text, and how to read it from a replica's info.
type PartitionGauge = (&'static str, &'static str, fn(&ReplicaInfo) -> i64);

/// Read from every replica hosted here, leader or follower.
const PARTITION_GAUGES: [PartitionGauge; 6] = [
    ("chronik_partition_log_start_offset", "First offset still in the log.", |i| i.log_start_offset),
    ("chronik_partition_log_end_offset", "Next offset to be assigned.", |i| i.log_end_offset),
    (
        "chronik_partition_high_watermark_offset",
        "Offsets below it are durable on every in-sync replica and readable.",
        |i| i.high_watermark,
    ),
    ("chronik_partition_size_bytes", "Bytes of log on disk.", |i| i.size_bytes as i64),
    (
        "chronik_partition_last_stable_offset",
        "Below it every transaction is decided: what read_committed consumers see.",
        |i| i.last_stable_offset,
    ),
    ("chronik_partition_open_transactions", "Transactions open in the partition.", |i| i.open_transactions as i64),
];

/// The transactions this node coordinates, by Kafka's state name.
pub(super) fn transactions(states: &[&'static str]) -> prometheus::Result<Vec<MetricFamily>> {
    let reg = Registry::new();
    let help = "Transactional ids coordinated here, by the state of their latest transaction.";
    let vec = gauge_vec(&reg, "chronik_transactions", help, &["state"])?;
    for state in chronik::txn::TxnState::ALL {
        vec.with_label_values(&[state.name()]).set(states.iter().filter(|s| **s == state.name()).count() as i64);
    }
    Ok(reg.gather())
}

/// Registers a labelled gauge family in `reg`.
fn gauge_vec(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(vec.clone()))?;
    Ok(vec)
}

/// Registers an unlabelled gauge in `reg`.
fn gauge(reg: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

/// Offsets, size, replication health of the hosted replicas, and the replicas taken offline
/// (with the last failure as `reason`).
pub(super) fn partitions(
    infos: &[ReplicaInfo],
    offline: &[(TopicPartition, String)],
) -> prometheus::Result<Vec<MetricFamily>> {
    let reg = Registry::new();
    for (name, help, value) in PARTITION_GAUGES {
        let vec = gauge_vec(&reg, name, help, &["topic", "partition"])?;
        for i in infos {
            vec.with_label_values(&[i.topic.as_str(), &i.partition.to_string()]).set(value(i));
        }
    }
    leaders(&reg, infos)?;
    let help = "1 while this node's replica is offline (restart budget spent), with the reason.";
    let labelled = gauge_vec(&reg, "chronik_partition_offline", help, &["topic", "partition", "reason"])?;
    for (tp, reason) in offline {
        labelled.with_label_values(&[&*tp.topic, &tp.partition.to_string(), reason]).set(1);
    }
    let help = "Replicas on this node taken offline after exhausting their restart budget.";
    gauge(&reg, "chronik_offline_partitions", help)?.set(offline.len() as i64);
    Ok(reg.gather())
}

/// What only a partition's leader knows: each follower's lag behind its log end, the ISR size,
/// and how many of the partitions it leads have a follower outside the ISR.
fn leaders(reg: &Registry, infos: &[ReplicaInfo]) -> prometheus::Result<()> {
    let help = "On the leader: its log end offset minus the follower's fetch offset (absent until the \
                follower's first fetch in this leadership).";
    let lag = gauge_vec(reg, "chronik_partition_replica_lag_offsets", help, &["topic", "partition", "replica"])?;
    let help = "On the leader: replicas in the ISR, the leader included.";
    let isr = gauge_vec(reg, "chronik_partition_in_sync_replicas", help, &["topic", "partition"])?;
    let help = "Partitions led by this node whose ISR is smaller than their replica set.";
    let under = gauge(reg, "chronik_under_replicated_partitions", help)?;
    for i in infos.iter().filter(|i| i.role == "leader") {
        let partition = i.partition.to_string();
        let in_sync = i.followers.iter().filter(|f| f.in_sync).count();
        isr.with_label_values(&[i.topic.as_str(), &partition]).set(1 + in_sync as i64);
        if in_sync < i.followers.len() {
            under.inc();
        }
        for f in &i.followers {
            let Some(fetched) = f.log_end_offset else { continue };
            let labels = [i.topic.as_str(), &partition, &f.id.to_string()];
            lag.with_label_values(&labels).set((i.log_end_offset - fetched).max(0));
        }
    }
    Ok(())
}

/// Each consumer group's lag per partition it committed on.
pub(super) fn groups(groups: &[GroupView]) -> prometheus::Result<Vec<MetricFamily>> {
    let reg = Registry::new();
    let help = "High watermark minus the group's committed offset.";
    let lag = gauge_vec(&reg, "chronik_group_lag_offsets", help, &["group", "topic", "partition"])?;
    for g in groups {
        for p in &g.partitions {
            let Some(value) = p.lag else { continue };
            lag.with_label_values(&[g.group_id.as_str(), &p.topic, &p.partition.to_string()]).set(value);
        }
    }
    Ok(reg.gather())
}

/// Every actor of the supervision tree: its restarts and its mailbox.
pub(super) fn actors(root: &ActorNode) -> prometheus::Result<Vec<MetricFamily>> {
    let reg = Registry::new();
    let opts = Opts::new("chronik_actor_restarts_total", "Times the supervisor restarted the actor.");
    let restarts = IntCounterVec::new(opts, &["name", "role"])?;
    reg.register(Box::new(restarts.clone()))?;
    let help = "Messages waiting in the actor's mailbox.";
    let mailbox = gauge_vec(&reg, "chronik_actor_mailbox_messages", help, &["name", "role"])?;
    let mut stack = vec![root];
    while let Some(a) = stack.pop() {
        let labels = [a.name.as_str(), a.role.as_str()];
        restarts.with_label_values(&labels).inc_by(u64::from(a.restarts));
        mailbox.with_label_values(&labels).set(a.mailbox_len);
        stack.extend(a.children.iter());
    }
    Ok(reg.gather())
}

#[cfg(test)]
#[path = "families_tests.rs"]
mod tests;
