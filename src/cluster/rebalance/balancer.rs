//! The evenly spread layout of one topic that keeps the most of its current replicas.
//!
//! Each partition's list becomes exactly RF slots ([`normalize`], [`Balancer::trim`]): replicas
//! on voters keep their slot, anything else (a non-voter such as a removed node or a learner, a
//! repeat, a missing entry) is a hole. Then, with `floor` = ⌊slots / voters⌋ and `ceil` = ⌈…⌉:
//! 1. Holes are matched to the voters' room below `floor`, then below `ceil` for as many voters
//!    as an even spread puts there ([`Balancer::match_holes`]). A hole costs one copy wherever it
//!    lands, but one landing on a voter without room costs another move later, so the matching is
//!    a maximum one, grown by augmenting paths (a hole placed earlier may be re-placed).
//! 2. Holes left over go to the least loaded voter not holding the partition.
//! 3. Each voter gets its quota: `ceil` for the most loaded ones, as many as the spread has ceil
//!    slots, `floor` for the rest. That choice needs the fewest moves, and every move from a voter
//!    above its quota to one below it (one exists: the former holds more, so it holds a partition
//!    the latter lacks) brings the count down by one, so the moves made are the fewest there are.
//!
//! Where several choices cost the same, the one that lands closer to round-robin wins, then the
//! lowest partition, then the lowest node id, so the result is deterministic. New replicas take
//! the slot of the one they replace, so preferred leaders move only when they have to.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::config::NodeId;

/// The balanced layout for a topic whose partitions hold `current` and are led by `leaders`.
/// `voters` is sorted and duplicate-free, `1 <= rf <= voters.len()`; `round_robin` only breaks
/// ties.
pub(super) fn balance(
    current: &[&[NodeId]],
    leaders: &[NodeId],
    round_robin: &[Vec<NodeId>],
    voters: &[NodeId],
    rf: usize,
) -> Vec<Vec<NodeId>> {
    let slots: Vec<Vec<Option<NodeId>>> = current.iter().map(|cur| normalize(cur, voters, rf)).collect();
    let mut load: BTreeMap<NodeId, usize> = voters.iter().map(|&id| (id, 0)).collect();
    for id in slots.iter().flatten().flatten() {
        *load.entry(*id).or_default() += 1;
    }
    let mut b = Balancer { voters, leaders, round_robin, slots, load };
    b.trim(rf);
    b.match_holes();
    b.fill_holes();
    b.even_out();
    b.slots.into_iter().map(|slots| slots.into_iter().flatten().collect()).collect()
}

/// A partition's current replicas as `rf` slots or more: voters keep their place, anything else
/// (a non-voter, a repeat) becomes a hole, holes beyond `rf` are dropped and a short list is
/// padded with holes. More than `rf` voters stay; [`Balancer::trim`] picks which to drop.
pub(super) fn normalize(current: &[NodeId], voters: &[NodeId], rf: usize) -> Vec<Option<NodeId>> {
    let mut seen = BTreeSet::new();
    let mut slots: Vec<Option<NodeId>> =
        current.iter().map(|&id| (voters.binary_search(&id).is_ok() && seen.insert(id)).then_some(id)).collect();
    while slots.len() > rf {
        let Some(i) = slots.iter().rposition(Option::is_none) else { break };
        slots.remove(i);
    }
    slots.resize(slots.len().max(rf), None);
    slots
}

/// The working layout of one topic.
struct Balancer<'a> {
    /// Sorted voter ids.
    voters: &'a [NodeId],
    /// Each partition's current leader: a replica moved off its leader's node costs a
    /// leadership change, which clients see as a retry, so other replicas move first.
    leaders: &'a [NodeId],
    /// Ties lean towards it, so the balanced layout stays close to the canonical one.
    round_robin: &'a [Vec<NodeId>],
    /// Each partition's replica slots in preference order; `None` is a hole to fill.
    slots: Vec<Vec<Option<NodeId>>>,
    /// Replica slots per voter.
    load: BTreeMap<NodeId, usize>,
}

/// The hole matching's state.
struct Matching {
    /// The voters each partition's holes are placed on so far.
    placed: Vec<Vec<NodeId>>,
    /// The partitions with a hole placed on each voter (the inverse of `placed`).
    holders: BTreeMap<NodeId, BTreeSet<usize>>,
    /// ⌊slots / voters⌋: every voter has room up to it.
    floor: usize,
    /// ⌈slots / voters⌉: some voters have room up to it.
    ceil: usize,
    /// How many more voters may go from the floor to the ceil.
    ceil_left: usize,
}

impl Matching {
    /// Whether a voter holding `load` slots has room for one more, and takes it if so.
    fn take_room(&mut self, load: usize) -> bool {
        if load < self.floor {
            return true;
        }
        if load < self.ceil && self.ceil_left > 0 {
            self.ceil_left -= 1;
            return true;
        }
        false
    }

    fn place(&mut self, partition: usize, id: NodeId) {
        if let Some(placed) = self.placed.get_mut(partition) {
            placed.push(id);
        }
        self.holders.entry(id).or_default().insert(partition);
    }

    fn unplace(&mut self, partition: usize, id: NodeId) {
        if let Some(placed) = self.placed.get_mut(partition) {
            placed.retain(|p| *p != id);
        }
        if let Some(holders) = self.holders.get_mut(&id) {
            holders.remove(&partition);
        }
    }
}

impl Balancer<'_> {
    /// Cuts lists longer than `rf` (a move caught between adding and dropping replicas holds
    /// both). Dropping is free, so each drop takes a replica on the most loaded voter, from the
    /// first partition that has one to spare, and the last such slot to keep preferred leaders.
    fn trim(&mut self, rf: usize) {
        // For each voter, the over-long partitions holding it, consumed front to back.
        let mut queues: BTreeMap<NodeId, VecDeque<usize>> = BTreeMap::new();
        for (i, slots) in self.slots.iter().enumerate().filter(|(_, s)| s.len() > rf) {
            for id in slots.iter().flatten() {
                queues.entry(*id).or_default().push_back(i);
            }
        }
        loop {
            let mut pick: Option<(usize, Reverse<usize>, usize, NodeId)> = None;
            for (&id, queue) in &mut queues {
                while queue.front().is_some_and(|&i| self.slots.get(i).is_none_or(|s| s.len() <= rf)) {
                    queue.pop_front();
                }
                let Some(&i) = queue.front() else { continue };
                let Some(j) = self.slots.get(i).and_then(|s| s.iter().position(|s| *s == Some(id))) else { continue };
                pick = pick.max(Some((self.load_of(id), Reverse(i), j, id)));
            }
            let Some((_, Reverse(i), j, id)) = pick else { return };
            if let Some(slots) = self.slots.get_mut(i) {
                slots.remove(j);
            }
            self.add_load(id, -1);
            if let Some(queue) = queues.get_mut(&id) {
                queue.pop_front();
            }
        }
    }

    /// Step 1: holes matched to the room an even spread leaves.
    fn match_holes(&mut self) {
        let slots = self.slots.iter().map(Vec::len).sum::<usize>();
        let n = self.voters.len().max(1);
        let (floor, ceil) = (slots / n, slots.div_ceil(n));
        let at_ceil = self.load.values().filter(|&&l| l >= ceil).count();
        let placed = vec![Vec::new(); self.slots.len()];
        let mut m = Matching { placed, holders: BTreeMap::new(), floor, ceil, ceil_left: 0 };
        let mut open = Vec::new();
        for p in 0..self.slots.len() {
            for _ in 0..self.holes_in(p) {
                // Once no voter is below the floor no search can succeed; skip the searches.
                let room = self.load.values().any(|&l| l < floor);
                if !room || !self.augment(p, &mut m, &mut BTreeSet::new()) {
                    open.push(p);
                }
            }
        }
        m.ceil_left = (slots % n).saturating_sub(at_ceil);
        for p in open {
            if m.ceil_left > 0 {
                self.augment(p, &mut m, &mut BTreeSet::new());
            }
        }
        for (slots, placed) in self.slots.iter_mut().zip(m.placed) {
            for (slot, id) in slots.iter_mut().filter(|s| s.is_none()).zip(placed) {
                *slot = Some(id);
            }
        }
    }

    /// Finds partition `p` one more voter with room, re-placing other holes along the way;
    /// `visited` keeps each voter to one use per search, which also bounds the recursion depth.
    fn augment(&mut self, p: usize, m: &mut Matching, visited: &mut BTreeSet<NodeId>) -> bool {
        let (Some(held), Some(placed)) = (self.slots.get(p), m.placed.get(p)) else { return false };
        let mut candidates: Vec<NodeId> = self
            .voters
            .iter()
            .copied()
            .filter(|id| !held.contains(&Some(*id)) && !placed.contains(id) && !visited.contains(id))
            .collect();
        candidates.sort_by_key(|id| (!self.in_round_robin(p, *id), *id));
        for to in candidates {
            if !visited.insert(to) {
                continue;
            }
            if m.take_room(self.load_of(to)) {
                m.place(p, to);
                self.add_load(to, 1);
                return true;
            }
            let holders: Vec<usize> = m.holders.get(&to).map(|h| h.iter().copied().collect()).unwrap_or_default();
            for q in holders {
                // `q` gives `to` up for `p`, if it can be given another voter.
                if self.augment(q, m, visited) {
                    m.unplace(q, to);
                    m.place(p, to);
                    return true;
                }
            }
        }
        false
    }

    /// Step 2: holes without room go to the least loaded voter not holding the partition.
    fn fill_holes(&mut self) {
        for i in 0..self.slots.len() {
            for j in 0..self.slots[i].len() {
                if self.slots[i][j].is_some() {
                    continue;
                }
                let pick = self
                    .voters
                    .iter()
                    .copied()
                    .filter(|id| !self.slots[i].contains(&Some(*id)))
                    .min_by_key(|id| (self.load_of(*id), !self.in_round_robin(i, *id), *id));
                if let Some(id) = pick {
                    self.slots[i][j] = Some(id);
                    self.add_load(id, 1);
                }
            }
        }
    }

    /// Step 3: moves from voters above their quota to voters below it. The passes ask for moves
    /// that keep the partition's leader first, then for moves closer to round-robin. A voter
    /// above its quota only loses slots and one below only gains, so after the last pass (any
    /// move) no pair is left that some partition could serve.
    fn even_out(&mut self) {
        let quota = self.quotas();
        let passes = [true, false].into_iter().flat_map(|keep_leader| [2, 1, 0].map(|score| (keep_leader, score)));
        for (keep_leader, min_score) in passes {
            for i in 0..self.slots.len() {
                while let Some((from, to)) = self.move_in(i, min_score, keep_leader, &quota) {
                    let Some(slot) = self.slots[i].iter_mut().find(|s| **s == Some(from)) else { break };
                    // In place, so the new replica takes the old one's rank in the preference order.
                    *slot = Some(to);
                    self.add_load(from, -1);
                    self.add_load(to, 1);
                }
            }
        }
    }

    /// `ceil` for the most loaded voters (lowest ids first among equals), `floor` for the rest.
    fn quotas(&self) -> BTreeMap<NodeId, usize> {
        let slots = self.slots.iter().map(Vec::len).sum::<usize>();
        let n = self.voters.len().max(1);
        let mut by_load: Vec<NodeId> = self.voters.to_vec();
        by_load.sort_by_key(|id| (Reverse(self.load_of(*id)), *id));
        by_load.into_iter().enumerate().map(|(k, id)| (id, slots / n + usize::from(k < slots % n))).collect()
    }

    /// The best move within partition `i` scoring at least `min_score`, as (from, to); with
    /// `keep_leader`, only one that leaves the partition's leader in place.
    fn move_in(
        &self,
        i: usize,
        min_score: usize,
        keep_leader: bool,
        quota: &BTreeMap<NodeId, usize>,
    ) -> Option<(NodeId, NodeId)> {
        let slots = self.slots.get(i)?;
        let quota_of = |id: NodeId| quota.get(&id).copied().unwrap_or(0);
        let leader = self.leaders.get(i).copied();
        let movable = |id: NodeId| self.load_of(id) > quota_of(id) && !(keep_leader && Some(id) == leader);
        let mut best: Option<(usize, NodeId, NodeId)> = None;
        for from in slots.iter().flatten().copied().filter(|&id| movable(id)) {
            let targets = self.voters.iter().copied().filter(|&id| self.load_of(id) < quota_of(id));
            for to in targets.filter(|id| !slots.contains(&Some(*id))) {
                // A move scores for landing on a round-robin replica and for leaving a stray one.
                let score = usize::from(self.in_round_robin(i, to)) + usize::from(!self.in_round_robin(i, from));
                if score >= min_score && best.is_none_or(|(top, _, _)| score > top) {
                    best = Some((score, from, to));
                }
            }
        }
        best.map(|(_, from, to)| (from, to))
    }

    fn holes_in(&self, partition: usize) -> usize {
        self.slots.get(partition).map_or(0, |s| s.iter().filter(|s| s.is_none()).count())
    }

    fn load_of(&self, id: NodeId) -> usize {
        self.load.get(&id).copied().unwrap_or(0)
    }

    fn add_load(&mut self, id: NodeId, delta: isize) {
        let load = self.load.entry(id).or_default();
        *load = load.saturating_add_signed(delta);
    }

    fn in_round_robin(&self, partition: usize, id: NodeId) -> bool {
        self.round_robin.get(partition).is_some_and(|rr| rr.contains(&id))
    }
}
