//! Which groups a node coordinates, as pure functions of the metadata (tested without actors).
//!
//! As in Kafka, a group's coordinator is the leader of its `__consumer_offsets` partition
//! (`partition_for_group`): that node holds the partition's log, so it alone can write and read
//! back the group's commits. A node therefore serves the groups of the offsets partitions it
//! leads; when the metadata moves a leadership, the old leader unloads those groups and the new
//! one loads them from the partition's log.

use std::collections::{BTreeMap, BTreeSet};

use chronik::cluster::{ClusterMetadata, NodeInfo};
use chronik::config::NodeId;
use chronik::offsets::{OFFSETS_TOPIC, partition_for_group};
use uuid::Uuid;

/// The offsets partitions one node leads, as of one metadata version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// The offsets topic's id; `None` while it does not exist. A new id is a new topic.
    pub topic_id: Option<Uuid>,
    /// Its partition count, which maps groups to partitions (0 without the topic).
    pub partitions: i32,
    /// The partitions the node leads, each with the leader epoch of that leadership.
    pub led: BTreeMap<i32, i32>,
}

impl Ownership {
    /// What `node` leads in `metadata`.
    pub fn of(metadata: &ClusterMetadata, node: NodeId) -> Self {
        Self::of_topic(metadata, OFFSETS_TOPIC, node)
    }

    /// What `node` leads of internal topic `topic` (`__transaction_state` maps transactional
    /// ids to partitions the same way).
    pub fn of_topic(metadata: &ClusterMetadata, topic: &str, node: NodeId) -> Self {
        let Some(topic) = metadata.topics.get(topic) else { return Self::default() };
        let led = topic.partitions.iter().filter(|p| p.leader == node).map(|p| (p.partition, p.leader_epoch)).collect();
        Self { topic_id: Some(topic.id), partitions: topic.partitions.len() as i32, led }
    }

    /// The offsets partition of `group`; `None` while the offsets topic does not exist.
    pub fn partition_for(&self, group: &str) -> Option<i32> {
        (self.partitions > 0).then(|| partition_for_group(group, self.partitions))
    }
}

/// What a node does when its ownership changes: unload first (with the old group → partition
/// mapping), then load.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handover {
    /// Partitions whose groups leave this node.
    pub unload: Vec<i32>,
    /// Partitions whose commits must be read back before their groups are served here.
    pub load: Vec<i32>,
}

/// The handover from `old` to `new`. A partition led under a new leader epoch is reloaded (as
/// Kafka does on every election): another node may have led it in between. A new topic or a
/// new partition count remaps every group, so everything is unloaded and loaded again.
pub fn plan(old: &Ownership, new: &Ownership) -> Handover {
    if old.topic_id != new.topic_id || old.partitions != new.partitions {
        return Handover { unload: old.led.keys().copied().collect(), load: new.led.keys().copied().collect() };
    }
    let changed = |from: &BTreeMap<i32, i32>, to: &BTreeMap<i32, i32>| {
        from.iter().filter(|(p, epoch)| to.get(p) != Some(epoch)).map(|(p, _)| *p).collect()
    };
    Handover { unload: changed(&old.led, &new.led), load: changed(&new.led, &old.led) }
}

/// Topics of `old` that `new` no longer has (a topic re-created under its name has a new id,
/// so it counts as deleted too: its predecessor's offsets must go).
pub fn deleted_topics(old: &ClusterMetadata, new: &ClusterMetadata) -> Vec<String> {
    old.topics
        .values()
        .filter(|t| new.topics.get(&t.name).is_none_or(|now| now.id != t.id))
        .map(|t| t.name.clone())
        .collect()
}

/// Topics absent from `metadata` among `topics`.
pub fn missing_topics<'a>(metadata: &ClusterMetadata, topics: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let missing: BTreeSet<&str> = topics.into_iter().filter(|t| !metadata.topics.contains_key(*t)).collect();
    missing.into_iter().map(str::to_string).collect()
}

/// Why FindCoordinator has no coordinator to name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoCoordinator {
    /// The internal topic does not exist yet (the caller proposes it).
    NoTopic,
    /// The key's partition has no leader among the known brokers.
    NoLeader(i32),
}

/// The broker coordinating `key` (a group in `__consumer_offsets`, a transactional id in
/// `__transaction_state`): the leader of its partition of internal topic `topic`.
pub fn coordinator_for<'a>(
    metadata: &'a ClusterMetadata,
    topic: &str,
    key: &str,
) -> Result<&'a NodeInfo, NoCoordinator> {
    let topic = metadata.topics.get(topic).ok_or(NoCoordinator::NoTopic)?;
    let partition = partition_for_group(key, topic.partitions.len() as i32);
    let leader = topic.partitions.get(partition as usize).map(|p| p.leader);
    leader.and_then(|id| metadata.nodes.get(&id)).ok_or(NoCoordinator::NoLeader(partition))
}

/// Kafka's offsets.topic.replication.factor (3), capped by the voters replicas are placed on.
pub fn offsets_replication_factor(metadata: &ClusterMetadata) -> i16 {
    metadata.voters.len().clamp(1, 3) as i16
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chronik::cluster::{MetadataCommand, PartitionMeta, TopicMeta};

    use super::*;

    fn node(id: NodeId) -> NodeInfo {
        NodeInfo { id, kafka: format!("host{id}:9092"), ..NodeInfo::default() }
    }

    /// A cluster of `nodes` with the offsets topic led as `leaders[p]` (epoch 0).
    fn cluster(nodes: &[NodeId], leaders: &[NodeId]) -> ClusterMetadata {
        let mut m = ClusterMetadata::default();
        m.set_membership(nodes.iter().copied().collect(), nodes.iter().map(|&id| node(id)));
        if !leaders.is_empty() {
            let partitions = leaders
                .iter()
                .enumerate()
                .map(|(p, &leader)| PartitionMeta {
                    partition: p as i32,
                    replicas: vec![leader],
                    leader,
                    leader_epoch: 0,
                    isr: vec![leader],
                    handover: None,
                    placement: None,
                })
                .collect();
            let topic = TopicMeta {
                name: OFFSETS_TOPIC.into(),
                id: Uuid::from_u128(1),
                replication_factor: 1,
                partitions,
                configs: BTreeMap::new(),
            };
            m.topics.insert(OFFSETS_TOPIC.into(), topic);
        }
        m
    }

    fn handover(unload: &[i32], load: &[i32]) -> Handover {
        Handover { unload: unload.to_vec(), load: load.to_vec() }
    }

    #[test]
    fn a_node_owns_the_partitions_it_leads() {
        let m = cluster(&[1, 2, 3], &[1, 2, 3, 1]);
        let own = Ownership::of(&m, 1);
        assert_eq!(own.led, BTreeMap::from([(0, 0), (3, 0)]));
        assert_eq!(own.partitions, 4);
        assert_eq!(own.partition_for("my-group"), Some(partition_for_group("my-group", 4)));
        assert_eq!(Ownership::of(&cluster(&[1], &[]), 1), Ownership::default());
        assert_eq!(Ownership::default().partition_for("g"), None, "no topic, no partition");
    }

    #[test]
    fn creating_the_topic_loads_what_is_led() {
        let before = Ownership::of(&cluster(&[1, 2], &[]), 2);
        let after = Ownership::of(&cluster(&[1, 2], &[1, 2, 1, 2]), 2);
        assert_eq!(plan(&before, &after), handover(&[], &[1, 3]));
        assert_eq!(plan(&after, &after), handover(&[], &[]), "nothing changed, nothing to do");
    }

    #[test]
    fn leadership_moves_unload_on_the_old_leader_and_load_on_the_new() {
        let old = cluster(&[1, 2], &[1, 2, 1]);
        let new = cluster(&[1, 2], &[2, 2, 1]);
        assert_eq!(plan(&Ownership::of(&old, 1), &Ownership::of(&new, 1)), handover(&[0], &[]));
        assert_eq!(plan(&Ownership::of(&old, 2), &Ownership::of(&new, 2)), handover(&[], &[0]));
    }

    #[test]
    fn a_new_leader_epoch_reloads_the_partition() {
        let old = cluster(&[1], &[1, 1]);
        let mut new = old.clone();
        new.topics.get_mut(OFFSETS_TOPIC).expect("topic").partitions[1].leader_epoch = 4;
        assert_eq!(plan(&Ownership::of(&old, 1), &Ownership::of(&new, 1)), handover(&[1], &[1]));
    }

    #[test]
    fn a_new_partition_count_or_topic_id_remaps_every_group() {
        let old = cluster(&[1], &[1, 1]);
        let mut grown = old.clone();
        grown
            .apply(&MetadataCommand::CreatePartitions { name: OFFSETS_TOPIC.into(), count: 3, assignments: Vec::new() })
            .expect("grow");
        assert_eq!(plan(&Ownership::of(&old, 1), &Ownership::of(&grown, 1)), handover(&[0, 1], &[0, 1, 2]));
        let mut recreated = old.clone();
        recreated.topics.get_mut(OFFSETS_TOPIC).expect("topic").id = Uuid::from_u128(2);
        assert_eq!(plan(&Ownership::of(&old, 1), &Ownership::of(&recreated, 1)), handover(&[0, 1], &[0, 1]));
        let gone = cluster(&[1], &[]);
        assert_eq!(plan(&Ownership::of(&old, 1), &Ownership::of(&gone, 1)), handover(&[0, 1], &[]));
    }

    #[test]
    fn deleted_and_recreated_topics_are_both_reported() {
        let mut old = cluster(&[1], &[1]);
        for name in ["kept", "deleted", "recreated"] {
            let create = MetadataCommand::CreateTopic {
                name: name.into(),
                id: Uuid::from_u128(10),
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new(),
                assignments: Vec::new(),
            };
            old.apply(&create).expect("create");
        }
        let mut new = old.clone();
        new.topics.remove("deleted");
        new.topics.get_mut("recreated").expect("topic").id = Uuid::from_u128(11);
        assert_eq!(deleted_topics(&old, &new), vec!["deleted".to_string(), "recreated".to_string()]);
        assert!(deleted_topics(&new, &new).is_empty());
        assert_eq!(missing_topics(&new, ["kept", "deleted", "deleted"]), vec!["deleted".to_string()]);
    }

    #[test]
    fn the_coordinator_is_the_leader_of_the_groups_partition() {
        let group = "my-group";
        let p = partition_for_group(group, 3) as usize;
        let mut leaders = [1, 1, 1];
        leaders[p] = 3;
        let m = cluster(&[1, 2, 3], &leaders);
        assert_eq!(coordinator_for(&m, OFFSETS_TOPIC, group).map(|n| n.kafka.as_str()), Ok("host3:9092"));
        assert_eq!(coordinator_for(&cluster(&[1], &[]), OFFSETS_TOPIC, group), Err(NoCoordinator::NoTopic));
        leaders[p] = 9;
        let unknown = cluster(&[1, 2, 3], &leaders);
        assert_eq!(coordinator_for(&unknown, OFFSETS_TOPIC, group), Err(NoCoordinator::NoLeader(p as i32)));
    }

    #[test]
    fn replication_factor_is_three_at_most_and_one_at_least() {
        assert_eq!(offsets_replication_factor(&cluster(&[], &[])), 1);
        assert_eq!(offsets_replication_factor(&cluster(&[1], &[])), 1);
        assert_eq!(offsets_replication_factor(&cluster(&[1, 2], &[])), 2);
        assert_eq!(offsets_replication_factor(&cluster(&[1, 2, 3, 4, 5], &[])), 3);
    }
}
