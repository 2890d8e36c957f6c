//! `RebalancerActor`: on the Raft leader only. When the voters change (and every 30 s) it plans
//! the target assignment (`chronik::cluster::plan`, round-robin over the sorted voters with
//! minimal movement) and drives each move safely: add the new replicas (current ∪ target) →
//! wait until they are in the ISR → move leadership only if the leader leaves, to a target
//! replica already in sync → drop the old replicas (their nodes delete the data).
//!
//! Each step is decided afresh from the metadata as it is (`chronik::cluster::next_step`), so a
//! leader fenced or an ISR shrunk mid-move changes the next step instead of stranding the move.
//! A plan belongs to the Raft leadership it was made under: every step is proposed as `AsLeader`
//! with that term and this node's id, so a deposed leader that wakes up cannot apply its old
//! plan, and the rebalancer drops its plan as soon as the term changes.
//!
//! A draining node (`cluster remove-node`) is left out of the plan, so its replicas move to the
//! other voters like any other move; once it holds none, the rebalancer asks the RaftActor to
//! take it out of the voters.
//!
//! Moves run together up to `rebalance_max_concurrent_moves` copies onto any one node (the copy
//! rate itself is bounded by `rebalance_max_bytes_per_sec` on the receiving node), and every step
//! that is ready in one pass is proposed in one Raft entry, so a plan of thousands of small
//! partitions costs a few entries per pass instead of three round trips per partition.
//!
//! `rebalance_leaders_delay_ms` after a plan's replicas are in place, leadership is spread
//! (`chronik::cluster::spread_leaders`, unless `rebalance_leaders` is off): a node that just
//! joined leads its share, so producers gain its capacity. It is a phase of its own, later, as
//! Kafka's leader-imbalance rebalancing is: every leadership move costs clients a retry, and the
//! node addition itself should cost them nothing. A leader changes only by graceful handover to
//! an in-sync replica, one epoch up, which then also becomes the preferred (first) replica.
//! At most `rebalance_max_concurrent_leader_moves` handovers run at once: each one refuses its
//! partition's writes for a moment, and thousands at once would also take every node's CPU.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronik::cluster::{ClusterMetadata, MetadataCommand, MoveStep, PartitionTarget, next_step, plan, requested};
use chronik::config::NodeId;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{info, warn};

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration};
use crate::handlers::apply_metadata;

mod leaders;
mod status;

pub use leaders::{LeaderChange, LeaderPhase};
pub use status::{Move, Origin, Phase, RebalanceStatus};

/// How often moves are advanced. A move waits for a tick between some of its steps (its new
/// replica seen in the ISR, its last step seen done), so at 500 ms a small partition's move took
/// about 1.2 s and the moves under way advanced in bursts; a tenth of a second spreads that work
/// over the copy phase.
const TICK: Duration = Duration::from_millis(100);
/// How often the assignment is re-planned without a membership change.
const REPLAN: Duration = Duration::from_secs(30);

/// The rebalancer's mailbox.
pub enum RebalancerMsg {
    /// Timer: plan if needed, advance the moves.
    Tick,
    /// From a proposal task: the steps proposed together were applied (or refused).
    StepsDone {
        /// Each step and whether the metadata took all of its commands.
        results: Vec<(Step, bool)>,
    },
    /// From a removal task: the drained node left the voters, or why not (tried again later).
    Removed {
        /// The drained node.
        node: NodeId,
        /// Done, or why not.
        result: Result<(), String>,
    },
}

/// What a proposal advances.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// A step of this partition's replica move.
    Replicas((String, i32)),
    /// This partition's leadership change.
    Leader((String, i32)),
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct RebalancerArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The rebalancer's state.
pub struct RebalancerState {
    /// The placement nodes (voters not draining) last seen, to notice membership changes.
    seen: Vec<NodeId>,
    /// The placement nodes the current plan was made for.
    planned_for: Vec<NodeId>,
    /// The Raft term this node led in when it made the current plan.
    planned_term: u64,
    /// The placement nodes changed since the last plan; plan again once the moves are done.
    replan: bool,
    /// Drained nodes whose removal from the voters is in flight.
    removing: std::collections::BTreeSet<NodeId>,
    /// When the assignment was last planned.
    planned_at: Option<Instant>,
    /// Plans made so far (`/admin/rebalance`).
    plans: u64,
    /// The size of the last plan, once done (`/admin/rebalance`'s `moves_done`).
    moves_done: usize,
    /// The moves of the current plan, by partition.
    moves: BTreeMap<(String, i32), Move>,
    /// The leadership changes planned once every move was done, by partition.
    leaders: BTreeMap<(String, i32), LeaderChange>,
    /// When the leadership spread that follows a finished plan is due.
    leaders_due: Option<Instant>,
    /// Steps with a proposal in flight.
    in_flight: std::collections::BTreeSet<Step>,
    /// Graceful handovers asked for, by partition: the leader epoch they were asked in and when.
    handovers: BTreeMap<(String, i32), (i32, Instant)>,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct RebalancerActor;

impl Actor for RebalancerActor {
    type Msg = RebalancerMsg;
    type State = RebalancerState;
    type Arguments = RebalancerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RebalancerMsg>,
        args: RebalancerArgs,
    ) -> Result<RebalancerState, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "rebalancer".into(),
            "RebalancerActor",
            args.restarts,
            MailboxGauge::default(),
        );
        myself.send_interval(TICK, || RebalancerMsg::Tick);
        info!("✓ Partition Rebalancer started");
        Ok(RebalancerState {
            seen: Vec::new(),
            planned_for: Vec::new(),
            planned_term: 0,
            replan: false,
            removing: Default::default(),
            planned_at: None,
            plans: 0,
            moves_done: 0,
            moves: BTreeMap::new(),
            leaders: BTreeMap::new(),
            leaders_due: None,
            in_flight: Default::default(),
            handovers: BTreeMap::new(),
            ctx,
            registration,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RebalancerMsg>,
        msg: RebalancerMsg,
        state: &mut RebalancerState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            RebalancerMsg::Tick => state.tick(&myself),
            RebalancerMsg::StepsDone { results } => {
                let mut applied = Vec::new();
                for (step, ok) in results {
                    state.in_flight.remove(&step);
                    if ok {
                        applied.push(step);
                    } else {
                        // Re-read the metadata on the next tick and try the step again.
                        warn!(?step, "rebalance step not applied; retrying");
                    }
                }
                // The steps are applied here already: take the next ones without waiting a tick.
                let metadata = state.ctx.metadata();
                let next = applied.into_iter().filter_map(|step| state.advance(&metadata, step)).collect();
                state.propose(&myself, next);
            }
            RebalancerMsg::Removed { node, result } => {
                state.removing.remove(&node);
                if let Err(e) = result {
                    warn!(node, error = %e, "removing the drained node from the voters failed; retrying");
                }
            }
        }
        state.publish();
        Ok(())
    }
}

impl RebalancerState {
    fn tick(&mut self, myself: &ActorRef<RebalancerMsg>) {
        let me = self.ctx.config.node_id;
        let view = self.ctx.cluster.borrow().clone();
        if view.leader != Some(me) || (self.planned_at.is_some() && view.term != self.planned_term) {
            // The next Raft leader (or this one, in its new term) plans from the metadata, where
            // half-done moves show as replica sets that still differ from the target.
            self.clear_plan();
            self.planned_at = None;
            self.seen.clear();
            self.planned_for.clear();
            return;
        }
        self.planned_term = view.term;
        let metadata = self.ctx.metadata();
        let placement = metadata.placement_nodes();
        if !self.seen.is_empty() && placement != self.seen {
            info!("Cluster membership changed: {} → {} nodes - triggering rebalance", self.seen.len(), placement.len());
            self.replan = true;
            // The current plan may wait on a node that is now leaving (or dead and being removed);
            // the new plan starts from the metadata as it is, half-done moves included. Safety
            // does not depend on the plan: old replicas are dropped only once every target
            // replica is in the ISR.
            if !self.moves.is_empty() {
                info!(moves = self.moves.len(), "re-planning unfinished moves for the new membership");
                self.clear_plan();
            }
        }
        self.seen = placement;
        let due = self.planned_at.is_none_or(|t| t.elapsed() >= REPLAN);
        if self.moves.is_empty() && self.leaders.is_empty() && (self.replan || due) {
            self.replan = false;
            let first_in_term = self.planned_at.is_none();
            self.plan(&metadata);
            if first_in_term && self.moves.is_empty() {
                // The previous Raft leader may have died with the spread due or under way; its
                // plan died with it, so this one spreads what is left, after the same delay.
                self.schedule_leader_spread_if_uneven(&metadata);
            }
        }
        self.adopt_requested(&metadata);
        if !metadata.rebalance_paused {
            self.start_queued();
        }
        let mut steps: Vec<Step> = self.moves.keys().cloned().map(Step::Replicas).collect();
        steps.extend(self.leaders.keys().cloned().map(Step::Leader));
        let mut ready: Vec<_> = steps.into_iter().filter_map(|step| self.advance(&metadata, step)).collect();
        if !metadata.rebalance_paused {
            // After the pass, so the changes it found done make room in this same tick.
            for key in self.start_queued_leaders() {
                ready.extend(self.advance(&metadata, Step::Leader(key)));
            }
        }
        self.propose(myself, ready);
        if !self.moves.is_empty() && self.moves.values().all(|m| m.phase == Phase::Done) {
            info!(moves = self.moves.len(), "✓ Rebalancing complete");
            self.moves_done = self.moves.len();
            self.moves.clear();
            let delay = Duration::from_millis(self.ctx.config.replication.rebalance_leaders_delay_ms);
            if self.ctx.config.replication.rebalance_leaders {
                self.leaders_due = Some(Instant::now() + delay);
            }
        }
        let spread_due = self.leaders_due.is_some_and(|at| Instant::now() >= at);
        if self.moves.is_empty() && spread_due && !metadata.rebalance_paused {
            // Planned from the metadata as it is then, every replica in place; starts next pass.
            self.leaders_due = None;
            self.plan_leaders(&metadata);
        }
        if !self.leaders.is_empty() && self.leaders.values().all(|l| l.phase == LeaderPhase::Done) {
            info!(partitions = self.leaders.len(), "✓ Partition leadership spread");
            self.leaders.clear();
            self.handovers.clear();
        }
        if self.moves.is_empty() && !metadata.rebalance_paused {
            self.remove_drained(myself, &metadata);
        }
    }

    /// Forgets the current plan: its moves and leadership changes.
    fn clear_plan(&mut self) {
        self.moves.clear();
        self.leaders.clear();
        self.leaders_due = None;
        self.handovers.clear();
    }

    /// Starts queued moves, in partition order, while each node they copy onto has fewer than
    /// the configured number of copies under way.
    fn start_queued(&mut self) {
        let limit = self.ctx.config.replication.rebalance_max_concurrent_moves.max(1);
        let added = |m: &Move| m.to.iter().copied().filter(|id| !m.from.contains(id)).collect::<Vec<NodeId>>();
        let mut copying: BTreeMap<NodeId, usize> = BTreeMap::new();
        for m in self.moves.values().filter(|m| !matches!(m.phase, Phase::Queued | Phase::Done)) {
            for id in added(m) {
                *copying.entry(id).or_default() += 1;
            }
        }
        for m in self.moves.values_mut().filter(|m| m.phase == Phase::Queued) {
            let onto = added(m);
            if onto.iter().all(|id| copying.get(id).copied().unwrap_or(0) < limit) {
                for id in onto {
                    *copying.entry(id).or_default() += 1;
                }
                m.phase = Phase::Adding;
            }
        }
    }

    /// Takes every draining node that holds no replica any more out of the voters.
    fn remove_drained(&mut self, myself: &ActorRef<RebalancerMsg>, metadata: &ClusterMetadata) {
        let Some(raft) = self.ctx.raft_actor.get() else { return };
        for &node in metadata.draining.iter().filter(|&&id| !metadata.holds_replicas(id)) {
            if !self.removing.insert(node) {
                continue;
            }
            let (raft, me) = (raft.clone(), myself.clone());
            tokio::spawn(async move {
                let msg = |reply| crate::raft::RaftMsg::RemoveVoter { node, reply };
                let result = match raft.call(msg, Duration::from_secs(60)).await {
                    Ok(ractor::rpc::CallResult::Success(result)) => result,
                    _ => Err("the Raft node did not answer in time".into()),
                };
                let _ = me.cast(RebalancerMsg::Removed { node, result });
            });
        }
    }

    fn plan(&mut self, metadata: &ClusterMetadata) {
        self.planned_at = Some(Instant::now());
        self.plans += 1;
        self.moves_done = 0;
        self.planned_for = self.seen.clone();
        let targets = plan(metadata);
        if targets.is_empty() {
            return;
        }
        let mut topics: Vec<&str> = targets.iter().map(|t| t.topic.as_str()).collect();
        topics.dedup();
        for topic in topics {
            info!("Rebalancing topic '{topic}' across {} nodes", self.planned_for.len());
        }
        for t in targets {
            info!(
                "Proposed new assignment topic={} partition={} replicas={:?} (was {:?})",
                t.topic, t.partition, t.target, t.current
            );
            self.insert_move(t, Origin::Rebalancer);
        }
    }

    /// Takes on the operators' reassignments as soon as they are in the metadata, whatever the
    /// plan is doing: a new one queues, a changed target replaces the move's (the next step is
    /// decided from the metadata anyway, so a move can change course at any phase). A queued
    /// move whose placement changed since is dropped first, so a reassignment cancelled before
    /// it started leaves the partition where it is instead of being carried out.
    fn adopt_requested(&mut self, metadata: &ClusterMetadata) {
        self.moves.retain(|(topic, partition), m| {
            let placed = metadata.partition(topic, *partition).and_then(|p| p.placement.as_ref());
            !(m.origin == Origin::Operator && m.phase == Phase::Queued && placed.is_some_and(|pl| pl.replicas != m.to))
        });
        for t in requested(metadata) {
            let key = (t.topic.clone(), t.partition);
            if self.moves.get(&key).is_some_and(|m| m.to == t.target && m.phase != Phase::Done) {
                continue;
            }
            info!(
                "Operator reassignment topic={} partition={} replicas={:?} (was {:?})",
                t.topic, t.partition, t.target, t.current
            );
            self.insert_move(t, Origin::Operator);
        }
    }

    /// Adds (or replaces) a partition's move; it starts queued unless it was already copying.
    fn insert_move(&mut self, t: PartitionTarget, origin: Origin) {
        let key = (t.topic.clone(), t.partition);
        let phase = match self.moves.get(&key).map(|m| m.phase) {
            Some(Phase::Queued | Phase::Done) | None => Phase::Queued,
            Some(_) => Phase::Adding,
        };
        let (topic, partition) = (t.topic, t.partition);
        self.moves.insert(key, Move { topic, partition, from: t.current, to: t.target, phase, origin });
    }

    /// The commands that take `step` forward when its condition holds (its phase updated), or
    /// `None` when it waits, is done or has a proposal in flight.
    fn advance(&mut self, metadata: &ClusterMetadata, step: Step) -> Option<(Step, Vec<MetadataCommand>)> {
        // Paused: the moves hold where they are (every phase is a safe place to stop).
        if self.in_flight.contains(&step) || metadata.rebalance_paused {
            return None;
        }
        let command = match &step {
            Step::Replicas(key) => self.advance_move(metadata, key)?,
            Step::Leader(key) => self.advance_leader(metadata, key)?,
        };
        Some((step, command))
    }

    /// The next step of one partition's replica move.
    fn advance_move(&mut self, metadata: &ClusterMetadata, key: &(String, i32)) -> Option<Vec<MetadataCommand>> {
        let m = self.moves.get_mut(key)?;
        if matches!(m.phase, Phase::Queued | Phase::Done) {
            return None;
        }
        let Some(p) = metadata.partition(&key.0, key.1) else {
            // The topic was deleted meanwhile.
            m.phase = Phase::Done;
            return None;
        };
        let (topic, partition) = key.clone();
        let command = match next_step(&m.to, p) {
            MoveStep::Add(replicas) => {
                m.phase = Phase::Adding;
                MetadataCommand::ReassignPartition { topic, partition, replicas }
            }
            MoveStep::CatchUp => {
                m.phase = Phase::CatchingUp;
                return None;
            }
            MoveStep::MoveLeader(leader) => {
                m.phase = Phase::MovingLeader;
                // The leader hands over to a target replica in sync, which then holds every
                // record; clients' retries find it from the error or their next metadata.
                return self.leadership_command(key, p, leader).map(|c| vec![c]);
            }
            MoveStep::Remove(replicas) => {
                m.phase = Phase::Removing;
                // An operator's list is kept in its order (its first replica is the preferred
                // leader, whoever leads now); the rebalancer's keeps the leader first.
                let replicas = if m.origin == Origin::Operator { m.to.clone() } else { replicas };
                MetadataCommand::ReassignPartition { topic, partition, replicas }
            }
            MoveStep::Done if m.origin == Origin::Operator && p.replicas != m.to => {
                // In place, but not in the operator's order (a move that only added replicas):
                // the same set reordered, which is always safe.
                m.phase = Phase::Removing;
                MetadataCommand::ReassignPartition { topic, partition, replicas: m.to.clone() }
            }
            MoveStep::Done => {
                m.phase = Phase::Done;
                info!(topic = %key.0, partition = key.1, replicas = ?p.replicas, "partition moved");
                return None;
            }
        };
        Some(vec![command])
    }

    /// Proposes the steps in one Raft entry, each as `AsLeader` in the plan's term.
    fn propose(&mut self, myself: &ActorRef<RebalancerMsg>, steps: Vec<(Step, Vec<MetadataCommand>)>) {
        if steps.is_empty() {
            return;
        }
        let term = self.planned_term;
        let mut sizes = Vec::with_capacity(steps.len());
        let mut commands = Vec::new();
        for (step, step_commands) in steps {
            self.in_flight.insert(step.clone());
            sizes.push((step, step_commands.len()));
            commands.extend(step_commands.into_iter().map(|c| MetadataCommand::AsLeader {
                term,
                leader: Some(self.ctx.config.node_id),
                command: Box::new(c),
            }));
        }
        let (ctx, me) = (self.ctx.clone(), myself.clone());
        let debug = &self.ctx.config.debug;
        let delay = Duration::from_millis(if debug.fail_points { debug.rebalance_step_delay_ms } else { 0 });
        tokio::spawn(async move {
            // The fail point holds the steps, decided from the metadata as it was, so a test can
            // change the metadata under them: the state machine must refuse what became unsafe.
            tokio::time::sleep(delay).await;
            let mut outcomes = apply_metadata(&ctx, commands).await.into_iter();
            let results = sizes
                .into_iter()
                .map(|(step, n)| {
                    let ok = outcomes.by_ref().take(n).fold(n > 0, |ok, r| ok && r.is_ok());
                    (step, ok)
                })
                .collect();
            let _ = me.cast(RebalancerMsg::StepsDone { results });
        });
    }
}
