//! What `/admin/rebalance` shows: each move's phase and origin, and the plan's status, which
//! the rebalancer publishes after every message it handles.

use std::time::Instant;

use chronik::config::NodeId;
use serde::Serialize;

use super::{LeaderChange, RebalancerState};

/// Where one partition's move stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for its turn: at most `rebalance_max_concurrent_moves` partitions copy onto one
    /// node at once, so the copies of a large plan do not pile up on the producers.
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

/// Who asked for a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The rebalancer's own plan.
    Rebalancer,
    /// An operator, through AlterPartitionReassignments: the partition ends with exactly the
    /// replicas asked for, in that order, and stays there.
    Operator,
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
    /// Who asked for it.
    pub origin: Origin,
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
    /// The leadership changes of the spread that follows a finished plan (their own phase).
    pub leaders: Vec<LeaderChange>,
    /// How long until that spread is planned, while it waits (`rebalance_leaders_delay_ms`).
    pub leaders_due_in_ms: Option<u64>,
    /// Whether every move is done.
    pub complete: bool,
    /// An operator paused rebalancing: moves hold in their current phase until resumed.
    pub paused: bool,
    /// Plans this node has made (one per membership change, and every 30 s while idle), so an
    /// operator can tell the placement was looked at again.
    pub plans: u64,
    /// How many moves the last plan had once all of them are done (0 while it runs or made
    /// none), so a client that looks after a short plan finished still learns its size.
    pub moves_done: usize,
}

impl RebalancerState {
    /// Publishes the plan for `/admin/rebalance`.
    pub(super) fn publish(&self) {
        let me = self.ctx.config.node_id;
        let moves: Vec<Move> = self.moves.values().cloned().collect();
        let metadata = self.ctx.metadata();
        let status = RebalanceStatus {
            active: self.ctx.cluster.borrow().leader == Some(me),
            voters: self.planned_for.clone(),
            draining: metadata.draining.iter().copied().collect(),
            complete: moves.iter().all(|m| m.phase == Phase::Done),
            paused: metadata.rebalance_paused,
            plans: self.plans,
            moves_done: self.moves_done,
            moves,
            leaders_due_in_ms: self
                .leaders_due
                .map(|at| u64::try_from(at.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(u64::MAX)),
            leaders: self.leaders.values().cloned().collect(),
        };
        self.ctx.rebalance.send_replace(status);
    }
}
