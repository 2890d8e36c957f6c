//! Partitions created with a manual replica assignment (CreateTopics and CreatePartitions
//! `assignments`), validated as Kafka's controller does: every partition has the same non-zero
//! number of distinct replicas (a grown topic: its replication factor), all of them brokers that
//! can take partitions.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    ClusterMetadata, MetadataError, PartitionMeta, Placement, TopicMeta, check_partition_count, validate_topic_name,
};
use crate::config::NodeId;

impl ClusterMetadata {
    /// Checks a manual assignment (`assignments[p]` = partition p's replicas) without applying it.
    pub fn check_assignment(&self, name: &str, assignments: &[Vec<NodeId>]) -> Result<(), MetadataError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_string()));
        }
        check_partition_count(name, i32::try_from(assignments.len()).unwrap_or(i32::MAX))?;
        self.check_replica_lists(name, assignments, assignments[0].len(), 0)
    }

    /// Checks the replica lists of new partitions `first`, `first + 1`, …: each `width` distinct
    /// brokers that can take partitions.
    fn check_replica_lists(
        &self,
        name: &str,
        assignments: &[Vec<NodeId>],
        width: usize,
        first: usize,
    ) -> Result<(), MetadataError> {
        for (p, replicas) in (first..).zip(assignments) {
            self.check_replica_list(name, p, replicas)?;
            if replicas.len() != width {
                let n = replicas.len();
                let reason = format!("partition {p} has {n} replica(s), but the other partitions have {width}");
                return Err(MetadataError::InvalidReplicaAssignment { topic: name.to_string(), reason });
            }
        }
        Ok(())
    }

    /// Checks partition `p`'s replica list: not empty, distinct brokers that can take partitions.
    pub(super) fn check_replica_list(
        &self,
        name: &str,
        p: impl std::fmt::Display,
        replicas: &[NodeId],
    ) -> Result<(), MetadataError> {
        let invalid = |reason: String| MetadataError::InvalidReplicaAssignment { topic: name.to_string(), reason };
        if replicas.is_empty() {
            return Err(invalid(format!("partition {p} has an empty replica list")));
        }
        let placeable = self.placement_nodes();
        let mut seen = BTreeSet::new();
        for &node in replicas {
            if !seen.insert(node) {
                return Err(invalid(format!("partition {p} names broker {node} more than once")));
            }
            if placeable.binary_search(&node).is_err() {
                return Err(invalid(format!("partition {p} names broker {node}, which is not an active member")));
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
        let partitions = assigned_partitions(assignments, 0);
        let replication_factor = i16::try_from(assignments[0].len()).unwrap_or(i16::MAX);
        let topic = TopicMeta { name: name.to_string(), id, replication_factor, partitions, configs: configs.clone() };
        self.topics.insert(name.to_string(), topic);
        Ok(())
    }

    /// Grows `name` by one partition per replica list of `assignments`, up to `count` in all.
    pub(super) fn create_assigned_partitions(
        &mut self,
        name: &str,
        count: i32,
        assignments: &[Vec<NodeId>],
    ) -> Result<(), MetadataError> {
        let topic = self.topics.get(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len();
        let width = topic
            .partitions
            .first()
            .map_or(usize::try_from(topic.replication_factor).unwrap_or(1), |p| p.replicas.len());
        let adding = usize::try_from(count).unwrap_or(0).saturating_sub(current);
        if adding != assignments.len() {
            let reason =
                format!("{adding} partition(s) would be added, but {} assignment(s) were given", assignments.len());
            return Err(MetadataError::InvalidReplicaAssignment { topic: name.to_string(), reason });
        }
        self.check_replica_lists(name, assignments, width, current)?;
        let new = assigned_partitions(assignments, i32::try_from(current).unwrap_or(i32::MAX));
        if let Some(topic) = self.topics.get_mut(name) {
            topic.partitions.extend(new);
        }
        Ok(())
    }
}

/// Partitions `first`, `first + 1`, … with the given replicas, placed there by the operator.
/// Every replica starts empty, so all of them are in sync; the first one leads.
fn assigned_partitions(assignments: &[Vec<NodeId>], first: i32) -> Vec<PartitionMeta> {
    assignments
        .iter()
        .zip(first..)
        .map(|(replicas, partition)| PartitionMeta {
            partition,
            leader: replicas[0],
            leader_epoch: 0,
            isr: replicas.clone(),
            replicas: replicas.clone(),
            handover: None,
            placement: Some(Placement { replicas: replicas.clone(), reassigning_from: None }),
        })
        .collect()
}
