//! What every part of a node shares: its configuration, the current metadata, and how to reach
//! the actors that may be restarted (their references change, so they are read at each use).

use std::sync::{Arc, RwLock};

use chronik::cluster::ClusterMetadata;
use chronik::config::Config;
use dashmap::DashMap;
use ractor::{ActorRef, Message};
use tokio::sync::watch;

use crate::directory::{ActorDirectory, Counted};
use crate::group_coordinator::CoordinatorMsg;
use crate::membership::ClusterView;
use crate::metadata_actor::MetadataMsg;
use crate::raft::{PeerChannels, Raft, RaftMsg};
use crate::replica::ReplicaMsg;
use crate::replica_supervisor::ReplicaSupervisorMsg;
use crate::request_metrics::RequestMetrics;
use crate::wal_flusher::WalFlusherMsg;

/// A topic partition, the key of everything partition-scoped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a key.
    pub fn new(topic: &str, partition: i32) -> Self {
        Self { topic: Arc::from(topic), partition }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The current reference to an actor that its supervisor may restart.
pub struct Slot<M: Message>(RwLock<Option<Counted<M>>>);

impl<M: Message> Default for Slot<M> {
    fn default() -> Self {
        Self(RwLock::new(None))
    }
}

impl<M: Message> Slot<M> {
    /// The live actor, if one is running.
    pub fn get(&self) -> Option<Counted<M>> {
        self.0.read().map(|g| g.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Called by the supervisor after (re)spawning the actor.
    pub fn set(&self, actor: ActorRef<M>, gauge: crate::directory::MailboxGauge) {
        let value = Some(Counted { actor, gauge });
        match self.0.write() {
            Ok(mut g) => *g = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// Why a replica is offline (`/admin/partitions`, `/metrics`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OfflineReplica {
    /// The last failure.
    pub reason: String,
    /// Since when (ms since the epoch).
    pub since_ms: i64,
    /// Restarts before it was taken offline.
    pub restarts: u32,
}

/// Shared by every actor of one node.
pub struct NodeContext {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// This process's incarnation, random per start: registered in the metadata before any of
    /// its replicas leads (`RegisterBroker`).
    pub incarnation: u64,
    /// Whether the previous process stopped cleanly (the marker was there at start).
    pub clean_start: bool,
    /// Set once a shutdown stopped every partition in order: the clean-shutdown marker may be
    /// written.
    pub stopped_cleanly: std::sync::atomic::AtomicBool,
    /// The latest applied metadata; only the Raft state machine sends on it.
    pub metadata: watch::Sender<Arc<ClusterMetadata>>,
    /// The index of the last Raft entry applied here (proposers wait on it).
    pub applied_index: watch::Sender<u64>,
    /// The cluster as this node sees it; only the MembershipActor sends on it.
    pub cluster: watch::Sender<ClusterView>,
    /// The running openraft instance, replaced when the RaftActor restarts.
    pub raft: watch::Sender<Option<Raft>>,
    /// The Raft database, opened on first use and again when the RaftActor restarts.
    pub raft_db: crate::raft::RaftDb,
    /// Channels to the peers' Raft services, and when each last answered.
    pub peers: Arc<PeerChannels>,
    /// This node's followers' streams to their leaders, one per leader node.
    pub follow_links: crate::replica::FollowLinks,
    /// Node TLS for the Raft and replication servers (`[security] node_cert_file`...).
    pub node_tls: Option<crate::peer_auth::NodeTls>,
    /// The node-wide rate for replicas that are catching up (`rebalance_max_bytes_per_sec`, or
    /// `follower.replication.throttled.rate` set at run time).
    pub copy_throttle: chronik::partition::replication::CopyThrottle,
    /// The rebalancer's plan and progress; only the RebalancerActor sends on it.
    pub rebalance: watch::Sender<crate::rebalancer::RebalanceStatus>,
    /// The brokers the controller has fenced (no answer for a session); only the Controller
    /// sends on it, and only while this node is the Raft leader: empty everywhere else.
    pub fenced: watch::Sender<std::collections::BTreeSet<chronik::config::NodeId>>,
    // SHARED: every fetcher copying from one leader charges the same throttle.
    /// Per leader node with a run-time `leader.replication.throttled.rate`: the rate this
    /// node's catch-up copies from it share.
    pub leader_throttles: DashMap<chronik::config::NodeId, chronik::partition::replication::CopyThrottle>,
    /// The RaftActor, for proposals.
    pub raft_actor: Slot<RaftMsg>,
    /// The MetadataActor, for changes.
    pub metadata_actor: Slot<MetadataMsg>,
    /// The WalFlusher, for durability.
    pub flusher: Slot<WalFlusherMsg>,
    /// The GroupCoordinator, for consumer-group requests.
    pub coordinator: Slot<CoordinatorMsg>,
    /// The ReplicaSupervisor, told to reconcile after metadata changes.
    pub replica_supervisor: Slot<ReplicaSupervisorMsg>,
    // SHARED: the produce/fetch path looks up the partition's actor without queuing behind the
    // ReplicaSupervisor, which alone writes this map.
    /// Running replicas by partition.
    pub replicas: DashMap<TopicPartition, Counted<ReplicaMsg>>,
    // SHARED: written by the ReplicaSupervisor, read by the admin API, metrics and handlers.
    /// Replicas taken offline after exhausting their restart budget.
    pub offline: DashMap<TopicPartition, OfflineReplica>,
    /// Requests, latency and record bytes per API, for `/metrics`.
    pub requests: RequestMetrics,
    /// What the LogCleaner did, for `/metrics`.
    pub cleaner_metrics: crate::log_cleaner::CleanerMetrics,
    /// Live actors, for `/admin/actors`.
    pub directory: Arc<ActorDirectory>,
    // SHARED: written by transaction coordinators (local or over the wal port) and replicas,
    // read by every produce.
    /// Which producers may write transactional batches to which partitions here.
    pub transactions: crate::txn_registry::TxnRegistry,
    /// The TransactionCoordinator, for transaction requests.
    pub txn_coordinator: Slot<crate::txn_coordinator::TxnCoordinatorMsg>,
}

impl NodeContext {
    /// A context with nothing running yet; `clean_start` says whether the previous process
    /// stopped cleanly; `node_tls` is the node ports' TLS, loaded (and checked) once at start.
    pub fn new(config: Arc<Config>, clean_start: bool, node_tls: Option<crate::peer_auth::NodeTls>) -> Arc<Self> {
        let copy_throttle =
            chronik::partition::replication::CopyThrottle::new(config.replication.rebalance_max_bytes_per_sec);
        let peers = Arc::new(PeerChannels::new(
            config.security.cluster_secret.as_ref(),
            node_tls.as_ref().map(|t| t.client.clone()),
        ));
        Arc::new(Self {
            raft_db: crate::raft::RaftDb::at(&config.data_dir),
            copy_throttle,
            leader_throttles: DashMap::new(),
            follow_links: Default::default(),
            config,
            incarnation: uuid::Uuid::new_v4().as_u64_pair().0,
            clean_start,
            stopped_cleanly: std::sync::atomic::AtomicBool::new(false),
            offline: DashMap::new(),
            metadata: watch::Sender::new(Arc::new(ClusterMetadata::default())),
            applied_index: watch::Sender::new(0),
            cluster: watch::Sender::new(ClusterView::default()),
            raft: watch::Sender::new(None),
            peers,
            node_tls,
            rebalance: watch::Sender::new(Default::default()),
            fenced: watch::Sender::new(Default::default()),
            raft_actor: Slot::default(),
            metadata_actor: Slot::default(),
            flusher: Slot::default(),
            replica_supervisor: Slot::default(),
            coordinator: Slot::default(),
            replicas: DashMap::new(),
            directory: Arc::new(ActorDirectory::default()),
            requests: RequestMetrics::default(),
            cleaner_metrics: Default::default(),
            transactions: Default::default(),
            txn_coordinator: Slot::default(),
        })
    }

    /// The metadata as of now.
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.metadata.borrow().clone()
    }
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeContext").field("node_id", &self.config.node_id).finish_non_exhaustive()
    }
}
