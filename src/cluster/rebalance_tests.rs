use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::balancer::normalize;
use super::*;
use crate::cluster::PartitionMeta;

/// A cluster whose voters are `voters`, holding `topics` as (name, RF, replica lists).
fn cluster(voters: &[NodeId], topics: &[(&str, i16, Vec<Vec<NodeId>>)]) -> ClusterMetadata {
    let mut m = ClusterMetadata { voters: voters.iter().copied().collect(), ..ClusterMetadata::default() };
    for (name, rf, replicas) in topics {
        let partitions = replicas
            .iter()
            .enumerate()
            .map(|(p, r)| PartitionMeta {
                partition: p as i32,
                replicas: r.clone(),
                leader: r.first().copied().unwrap_or(0),
                leader_epoch: 0,
                isr: r.clone(),
                handover: None,
                placement: None,
            })
            .collect();
        let topic = TopicMeta {
            name: name.to_string(),
            id: Uuid::nil(),
            replication_factor: *rf,
            partitions,
            configs: BTreeMap::new(),
        };
        m.topics.insert(name.to_string(), topic);
    }
    m
}

/// The layout CreateTopic makes on `nodes`.
fn round_robin_layout(partitions: i32, nodes: &[NodeId], rf: i16) -> Vec<Vec<NodeId>> {
    (0..partitions).map(|p| assign_replicas(p, nodes, rf)).collect()
}

/// The metadata once every target is in place.
fn carry_out(m: &ClusterMetadata, targets: &[PartitionTarget]) -> ClusterMetadata {
    let mut after = m.clone();
    for t in targets {
        let p = &mut after.topics.get_mut(&t.topic).expect("planned topic").partitions[t.partition as usize];
        assert_eq!(p.replicas, t.current, "current is what the metadata held");
        p.replicas = t.target.clone();
    }
    after
}

/// Replicas a plan adds, i.e. copies of partition data it costs.
fn moved(targets: &[PartitionTarget]) -> usize {
    targets.iter().map(|t| t.target.iter().filter(|id| !t.current.contains(id)).count()).sum()
}

/// Replica slots per voter for one topic.
fn loads(m: &ClusterMetadata, topic: &str) -> BTreeMap<NodeId, usize> {
    let mut load: BTreeMap<NodeId, usize> = m.voters.iter().map(|&id| (id, 0)).collect();
    for id in m.topics[topic].partitions.iter().flat_map(|p| &p.replicas) {
        *load.entry(*id).or_default() += 1;
    }
    load
}

/// Every partition of `topic` holds RF distinct voters and every voter holds ⌊avg⌋ or ⌈avg⌉ slots.
fn assert_balanced(m: &ClusterMetadata, topic: &str) {
    let t = &m.topics[topic];
    let rf = t.replication_factor as usize;
    for p in &t.partitions {
        let set: BTreeSet<NodeId> = p.replicas.iter().copied().collect();
        assert_eq!((p.replicas.len(), set.len()), (rf, rf), "{topic}-{}: {:?}", p.partition, p.replicas);
        assert!(set.is_subset(&m.voters), "{topic}-{} on a non-voter: {:?}", p.partition, p.replicas);
    }
    let slots = t.partitions.len() * rf;
    let (floor, ceil) = (slots / m.voters.len(), slots.div_ceil(m.voters.len()));
    let load = loads(m, topic);
    assert!(load.values().all(|l| (floor..=ceil).contains(l)), "{topic}: uneven {load:?}");
}

/// Plans, carries the plan out, checks the result and that planning again moves nothing.
fn plan_and_settle(m: &ClusterMetadata) -> (Vec<PartitionTarget>, ClusterMetadata) {
    let targets = plan(m);
    assert_eq!(plan(m), targets, "deterministic");
    let after = carry_out(m, &targets);
    for (name, topic) in &after.topics {
        let voters: Vec<NodeId> = after.voters.iter().copied().collect();
        let rf = topic.replication_factor;
        let as_created = topic.partitions.iter().all(|p| {
            p.partition >= 0 && !voters.is_empty() && same_set(&p.replicas, &assign_replicas(p.partition, &voters, rf))
        });
        // Round-robin is left as it is, and voters that cannot hold the topic leave it alone.
        if !as_created && (1..=voters.len()).contains(&(rf as usize)) {
            assert_balanced(&after, name);
        }
    }
    assert!(plan(&after).is_empty(), "a settled cluster plans nothing: {:?}", plan(&after));
    (targets, after)
}

#[test]
fn adding_a_fourth_node_moves_only_what_it_receives() {
    let m = cluster(&[1, 2, 3, 4], &[("t", 3, round_robin_layout(6, &[1, 2, 3], 3))]);
    let (targets, after) = plan_and_settle(&m);
    let node4 = loads(&after, "t")[&4];
    assert!((4..=5).contains(&node4), "node 4 holds {node4}");
    assert_eq!(moved(&targets), node4, "each move lands on node 4, nothing else shuffles");
    // Here round-robin is as cheap as any even layout, so the cluster lands on the seed's table.
    let planned: Vec<(i32, Vec<NodeId>)> = targets.iter().map(|t| (t.partition, t.target.clone())).collect();
    let seed = [(1, [2, 3, 4]), (2, [3, 4, 1]), (3, [4, 1, 2]), (5, [2, 3, 4])];
    assert_eq!(planned, seed.map(|(p, r)| (p, r.to_vec())), "p0 and p4 keep their set and are left out");
}

#[test]
fn growing_takes_followers_and_leaves_every_leader_in_place() {
    // 300 partitions: round-robin over four nodes would take the leader's replica from a
    // quarter of them (partition 2: [3, 1, 2] → [3, 4, 1] keeps it, partition 34: [2, 3, 1] →
    // [3, 4, 1] does not); an even spread that drops followers only costs the same copies.
    for (voters, before) in [(vec![1, 2, 3, 4], vec![1, 2, 3]), (vec![1, 2, 3, 4, 5, 6], vec![1, 2, 3, 4])] {
        let m = cluster(&voters, &[("t", 3, round_robin_layout(300, &before, 3))]);
        let (targets, after) = plan_and_settle(&m);
        let new_nodes = voters.iter().filter(|id| !before.contains(id));
        let received: usize = new_nodes.map(|id| loads(&after, "t")[id]).sum();
        assert_eq!(moved(&targets), received, "each copy lands on a new node");
        let dropped: Vec<_> = targets.iter().filter(|t| !t.target.contains(&t.current[0])).collect();
        assert!(dropped.is_empty(), "leaders lose their replica: {:?}", &dropped[..dropped.len().min(3)]);
    }
}

#[test]
fn adding_a_fifth_node() {
    let m = cluster(&[1, 2, 3, 4, 5], &[("t", 3, round_robin_layout(6, &[1, 2, 3, 4], 3))]);
    let (targets, after) = plan_and_settle(&m);
    let node5 = loads(&after, "t")[&5];
    // 18 slots over 5 voters: 3 or 4 each.
    assert!((3..=4).contains(&node5), "node 5 holds {node5}");
    assert_eq!(moved(&targets), node5);
}

#[test]
fn a_removed_node_gives_up_every_replica() {
    let m = cluster(&[1, 2, 3], &[("t", 3, round_robin_layout(6, &[1, 2, 3, 4], 3))]);
    let (targets, after) = plan_and_settle(&m);
    let on_node4 = m.topics["t"].partitions.iter().filter(|p| p.replicas.contains(&4)).count();
    assert_eq!(moved(&targets), on_node4, "only node 4's replicas move");
    assert!(targets.iter().all(|t| t.current.contains(&4) && !t.target.contains(&4)));
    assert!(after.topics["t"].partitions.iter().all(|p| !p.replicas.contains(&4)));
}

#[test]
fn removing_a_node_with_rf_below_the_voters_spreads_evenly() {
    let m = cluster(&[1, 2, 3, 5], &[("t", 2, round_robin_layout(7, &[1, 2, 3, 4, 5], 2))]);
    let (targets, _) = plan_and_settle(&m);
    let current: Vec<Vec<NodeId>> = m.topics["t"].partitions.iter().map(|p| p.replicas.clone()).collect();
    assert_eq!(moved(&targets), fewest_moves(&current, &[1, 2, 3, 5], 2));
    assert!(targets.iter().all(|t| !t.target.contains(&4)));
}

#[test]
fn uneven_growth_moves_the_minimum() {
    // 10 slots over 4 voters: node 4 needs 2, and 2 moves are enough.
    let m = cluster(&[1, 2, 3, 4], &[("t", 2, round_robin_layout(5, &[1, 2, 3], 2))]);
    let (targets, after) = plan_and_settle(&m);
    assert_eq!(moved(&targets), 2, "{targets:?}");
    assert_eq!(loads(&after, "t")[&4], 2);
}

#[test]
fn replication_factor_one() {
    let m = cluster(&[1, 2, 3, 4], &[("t", 1, round_robin_layout(4, &[1, 2], 1))]);
    let (targets, after) = plan_and_settle(&m);
    assert_eq!(moved(&targets), 2);
    assert!(loads(&after, "t").values().all(|&l| l == 1));
}

#[test]
fn a_topic_the_voters_cannot_hold_is_left_alone() {
    let m = cluster(
        &[1, 2, 3],
        &[("big", 4, round_robin_layout(3, &[1, 2, 3, 4], 4)), ("t", 1, round_robin_layout(3, &[1], 1))],
    );
    let targets = plan(&m);
    assert!(!targets.is_empty());
    assert!(targets.iter().all(|t| t.topic == "t"), "{targets:?}");
    let zero = cluster(&[1, 2], &[("z", 0, vec![vec![]]), ("neg", -1, vec![vec![1]])]);
    assert!(plan(&zero).is_empty());
}

#[test]
fn nothing_to_plan_without_topics_or_voters() {
    assert!(plan(&ClusterMetadata::default()).is_empty());
    assert!(plan(&cluster(&[], &[("t", 1, vec![vec![1]])])).is_empty());
    assert!(plan(&cluster(&[1, 2], &[("empty", 1, vec![])])).is_empty());
}

#[test]
fn consumer_offsets_is_rebalanced_like_any_topic() {
    let m = cluster(
        &[1, 2, 3, 4],
        &[
            ("__consumer_offsets", 3, round_robin_layout(50, &[1, 2, 3], 3)),
            ("t", 3, round_robin_layout(6, &[1, 2, 3], 3)),
        ],
    );
    let (targets, after) = plan_and_settle(&m);
    let node4 = loads(&after, "__consumer_offsets")[&4];
    assert!((37..=38).contains(&node4), "150 slots over 4 voters, node 4 holds {node4}");
    let offsets_moves = moved(&targets.iter().filter(|t| t.topic == "__consumer_offsets").cloned().collect::<Vec<_>>());
    assert_eq!(offsets_moves, node4);
}

#[test]
fn a_balanced_cluster_plans_nothing() {
    // As CreateTopic lays topics out, including round-robin's one-off spreads (6 × RF 2 on 4 nodes).
    for (partitions, rf) in [(6, 3), (6, 2), (5, 2), (1, 1), (50, 3), (7, 4)] {
        let m = cluster(&[1, 2, 3, 4], &[("t", rf, round_robin_layout(partitions, &[1, 2, 3, 4], rf))]);
        assert!(plan(&m).is_empty(), "{partitions} partitions RF {rf}");
    }
    // Evenly spread but not round-robin.
    let m = cluster(&[1, 2, 3], &[("t", 2, vec![vec![1, 2], vec![1, 3], vec![2, 3]])]);
    assert!(plan(&m).is_empty());
}

#[test]
fn a_skewed_cluster_is_evened_out() {
    let m = cluster(&[1, 2, 3], &[("t", 2, vec![vec![1, 2]; 6])]);
    let (targets, after) = plan_and_settle(&m);
    assert_eq!(moved(&targets), 4, "node 3 needs 4 of the 12 slots");
    assert_eq!(loads(&after, "t").values().copied().collect::<Vec<_>>(), vec![4, 4, 4]);
}

#[test]
fn odd_replica_lists_are_repaired_without_panicking() {
    let m = cluster(
        &[1, 2, 3],
        &[("t", 2, vec![vec![1, 1], vec![], vec![2, 9, 3, 1], vec![7, 8], vec![3]]), ("u", 3, vec![vec![1, 2, 3]; 2])],
    );
    let (targets, _) = plan_and_settle(&m);
    assert!(targets.iter().all(|t| t.topic == "t"));
    let mut negative = cluster(&[1, 2, 3], &[("t", 2, vec![vec![1, 9]])]);
    negative.topics.get_mut("t").expect("t").partitions[0].partition = -7;
    let targets = plan(&negative);
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].target.len(), 2);
}

#[test]
fn replacements_take_the_removed_replicas_place() {
    // Round-robin ([1, 2], [2, 3], [3, 1]) would cost 3 copies; filling the hole costs 1.
    let m = cluster(&[1, 2, 3], &[("t", 2, vec![vec![4, 2], vec![3, 1], vec![1, 2]])]);
    let targets = plan(&m);
    let lists: Vec<(i32, Vec<NodeId>)> = targets.iter().map(|t| (t.partition, t.target.clone())).collect();
    assert_eq!(lists, vec![(0, vec![3, 2])]);
}

#[test]
fn current_lists_become_rf_slots_with_holes() {
    let voters = [1, 2, 3];
    assert_eq!(normalize(&[2, 9, 3, 1], &voters, 2), vec![Some(2), Some(3), Some(1)], "the non-voter goes first");
    assert_eq!(normalize(&[1, 1], &voters, 2), vec![Some(1), None], "a repeat is a hole");
    assert_eq!(normalize(&[4, 2], &voters, 3), vec![None, Some(2), None]);
    assert_eq!(normalize(&[], &voters, 1), vec![None]);
}

#[test]
fn over_long_lists_drop_the_replica_on_the_busiest_voter() {
    // Node 1 holds three of the six slots, so p0 drops node 1 and nothing has to be copied.
    let m = cluster(&[1, 2, 3], &[("t", 2, vec![vec![1, 2, 3], vec![3, 1], vec![1, 2]])]);
    let (targets, _) = plan_and_settle(&m);
    assert_eq!(moved(&targets), 0, "{targets:?}");
    assert_eq!(targets.len(), 1);
    assert_eq!((targets[0].partition, targets[0].target.clone()), (0, vec![2, 3]));
}

#[test]
fn order_keeping_leader_puts_the_leader_first_when_it_stays() {
    assert_eq!(order_keeping_leader(&[2, 3, 4], 3), vec![3, 2, 4]);
    assert_eq!(order_keeping_leader(&[2, 3, 4], 2), vec![2, 3, 4]);
    assert_eq!(order_keeping_leader(&[2, 3, 4], 1), vec![2, 3, 4], "the leader leaves: target order");
    assert_eq!(order_keeping_leader(&[], 1), Vec::<NodeId>::new());
}

/// A small deterministic generator, so the exhaustive comparison below needs no extra crate.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Every `k`-subset of `items`.
fn subsets(items: &[NodeId], k: usize) -> Vec<Vec<NodeId>> {
    if k == 0 {
        return vec![vec![]];
    }
    let Some((&first, rest)) = items.split_first() else { return vec![] };
    let mut out: Vec<Vec<NodeId>> = subsets(rest, k - 1).into_iter().map(|s| [vec![first], s].concat()).collect();
    out.extend(subsets(rest, k));
    out
}

/// The fewest added replicas any even layout needs, by trying them all.
fn fewest_moves(current: &[Vec<NodeId>], voters: &[NodeId], rf: usize) -> usize {
    let choices = subsets(voters, rf);
    let cost: Vec<Vec<usize>> = current
        .iter()
        .map(|cur| choices.iter().map(|c| c.iter().filter(|id| !cur.contains(id)).count()).collect())
        .collect();
    let slots = current.len() * rf;
    let (floor, ceil) = (slots / voters.len(), slots.div_ceil(voters.len()));
    let mut best = usize::MAX;
    let mut pick = vec![0; current.len()];
    loop {
        let mut load: BTreeMap<NodeId, usize> = voters.iter().map(|&id| (id, 0)).collect();
        for id in pick.iter().flat_map(|&c| &choices[c]) {
            *load.entry(*id).or_default() += 1;
        }
        if load.values().all(|l| (floor..=ceil).contains(l)) {
            best = best.min(pick.iter().enumerate().map(|(p, &c)| cost[p][c]).sum());
        }
        // Next combination, odometer style.
        let Some(i) = pick.iter().position(|&c| c + 1 < choices.len()) else { return best };
        pick[i] += 1;
        pick[..i].iter_mut().for_each(|c| *c = 0);
    }
}

#[test]
fn moves_are_minimal_against_exhaustive_search() {
    let mut rng = Lcg(7);
    for case in 0..2000 {
        let n = 1 + rng.below(6);
        let voters: Vec<NodeId> = (1..=n as NodeId).collect();
        let rf = 1 + rng.below(n.min(4));
        let partitions = 1 + rng.below(if n > 4 { 3 } else { 5 });
        // Lists drawn from the voters and two nodes that are gone: mostly RF distinct replicas,
        // a quarter of them shorter or longer, some with repeats.
        let pool: Vec<NodeId> = (1..=n as NodeId + 2).collect();
        let current: Vec<Vec<NodeId>> = (0..partitions)
            .map(|_| {
                let len = if rng.below(4) == 0 { rng.below(rf + 2) } else { rf };
                let mut list: Vec<NodeId> = Vec::new();
                while list.len() < len {
                    let id = pool[rng.below(pool.len())];
                    if !list.contains(&id) || rng.below(3) == 0 {
                        list.push(id);
                    }
                }
                list
            })
            .collect();
        let m = cluster(&voters, &[("t", rf as i16, current.clone())]);
        let is_round_robin =
            current.iter().zip(round_robin_layout(partitions as i32, &voters, rf as i16)).all(|(c, r)| same_set(c, &r));
        if is_round_robin {
            // Left as CreateTopic made it, even where that is one slot off an even spread.
            assert!(plan(&m).is_empty());
            continue;
        }
        let (targets, _) = plan_and_settle(&m);
        // Which replicas of an over-long list to drop is chosen greedily, not searched.
        if current.iter().all(|c| c.len() <= rf) {
            let best = fewest_moves(&current, &voters, rf);
            assert_eq!(moved(&targets), best, "case {case}: {current:?} on {voters:?} → {targets:?}");
        }
    }
}

#[test]
fn replanning_halfway_through_a_move_keeps_its_course() {
    let m = cluster(&[1, 2, 3, 4], &[("t", 3, round_robin_layout(6, &[1, 2, 3], 3))]);
    let targets = plan(&m);
    // The rebalancer first puts current ∪ target in place, leader first.
    let mut halfway = m.clone();
    for t in &targets {
        let p = &mut halfway.topics.get_mut("t").expect("t").partitions[t.partition as usize];
        let added = t.target.iter().copied().filter(|id| !p.replicas.contains(id));
        p.replicas = p.replicas.iter().copied().chain(added).collect();
    }
    let again = plan(&halfway);
    let sets = |ts: &[PartitionTarget]| -> Vec<(i32, BTreeSet<NodeId>)> {
        ts.iter().map(|t| (t.partition, t.target.iter().copied().collect())).collect()
    };
    assert_eq!(sets(&again), sets(&targets));
    assert_eq!(moved(&again), 0, "the copies already made are kept");
}

#[test]
fn larger_random_clusters_settle_in_one_plan() {
    let mut rng = Lcg(11);
    for _ in 0..500 {
        // Ids far apart and near the top of the range: nothing may assume they are small or dense.
        let pool: Vec<NodeId> = (0..10).map(|k| u64::MAX - 3 * k).collect();
        let voters: Vec<NodeId> = pool.iter().copied().filter(|_| rng.below(3) > 0).collect();
        if voters.is_empty() {
            continue;
        }
        let rf = 1 + rng.below(voters.len().min(4));
        let mut current: Vec<Vec<NodeId>> = Vec::new();
        for _ in 0..1 + rng.below(40) {
            // Mostly RF entries, sometimes fewer or more; repeats are allowed.
            let len = if rng.below(5) == 0 { rng.below(rf + 3) } else { rf };
            current.push((0..len).map(|_| pool[rng.below(pool.len())]).collect());
        }
        plan_and_settle(&cluster(&voters, &[("t", rf as i16, current)]));
    }
}

#[test]
fn a_draining_voter_gives_up_every_replica_and_gets_none() {
    let mut m = cluster(&[1, 2, 3, 4], &[("t", 3, round_robin_layout(6, &[1, 2, 3, 4], 3))]);
    m.draining.insert(4);
    let targets = plan(&m);
    let on_node4 = m.topics["t"].partitions.iter().filter(|p| p.replicas.contains(&4)).count();
    assert_eq!(moved(&targets), on_node4, "only node 4's replicas move");
    let after = carry_out(&m, &targets);
    assert!(after.topics["t"].partitions.iter().all(|p| !p.replicas.contains(&4)));
    assert!(plan(&after).is_empty(), "settled once node 4 is empty");
    assert!(after.voters.contains(&4), "draining does not change the membership");
}

fn partition(replicas: &[NodeId], leader: NodeId, isr: &[NodeId]) -> PartitionMeta {
    PartitionMeta {
        partition: 0,
        replicas: replicas.to_vec(),
        leader,
        leader_epoch: 3,
        isr: isr.to_vec(),
        handover: None,
        placement: None,
    }
}

#[test]
fn a_move_copies_first_waits_for_the_isr_and_drops_last() {
    let target = [1, 4, 2];
    assert_eq!(next_step(&target, &partition(&[1, 2, 3], 1, &[1, 2, 3])), MoveStep::Add(vec![1, 2, 3, 4]));
    assert_eq!(next_step(&target, &partition(&[1, 2, 3, 4], 1, &[1, 2, 3])), MoveStep::CatchUp);
    let caught_up = partition(&[1, 2, 3, 4], 1, &[1, 2, 3, 4]);
    assert_eq!(next_step(&target, &caught_up), MoveStep::Remove(vec![1, 4, 2]));
    assert_eq!(next_step(&target, &partition(&[1, 4, 2], 1, &[1, 2, 4])), MoveStep::Done);
}

#[test]
fn a_leader_that_leaves_hands_over_to_a_target_replica_first() {
    let target = [2, 3, 4];
    let caught_up = partition(&[1, 2, 3, 4], 1, &[1, 2, 3, 4]);
    assert_eq!(next_step(&target, &caught_up), MoveStep::MoveLeader(2));
    let moved = partition(&[1, 2, 3, 4], 2, &[1, 2, 3, 4]);
    assert_eq!(next_step(&target, &moved), MoveStep::Remove(vec![2, 3, 4]));
}

#[test]
fn leadership_or_isr_changes_mid_move_change_the_next_step() {
    let target = [1, 4, 2];
    // Node 4 fell out of the ISR after catching up: wait again instead of dropping node 3.
    assert_eq!(next_step(&target, &partition(&[1, 2, 3, 4], 1, &[1, 2, 3])), MoveStep::CatchUp);
    // The leader was fenced to node 3, outside the target: leadership moves before anything drops.
    assert_eq!(next_step(&target, &partition(&[1, 2, 3, 4], 3, &[2, 3, 4])), MoveStep::CatchUp);
    assert_eq!(next_step(&target, &partition(&[1, 2, 3, 4], 3, &[1, 2, 3, 4])), MoveStep::MoveLeader(1));
    // A replica removed by another change is added back first.
    assert_eq!(next_step(&target, &partition(&[1, 3], 3, &[1, 3])), MoveStep::Add(vec![1, 3, 4, 2]));
}

#[test]
fn an_operator_placement_is_carried_out_and_then_left_where_it_is() {
    // Node 4 joins a round-robin topic with partition 0 placed by an operator on [1, 2, 3].
    let mut m = cluster(&[1, 2, 3, 4], &[("t", 3, round_robin_layout(8, &[1, 2, 3], 3))]);
    let placed = crate::cluster::Placement { replicas: vec![1, 2, 3], reassigning_from: None };
    m.topics.get_mut("t").expect("t").partitions[0].placement = Some(placed);
    let targets = plan(&m);
    assert!(!targets.is_empty() && targets.iter().all(|t| t.partition != 0), "{targets:?}");
    assert!(requested(&m).is_empty(), "partition 0 is where the operator put it");
    let after = carry_out(&m, &targets);
    assert!(plan(&after).is_empty(), "the rest settles among itself");

    // The operator moves it onto node 4: that is the one target asked for.
    let mut moving = after.clone();
    moving.topics.get_mut("t").expect("t").partitions[0].placement =
        Some(crate::cluster::Placement { replicas: vec![4, 2, 3], reassigning_from: Some(vec![1, 2, 3]) });
    let asked = requested(&moving);
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].partition, asked[0].target.clone()), (0, vec![4, 2, 3]));
    assert!(plan(&moving).is_empty(), "the planner does not fight it");
    // A target naming a node that left is not carried out.
    moving.voters.remove(&4);
    assert!(requested(&moving).is_empty());
}
