//! The metadata model and its apply function.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::NodeId;

/// A broker as other brokers and clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The broker's id.
    pub id: NodeId,
    /// Its advertised Kafka address, `host:port`.
    pub kafka: String,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Partition index within the topic.
    pub partition: i32,
    /// Nodes holding a replica, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// The node currently leading the partition.
    pub leader: NodeId,
    /// Bumped on every leader change; stamped into the batches the leader appends.
    pub leader_epoch: i32,
    /// Replicas currently in sync with the leader.
    pub isr: Vec<NodeId>,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Stable id, reported in Metadata v10+.
    pub id: Uuid,
    /// Replication factor asked for at creation.
    pub replication_factor: i16,
    /// Partitions in index order.
    pub partitions: Vec<PartitionMeta>,
    /// Per-topic overrides of the broker's defaults (Kafka config names).
    pub configs: BTreeMap<String, String>,
}

/// A change to the metadata. Applied in the same order everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Registers a broker or updates its address.
    RegisterNode(NodeInfo),
    /// Creates a topic; replicas are assigned round-robin over the registered nodes.
    CreateTopic {
        /// Topic name (validated).
        name: String,
        /// The id to give it (chosen by the proposer so every replica of the log agrees).
        id: Uuid,
        /// Number of partitions.
        partitions: i32,
        /// Replicas per partition.
        replication_factor: i16,
        /// Config overrides.
        configs: BTreeMap<String, String>,
    },
    /// Deletes a topic and all its partitions.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Grows a topic to `count` partitions.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// The new total partition count.
        count: i32,
    },
    /// Replaces a topic's config overrides (AlterConfigs; IncrementalAlterConfigs computes the
    /// resulting set first). The overrides were validated by the proposer.
    SetTopicConfigs {
        /// Topic name.
        name: String,
        /// The complete new set of overrides.
        configs: BTreeMap<String, String>,
    },
    /// Reserves the next block of idempotent producer ids.
    AllocateProducerIds {
        /// How many ids the block holds.
        count: i64,
    },
}

/// Why a command could not be applied; each maps to a Kafka error code at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The topic name breaks Kafka's naming rules.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The offending name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// CreateTopic for a name that exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// A command names a topic that does not exist.
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    /// Partition count out of range.
    #[error("invalid partition count {count} for topic {topic:?}: {reason}")]
    InvalidPartitions {
        /// Topic name.
        topic: String,
        /// The requested count.
        count: i32,
        /// Why it is refused.
        reason: String,
    },
    /// The metadata could not be changed right now (retriable).
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
    /// More replicas asked for than there are brokers.
    #[error("replication factor {requested} is larger than the {available} available broker(s)")]
    InvalidReplicationFactor {
        /// Requested replication factor.
        requested: i16,
        /// Brokers registered.
        available: usize,
    },
}

/// The whole metadata state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMetadata {
    /// Registered brokers by id.
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMeta>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
}

/// Partitions above this are refused: each one is an actor and a directory.
const MAX_PARTITIONS: i32 = 10_000;

impl ClusterMetadata {
    /// Applies one command. On error nothing changed.
    pub fn apply(&mut self, cmd: &MetadataCommand) -> Result<(), MetadataError> {
        match cmd {
            MetadataCommand::RegisterNode(node) => {
                self.nodes.insert(node.id, node.clone());
                Ok(())
            }
            MetadataCommand::CreateTopic { name, id, partitions, replication_factor, configs } => {
                self.create_topic(name, *id, *partitions, *replication_factor, configs)
            }
            MetadataCommand::DeleteTopic { name } => {
                self.topics.remove(name).map(|_| ()).ok_or_else(|| MetadataError::UnknownTopic(name.clone()))
            }
            MetadataCommand::CreatePartitions { name, count } => self.create_partitions(name, *count),
            MetadataCommand::SetTopicConfigs { name, configs } => {
                let topic = self.topics.get_mut(name).ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
                topic.configs = configs.clone();
                Ok(())
            }
            MetadataCommand::AllocateProducerIds { count } => {
                self.next_producer_id = self.next_producer_id.saturating_add(*count);
                Ok(())
            }
        }
    }

    /// Checks a CreateTopic without applying it (CreateTopics `validate_only`, and before proposing).
    pub fn check_create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), MetadataError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_string()));
        }
        check_partition_count(name, partitions)?;
        if replication_factor < 1 || replication_factor as usize > self.nodes.len() {
            return Err(MetadataError::InvalidReplicationFactor {
                requested: replication_factor,
                available: self.nodes.len(),
            });
        }
        Ok(())
    }

    fn create_topic(
        &mut self,
        name: &str,
        id: uuid::Uuid,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        self.check_create_topic(name, partitions, replication_factor)?;
        let nodes: Vec<NodeId> = self.nodes.keys().copied().collect();
        let partitions = (0..partitions).map(|p| new_partition(p, &nodes, replication_factor)).collect();
        let topic = TopicMeta { name: name.to_string(), id, replication_factor, partitions, configs: configs.clone() };
        self.topics.insert(name.to_string(), topic);
        Ok(())
    }

    fn create_partitions(&mut self, name: &str, count: i32) -> Result<(), MetadataError> {
        let nodes: Vec<NodeId> = self.nodes.keys().copied().collect();
        let topic = self.topics.get_mut(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(MetadataError::InvalidPartitions {
                topic: name.to_string(),
                count,
                reason: format!("the topic already has {current} partition(s)"),
            });
        }
        check_partition_count(name, count)?;
        let rf = topic.replication_factor;
        topic.partitions.extend((current..count).map(|p| new_partition(p, &nodes, rf)));
        Ok(())
    }

    /// The partition's metadata, if the topic and partition exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMeta> {
        self.topics.get(topic)?.partitions.get(usize::try_from(partition).ok()?)
    }
}

fn check_partition_count(topic: &str, count: i32) -> Result<(), MetadataError> {
    if (1..=MAX_PARTITIONS).contains(&count) {
        return Ok(());
    }
    Err(MetadataError::InvalidPartitions {
        topic: topic.to_string(),
        count,
        reason: format!("must be between 1 and {MAX_PARTITIONS}"),
    })
}

fn new_partition(partition: i32, nodes: &[NodeId], replication_factor: i16) -> PartitionMeta {
    let replicas = assign_replicas(partition, nodes, replication_factor);
    PartitionMeta { partition, leader: replicas[0], leader_epoch: 0, isr: replicas.clone(), replicas }
}

/// Round-robin placement over sorted node ids: partition p → nodes[(p + k) mod n], k < RF.
/// `nodes` must be sorted and non-empty and RF ≤ its length (checked by the caller).
pub fn assign_replicas(partition: i32, nodes: &[NodeId], replication_factor: i16) -> Vec<NodeId> {
    let n = nodes.len();
    (0..replication_factor as usize).map(|k| nodes[(partition as usize + k) % n]).collect()
}

/// Kafka's topic naming rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let invalid = |reason: &str| MetadataError::InvalidTopicName { name: name.to_string(), reason: reason.to_string() };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are reserved"));
    }
    if name.len() > 249 {
        return Err(invalid("it is longer than 249 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(invalid("only ASCII letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(nodes: &[NodeId]) -> ClusterMetadata {
        let mut m = ClusterMetadata::default();
        for &id in nodes {
            m.apply(&MetadataCommand::RegisterNode(NodeInfo { id, kafka: format!("localhost:{}", 9091 + id) }))
                .expect("register");
        }
        m
    }

    fn create(name: &str, partitions: i32, rf: i16) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            id: Uuid::nil(),
            partitions,
            replication_factor: rf,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn round_robin_matches_the_seed_table() {
        let nodes = [1, 2, 3];
        let expected = [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 2, 3], [2, 3, 1], [3, 1, 2]];
        for (p, want) in expected.iter().enumerate() {
            assert_eq!(assign_replicas(p as i32, &nodes, 3), want.to_vec());
        }
        let four = [1, 2, 3, 4];
        assert_eq!(assign_replicas(1, &four, 3), vec![2, 3, 4]);
        assert_eq!(assign_replicas(3, &four, 3), vec![4, 1, 2]);
    }

    #[test]
    fn create_grow_and_delete_a_topic() {
        let mut m = cluster(&[1]);
        m.apply(&create("orders", 3, 1)).expect("create");
        let t = &m.topics["orders"];
        assert_eq!(t.partitions.len(), 3);
        assert!(t.partitions.iter().all(|p| p.leader == 1 && p.isr == vec![1] && p.leader_epoch == 0));
        assert_eq!(m.apply(&create("orders", 1, 1)), Err(MetadataError::TopicExists("orders".into())));
        m.apply(&MetadataCommand::CreatePartitions { name: "orders".into(), count: 5 }).expect("grow");
        assert_eq!(m.topics["orders"].partitions[4].partition, 4);
        let shrink = m.apply(&MetadataCommand::CreatePartitions { name: "orders".into(), count: 2 });
        assert!(matches!(shrink, Err(MetadataError::InvalidPartitions { .. })));
        m.apply(&MetadataCommand::DeleteTopic { name: "orders".into() }).expect("delete");
        assert!(m.topics.is_empty());
        let again = m.apply(&MetadataCommand::DeleteTopic { name: "orders".into() });
        assert_eq!(again, Err(MetadataError::UnknownTopic("orders".into())));
    }

    #[test]
    fn replication_factor_beyond_brokers_is_refused() {
        let mut m = cluster(&[1]);
        let err = m.apply(&create("t", 1, 3)).unwrap_err();
        assert_eq!(err, MetadataError::InvalidReplicationFactor { requested: 3, available: 1 });
        assert!(m.topics.is_empty());
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        for good in ["a", "test-topic", "x.y_z-1", &"n".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "bad topic!", "über", &"n".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_configs_are_replaced_whole() {
        let mut m = cluster(&[1]);
        m.apply(&create("t", 1, 1)).expect("create");
        let configs: BTreeMap<String, String> = [("retention.ms".to_string(), "1000".to_string())].into();
        m.apply(&MetadataCommand::SetTopicConfigs { name: "t".into(), configs: configs.clone() }).expect("set");
        assert_eq!(m.topics["t"].configs, configs);
        let missing = m.apply(&MetadataCommand::SetTopicConfigs { name: "nope".into(), configs });
        assert_eq!(missing, Err(MetadataError::UnknownTopic("nope".into())));
    }

    #[test]
    fn producer_id_blocks_advance() {
        let mut m = cluster(&[1]);
        m.apply(&MetadataCommand::AllocateProducerIds { count: 1000 }).expect("alloc");
        m.apply(&MetadataCommand::AllocateProducerIds { count: 1000 }).expect("alloc");
        assert_eq!(m.next_producer_id, 2000);
    }
}
