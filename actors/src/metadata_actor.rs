//! `MetadataActor`: the node's door to metadata changes. Request handlers hand it commands; it
//! proposes them through the RaftActor (which forwards to the Raft leader when needed) and answers
//! once they are applied here. It also hands out idempotent producer ids from blocks reserved
//! through Raft, and keeps this node's registration (addresses, incarnation) current.

use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::{Applied, MetadataCommand, MetadataError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{info, warn};

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration, TaskGuard};
use crate::raft::{CommandResult, RaftMsg, node_info};

/// Producer ids are reserved durably in blocks this large, so a restart never reuses one.
const PRODUCER_ID_BLOCK: i64 = 1000;
/// Longest wait for the RaftActor's answer (it bounds its own retries below this).
const PROPOSE_WAIT: Duration = Duration::from_secs(30);
/// Between attempts to register this node's addresses.
const REGISTER_RETRY: Duration = Duration::from_secs(2);

/// The metadata actor's mailbox.
pub enum MetadataMsg {
    /// From a request handler: apply these commands in order; each gets its own result. Replies
    /// after the change is committed and applied on this node.
    Apply {
        /// The commands.
        commands: Vec<MetadataCommand>,
        /// One result per command.
        reply: RpcReplyPort<Vec<Result<(), MetadataError>>>,
    },
    /// From InitProducerId: a producer id never handed out before, or why none is available.
    NextProducerId(RpcReplyPort<Result<i64, MetadataError>>),
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct MetadataArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The metadata actor's state.
pub struct MetadataState {
    /// Producer ids of the reserved block not yet handed out.
    producer_ids: std::ops::Range<i64>,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// Registers this node's addresses and incarnation once the cluster can take them.
    _register: TaskGuard,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct MetadataActor;

impl Actor for MetadataActor {
    type Msg = MetadataMsg;
    type State = MetadataState;
    type Arguments = MetadataArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MetadataMsg>,
        args: MetadataArgs,
    ) -> Result<MetadataState, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "metadata".into(),
            "MetadataActor",
            args.restarts,
            MailboxGauge::default(),
        );
        let register = TaskGuard(tokio::spawn(register(ctx.clone())));
        ctx.metadata_actor.set(myself, registration.gauge().clone());
        Ok(MetadataState { producer_ids: 0..0, ctx, _register: register, registration })
    }

    async fn handle(
        &self,
        _: ActorRef<MetadataMsg>,
        msg: MetadataMsg,
        state: &mut MetadataState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            MetadataMsg::Apply { commands, reply } => {
                // A commit takes a Raft round trip; other requests need not queue behind it.
                let ctx = state.ctx.clone();
                tokio::spawn(async move {
                    let n = commands.len();
                    let results = match propose(&ctx, commands).await {
                        Ok(results) => results.into_iter().map(|r| r.map(|_| ())).collect(),
                        Err(e) => vec![Err(e); n],
                    };
                    let _ = reply.send(results);
                });
            }
            MetadataMsg::NextProducerId(reply) => {
                if state.producer_ids.is_empty() {
                    let command = MetadataCommand::AllocateProducerIds { count: PRODUCER_ID_BLOCK };
                    match propose(&state.ctx, vec![command]).await.map(|mut r| r.pop()) {
                        Ok(Some(Ok(Applied::ProducerIds { first }))) => {
                            state.producer_ids = first..first + PRODUCER_ID_BLOCK;
                        }
                        Ok(_) => {
                            let _ = reply.send(Err(MetadataError::Unavailable("no producer id block".into())));
                            return Ok(());
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            return Ok(());
                        }
                    }
                }
                let id = state.producer_ids.start;
                state.producer_ids.start += 1;
                let _ = reply.send(Ok(id));
            }
        }
        Ok(())
    }
}

/// Proposes through the RaftActor; a missing or silent RaftActor is a retriable failure.
async fn propose(ctx: &NodeContext, commands: Vec<MetadataCommand>) -> Result<Vec<CommandResult>, MetadataError> {
    let unavailable = |why: String| MetadataError::Unavailable(why);
    let raft = ctx.raft_actor.get().ok_or_else(|| unavailable("the Raft node is restarting".into()))?;
    let msg = |reply| RaftMsg::Propose { commands, reply };
    match raft.call(msg, PROPOSE_WAIT).await {
        Ok(ractor::rpc::CallResult::Success(result)) => result.map_err(unavailable),
        _ => Err(unavailable("the Raft node did not answer in time".into())),
    }
}

/// Once this node is a member, makes sure the metadata carries the addresses in its current
/// configuration (they may have changed since it joined) and this process's incarnation
/// (`RegisterBroker`: its partitions get new leader epochs before it leads any), retrying until
/// the cluster takes them. Keeps watching: should a stale registration ever replace this
/// process's, it registers again (cleanly: this process lost nothing).
async fn register(ctx: Arc<NodeContext>) {
    let me = ctx.config.node_id;
    let Some(mut wanted) = ctx.config.members().iter().find(|p| p.id == me).map(node_info) else { return };
    // The main listener is `kafka`; the others travel by name.
    wanted.listeners = ctx.config.listeners().into_iter().skip(1).map(|l| (l.name, l.advertised)).collect();
    let mut metadata = ctx.metadata.subscribe();
    // Once this process was registered, it lost nothing since: a re-registration is clean.
    let mut registered_once = false;
    loop {
        let commands = {
            let m = metadata.borrow_and_update();
            registered_once |= m.incarnations.get(&me) == Some(&ctx.incarnation);
            registration_commands(&m, &wanted, ctx.incarnation, ctx.clean_start || registered_once)
        };
        if !commands.is_empty() {
            match propose(&ctx, commands).await {
                Ok(_) => info!(incarnation = ctx.incarnation, kafka = %wanted.kafka, "registered this node"),
                Err(e) => warn!(error = %e, "could not register this node yet"),
            }
        }
        // Wait for the next change; after a failed attempt, retry on a timer too.
        if let Ok(Err(_)) = tokio::time::timeout(REGISTER_RETRY, metadata.changed()).await {
            return;
        }
    }
}

/// What this node still has to register: nothing until it is a member; then its addresses if
/// they differ, and its incarnation if the metadata has another one.
fn registration_commands(
    metadata: &chronik::cluster::ClusterMetadata,
    wanted: &chronik::cluster::NodeInfo,
    incarnation: u64,
    clean_shutdown: bool,
) -> Vec<MetadataCommand> {
    let Some(current) = metadata.nodes.get(&wanted.id) else { return Vec::new() };
    let mut commands = Vec::new();
    if current != wanted {
        commands.push(MetadataCommand::RegisterNode(wanted.clone()));
    }
    if metadata.incarnations.get(&wanted.id) != Some(&incarnation) {
        commands.push(MetadataCommand::RegisterBroker { node: wanted.id, incarnation, clean_shutdown });
    }
    commands
}
