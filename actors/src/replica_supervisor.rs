//! `ReplicaSupervisor`: starts one `ReplicaActor` per partition this node hosts, stops (and
//! deletes) the ones the metadata no longer lists, and restarts a failed replica with back-off.
//! A replica that spends its restart budget is taken offline alone: the node keeps serving every
//! other partition, the metadata moves its leadership to an in-sync replica
//! (`ReplicaOffline`), and an operator brings it back (`POST /admin/partitions/online`) once the
//! cause is fixed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::{ClusterMetadata, PartitionMeta, TopicMeta, dynamic_log_defaults, effective_log_config};
use chronik::log::LogConfig;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tracing::{error, info, warn};

use crate::context::{NodeContext, OfflineReplica, TopicPartition};
use crate::directory::{Counted, MailboxGauge, Registration, TaskGuard};
use crate::replica::{HighWatermarkBook, Leadership, ReplicaActor, ReplicaArgs, ReplicaMsg};
use crate::supervision::{RestartTracker, restart_or_escalate};

mod changes;
use changes::changed_partitions;

/// The supervisor's mailbox.
pub enum ReplicaSupervisorMsg {
    /// From the MetadataActor after it applied a change: make the running replicas match the
    /// partitions this node hosts. Replies when every new replica serves and every removed one
    /// is stopped and deleted.
    Reconcile {
        /// The metadata to match.
        metadata: Arc<ClusterMetadata>,
        /// Answered when done.
        reply: RpcReplyPort<()>,
    },
    /// Timer set after a failure: start that partition's replica again.
    Restart(TopicPartition),
    /// From the admin API: start an offline replica again with a fresh restart budget.
    BringOnline {
        /// The partition.
        tp: TopicPartition,
        /// Started, or why not.
        reply: RpcReplyPort<Result<(), String>>,
    },
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct ReplicaSupervisorArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// One hosted partition.
struct Child {
    /// How to start it.
    args: ReplicaArgs,
    /// Its failures.
    tracker: RestartTracker,
    /// The running actor, if any (none while waiting out a back-off).
    actor: Option<ActorRef<ReplicaMsg>>,
}

/// The supervisor's state.
pub struct ReplicaSupervisorState {
    /// Hosted partitions.
    children: BTreeMap<TopicPartition, Child>,
    /// Which partition a running actor serves, to interpret supervision events.
    by_id: HashMap<ActorId, TopicPartition>,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// Every hosted partition's high watermark, checkpointed in one file.
    hw_book: Arc<HighWatermarkBook>,
    /// The task writing `hw_book` on a timer.
    _hw_writer: TaskGuard,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
    /// The metadata the replicas last matched, and what it said of this node: the next
    /// reconcile looks only at what changed since.
    reconciled: Option<(Arc<ClusterMetadata>, NodeView)>,
}

/// What decides every hosted replica's arguments beside its own partition and topic.
#[derive(Debug, Clone, PartialEq)]
struct NodeView {
    /// This process is registered in the metadata (until then its replicas lead nothing).
    registered: bool,
    /// The file's log settings under the operator's run-time ones (cluster-wide, then this
    /// node's).
    defaults: LogConfig,
}

/// The actor.
pub struct ReplicaSupervisor;

impl Actor for ReplicaSupervisor {
    type Msg = ReplicaSupervisorMsg;
    type State = ReplicaSupervisorState;
    type Arguments = ReplicaSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ReplicaSupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let registration = args.ctx.directory.register(
            &myself.get_cell(),
            "replica-supervisor".into(),
            "ReplicaSupervisor",
            args.restarts,
            MailboxGauge::default(),
        );
        let gauge = registration.gauge().clone();
        args.ctx.replica_supervisor.set(myself.clone(), gauge.clone());
        let hw_book = Arc::new(HighWatermarkBook::load(Path::new(&args.ctx.config.data_dir)));
        let _hw_writer = HighWatermarkBook::spawn_writer(hw_book.clone());
        let mut state = ReplicaSupervisorState {
            children: BTreeMap::new(),
            by_id: HashMap::new(),
            ctx: args.ctx,
            hw_book,
            _hw_writer,
            registration,
            reconciled: None,
        };
        // After a restart of this supervisor the metadata is already there: serve it again.
        let metadata = state.ctx.metadata();
        let hosted = state.hosted(&metadata, &state.node_view(&metadata));
        let keys: HashSet<_> = hosted.values().map(|a| (a.topic_id, a.tp.partition)).collect();
        state.hw_book.retain(|k| keys.contains(k));
        // Data of partitions deleted while this supervisor was not running; later deletions
        // go through `remove`. Once here: listing every partition directory on each metadata
        // change costs a node thousands of stat calls per Raft entry at scale.
        remove_orphan_dirs(&topics_dir(&state.ctx), &hosted);
        state.reconcile(&myself, &metadata).await?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            ReplicaSupervisorMsg::Reconcile { metadata, reply } => {
                state.reconcile(&myself, &metadata).await?;
                let _ = reply.send(());
            }
            ReplicaSupervisorMsg::Restart(tp) => state.start(&myself, &tp).await?,
            ReplicaSupervisorMsg::BringOnline { tp, reply } => {
                let _ = reply.send(state.bring_online(&myself, &tp).await);
            }
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
                if let Some(tp) = state.by_id.remove(&cell.get_id()) {
                    warn!(%tp, error = %err, "replica failed");
                    state.on_failure(&myself, tp, err.to_string());
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.by_id.remove(&cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // Let every replica run its post_stop (flush) before ractor kills the subtree.
        state.ctx.replicas.clear();
        myself.stop_children_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10))).await;
        // What the replicas reported as they stopped.
        if let Err(e) = state.hw_book.write() {
            warn!(error = %e, "could not write the high-watermark checkpoint at shutdown");
        }
        Ok(())
    }
}

impl ReplicaSupervisorState {
    /// Makes the running replicas match `metadata`. Only the partitions that changed since the
    /// last reconcile are looked at: it runs on every Raft entry, and with thousands of hosted
    /// partitions rebuilding every replica's arguments each time was most of a node's CPU while
    /// replicas moved.
    async fn reconcile(
        &mut self,
        myself: &ActorRef<ReplicaSupervisorMsg>,
        metadata: &Arc<ClusterMetadata>,
    ) -> Result<(), ActorProcessingErr> {
        let view = self.node_view(metadata);
        let changes = match &self.reconciled {
            Some((previous, seen)) if *seen == view => self.changed(previous, metadata, &view),
            _ => {
                let wanted = self.hosted(metadata, &view);
                let gone = self.children.keys().filter(|tp| !wanted.contains_key(*tp)).map(|tp| (tp.clone(), None));
                let mut changes: Vec<_> = gone.collect();
                changes.extend(wanted.into_iter().map(|(tp, args)| (tp, Some(args))));
                changes
            }
        };
        for (tp, _) in changes.iter().filter(|(_, args)| args.is_none()) {
            self.remove(tp).await;
        }
        for (tp, args) in changes {
            let Some(args) = args else { continue };
            if let Some(child) = self.children.get_mut(&tp) {
                if child.args.log_config != args.log_config {
                    child.args.log_config = args.log_config.clone();
                    if let Some(replica) = self.ctx.replicas.get(&tp) {
                        let _ = replica.cast(ReplicaMsg::UpdateConfig(args.log_config));
                    }
                }
                if child.args.leadership != args.leadership {
                    child.args.leadership = args.leadership.clone();
                    if let Some(replica) = self.ctx.replicas.get(&tp) {
                        let _ = replica.cast(ReplicaMsg::SetLeadership(args.leadership));
                    }
                }
                continue;
            }
            self.children.insert(tp.clone(), Child { args, tracker: RestartTracker::default(), actor: None });
            self.start(myself, &tp).await?;
        }
        self.reconciled = Some((metadata.clone(), view));
        Ok(())
    }

    /// What `metadata` says of this node as a whole.
    fn node_view(&self, metadata: &ClusterMetadata) -> NodeView {
        let node = self.ctx.config.node_id;
        NodeView {
            registered: metadata.incarnations.get(&node) == Some(&self.ctx.incarnation),
            defaults: effective_log_config(
                &self.ctx.config.default_log_config(),
                &dynamic_log_defaults(metadata, node),
            ),
        }
    }

    /// Every partition of `metadata` with a replica on this node, and how to start it.
    fn hosted(&self, metadata: &ClusterMetadata, view: &NodeView) -> BTreeMap<TopicPartition, ReplicaArgs> {
        let mut out = BTreeMap::new();
        for topic in metadata.topics.values() {
            for p in &topic.partitions {
                if let Some(args) = self.replica_args(view, topic, p) {
                    out.insert(args.tp.clone(), args);
                }
            }
        }
        out
    }

    /// The partitions whose replica here `metadata` changes since `previous` (with the same
    /// view of this node): how to run each one it hosts, `None` for each it no longer does.
    fn changed(
        &self,
        previous: &ClusterMetadata,
        metadata: &ClusterMetadata,
        view: &NodeView,
    ) -> Vec<(TopicPartition, Option<ReplicaArgs>)> {
        changed_partitions(previous, metadata)
            .into_iter()
            .map(|(tp, now)| (tp, now.and_then(|(topic, p)| self.replica_args(view, topic, p))))
            .collect()
    }

    /// How to run this node's replica of `p`, if it hosts one.
    fn replica_args(&self, view: &NodeView, topic: &TopicMeta, p: &PartitionMeta) -> Option<ReplicaArgs> {
        if !p.replicas.contains(&self.ctx.config.node_id) {
            return None;
        }
        let min_insync = topic
            .configs
            .get("min.insync.replicas")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.ctx.config.min_insync_replicas);
        let tp = TopicPartition::new(&topic.name, p.partition);
        Some(ReplicaArgs {
            dir: topics_dir(&self.ctx).join(tp.to_string()),
            tp,
            topic_id: topic.id,
            hw_book: self.hw_book.clone(),
            log_config: effective_log_config(&view.defaults, &topic.configs),
            leadership: Leadership {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                isr: p.isr.clone(),
                replicas: p.replicas.clone(),
                min_insync,
                registered: view.registered,
                handover: p.handover.filter(|h| h.leader_epoch == p.leader_epoch).map(|h| h.to),
            },
            ctx: self.ctx.clone(),
            gauge: MailboxGauge::default(),
            restarts: 0,
        })
    }

    async fn start(
        &mut self,
        myself: &ActorRef<ReplicaSupervisorMsg>,
        tp: &TopicPartition,
    ) -> Result<(), ActorProcessingErr> {
        let Some(child) = self.children.get_mut(tp) else { return Ok(()) };
        if child.actor.is_some() {
            return Ok(());
        }
        let mut args = child.args.clone();
        args.gauge = MailboxGauge::default();
        args.restarts = child.tracker.total;
        let gauge = args.gauge.clone();
        match Actor::spawn_linked(None, ReplicaActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                self.by_id.insert(actor.get_id(), tp.clone());
                self.ctx.replicas.insert(tp.clone(), Counted { actor: actor.clone(), gauge });
                child.actor = Some(actor);
                Ok(())
            }
            Err(e) => {
                warn!(%tp, error = %e, "replica failed to start");
                self.on_failure(myself, tp.clone(), e.to_string());
                Ok(())
            }
        }
    }

    /// Restarts a failed replica after its back-off, or takes it offline once it has spent its
    /// restart budget: one bad partition never takes the node down.
    fn on_failure(&mut self, myself: &ActorRef<ReplicaSupervisorMsg>, tp: TopicPartition, reason: String) {
        self.ctx.replicas.remove(&tp);
        let Some(child) = self.children.get_mut(&tp) else { return };
        child.actor = None;
        let name = format!("replica {tp}");
        let restart = {
            let tp = tp.clone();
            move || ReplicaSupervisorMsg::Restart(tp)
        };
        if let Err(e) = restart_or_escalate(&mut child.tracker, &self.ctx.config.supervision, myself, &name, restart) {
            error!(%tp, error = %e, last_failure = %reason,
                "replica taken offline; the node keeps serving its other partitions");
            let offline = OfflineReplica { reason, since_ms: crate::replica::now_ms(), restarts: child.tracker.total };
            self.ctx.offline.insert(tp.clone(), offline);
            tokio::spawn(report_offline(self.ctx.clone(), tp));
        }
    }

    /// Starts an offline replica again, with a fresh restart budget.
    async fn bring_online(
        &mut self,
        myself: &ActorRef<ReplicaSupervisorMsg>,
        tp: &TopicPartition,
    ) -> Result<(), String> {
        if self.ctx.offline.remove(tp).is_none() {
            return Err(format!("partition {tp} is not offline on this node"));
        }
        if let Some(child) = self.children.get_mut(tp) {
            child.tracker.forgive();
        }
        info!(%tp, "bringing the offline replica back");
        self.start(myself, tp).await.map_err(|e| e.to_string())
    }

    async fn remove(&mut self, tp: &TopicPartition) {
        self.ctx.replicas.remove(tp);
        self.ctx.offline.remove(tp);
        let Some(child) = self.children.remove(tp) else { return };
        if let Some(actor) = child.actor {
            self.by_id.remove(&actor.get_id());
            let _ = actor.stop_and_wait(Some("partition removed".into()), Some(Duration::from_secs(10))).await;
        }
        self.hw_book.forget(&(child.args.topic_id, tp.partition));
        let removed = crate::blocking::disk(|| std::fs::remove_dir_all(&child.args.dir));
        chronik::log::durability::forget_dir(&child.args.dir);
        match removed {
            Ok(()) => info!(%tp, "replica removed and its data deleted"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(%tp, error = %e, "could not delete the replica's data"),
        }
    }
}

/// `<data-dir>/topics`.
pub fn topics_dir(ctx: &NodeContext) -> PathBuf {
    Path::new(&ctx.config.data_dir).join("topics")
}

/// Deletes partition directories the metadata does not list (a topic deleted just before a
/// crash), so a topic created later under the same name never sees old data.
fn remove_orphan_dirs(dir: &Path, wanted: &BTreeMap<TopicPartition, ReplicaArgs>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let owned: HashSet<&Path> = wanted.values().map(|a| a.dir.as_path()).collect();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !owned.contains(path.as_path()) {
            warn!(dir = %path.display(), "deleting partition data no topic owns");
            if let Err(e) = std::fs::remove_dir_all(&path) {
                warn!(dir = %path.display(), error = %e, "could not delete orphaned partition data");
            }
            chronik::log::durability::forget_dir(&path);
        }
    }
}

/// Tells the metadata this node's replica of `tp` is offline, so its leadership moves to an
/// in-sync replica; retried while the cluster cannot take it (no Raft leader for a while).
async fn report_offline(ctx: Arc<NodeContext>, tp: TopicPartition) {
    const ATTEMPTS: u32 = 30;
    let command = chronik::cluster::MetadataCommand::ReplicaOffline {
        topic: tp.topic.to_string(),
        partition: tp.partition,
        node: ctx.config.node_id,
    };
    for _ in 0..ATTEMPTS {
        match crate::handlers::apply_metadata(&ctx, vec![command.clone()]).await.pop() {
            Some(Ok(())) => return,
            Some(Err(e)) => warn!(%tp, error = %e, "could not report the offline replica yet"),
            None => {}
        }
        if !ctx.offline.contains_key(&tp) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
