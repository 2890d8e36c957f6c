//! `RaftActor`: owns this node's openraft instance — the metadata log, its state machine and the
//! membership — and the tonic Raft service on the raft port. Metadata changes are proposed here:
//! on the leader directly, on a follower forwarded to the leader, and answered once the change is
//! applied on this node.
//!
//! Time in this module is the runtime's clock (`tokio::time::Instant`), so the simulation
//! (actors/tests/simulation) drives it with its paused clock.

pub mod contact;
mod db;
pub(crate) mod formation;
mod leader_duties;
pub mod membership_change;
mod network;
pub mod pre_vote;
mod service;
mod state_machine;
mod store;
mod writer;

/// Generated from `proto/raft.proto`.
pub mod proto {
    tonic::include_proto!("chronik.raft");
}

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use chronik::cluster::{Applied, MetadataCommand, MetadataError, NodeInfo};
use chronik::config::NodeId;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use db::RaftDb;
pub use leader_duties::run as run_leader_duties;
pub use network::{PeerChannels, cluster_info};
pub use service::cluster_info_reply;
pub use state_machine::StateMachine;
pub use store::LogStore;

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration, TaskGuard};
use writer::{WriteError, Writer};

/// One command's outcome, as the state machine reports it.
pub type CommandResult = Result<Applied, MetadataError>;

openraft::declare_raft_types!(
    /// Chronik's Raft: a batch of metadata commands in, one result per command out; members
    /// carry all their addresses.
    pub TypeConfig:
        D = Vec<MetadataCommand>,
        R = Vec<CommandResult>,
        Node = NodeInfo,
);

/// The openraft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// How long a proposal may wait for a leader and its commit.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest Raft message (a metadata snapshot of a big cluster is the largest).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The RaftActor's mailbox.
pub enum RaftMsg {
    /// Propose metadata commands; replies once they are committed and applied on this node,
    /// with one result per command.
    Propose {
        /// The commands, applied in order as one log entry.
        commands: Vec<MetadataCommand>,
        /// The results, or why the proposal could not be committed.
        reply: RpcReplyPort<Result<Vec<CommandResult>, String>>,
    },
    /// From the admin API: add a node as a voter (learner, catch-up, promotion).
    AddNode {
        /// The new node with its addresses.
        node: NodeInfo,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), membership_change::AddNodeError>>,
    },
    /// Timer: the leader's own duties (cluster identity, stranded learners).
    Tick,
    /// From the rebalancer: a drained node holds no replicas; take it out of the voters.
    RemoveVoter {
        /// The drained node.
        node: NodeId,
        /// Done, or why not (retried on a later tick).
        reply: RpcReplyPort<Result<(), String>>,
    },
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct RaftArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// Shuts the openraft instance down when the actor's state goes away, even after a panic (when
/// ractor skips `post_stop`).
struct ShutdownOnDrop(Raft);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let raft = self.0.clone();
        tokio::spawn(async move {
            let _ = raft.shutdown().await;
        });
    }
}

/// The RaftActor's state.
pub struct RaftState {
    /// The openraft instance.
    raft: ShutdownOnDrop,
    /// Where this node's proposals enter the log (coalesced while this node leads).
    writer: Writer,
    /// The writer's task.
    _writer_task: TaskGuard,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// The tonic server on the raft port (none for a standalone node).
    _server: Option<TaskGuard>,
    /// Cluster formation (ends once this node is in a cluster or knows it must wait).
    _formation: TaskGuard,
    /// Starts an election, after a won pre-vote round, when no leader is heard from.
    _elections: TaskGuard,
    /// Runs the leader's duties as soon as this node becomes leader, not a tick later: a new
    /// cluster gets its id before clients ask for it.
    _on_leadership: TaskGuard,
    /// A membership change is running (one at a time).
    membership_busy: Arc<std::sync::atomic::AtomicBool>,
    /// What the leader tracks for its own duties between ticks.
    duties: leader_duties::LeaderDuties,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct RaftActor;

impl Actor for RaftActor {
    type Msg = RaftMsg;
    type State = RaftState;
    type Arguments = RaftArgs;

    async fn pre_start(&self, myself: ActorRef<RaftMsg>, args: RaftArgs) -> Result<RaftState, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "raft".into(),
            "RaftActor",
            args.restarts,
            MailboxGauge::default(),
        );
        // A restart must not run two Raft instances over one log.
        let previous = ctx.raft.send_replace(None);
        if let Some(old) = previous {
            let _ = old.shutdown().await;
        }
        let config = &ctx.config;
        // After a storage error redb refuses every write until it is opened again.
        let db = if args.restarts > 0 { ctx.raft_db.reopen().await? } else { ctx.raft_db.get()? };
        let sm = StateMachine::open(db.clone(), Some(ctx.clone()))?;
        let raft_config = openraft::Config {
            cluster_name: "chronik".into(),
            heartbeat_interval: config.raft.heartbeat_interval_ms,
            election_timeout_min: config.raft.election_timeout_min_ms,
            election_timeout_max: config.raft.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.raft.snapshot_every_entries),
            max_in_snapshot_log_to_keep: config.raft.snapshot_every_entries,
            // Elections start from `pre_vote::run`, after a pre-vote round.
            enable_elect: false,
            ..Default::default()
        }
        .validate()?;
        let network = network::Network { peers: ctx.peers.clone() };
        let raft = Raft::new(config.node_id, Arc::new(raft_config), network.clone(), LogStore::new(db), sm).await?;
        let timeouts = (config.raft.election_timeout_min_ms, config.raft.election_timeout_max_ms);
        let elections = TaskGuard(tokio::spawn(pre_vote::run(raft.clone(), config.node_id, network, timeouts)));
        info!("✓ Raft message loop started");
        let (writer, writer_task) = Writer::start(raft.clone());

        // A standalone node (no peers) is a one-member cluster nobody else talks to: it keeps
        // the raft port free unless `[bind] raft` asks for it.
        let server = if config.peers.is_empty() && config.bind.raft.is_none() {
            None
        } else {
            let bind = config.raft_bind();
            let listener =
                TcpListener::bind(&bind).await.map_err(|e| format!("bind.raft: cannot listen on {bind}: {e}"))?;
            let local = listener.local_addr()?;
            let server = service::serve(listener, writer.clone(), ctx.clone(), MAX_MESSAGE_BYTES);
            info!(addr = %local, "✓ Raft gRPC server started");
            Some(TaskGuard(tokio::spawn(server)))
        };
        let formation = TaskGuard(tokio::spawn(formation::form(ctx.clone(), raft.clone())));

        ctx.raft.send_replace(Some(raft.clone()));
        myself.send_interval(leader_duties::TICK, || RaftMsg::Tick);
        let (me, mut metrics, actor) = (config.node_id, raft.metrics(), myself.clone());
        let on_leadership = TaskGuard(tokio::spawn(async move {
            let mut led = false;
            while metrics.changed().await.is_ok() {
                // A storage error stops openraft for good: fail, so the supervisor restarts this
                // actor over a reopened database.
                if let Err(fatal) = &metrics.borrow().running_state {
                    actor.stop(Some(format!("raft stopped: {fatal}")));
                    return;
                }
                let leads = metrics.borrow().current_leader == Some(me);
                if leads && !led {
                    let _ = actor.cast(RaftMsg::Tick);
                }
                led = leads;
            }
        }));
        ctx.raft_actor.set(myself, registration.gauge().clone());
        Ok(RaftState {
            raft: ShutdownOnDrop(raft),
            writer,
            _writer_task: writer_task,
            ctx,
            _server: server,
            _formation: formation,
            _elections: elections,
            _on_leadership: on_leadership,
            membership_busy: Arc::default(),
            duties: leader_duties::LeaderDuties::default(),
            registration,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<RaftMsg>,
        msg: RaftMsg,
        state: &mut RaftState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            RaftMsg::Propose { commands, reply } => {
                // Committing takes a network round trip; the mailbox stays free meanwhile.
                let (ctx, writer) = (state.ctx.clone(), state.writer.clone());
                tokio::spawn(async move {
                    let _ = reply.send(propose(&ctx, &writer, commands).await);
                });
            }
            RaftMsg::AddNode { node, reply } => {
                let (ctx, raft, busy) = (state.ctx.clone(), state.raft.0.clone(), state.membership_busy.clone());
                tokio::spawn(async move {
                    let _ = reply.send(membership_change::add_node(&ctx, &raft, node, &busy).await);
                });
            }
            RaftMsg::Tick => state.duties.tick(&state.ctx, &state.writer, &state.membership_busy),
            RaftMsg::RemoveVoter { node, reply } => {
                let (raft, busy) = (state.raft.0.clone(), state.membership_busy.clone());
                tokio::spawn(async move {
                    let _ = reply.send(membership_change::remove_voter(&raft, node, &busy).await);
                });
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<RaftMsg>, state: &mut RaftState) -> Result<(), ActorProcessingErr> {
        state.ctx.raft.send_replace(None);
        let _ = state.raft.0.shutdown().await;
        Ok(())
    }
}

/// The first entry of an AppendEntries that its sender cannot have written: one from a later
/// leader than the vote it is sent under. openraft 0.9's replication task reads entries by index
/// when it sends them; a deposed leader's task still running while its node's log takes the new
/// leader's entries sends those after its own stale `prev_log_id`. A follower that has not heard
/// of the new leader would chain them onto entries the new leader never had, and apply that log
/// once the new leader's commit index reaches it (found by the simulation, seed 2368). Both ends
/// refuse such a request; the stale stream ends when its node notices the new leader.
pub fn entry_from_a_later_leader(
    rpc: &openraft::raft::AppendEntriesRequest<TypeConfig>,
) -> Option<openraft::LogId<NodeId>> {
    rpc.entries.iter().map(|e| e.log_id).find(|id| id.leader_id > rpc.vote.leader_id)
}

/// Commits `commands` as one entry and returns their results once applied on this node: on the
/// leader directly, otherwise through the leader's `Propose` RPC. Retries across leader changes
/// until `PROPOSE_TIMEOUT`.
async fn propose(
    ctx: &NodeContext,
    writer: &Writer,
    commands: Vec<MetadataCommand>,
) -> Result<Vec<CommandResult>, String> {
    let deadline = Instant::now() + PROPOSE_TIMEOUT;
    let raft = writer.raft();
    loop {
        let last_error = match leader_write(ctx, writer, commands.clone()).await {
            Ok((_, results)) => return Ok(results),
            Err(e) => match e.forward_to_leader() {
                Some(forward) => match &forward.leader_node {
                    Some(leader) => match service::forward(ctx, leader, &commands, deadline).await {
                        Ok(results) => return Ok(results),
                        Err(e) => e,
                    },
                    None => "no Raft leader is known".to_string(),
                },
                None => return Err(format!("Raft rejected the proposal: {e}")),
            },
        };
        if Instant::now() >= deadline {
            warn!(error = %last_error, "metadata proposal timed out");
            return Err(last_error);
        }
        // Wait for the leader to change or appear, then try again.
        let known = raft.metrics().borrow().current_leader;
        let wait = raft.wait(Some(Duration::from_millis(500)));
        let _ = wait.metrics(|m| m.current_leader.is_some() && m.current_leader != known, "a new leader").await;
    }
}

/// How recently a voter must have answered the leader to count as live for placement.
const LIVE_WITHIN: Duration = Duration::from_secs(3);

/// On the leader: commits `commands` in one entry (perhaps with other proposals), except
/// CreateTopics whose replication factor exceeds the live voters (Kafka places replicas only on
/// live brokers), which fail without being proposed. Returns the entry's log index and one
/// result per command, in order.
pub(crate) async fn leader_write(
    ctx: &NodeContext,
    writer: &Writer,
    commands: Vec<MetadataCommand>,
) -> Result<(u64, Vec<CommandResult>), WriteError> {
    let me = ctx.config.node_id;
    let (leader, voters) = {
        let metrics = writer.raft().metrics();
        let m = metrics.borrow();
        (m.current_leader, m.membership_config.membership().voter_ids().collect::<Vec<NodeId>>())
    };
    if leader != Some(me) {
        // Not the leader: the write answers with where to forward.
        return writer.write(commands).await;
    }
    let live = voters.iter().filter(|&&id| id == me || ctx.peers.answered_within(id, LIVE_WITHIN)).count();
    // One slot per command: refused here, or `None` for "take the next committed result".
    let mut slots = Vec::with_capacity(commands.len());
    let mut proposed = Vec::with_capacity(commands.len());
    for command in commands {
        match &command {
            MetadataCommand::CreateTopic { replication_factor, .. } if *replication_factor as usize > live => {
                let requested = *replication_factor;
                slots.push(Some(Err(MetadataError::InvalidReplicationFactor { requested, available: live })));
            }
            _ => {
                slots.push(None);
                proposed.push(command);
            }
        }
    }
    let (index, committed) = if proposed.is_empty() { (0, Vec::new()) } else { writer.write(proposed).await? };
    let mut committed = committed.into_iter();
    let results = slots.into_iter().map(|s| s.or_else(|| committed.next()).unwrap_or(Ok(Applied::Done))).collect();
    Ok((index, results))
}

/// The node's own entry for the Raft membership, from its configuration.
pub fn node_info(peer: &chronik::config::PeerConfig) -> NodeInfo {
    NodeInfo {
        id: peer.id,
        kafka: peer.kafka.clone(),
        wal: peer.wal.clone(),
        raft: peer.raft.clone(),
        admin: peer.admin_addr(),
        listeners: Default::default(),
    }
}
