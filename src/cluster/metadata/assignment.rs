//! Topics created with a manual replica assignment (CreateTopics `assignments`), validated as
//! Kafka's controller does: every partition has the same non-zero number of distinct replicas,
//! all of them brokers that can take partitions.

use std::collections::{BTreeMap, BTreeSet};

use super::{ClusterMetadata, MetadataError, PartitionMeta, TopicMeta, check_partition_count, validate_topic_name};
use crate::config::NodeId;

impl ClusterMetadata {
    /// Checks a manual assignment (`assignments[p]` = partition p's replicas) without applying it.
    pub fn check_assignment(&self, name: &str, assignments: &[Vec<NodeId>]) -> Result<(), MetadataError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_string()));
        }
        check_partition_count(name, i32::try_from(assignments.len()).unwrap_or(i32::MAX))?;
        let invalid = |reason: String| MetadataError::InvalidReplicaAssignment { topic: name.to_string(), reason };
        let placeable: BTreeSet<NodeId> = self.placement_nodes().into_iter().collect();
        let width = assignments[0].len();
        for (p, replicas) in assignments.iter().enumerate() {
            if replicas.is_empty() {
                return Err(invalid(format!("partition {p} has an empty replica list")));
            }
            if replicas.len() != width {
                let n = replicas.len();
                return Err(invalid(format!("partition {p} has {n} replica(s), but previous partitions have {width}")));
            }
            let mut seen = BTreeSet::new();
            for &node in replicas {
                if !seen.insert(node) {
                    return Err(invalid(format!("partition {p} names broker {node} more than once")));
                }
                if !placeable.contains(&node) {
                    return Err(invalid(format!("partition {p} names broker {node}, which is not an active member")));
                }
            }
        }
        Ok(())
    }

    pub(super) fn create_assigned_topic(
        &mut self,
        name: &str,
        id: uuid::Uuid,
        assignments: &[Vec<NodeId>],
        configs: &BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        self.check_assignment(name, assignments)?;
        let partitions: Vec<PartitionMeta> = assignments
            .iter()
            .zip(0..)
            .map(|(replicas, partition)| {
                // Every replica starts empty, so all of them are in sync; the first one leads.
                PartitionMeta {
                    partition,
                    leader: replicas[0],
                    leader_epoch: 0,
                    isr: replicas.clone(),
                    replicas: replicas.clone(),
                }
            })
            .collect();
        let replication_factor = i16::try_from(assignments[0].len()).unwrap_or(i16::MAX);
        let topic = TopicMeta { name: name.to_string(), id, replication_factor, partitions, configs: configs.clone() };
        self.topics.insert(name.to_string(), topic);
        Ok(())
    }
}
