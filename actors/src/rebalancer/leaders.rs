//! The rebalancer's leadership changes: the spread that follows a plan's moves (queued, at most
//! `rebalance_max_concurrent_leader_moves` under way), and the graceful handover every
//! leadership move is, the spread's and a replica move's whose leader leaves.

use std::time::{Duration, Instant};

use chronik::cluster::{ClusterMetadata, LeaderMove, MetadataCommand, PartitionMeta, spread_leaders};
use chronik::config::NodeId;
use serde::Serialize;
use tracing::{info, warn};

use super::RebalancerState;

/// How long a leadership change waits for its target to be in sync before it is given up (the
/// next plan tries again).
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// How long a graceful handover may take before the rebalancer elects the target directly
/// (still only an in-sync replica: safe for acks=all, though acks=1 writes the target had not
/// copied yet are lost, as in any failover).
const HANDOVER_FALLBACK: Duration = Duration::from_secs(10);

/// Where one leadership change of the spread stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderPhase {
    /// Waiting for its turn: at most `rebalance_max_concurrent_leader_moves` handovers run at
    /// once, so the retries they cost clients are spread out instead of landing together.
    Queued,
    /// Waiting for the target replica to be in sync.
    Waiting,
    /// The change is being proposed.
    Moving,
    /// The target leads (or the change was overtaken and given up).
    Done,
}

/// One leadership change, as `/admin/rebalance` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LeaderChange {
    /// What changes.
    #[serde(flatten)]
    pub change: LeaderMove,
    /// Where it stands.
    pub phase: LeaderPhase,
    /// When its turn came, to give up on a target that never gets in sync.
    #[serde(skip)]
    pub since: Instant,
}

impl RebalancerState {
    /// Starts queued leadership changes, in partition order, while fewer than the configured
    /// number are under way; returns the ones started.
    pub(super) fn start_queued_leaders(&mut self) -> Vec<(String, i32)> {
        let limit = self.ctx.config.replication.rebalance_max_concurrent_leader_moves.max(1);
        let active = |l: &LeaderChange| matches!(l.phase, LeaderPhase::Waiting | LeaderPhase::Moving);
        let running = self.leaders.values().filter(|l| active(l)).count();
        let queued = self.leaders.iter_mut().filter(|(_, l)| l.phase == LeaderPhase::Queued);
        let mut started = Vec::new();
        for (key, l) in queued.take(limit.saturating_sub(running)) {
            l.phase = LeaderPhase::Waiting;
            l.since = Instant::now();
            started.push(key.clone());
        }
        started
    }

    /// Makes the leadership spread due `rebalance_leaders_delay_ms` from now if one would change
    /// any leader (and spreading is on, and none is due yet).
    pub(super) fn schedule_leader_spread_if_uneven(&mut self, metadata: &ClusterMetadata) {
        let r = &self.ctx.config.replication;
        if r.rebalance_leaders && self.leaders_due.is_none() && !spread_leaders(metadata).is_empty() {
            info!("partition leadership is uneven: spreading it in {} ms", r.rebalance_leaders_delay_ms);
            self.leaders_due = Some(Instant::now() + Duration::from_millis(r.rebalance_leaders_delay_ms));
        }
    }

    /// Plans the leadership spread that follows a plan's moves.
    pub(super) fn plan_leaders(&mut self, metadata: &ClusterMetadata) {
        let changes = spread_leaders(metadata);
        if changes.is_empty() {
            return;
        }
        info!(partitions = changes.len(), "Spreading partition leadership across {} nodes", self.planned_for.len());
        let since = Instant::now();
        for change in changes {
            let key = (change.topic.clone(), change.partition);
            self.leaders.insert(key, LeaderChange { change, phase: LeaderPhase::Queued, since });
        }
    }

    /// The next step of one partition's leadership change: once the target is in sync, it
    /// becomes the first replica and the leader is asked to hand over to it (one Raft entry).
    pub(super) fn advance_leader(
        &mut self,
        metadata: &ClusterMetadata,
        key: &(String, i32),
    ) -> Option<Vec<MetadataCommand>> {
        let l = self.leaders.get_mut(key)?;
        if matches!(l.phase, LeaderPhase::Queued | LeaderPhase::Done) {
            return None;
        }
        let to = l.change.to;
        let Some(p) = metadata.partition(&key.0, key.1) else {
            l.phase = LeaderPhase::Done;
            return None;
        };
        if p.leader == to {
            l.phase = LeaderPhase::Done;
            info!(topic = %key.0, partition = key.1, leader = to, epoch = p.leader_epoch, "partition leadership spread");
            return None;
        }
        let waited_out = l.since.elapsed() >= LEADER_WAIT;
        if p.leader != l.change.from || !p.replicas.contains(&to) || waited_out {
            // Overtaken (a failover or an operator moved it) or the target never got in sync:
            // the next plan decides afresh.
            warn!(topic = %key.0, partition = key.1, leader = p.leader, to, "leadership change given up");
            l.phase = LeaderPhase::Done;
            return None;
        }
        if !p.isr.contains(&to) {
            l.phase = LeaderPhase::Waiting;
            return None;
        }
        l.phase = LeaderPhase::Moving;
        let (topic, partition) = key.clone();
        let mut commands = Vec::new();
        if p.replicas.first() != Some(&to) {
            let replicas = chronik::cluster::order_keeping_leader(&p.replicas, to);
            commands.push(MetadataCommand::ReassignPartition { topic, partition, replicas });
        }
        commands.extend(self.leadership_command(key, p, to));
        Some(commands).filter(|c| !c.is_empty())
    }

    /// The command that moves `p`'s leadership to its in-sync replica `to`: a graceful handover
    /// first (the leader itself elects `to` once it holds everything); the election directly
    /// if the handover has not happened within [`HANDOVER_FALLBACK`]; `None` while it runs.
    pub(super) fn leadership_command(
        &mut self,
        key: &(String, i32),
        p: &PartitionMeta,
        to: NodeId,
    ) -> Option<MetadataCommand> {
        let (topic, partition) = key.clone();
        let asked = p.handover.is_some_and(|h| h.to == to && h.leader_epoch == p.leader_epoch);
        let timed = self.handovers.get(key).filter(|(epoch, _)| *epoch == p.leader_epoch).map(|(_, at)| at.elapsed());
        match (asked, timed) {
            (true, Some(waited)) if waited < HANDOVER_FALLBACK => None,
            (true, Some(_)) => {
                warn!(%topic, partition, from = p.leader, to, "handover did not happen in time; moving leadership directly");
                let (leader_epoch, isr) = (p.leader_epoch + 1, p.isr.clone());
                Some(MetadataCommand::ElectLeader { topic, partition, leader: to, leader_epoch, isr })
            }
            (true, None) => {
                // Asked by an earlier plan or Raft leader: time it from now.
                self.handovers.insert(key.clone(), (p.leader_epoch, Instant::now()));
                None
            }
            (false, _) => {
                info!(%topic, partition, from = p.leader, to, "moving partition leadership");
                self.handovers.insert(key.clone(), (p.leader_epoch, Instant::now()));
                Some(MetadataCommand::BeginHandover { topic, partition, to, leader_epoch: p.leader_epoch })
            }
        }
    }
}
