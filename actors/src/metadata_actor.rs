//! `MetadataActor`: the single writer of the cluster metadata on a standalone node. It applies
//! [`MetadataCommand`]s in order, persists the result, publishes it to every reader, and has the
//! ReplicaSupervisor start or stop replicas to match — the same flow the Raft state machine will
//! drive once nodes cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::{ClusterMetadata, MetadataCommand, MetadataError, NodeInfo};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::info;

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration};
use crate::replica_supervisor::ReplicaSupervisorMsg;

/// Producer ids are reserved durably in blocks this large, so a restart never reuses one.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// The metadata actor's mailbox.
pub enum MetadataMsg {
    /// From a request handler: apply these commands in order; each gets its own result. Replies
    /// after the change is persisted and the replicas match it.
    Apply {
        /// The commands.
        commands: Vec<MetadataCommand>,
        /// One result per command.
        reply: RpcReplyPort<Vec<Result<(), MetadataError>>>,
    },
    /// From InitProducerId: a producer id never handed out before.
    NextProducerId(RpcReplyPort<i64>),
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
    /// The applied metadata.
    metadata: ClusterMetadata,
    /// Where it is persisted.
    path: PathBuf,
    /// Next producer id of the reserved block.
    next_producer_id: i64,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
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
        let gauge = registration.gauge().clone();
        let path = Path::new(&ctx.config.data_dir).join("metadata.json");
        let metadata = load(&path)?;
        info!(path = %path.display(), topics = metadata.topics.len(), "metadata loaded");
        let mut state =
            MetadataState { next_producer_id: metadata.next_producer_id, metadata, path, ctx, registration };
        let me = NodeInfo { id: state.ctx.config.node_id, kafka: state.ctx.config.advertised_kafka() };
        if state.metadata.nodes.get(&me.id) != Some(&me) {
            state.apply(vec![MetadataCommand::RegisterNode(me)]).await?;
        } else {
            state.ctx.metadata.send_replace(Arc::new(state.metadata.clone()));
        }
        state.ctx.metadata_actor.set(myself, gauge);
        Ok(state)
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
                let results = state.apply(commands).await?;
                let _ = reply.send(results);
            }
            MetadataMsg::NextProducerId(reply) => {
                if state.next_producer_id >= state.metadata.next_producer_id {
                    let command = MetadataCommand::AllocateProducerIds { count: PRODUCER_ID_BLOCK };
                    state.apply(vec![command]).await?;
                }
                let id = state.next_producer_id;
                state.next_producer_id += 1;
                let _ = reply.send(id);
            }
        }
        Ok(())
    }
}

impl MetadataState {
    async fn apply(
        &mut self,
        commands: Vec<MetadataCommand>,
    ) -> Result<Vec<Result<(), MetadataError>>, ActorProcessingErr> {
        let mut next = self.metadata.clone();
        let results: Vec<_> = commands.iter().map(|c| next.apply(c).inspect(|()| log_applied(&next, c))).collect();
        if results.iter().all(Result::is_err) {
            return Ok(results);
        }
        persist(&self.path, &next)?;
        self.metadata = next;
        let published = Arc::new(self.metadata.clone());
        self.ctx.metadata.send_replace(published.clone());
        self.reconcile(published).await;
        Ok(results)
    }

    /// Waits until the replicas match; if the supervisor is restarting it reconciles from the
    /// published metadata by itself.
    async fn reconcile(&self, metadata: Arc<ClusterMetadata>) {
        if let Some(sup) = self.ctx.replica_supervisor.get() {
            let msg = |reply| ReplicaSupervisorMsg::Reconcile { metadata, reply };
            let _ = sup.call(msg, Duration::from_secs(30)).await;
        }
    }
}

/// One log line per applied command; partition placement as `AssignPartition` lines.
fn log_applied(metadata: &ClusterMetadata, command: &MetadataCommand) {
    match command {
        MetadataCommand::CreateTopic { name, .. } | MetadataCommand::CreatePartitions { name, .. } => {
            info!(topic = %name, "applied {}", command_name(command));
            for p in metadata.topics.get(name).map(|t| t.partitions.as_slice()).unwrap_or_default() {
                info!("AssignPartition topic={} partition={} replicas={:?}", name, p.partition, p.replicas);
            }
        }
        other => info!(command = ?other, "applied {}", command_name(other)),
    }
}

fn command_name(command: &MetadataCommand) -> &'static str {
    match command {
        MetadataCommand::RegisterNode(_) => "RegisterNode",
        MetadataCommand::CreateTopic { .. } => "CreateTopic",
        MetadataCommand::DeleteTopic { .. } => "DeleteTopic",
        MetadataCommand::CreatePartitions { .. } => "CreatePartitions",
        MetadataCommand::SetTopicConfigs { .. } => "SetTopicConfigs",
        MetadataCommand::AllocateProducerIds { .. } => "AllocateProducerIds",
    }
}

fn load(path: &Path) -> Result<ClusterMetadata, ActorProcessingErr> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("metadata file {} is corrupt: {e}", path.display()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClusterMetadata::default()),
        Err(e) => Err(format!("cannot read metadata file {}: {e}", path.display()).into()),
    }
}

/// Write-then-rename with fsyncs, so a crash leaves either the old or the new file whole.
fn persist(path: &Path, metadata: &ClusterMetadata) -> Result<(), ActorProcessingErr> {
    use std::io::Write;
    let dir = path.parent().ok_or("metadata path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(metadata)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
