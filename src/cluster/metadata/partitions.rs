//! The commands that change one partition's replicas, leader, epoch or ISR, and the rules that
//! keep every such change safe: the leader is always in sync, a step never drops in-sync
//! replicas below `min.insync.replicas`, and a broker that may have lost data leads nothing.

use std::collections::BTreeSet;

use super::{ClusterMetadata, MetadataCommand, MetadataError, PartitionMeta, Placement, same_replicas};
use crate::config::NodeId;

impl ClusterMetadata {
    pub(super) fn partition_mut(&mut self, topic: &str, partition: i32) -> Result<&mut PartitionMeta, MetadataError> {
        self.topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
            .ok_or_else(|| MetadataError::UnknownTopic(topic.to_string()))
    }

    /// The topic's `min.insync.replicas`: its own override, else the cluster's default.
    pub fn min_insync_for(&self, topic: &str) -> i16 {
        self.topics
            .get(topic)
            .and_then(|t| t.configs.get("min.insync.replicas"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.min_insync_replicas)
    }

    pub(super) fn update_isr(
        &mut self,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        isr: &[NodeId],
    ) -> Result<(), MetadataError> {
        let p = self.partition_mut(topic, partition)?;
        if p.leader_epoch != leader_epoch {
            return Err(MetadataError::StaleLeaderEpoch { current: p.leader_epoch, got: leader_epoch });
        }
        check_isr(p, p.leader, isr)?;
        p.isr = isr.to_vec();
        Ok(())
    }

    /// A new leader from the current ISR, one epoch up. The ISR becomes the current one
    /// intersected with the command's: a replica that left the ISR after the command was planned
    /// stays out.
    pub(super) fn elect_leader(
        &mut self,
        topic: &str,
        partition: i32,
        leader: NodeId,
        leader_epoch: i32,
        isr: &[NodeId],
    ) -> Result<(), MetadataError> {
        let p = self.partition_mut(topic, partition)?;
        if leader_epoch != p.leader_epoch + 1 {
            return Err(MetadataError::StaleLeaderEpoch { current: p.leader_epoch, got: leader_epoch });
        }
        let isr: Vec<NodeId> = p.isr.iter().copied().filter(|id| isr.contains(id)).collect();
        check_isr(p, leader, &isr)?;
        p.leader = leader;
        p.leader_epoch = leader_epoch;
        p.isr = isr;
        p.handover = None;
        Ok(())
    }

    /// See [`MetadataCommand::ElectUncleanLeader`].
    pub(super) fn elect_unclean_leader(
        &mut self,
        topic: &str,
        partition: i32,
        leader: NodeId,
        leader_epoch: i32,
    ) -> Result<(), MetadataError> {
        if !self.unclean_allowed(topic) {
            return Err(MetadataError::UncleanElectionDisabled(topic.to_string()));
        }
        let p = self.partition_mut(topic, partition)?;
        if leader_epoch != p.leader_epoch + 1 {
            return Err(MetadataError::StaleLeaderEpoch { current: p.leader_epoch, got: leader_epoch });
        }
        check_isr(p, leader, &[leader])?;
        p.leader = leader;
        p.leader_epoch = leader_epoch;
        p.isr = vec![leader];
        p.handover = None;
        Ok(())
    }

    /// Whether the topic lets an out-of-sync replica lead when no in-sync one is alive
    /// (`unclean.leader.election.enable`; off unless the topic turns it on).
    pub fn unclean_allowed(&self, topic: &str) -> bool {
        self.topics
            .get(topic)
            .and_then(|t| t.configs.get("unclean.leader.election.enable"))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// See [`MetadataCommand::BeginHandover`]: refused in another epoch, or when `to` is the
    /// leader or not in sync.
    pub(super) fn begin_handover(
        &mut self,
        topic: &str,
        partition: i32,
        to: NodeId,
        leader_epoch: i32,
    ) -> Result<(), MetadataError> {
        let p = self.partition_mut(topic, partition)?;
        if leader_epoch != p.leader_epoch {
            return Err(MetadataError::StaleLeaderEpoch { current: p.leader_epoch, got: leader_epoch });
        }
        if to == p.leader || !p.isr.contains(&to) {
            return Err(MetadataError::InvalidIsr { isr: vec![to], replicas: p.replicas.clone() });
        }
        p.handover = Some(super::Handover { to, leader_epoch });
        Ok(())
    }

    /// A new replica list. Refused when it drops the leader, names a non-voter or a replica
    /// twice, or drops in-sync replicas so that fewer than `min.insync.replicas` (at least one)
    /// remain in sync. Adding replicas is always allowed: it cannot weaken anything, and an
    /// under-replicated partition heals that way.
    pub(super) fn reassign(&mut self, topic: &str, partition: i32, replicas: &[NodeId]) -> Result<(), MetadataError> {
        let voters = self.voters.clone();
        let min_insync = self.min_insync_for(topic).max(1);
        let p = self.partition_mut(topic, partition)?;
        let unique: BTreeSet<NodeId> = replicas.iter().copied().collect();
        if unique.len() != replicas.len() || !unique.is_subset(&voters) {
            return Err(MetadataError::InvalidIsr { isr: replicas.to_vec(), replicas: p.replicas.clone() });
        }
        let unsafe_step =
            |reason: String| MetadataError::UnsafeReassignment { topic: topic.to_string(), partition, reason };
        if !unique.contains(&p.leader) {
            return Err(unsafe_step(format!("it drops the current leader {}", p.leader)));
        }
        let kept: Vec<NodeId> = p.isr.iter().copied().filter(|id| unique.contains(id)).collect();
        if kept.len() < p.isr.len() && kept.len() < usize::try_from(min_insync).unwrap_or(1) {
            return Err(unsafe_step(format!(
                "it would leave {} in-sync replica(s) {kept:?}, below min.insync.replicas {min_insync}",
                kept.len()
            )));
        }
        p.isr = kept;
        p.replicas = replicas.to_vec();
        if let Some(placement) = p.placement.as_mut().filter(|pl| same_replicas(&pl.replicas, replicas)) {
            placement.reassigning_from = None;
        }
        Ok(())
    }

    /// See [`MetadataCommand::AlterReassignment`]. A new target while one is under way keeps
    /// the replicas the first one started from, as Kafka does; a cancellation becomes a move
    /// from where the partition is now back to them.
    pub(super) fn alter_reassignment(
        &mut self,
        topic: &str,
        partition: i32,
        replicas: Option<&[NodeId]>,
        keep_replication_factor: bool,
    ) -> Result<(), MetadataError> {
        if let Some(replicas) = replicas {
            self.check_replica_list(topic, partition, replicas)?;
        }
        let p = self.partition_mut(topic, partition)?;
        let started_from = p.placement.as_ref().and_then(|pl| pl.reassigning_from.clone());
        let (target, from) = match (replicas, started_from) {
            (Some(target), from) => {
                let from = from.unwrap_or_else(|| p.replicas.clone());
                if keep_replication_factor && target.len() != from.len() {
                    let (topic, from, to) = (topic.to_string(), from.len(), target.len());
                    return Err(MetadataError::ReplicationFactorChange { topic, partition, from, to });
                }
                (target.to_vec(), from)
            }
            (None, Some(original)) => (original, p.replicas.clone()),
            (None, None) => {
                return Err(MetadataError::NoReassignmentInProgress { topic: topic.to_string(), partition });
            }
        };
        if same_replicas(&target, &p.replicas) {
            // Only the order changes: nothing to copy or drop, so it takes effect now.
            p.replicas.clone_from(&target);
            p.placement = Some(Placement { replicas: target, reassigning_from: None });
        } else {
            p.placement = Some(Placement { replicas: target, reassigning_from: Some(from) });
        }
        Ok(())
    }

    /// Records a broker's new incarnation; see [`MetadataCommand::RegisterBroker`]. Nodes that
    /// are not members are ignored (they lead nothing), and so is a repeated registration.
    pub(super) fn register_broker(&mut self, node: NodeId, incarnation: u64, clean_shutdown: bool) {
        if !self.nodes.contains_key(&node) || self.incarnations.get(&node) == Some(&incarnation) {
            return;
        }
        self.incarnations.insert(node, incarnation);
        let hosted = self.topics.values_mut().flat_map(|t| t.partitions.iter_mut());
        for p in hosted.filter(|p| p.replicas.contains(&node)) {
            let bumped = !clean_shutdown && leave_isr(p, node);
            if p.leader == node && !bumped {
                p.leader_epoch += 1;
            }
        }
    }

    /// See [`MetadataCommand::ReplicaOffline`]. A node that is no replica changes nothing.
    pub(super) fn replica_offline(&mut self, topic: &str, partition: i32, node: NodeId) -> Result<(), MetadataError> {
        let p = self.partition_mut(topic, partition)?;
        if p.replicas.contains(&node) {
            leave_isr(p, node);
        }
        Ok(())
    }
}

/// Takes `node` out of the partition's ISR, unless it is the last member (the only copy known
/// to hold every committed record must stay electable). A leader that leaves hands over to the
/// first remaining in-sync replica in replica order, one epoch up. Returns whether the epoch
/// changed.
fn leave_isr(p: &mut PartitionMeta, node: NodeId) -> bool {
    let others: Vec<NodeId> = p.isr.iter().copied().filter(|&id| id != node).collect();
    if others.len() == p.isr.len() || others.is_empty() {
        return false;
    }
    p.isr = others;
    if p.leader != node {
        return false;
    }
    if let Some(&next) = p.replicas.iter().find(|id| p.isr.contains(id)) {
        p.leader = next;
    }
    p.leader_epoch += 1;
    true
}

/// An ISR must hold the leader and only replicas.
fn check_isr(p: &PartitionMeta, leader: NodeId, isr: &[NodeId]) -> Result<(), MetadataError> {
    if isr.contains(&leader) && isr.iter().all(|id| p.replicas.contains(id)) {
        return Ok(());
    }
    Err(MetadataError::InvalidIsr { isr: isr.to_vec(), replicas: p.replicas.clone() })
}

/// The elections the controller proposes when `fenced` brokers stopped answering: every
/// partition led by one of them gets the first live ISR member (in replica order) as leader,
/// one epoch up. With no live ISR member, a topic with `unclean.leader.election.enable` gets its
/// first live out-of-sync replica (an unclean election); any other keeps its leader and waits.
pub fn elect_leaders(metadata: &ClusterMetadata, fenced: &BTreeSet<NodeId>) -> Vec<MetadataCommand> {
    let mut out = Vec::new();
    for topic in metadata.topics.values() {
        let unclean = metadata.unclean_allowed(&topic.name);
        for p in topic.partitions.iter().filter(|p| fenced.contains(&p.leader)) {
            out.extend(replacement(metadata, &topic.name, p, fenced, unclean));
        }
    }
    out
}

/// The ISR shrinks the controller proposes for `fenced` brokers that follow (KIP-841): each
/// leaves the ISR of every partition a live broker leads, so acks=all writes stop waiting for it
/// at the session timeout instead of the leader's lag bound, and it must fetch again to rejoin.
/// The partitions a fenced broker leads are `elect_leaders`' (their new ISR leaves it out).
pub fn drop_fenced_from_isrs(metadata: &ClusterMetadata, fenced: &BTreeSet<NodeId>) -> Vec<MetadataCommand> {
    let mut out = Vec::new();
    for topic in metadata.topics.values() {
        for p in topic.partitions.iter().filter(|p| !fenced.contains(&p.leader)) {
            if p.isr.iter().any(|id| fenced.contains(id)) {
                out.push(MetadataCommand::UpdateIsr {
                    topic: topic.name.clone(),
                    partition: p.partition,
                    leader_epoch: p.leader_epoch,
                    isr: p.isr.iter().copied().filter(|id| !fenced.contains(id)).collect(),
                });
            }
        }
    }
    out
}

/// The election that replaces a fenced leader: the first live in-sync replica, else, when
/// `unclean` allows it, the first out-of-sync replica that runs a registered process.
fn replacement(
    metadata: &ClusterMetadata,
    topic: &str,
    p: &PartitionMeta,
    fenced: &BTreeSet<NodeId>,
    unclean: bool,
) -> Option<MetadataCommand> {
    let (topic, partition, leader_epoch) = (topic.to_string(), p.partition, p.leader_epoch + 1);
    let isr: Vec<NodeId> = p.isr.iter().copied().filter(|id| !fenced.contains(id)).collect();
    if let Some(leader) = p.replicas.iter().copied().find(|id| isr.contains(id)) {
        return Some(MetadataCommand::ElectLeader { topic, partition, leader, leader_epoch, isr });
    }
    let live = |id: &NodeId| !fenced.contains(id) && metadata.incarnations.contains_key(id);
    let leader = p.replicas.iter().copied().find(live).filter(|_| unclean)?;
    Some(MetadataCommand::ElectUncleanLeader { topic, partition, leader, leader_epoch })
}

/// Why an operator's election (Kafka's ElectLeaders) changes nothing for a partition; each is
/// one of Kafka's error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionRefusal {
    /// No such topic or partition (UNKNOWN_TOPIC_OR_PARTITION).
    UnknownPartition,
    /// The partition already has the leader asked for (ELECTION_NOT_NEEDED).
    NotNeeded,
    /// The preferred replica is not in sync, not registered or being drained
    /// (PREFERRED_LEADER_NOT_AVAILABLE).
    PreferredNotAvailable,
    /// The leader is fenced, no in-sync replica is alive, and the topic does not allow an
    /// unclean election (ELIGIBLE_LEADERS_NOT_AVAILABLE).
    UncleanDisabled,
    /// The leader is fenced and no replica at all is alive (ELIGIBLE_LEADERS_NOT_AVAILABLE).
    NoLiveReplica,
}

/// An operator's election for one partition, as Kafka's controller decides it. Preferred: the
/// first replica takes over when it is not the leader, is in sync, runs a registered process and
/// is not being drained; one epoch up, the ISR unchanged. Unclean (KIP-460): not needed while
/// the leader answers (it is always in sync); otherwise the first live in-sync replica takes
/// over, else a live out-of-sync one if the topic allows it. `fenced` is the controller's view.
pub fn operator_election(
    metadata: &ClusterMetadata,
    topic: &str,
    partition: i32,
    unclean: bool,
    fenced: &BTreeSet<NodeId>,
) -> Result<MetadataCommand, ElectionRefusal> {
    let p = metadata.partition(topic, partition).ok_or(ElectionRefusal::UnknownPartition)?;
    if unclean {
        if !fenced.contains(&p.leader) {
            return Err(ElectionRefusal::NotNeeded);
        }
        let allowed = metadata.unclean_allowed(topic);
        return replacement(metadata, topic, p, fenced, allowed).ok_or(if allowed {
            ElectionRefusal::NoLiveReplica
        } else {
            ElectionRefusal::UncleanDisabled
        });
    }
    let preferred = *p.replicas.first().ok_or(ElectionRefusal::PreferredNotAvailable)?;
    if preferred == p.leader {
        return Err(ElectionRefusal::NotNeeded);
    }
    let active = metadata.incarnations.contains_key(&preferred) && !metadata.draining.contains(&preferred);
    if !active || !p.isr.contains(&preferred) {
        return Err(ElectionRefusal::PreferredNotAvailable);
    }
    Ok(MetadataCommand::ElectLeader {
        topic: topic.to_string(),
        partition,
        leader: preferred,
        leader_epoch: p.leader_epoch + 1,
        isr: p.isr.clone(),
    })
}
