//! Spreading partition leadership over the nodes once the replicas are in place.
//!
//! Replica moves keep each partition's leader where it is whenever it stays a replica, so a node
//! that just joined holds replicas but leads almost nothing, and producers (who write to leaders)
//! gain no capacity from it. This plan gives every placement node ⌊P / N⌋ or ⌈P / N⌉ of the P
//! partitions led by a placement node, counted over the whole cluster, with the fewest leadership
//! changes: only a node above ⌈P / N⌉ gives leadership away, only to an in-sync replica of that
//! partition that is registered and below its own share.
//!
//! Pure and deterministic: partitions are considered in (topic, partition) order and the least
//! loaded candidate wins, lowest id first on a tie.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ClusterMetadata;
use crate::config::NodeId;

/// One leadership change of the spread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderMove {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The leader when planned.
    pub from: NodeId,
    /// The in-sync replica that takes over.
    pub to: NodeId,
}

/// A partition a node leads: topic, index, and the other in-sync replicas that could take over.
type Led<'a> = (&'a str, i32, Vec<NodeId>);

/// The leadership changes that spread leaders evenly over the placement nodes (voters not
/// draining); empty when every node already leads its share or no in-sync replica can take more.
pub fn spread_leaders(metadata: &ClusterMetadata) -> Vec<LeaderMove> {
    let nodes = metadata.placement_nodes();
    let eligible = |id: &NodeId| nodes.binary_search(id).is_ok() && metadata.incarnations.contains_key(id);
    let mut load: BTreeMap<NodeId, usize> = nodes.iter().map(|&id| (id, 0)).collect();
    // Partitions led by a placement node, by leader, in (topic, partition) order.
    let mut led: BTreeMap<NodeId, Vec<Led>> = BTreeMap::new();
    for topic in metadata.topics.values() {
        for p in &topic.partitions {
            let Some(count) = load.get_mut(&p.leader) else { continue };
            *count += 1;
            // An operator chose where an operator-placed partition leads: it only counts.
            let others: Vec<NodeId> = match p.placement {
                Some(_) => Vec::new(),
                None => p.isr.iter().copied().filter(|id| *id != p.leader && eligible(id)).collect(),
            };
            led.entry(p.leader).or_default().push((topic.name.as_str(), p.partition, others));
        }
    }
    let mut out = Vec::new();
    let mut changed: BTreeSet<(&str, i32)> = BTreeSet::new();
    // Each pass hands one partition from the most loaded node to the least loaded in-sync
    // replica that has room; a node that can hand nothing over drops out of the running.
    let mut stuck: BTreeSet<NodeId> = BTreeSet::new();
    let most_loaded = |load: &BTreeMap<NodeId, usize>, stuck: &BTreeSet<NodeId>| {
        load.iter()
            .filter(|(id, _)| !stuck.contains(id))
            .max_by_key(|&(&id, &l)| (l, std::cmp::Reverse(id)))
            .map(|(&id, &l)| (id, l))
    };
    while let Some((from, from_load)) = most_loaded(&load, &stuck) {
        // Even: no two nodes' shares differ by more than one.
        if from_load <= load.values().copied().min().unwrap_or(0) + 1 {
            break;
        }
        let candidates = led.get(&from).map(Vec::as_slice).unwrap_or_default();
        let pick = candidates
            .iter()
            .filter(|(t, p, _)| !changed.contains(&(*t, *p)))
            .filter_map(|(t, p, others)| {
                let to =
                    others.iter().copied().filter(|id| load[id] + 1 < from_load).min_by_key(|id| (load[id], *id))?;
                Some((*t, *p, to))
            })
            .min_by_key(|&(t, p, to)| (load[&to], to, t, p));
        let Some((topic, partition, to)) = pick else {
            stuck.insert(from);
            continue;
        };
        changed.insert((topic, partition));
        *load.entry(from).or_default() -= 1;
        *load.entry(to).or_default() += 1;
        out.push(LeaderMove { topic: topic.to_string(), partition, from, to });
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{PartitionMeta, TopicMeta};

    /// A cluster of `nodes` (all registered) with one topic whose partitions have these replica
    /// lists, led by their first replica, every replica in sync.
    fn cluster(nodes: &[NodeId], layouts: &[Vec<NodeId>]) -> ClusterMetadata {
        let mut m = ClusterMetadata { voters: nodes.iter().copied().collect(), ..ClusterMetadata::default() };
        m.incarnations = nodes.iter().map(|&id| (id, 1)).collect();
        let partitions = (0..)
            .zip(layouts)
            .map(|(partition, r)| PartitionMeta {
                partition,
                replicas: r.clone(),
                leader: r[0],
                leader_epoch: 0,
                isr: r.clone(),
                handover: None,
                placement: None,
            })
            .collect();
        let topic = TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            replication_factor: i16::try_from(layouts[0].len()).unwrap(),
            partitions,
            configs: BTreeMap::new(),
        };
        m.topics.insert("t".into(), topic);
        m
    }

    fn leads(m: &ClusterMetadata, moves: &[LeaderMove]) -> BTreeMap<NodeId, usize> {
        let mut load: BTreeMap<NodeId, usize> = m.placement_nodes().into_iter().map(|id| (id, 0)).collect();
        for p in &m.topics["t"].partitions {
            let leader = moves.iter().find(|mv| mv.partition == p.partition).map_or(p.leader, |mv| mv.to);
            *load.get_mut(&leader).unwrap() += 1;
        }
        load
    }

    #[test]
    fn a_new_node_gets_its_share_of_leaders_with_the_fewest_changes() {
        // 3 → 4 nodes after the replica moves: node 4 holds replicas but leads nothing.
        let layouts: Vec<Vec<NodeId>> = (0..12).map(|p| vec![p % 3 + 1, (p + 1) % 3 + 1, 4]).collect();
        let m = cluster(&[1, 2, 3, 4], &layouts);
        let moves = spread_leaders(&m);
        assert_eq!(leads(&m, &moves), BTreeMap::from([(1, 3), (2, 3), (3, 3), (4, 3)]));
        assert_eq!(moves.len(), 3, "{moves:?}");
        assert!(moves.iter().all(|mv| mv.to == 4));
        let m2 = {
            let mut m2 = m.clone();
            for mv in &moves {
                let p = &mut m2.topics.get_mut("t").unwrap().partitions[usize::try_from(mv.partition).unwrap()];
                p.leader = mv.to;
            }
            m2
        };
        assert!(spread_leaders(&m2).is_empty(), "spreading again changes nothing");
    }

    #[test]
    fn leadership_goes_only_to_an_in_sync_registered_replica() {
        let layouts: Vec<Vec<NodeId>> = (0..8).map(|_| vec![1, 2, 3]).collect();
        let mut m = cluster(&[1, 2, 3], &layouts);
        // Node 2 is out of every ISR; node 3 is a member whose process has not registered.
        for p in &mut m.topics.get_mut("t").unwrap().partitions {
            p.isr = vec![1, 3];
        }
        m.incarnations.remove(&3);
        assert!(spread_leaders(&m).is_empty());
        m.incarnations.insert(3, 7);
        let moves = spread_leaders(&m);
        assert_eq!(moves.len(), 4, "node 3 takes half: {moves:?}");
        assert!(moves.iter().all(|mv| mv.from == 1 && mv.to == 3));
    }

    #[test]
    fn a_balanced_cluster_is_left_alone_and_a_draining_node_gets_nothing() {
        let layouts: Vec<Vec<NodeId>> = (0..7).map(|p| vec![p % 3 + 1, (p + 1) % 3 + 1]).collect();
        assert!(spread_leaders(&cluster(&[1, 2, 3], &layouts)).is_empty(), "3/2/2 is even");
        // Node 1 leads all six; node 3, in every ISR, is being drained (its replicas move away).
        let layouts: Vec<Vec<NodeId>> = (0..6).map(|_| vec![1, 2, 3]).collect();
        let mut m = cluster(&[1, 2, 3], &layouts);
        m.draining.insert(3);
        let moves = spread_leaders(&m);
        assert_eq!(moves.len(), 3, "{moves:?}");
        assert!(moves.iter().all(|mv| mv.to == 2), "{moves:?}");
    }
}
