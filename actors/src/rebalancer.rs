//! `RebalancerActor`: on the Raft leader only. When the voters change (and every 30 s) it plans
//! the target assignment (`chronik::cluster::plan`, round-robin over the sorted voters with
//! minimal movement) and drives each move safely: add the new replicas (current ∪ target) →
//! wait until they are in the ISR → move leadership only if the leader leaves, to a target
//! replica already in sync → drop the old replicas (their nodes delete the data).
//!
//! Each step is decided afresh from the metadata as it is (`chronik::cluster::next_step`), so a
//! leader fenced or an ISR shrunk mid-move changes the next step instead of stranding the move.
//! A plan belongs to the Raft term it was made in: every step is proposed as `AsLeader` with
//! that term, so a deposed leader that wakes up cannot apply its old plan, and the rebalancer
//! drops its plan as soon as the term changes.
//!
//! A draining node (`cluster remove-node`) is left out of the plan, so its replicas move to the
//! other voters like any other move; once it holds none, the rebalancer asks the RaftActor to
//! take it out of the voters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronik::cluster::{ClusterMetadata, MetadataCommand, MoveStep, next_step, plan};
use chronik::config::NodeId;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tracing::{info, warn};

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration};
use crate::handlers::apply_metadata;

/// How often moves are advanced.
const TICK: Duration = Duration::from_millis(500);
/// How often the assignment is re-planned without a membership change.
const REPLAN: Duration = Duration::from_secs(30);

/// Where one partition's move stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for its turn: at most `rebalance_max_concurrent_moves` partitions move at once,
    /// so the copies and metadata changes of a large plan do not pile up on the producers.
    Queued,
    /// The new replicas are being added next to the old ones.
    Adding,
    /// Waiting for the new replicas to catch up and join the ISR.
    CatchingUp,
    /// Leadership moves to a target replica (the leader leaves the replica set).
    MovingLeader,
    /// Dropping the replicas that are not in the target.
    Removing,
    /// The partition has its target replicas.
    Done,
}

/// One partition's move, as `/admin/rebalance` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The replicas when planned.
    pub from: Vec<NodeId>,
    /// The target replicas.
    pub to: Vec<NodeId>,
    /// Where it stands.
    pub phase: Phase,
}

/// `/admin/rebalance`: the current plan and its progress.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RebalanceStatus {
    /// Whether this node drives rebalancing (it is the Raft leader).
    pub active: bool,
    /// The nodes the last plan placed replicas on (the voters that are not draining).
    pub voters: Vec<NodeId>,
    /// Voters being drained before they leave the cluster.
    pub draining: Vec<NodeId>,
    /// Moves of the current plan (empty when balanced).
    pub moves: Vec<Move>,
    /// Whether every move is done.
    pub complete: bool,
    /// An operator paused rebalancing: moves hold in their current phase until resumed.
    pub paused: bool,
}

/// The rebalancer's mailbox.
pub enum RebalancerMsg {
    /// Timer: plan if needed, advance the moves.
    Tick,
    /// From a proposal task: the step for this partition was applied (or refused).
    StepDone {
        /// Which move.
        key: (String, i32),
        /// Whether the metadata took it.
        ok: bool,
    },
    /// From a removal task: the drained node left the voters, or why not (tried again later).
    Removed {
        /// The drained node.
        node: NodeId,
        /// Done, or why not.
        result: Result<(), String>,
    },
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
    /// The moves of the current plan, by partition.
    moves: BTreeMap<(String, i32), Move>,
    /// Partitions with a proposal in flight.
    in_flight: std::collections::BTreeSet<(String, i32)>,
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
            moves: BTreeMap::new(),
            in_flight: Default::default(),
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
            RebalancerMsg::StepDone { key, ok } => {
                state.in_flight.remove(&key);
                if ok {
                    // The step is applied here already: take the next one without waiting a tick.
                    let metadata = state.ctx.metadata();
                    state.advance(&myself, &metadata, key);
                } else {
                    // Re-read the metadata on the next tick and try the step again.
                    warn!(topic = %key.0, partition = key.1, "rebalance step not applied; retrying");
                }
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
            self.moves.clear();
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
                self.moves.clear();
            }
        }
        self.seen = placement;
        let due = self.planned_at.is_none_or(|t| t.elapsed() >= REPLAN);
        if self.moves.is_empty() && (self.replan || due) {
            self.replan = false;
            self.plan(&metadata);
        }
        if !metadata.rebalance_paused {
            self.start_queued();
        }
        let keys: Vec<(String, i32)> = self.moves.keys().cloned().collect();
        for key in keys {
            self.advance(myself, &metadata, key);
        }
        if !self.moves.is_empty() && self.moves.values().all(|m| m.phase == Phase::Done) {
            info!(moves = self.moves.len(), "✓ Rebalancing complete");
            self.moves.clear();
        }
        if self.moves.is_empty() && !metadata.rebalance_paused {
            self.remove_drained(myself, &metadata);
        }
    }

    /// Starts queued moves, in partition order, while fewer than the configured number move.
    fn start_queued(&mut self) {
        let limit = self.ctx.config.replication.rebalance_max_concurrent_moves.max(1);
        let moving = self.moves.values().filter(|m| !matches!(m.phase, Phase::Queued | Phase::Done)).count();
        let queued = self.moves.values_mut().filter(|m| m.phase == Phase::Queued);
        for m in queued.take(limit.saturating_sub(moving)) {
            m.phase = Phase::Adding;
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
            let key = (t.topic.clone(), t.partition);
            let phase = Phase::Queued;
            self.moves
                .insert(key, Move { topic: t.topic, partition: t.partition, from: t.current, to: t.target, phase });
        }
    }

    /// Moves one partition a step forward when its condition holds; one proposal at a time.
    fn advance(&mut self, myself: &ActorRef<RebalancerMsg>, metadata: &ClusterMetadata, key: (String, i32)) {
        if self.in_flight.contains(&key) {
            return;
        }
        // Paused: the moves hold where they are (every phase is a safe place to stop).
        if metadata.rebalance_paused {
            return;
        }
        let Some(m) = self.moves.get_mut(&key) else { return };
        if matches!(m.phase, Phase::Queued | Phase::Done) {
            return;
        }
        let Some(p) = metadata.partition(&key.0, key.1) else {
            // The topic was deleted meanwhile.
            m.phase = Phase::Done;
            return;
        };
        let (topic, partition) = (key.0.clone(), key.1);
        let command = match next_step(&m.to, p) {
            MoveStep::Add(replicas) => {
                m.phase = Phase::Adding;
                MetadataCommand::ReassignPartition { topic, partition, replicas }
            }
            MoveStep::CatchUp => {
                m.phase = Phase::CatchingUp;
                return;
            }
            MoveStep::MoveLeader(leader) => {
                m.phase = Phase::MovingLeader;
                // A target replica in sync takes over: clients' retries find it in the next
                // metadata refresh, and it already holds every committed record.
                info!(%topic, partition, from = p.leader, to = leader, "moving partition leadership");
                let (leader_epoch, isr) = (p.leader_epoch + 1, p.isr.clone());
                MetadataCommand::ElectLeader { topic, partition, leader, leader_epoch, isr }
            }
            MoveStep::Remove(replicas) => {
                m.phase = Phase::Removing;
                MetadataCommand::ReassignPartition { topic, partition, replicas }
            }
            MoveStep::Done => {
                m.phase = Phase::Done;
                info!(topic = %key.0, partition = key.1, replicas = ?p.replicas, "partition moved");
                return;
            }
        };
        let command = MetadataCommand::AsLeader { term: self.planned_term, command: Box::new(command) };
        self.in_flight.insert(key.clone());
        let (ctx, me) = (self.ctx.clone(), myself.clone());
        let debug = &self.ctx.config.debug;
        let delay = Duration::from_millis(if debug.fail_points { debug.rebalance_step_delay_ms } else { 0 });
        tokio::spawn(async move {
            // The fail point holds the step, decided from the metadata as it was, so a test can
            // change the metadata under it: the state machine must refuse what became unsafe.
            tokio::time::sleep(delay).await;
            let ok = matches!(apply_metadata(&ctx, vec![command]).await.pop(), Some(Ok(())));
            let _ = me.cast(RebalancerMsg::StepDone { key, ok });
        });
    }

    /// Publishes the plan for `/admin/rebalance`.
    fn publish(&self) {
        let me = self.ctx.config.node_id;
        let moves: Vec<Move> = self.moves.values().cloned().collect();
        let metadata = self.ctx.metadata();
        let status = RebalanceStatus {
            active: self.ctx.cluster.borrow().leader == Some(me),
            voters: self.planned_for.clone(),
            draining: metadata.draining.iter().copied().collect(),
            complete: moves.iter().all(|m| m.phase == Phase::Done),
            paused: metadata.rebalance_paused,
            moves,
        };
        self.ctx.rebalance.send_replace(status);
    }
}
