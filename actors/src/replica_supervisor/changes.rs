//! Which partitions a metadata change touches, so the ReplicaSupervisor reconciles only
//! those: it runs on every applied Raft entry, and a node may host thousands of replicas.

use chronik::cluster::{ClusterMetadata, PartitionMeta, TopicMeta};

use crate::context::TopicPartition;

/// Every partition `metadata` changes since `previous`, with its topic and state now (`None`:
/// gone, with its topic or as one a recreated topic no longer has). A topic whose id or configs
/// changed counts as changed in every partition.
pub(super) fn changed_partitions<'a>(
    previous: &ClusterMetadata,
    metadata: &'a ClusterMetadata,
) -> Vec<(TopicPartition, Option<(&'a TopicMeta, &'a PartitionMeta)>)> {
    let mut out = Vec::new();
    for (name, old) in &previous.topics {
        let kept = metadata.topics.get(name).map_or(0, |new| new.partitions.len());
        for p in old.partitions.get(kept..).unwrap_or_default() {
            out.push((TopicPartition::new(&old.name, p.partition), None));
        }
    }
    for (name, topic) in &metadata.topics {
        let old = previous.topics.get(name);
        if old == Some(topic) {
            continue;
        }
        let same = old.filter(|o| o.id == topic.id && o.configs == topic.configs);
        for p in &topic.partitions {
            if same.is_none_or(|o| o.partitions.get(index(p.partition)) != Some(p)) {
                out.push((TopicPartition::new(&topic.name, p.partition), Some((topic, p))));
            }
        }
    }
    out
}

/// A partition number as an index into its topic's partitions (they are in index order).
fn index(partition: i32) -> usize {
    usize::try_from(partition).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn topic(name: &str, id: u128, partitions: i32) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: uuid::Uuid::from_u128(id),
            replication_factor: 3,
            partitions: (0..partitions)
                .map(|partition| PartitionMeta {
                    partition,
                    replicas: vec![1, 2, 3],
                    leader: 1,
                    leader_epoch: 0,
                    isr: vec![1, 2, 3],
                    handover: None,
                    placement: None,
                })
                .collect(),
            configs: BTreeMap::new(),
        }
    }

    fn with(topics: Vec<TopicMeta>) -> ClusterMetadata {
        ClusterMetadata { topics: topics.into_iter().map(|t| (t.name.clone(), t)).collect(), ..Default::default() }
    }

    /// The changes as (partition, hosted now) pairs, e.g. ("a-1", true).
    fn changes(previous: &ClusterMetadata, metadata: &ClusterMetadata) -> Vec<(String, bool)> {
        let mut out: Vec<_> = changed_partitions(previous, metadata)
            .into_iter()
            .map(|(tp, now)| (tp.to_string(), now.is_some()))
            .collect();
        out.sort();
        out
    }

    fn owned(pairs: &[(&str, bool)]) -> Vec<(String, bool)> {
        pairs.iter().map(|(tp, now)| (tp.to_string(), *now)).collect()
    }

    #[test]
    fn only_what_changed_is_reconciled_again() {
        let before = with(vec![topic("a", 1, 3), topic("b", 2, 2)]);
        assert!(changes(&before, &before).is_empty(), "nothing changed");

        let mut isr = before.clone();
        isr.topics.get_mut("a").expect("a").partitions[1].isr = vec![1, 2];
        assert_eq!(changes(&before, &isr), owned(&[("a-1", true)]));

        let mut config = before.clone();
        config.topics.get_mut("b").expect("b").configs.insert("retention.ms".into(), "1000".into());
        assert_eq!(changes(&before, &config), owned(&[("b-0", true), ("b-1", true)]));

        let grown = with(vec![topic("a", 1, 4), topic("b", 2, 2)]);
        assert_eq!(changes(&before, &grown), owned(&[("a-3", true)]));
    }

    #[test]
    fn deleted_and_recreated_topics_lose_their_old_partitions() {
        let before = with(vec![topic("a", 1, 3), topic("b", 2, 2)]);
        assert_eq!(changes(&before, &with(vec![topic("a", 1, 3)])), owned(&[("b-0", false), ("b-1", false)]));
        // Recreated with one partition: the two it lost go, the one it has is set up again.
        let recreated = with(vec![topic("a", 9, 1), topic("b", 2, 2)]);
        assert_eq!(changes(&before, &recreated), owned(&[("a-0", true), ("a-1", false), ("a-2", false)]));
    }
}
