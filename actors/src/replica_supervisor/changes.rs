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

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

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

    /// What a full pass reads from the metadata for each partition: its topic's id and configs
    /// and the partition itself, by partition name.
    type Full = BTreeMap<String, (uuid::Uuid, BTreeMap<String, String>, PartitionMeta)>;

    fn full(metadata: &ClusterMetadata) -> Full {
        let partitions = metadata.topics.values().flat_map(|t| t.partitions.iter().map(move |p| (t, p)));
        partitions
            .map(|(t, p)| (TopicPartition::new(&t.name, p.partition).to_string(), (t.id, t.configs.clone(), p.clone())))
            .collect()
    }

    /// A topic of up to four partitions, each on a random leader, ISR and epoch.
    fn random_topic(rng: &mut StdRng, name: &str) -> TopicMeta {
        let mut t = topic(name, rng.random_range(1..3), rng.random_range(0..5));
        for p in &mut t.partitions {
            p.leader = rng.random_range(1..4);
            p.isr = (1..4).filter(|_| rng.random_bool(0.7)).collect();
            p.leader_epoch = rng.random_range(0..2);
        }
        t
    }

    /// `previous` with each topic kept, changed in one partition, reconfigured, deleted or
    /// recreated at random, and sometimes a new topic.
    fn mutate(rng: &mut StdRng, previous: &ClusterMetadata) -> ClusterMetadata {
        let mut next = previous.clone();
        for name in previous.topics.keys() {
            match rng.random_range(0..6) {
                0 => {
                    next.topics.remove(name);
                }
                1 => {
                    next.topics.insert(name.clone(), random_topic(rng, name));
                }
                2 => {
                    let t = next.topics.get_mut(name).expect("kept");
                    t.configs.insert("retention.ms".into(), rng.random_range(1..3u32).to_string());
                }
                3 => {
                    let t = next.topics.get_mut(name).expect("kept");
                    let n = t.partitions.len();
                    if let Some(p) = (n > 0).then(|| rng.random_range(0..n)).and_then(|i| t.partitions.get_mut(i)) {
                        p.isr = vec![p.leader];
                        p.leader_epoch += 1;
                    }
                }
                _ => {}
            }
        }
        if rng.random_bool(0.3) {
            let name = ["a", "b", "c", "d"][rng.random_range(0..4)];
            next.topics.entry(name.into()).or_insert_with(|| random_topic(rng, name));
        }
        next
    }

    #[test]
    fn applying_the_changes_gives_what_a_full_pass_gives() {
        let mut rng = StdRng::seed_from_u64(17);
        for _ in 0..3000 {
            let names = ["a", "b", "c"].into_iter().filter(|_| rng.random_bool(0.7)).collect::<Vec<_>>();
            let before = with(names.into_iter().map(|n| random_topic(&mut rng, n)).collect());
            let after = mutate(&mut rng, &before);
            let mut incremental = full(&before);
            for (tp, now) in changed_partitions(&before, &after) {
                match now {
                    Some((t, p)) => incremental.insert(tp.to_string(), (t.id, t.configs.clone(), p.clone())),
                    None => incremental.remove(&tp.to_string()),
                };
            }
            assert_eq!(incremental, full(&after), "from {before:?}\nto {after:?}");
        }
    }
}
