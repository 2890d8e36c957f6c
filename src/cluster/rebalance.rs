//! The rebalance planner: where each partition's replicas should live for the current voters.
//!
//! Pure: it reads the metadata and returns targets. The rebalancer actor carries each move out
//! safely (add the new replicas → wait until they are in sync → move leadership only if the leader
//! leaves → drop the old replicas), so the plan may be recomputed at any time.
//!
//! # Algorithm, per topic
//! 1. Topics the voters cannot hold (RF < 1 or RF > number of voters) are left as they are.
//! 2. The reference layout is the round-robin CreateTopic uses ([`assign_replicas`] over the
//!    sorted voters). A topic already laid out that way (replica sets compared, not order) is
//!    left alone, even where round-robin is one slot off an even spread, so a new topic never
//!    moves.
//! 3. Otherwise the balanced layout starts from the current one and changes as little as it can
//!    while reaching an even spread: every voter at ⌊slots / voters⌋ or ⌈slots / voters⌉ of the
//!    topic's replica slots (see [`balancer`] for how: holes where replicas must go, matched to
//!    the voters with room, then single moves from voters above their quota to voters below it).
//!    Replicas on a partition's current leader move last: dropping one means moving leadership
//!    in the middle of the copy phase, a retry for every client writing to it.
//! 4. The round-robin layout replaces the balanced one when it is also even, moves no more
//!    replicas (adding one node to a round-robin topic often costs exactly that) and takes
//!    replicas from no more leaders, so clusters converge on the seed's tables where that is free.
//!
//! Only partitions whose replica set changes are returned. Once a plan is carried out the topic
//! is either round-robin or evenly spread, so planning again returns nothing.

mod balancer;
mod leaders;

use std::collections::BTreeMap;

use serde::Serialize;

use super::metadata::{ClusterMetadata, PartitionMeta, TopicMeta, assign_replicas, same_replicas as same_set};
use crate::config::NodeId;

pub use leaders::{LeaderMove, spread_leaders};

#[cfg(test)]
#[path = "rebalance_tests.rs"]
mod tests;

/// The target replica list of one partition, in preference order (leader first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionTarget {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The replicas when planned.
    pub current: Vec<NodeId>,
    /// The replicas to end with: distinct voters, as many as the topic's replication factor.
    pub target: Vec<NodeId>,
}

/// Targets for every partition whose replica set changes (partitions whose set is unchanged are
/// omitted), over the voters that are not draining, topics in name order and partitions in index order. Deterministic.
pub fn plan(metadata: &ClusterMetadata) -> Vec<PartitionTarget> {
    // Draining voters are left out: their replicas are holes the other voters fill.
    let voters = metadata.placement_nodes();
    metadata.topics.values().flat_map(|topic| plan_topic(topic, &voters)).collect()
}

/// The operators' reassignments not carried out yet: each partition whose [`Placement`](crate::cluster::Placement) differs
/// from its replicas, with that placement as its target. Targets naming a node that cannot take
/// replicas any more are left out (a node leaving releases the placements that name it).
pub fn requested(metadata: &ClusterMetadata) -> Vec<PartitionTarget> {
    let nodes = metadata.placement_nodes();
    let placeable = |target: &[NodeId]| target.iter().all(|id| nodes.binary_search(id).is_ok());
    let mut out = Vec::new();
    for topic in metadata.topics.values() {
        for p in &topic.partitions {
            let Some(placement) = &p.placement else { continue };
            if !same_set(&p.replicas, &placement.replicas) && placeable(&placement.replicas) {
                out.push(PartitionTarget {
                    topic: topic.name.clone(),
                    partition: p.partition,
                    current: p.replicas.clone(),
                    target: placement.replicas.clone(),
                });
            }
        }
    }
    out
}

/// The replica list to put in place for `target` given the current leader: the same set as
/// target, but the current leader first if it is in the target set (so leadership need not
/// move); otherwise target order.
pub fn order_keeping_leader(target: &[NodeId], leader: NodeId) -> Vec<NodeId> {
    if !target.contains(&leader) {
        return target.to_vec();
    }
    std::iter::once(leader).chain(target.iter().copied().filter(|&id| id != leader)).collect()
}

/// The next step of moving one partition to its target replicas, decided from the metadata as
/// it is now, never from what an earlier step expected: a leader fenced or an ISR shrunk
/// mid-move simply yields a different next step, so a move always finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveStep {
    /// Propose this replica list: the current replicas plus the missing target ones (copy first).
    Add(Vec<NodeId>),
    /// Wait until every target replica is in the ISR.
    CatchUp,
    /// Move leadership to this in-sync target replica: the current leader leaves the set.
    MoveLeader(NodeId),
    /// Propose this replica list, the target with the leader first: the old replicas are
    /// dropped only now, with every target replica in sync (drop last).
    Remove(Vec<NodeId>),
    /// The partition holds exactly its target replicas.
    Done,
}

/// The next step for partition `p` towards `target` (see [`MoveStep`]).
pub fn next_step(target: &[NodeId], p: &PartitionMeta) -> MoveStep {
    let missing: Vec<NodeId> = target.iter().copied().filter(|id| !p.replicas.contains(id)).collect();
    if !missing.is_empty() {
        return MoveStep::Add(p.replicas.iter().copied().chain(missing).collect());
    }
    if same_set(&p.replicas, target) {
        return MoveStep::Done;
    }
    if !target.iter().all(|id| p.isr.contains(id)) {
        return MoveStep::CatchUp;
    }
    match target.first() {
        Some(_) if target.contains(&p.leader) => MoveStep::Remove(order_keeping_leader(target, p.leader)),
        Some(&first) => MoveStep::MoveLeader(first),
        // The planner never targets nothing; there is nothing safe to do towards it.
        None => MoveStep::Done,
    }
}

/// `voters` is sorted and duplicate-free (it comes from a set).
fn plan_topic(topic: &TopicMeta, voters: &[NodeId]) -> Vec<PartitionTarget> {
    let rf = match usize::try_from(topic.replication_factor) {
        Ok(rf) if rf >= 1 && rf <= voters.len() => rf,
        _ => return Vec::new(),
    };
    // An operator's placement stays where it is; the other partitions are spread among themselves.
    let free: Vec<&PartitionMeta> = topic.partitions.iter().filter(|p| p.placement.is_none()).collect();
    let current: Vec<&[NodeId]> = free.iter().map(|p| p.replicas.as_slice()).collect();
    let leaders: Vec<NodeId> = free.iter().map(|p| p.leader).collect();
    let round_robin: Vec<Vec<NodeId>> = free.iter().map(|p| round_robin(p.partition, voters, rf)).collect();
    if current.iter().zip(&round_robin).all(|(cur, rr)| same_set(cur, rr)) {
        return Vec::new();
    }
    let balanced = balancer::balance(&current, &leaders, &round_robin, voters, rf);
    let cost = |target: &[Vec<NodeId>]| (moves(&current, target), leaders_moved(&current, &leaders, target));
    let rr_is_as_cheap = cost(&round_robin) <= cost(&balanced);
    let chosen = if rr_is_as_cheap && is_even(&round_robin, voters) { round_robin } else { balanced };
    free.into_iter()
        .zip(chosen)
        .filter(|(p, target)| !same_set(&p.replicas, target))
        .map(|(p, target)| PartitionTarget {
            topic: topic.name.clone(),
            partition: p.partition,
            current: p.replicas.clone(),
            target,
        })
        .collect()
}

/// [`assign_replicas`] for any partition index: reducing it modulo the voter count first gives
/// the same nodes and keeps a negative or huge index from overflowing.
fn round_robin(partition: i32, voters: &[NodeId], rf: usize) -> Vec<NodeId> {
    let n = i64::try_from(voters.len()).unwrap_or(i64::MAX);
    let start = i32::try_from(i64::from(partition).rem_euclid(n)).unwrap_or(0);
    assign_replicas(start, voters, i16::try_from(rf).unwrap_or(i16::MAX))
}

/// How many replicas `target` adds over `current`: each one is a copy of the partition's data.
fn moves(current: &[&[NodeId]], target: &[Vec<NodeId>]) -> usize {
    current.iter().zip(target).map(|(cur, tgt)| tgt.iter().filter(|id| !cur.contains(id)).count()).sum()
}

/// How many partitions `target` takes off the node leading them (each a leadership change).
fn leaders_moved(current: &[&[NodeId]], leaders: &[NodeId], target: &[Vec<NodeId>]) -> usize {
    current
        .iter()
        .zip(leaders)
        .zip(target)
        .filter(|((cur, leader), tgt)| cur.contains(*leader) && !tgt.contains(*leader))
        .count()
}

/// Whether every voter holds ⌊slots / voters⌋ or ⌈slots / voters⌉ of the assignment's slots.
fn is_even(assignment: &[Vec<NodeId>], voters: &[NodeId]) -> bool {
    let mut load: BTreeMap<NodeId, usize> = voters.iter().map(|&id| (id, 0)).collect();
    for id in assignment.iter().flatten() {
        if let Some(count) = load.get_mut(id) {
            *count += 1;
        }
    }
    let max = load.values().max().copied().unwrap_or(0);
    let min = load.values().min().copied().unwrap_or(0);
    max - min <= 1
}
