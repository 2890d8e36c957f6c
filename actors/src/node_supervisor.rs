//! `NodeSupervisor`: the root of a node's actor tree. Starts the node's actors in dependency
//! order and restarts a failed one from its arguments with back-off. Only a node-level part that
//! exceeds its restart budget (the Raft store, the WAL flusher, the replica supervisor, the Kafka
//! listener) fails the supervisor and so stops the process; any other keeps being restarted at
//! the longest back-off while the node serves. Stops them in reverse order on shutdown so
//! clients are cut off before the replicas flush.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use tracing::{error, info, warn};

use crate::admin::{AdminArgs, AdminServer};
use crate::context::NodeContext;
use crate::controller::{Controller, ControllerArgs};
use crate::directory::{MailboxGauge, Registration};
use crate::group_coordinator::{CoordinatorArgs, GroupCoordinator};
use crate::kafka_listener::{KafkaListener, KafkaListenerArgs};
use crate::log_cleaner::{LogCleaner, LogCleanerArgs};
use crate::membership::{MembershipActor, MembershipArgs};
use crate::metadata_actor::{MetadataActor, MetadataArgs};
use crate::raft::{RaftActor, RaftArgs};
use crate::rebalancer::{RebalancerActor, RebalancerArgs};
use crate::replica_supervisor::{ReplicaSupervisor, ReplicaSupervisorArgs};
use crate::replication_service::{ReplicationArgs, ReplicationService};
use crate::supervision::{RestartTracker, restart_or_escalate};
use crate::txn_coordinator::{TxnCoordinator, TxnCoordinatorArgs};
use crate::wal_flusher::{WalFlusher, WalFlusherArgs};

/// The node's direct children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildKind {
    /// Makes appends durable.
    Flusher,
    /// The Raft node: metadata log, state machine, membership, the raft port.
    Raft,
    /// Publishes the cluster view from Raft's metrics.
    Membership,
    /// Proposes metadata changes and hands out producer ids.
    Metadata,
    /// On the Raft leader: fences silent brokers, elects partition leaders.
    Controller,
    /// On the Raft leader: moves replicas when the voters change.
    Rebalancer,
    /// Owns the partition replicas.
    Replicas,
    /// Compacts the logs of compacted topics.
    Cleaner,
    /// Serves followers' fetches on the wal port.
    Replication,
    /// Coordinates consumer groups (needs the offsets topic's replicas).
    Coordinator,
    /// Coordinates transactions (needs the transaction state topic's replicas).
    TxnCoordinator,
    /// Accepts Kafka clients.
    Listener,
    /// Serves the admin API.
    Admin,
}

impl ChildKind {
    /// Whether the node cannot serve without it: past its restart budget the process stops, so
    /// that an operator (or a service manager) sees it rather than a node that silently does not
    /// work. The others degrade a feature and keep being restarted.
    fn is_node_level(self) -> bool {
        matches!(self, Self::Flusher | Self::Raft | Self::Replicas | Self::Listener)
    }
}

/// Start order: each child only needs the ones before it.
const START_ORDER: [ChildKind; 13] = [
    ChildKind::Flusher,
    ChildKind::Raft,
    ChildKind::Membership,
    ChildKind::Metadata,
    ChildKind::Controller,
    ChildKind::Rebalancer,
    ChildKind::Replicas,
    ChildKind::Cleaner,
    ChildKind::Replication,
    ChildKind::Coordinator,
    ChildKind::TxnCoordinator,
    ChildKind::Listener,
    ChildKind::Admin,
];

/// The supervisor's mailbox.
pub enum NodeSupervisorMsg {
    /// Timer set after a failure: start that child again.
    Restart(ChildKind),
}

/// The supervisor's state.
pub struct NodeSupervisorState {
    /// Each child's running actor and failure history.
    children: HashMap<ChildKind, (Option<ActorCell>, RestartTracker)>,
    /// Which child a running actor is.
    by_id: HashMap<ActorId, ChildKind>,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    _registration: Registration,
}

/// The actor.
pub struct NodeSupervisor;

impl Actor for NodeSupervisor {
    type Msg = NodeSupervisorMsg;
    type State = NodeSupervisorState;
    type Arguments = Arc<NodeContext>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Arc<NodeContext>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let name = format!("node-{}", ctx.config.node_id);
        let registration =
            ctx.directory.register(&myself.get_cell(), name, "NodeSupervisor", 0, MailboxGauge::default());
        let mut state =
            NodeSupervisorState { children: HashMap::new(), by_id: HashMap::new(), ctx, _registration: registration };
        for kind in START_ORDER {
            state.children.insert(kind, (None, RestartTracker::default()));
            state.start(&myself, kind).await.map_err(|e| format!("{kind:?} failed to start: {e}"))?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let NodeSupervisorMsg::Restart(kind) = msg;
        if let Err(e) = state.start(&myself, kind).await {
            warn!(?kind, error = %e, "restart failed");
            state.on_failure(&myself, kind)?;
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(kind) = state.by_id.remove(&cell.get_id()) {
                    error!(?kind, error = %err, "node actor failed");
                    state.on_failure(&myself, kind)?;
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(kind) = state.by_id.remove(&cell.get_id()) {
                    // Nothing stops a child on purpose except shutdown: treat it as a failure.
                    warn!(?kind, ?reason, "node actor stopped unexpectedly");
                    state.on_failure(&myself, kind)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        let mut clean = true;
        for kind in START_ORDER.iter().rev() {
            match state.children.get_mut(kind).map(|(c, _)| c.take()) {
                Some(Some(cell)) => {
                    state.by_id.remove(&cell.get_id());
                    let stopped = cell.stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(15))).await;
                    clean &= stopped.is_ok();
                }
                // A child that was down (failed, waiting out its back-off) may not have flushed.
                _ => clean = false,
            }
        }
        state.ctx.stopped_cleanly.store(clean, std::sync::atomic::Ordering::Release);
        info!(clean, "node stopped");
        Ok(())
    }
}

impl NodeSupervisorState {
    async fn start(&mut self, myself: &ActorRef<NodeSupervisorMsg>, kind: ChildKind) -> Result<(), SpawnErr> {
        let restarts = self.children.get(&kind).map_or(0, |(_, t)| t.total);
        let ctx = self.ctx.clone();
        let sup = myself.get_cell();
        let cell = match kind {
            ChildKind::Flusher => {
                Actor::spawn_linked(None, WalFlusher, WalFlusherArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Raft => {
                Actor::spawn_linked(None, RaftActor, RaftArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Membership => {
                Actor::spawn_linked(None, MembershipActor, MembershipArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Metadata => {
                Actor::spawn_linked(None, MetadataActor, MetadataArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Controller => {
                Actor::spawn_linked(None, Controller, ControllerArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Rebalancer => {
                Actor::spawn_linked(None, RebalancerActor, RebalancerArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Replicas => {
                Actor::spawn_linked(None, ReplicaSupervisor, ReplicaSupervisorArgs { ctx, restarts }, sup)
                    .await?
                    .0
                    .get_cell()
            }
            ChildKind::Cleaner => {
                Actor::spawn_linked(None, LogCleaner, LogCleanerArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Replication => {
                Actor::spawn_linked(None, ReplicationService, ReplicationArgs { ctx, restarts }, sup)
                    .await?
                    .0
                    .get_cell()
            }
            ChildKind::Coordinator => {
                Actor::spawn_linked(None, GroupCoordinator, CoordinatorArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::TxnCoordinator => {
                Actor::spawn_linked(None, TxnCoordinator, TxnCoordinatorArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Listener => {
                Actor::spawn_linked(None, KafkaListener, KafkaListenerArgs { ctx, restarts }, sup).await?.0.get_cell()
            }
            ChildKind::Admin => {
                let args = AdminArgs { ctx, restarts, root: sup.clone() };
                Actor::spawn_linked(None, AdminServer, args, sup).await?.0.get_cell()
            }
        };
        self.by_id.insert(cell.get_id(), kind);
        if let Some((slot, _)) = self.children.get_mut(&kind) {
            *slot = Some(cell);
        }
        Ok(())
    }

    fn on_failure(&mut self, myself: &ActorRef<NodeSupervisorMsg>, kind: ChildKind) -> Result<(), ActorProcessingErr> {
        let Some((slot, tracker)) = self.children.get_mut(&kind) else { return Ok(()) };
        *slot = None;
        let policy = &self.ctx.config.supervision;
        let restart = move || NodeSupervisorMsg::Restart(kind);
        let escalated = restart_or_escalate(tracker, policy, myself, &format!("{kind:?}"), restart);
        match escalated {
            Err(e) if !kind.is_node_level() => {
                let delay = Duration::from_millis(policy.backoff_max_ms);
                error!(?kind, error = %e, delay_ms = policy.backoff_max_ms,
                    "a component keeps failing; the node keeps serving and retries it");
                myself.send_after(delay, restart);
                Ok(())
            }
            other => other,
        }
    }
}
