//! Chronik's actors: everything that owns a mailbox, a socket or a timer.
//!
//! # Layout
//! - [`node_supervisor`]: the root; starts, restarts and stops the node's actors.
//! - [`raft`]: the Raft node — metadata log, state machine, membership, the raft port.
//! - [`membership`]: the cluster view (voters, learners, leader, term) from Raft's metrics;
//!   [`controller`]: on the Raft leader, fences silent brokers and elects partition leaders;
//!   [`rebalancer`]: on the Raft leader, moves replicas onto the voters' round-robin target.
//! - [`metadata_actor`]: proposes metadata changes through Raft; hands out producer ids.
//! - [`wal_flusher`]: group commit — fsyncs what replicas appended, then acks them.
//! - [`replica_supervisor`] / [`replica`]: one `ReplicaActor` per hosted partition, leading or
//!   following; [`replication_service`]: the wal port followers fetch from.
//! - [`group_coordinator`]: consumer groups; committed offsets in `__consumer_offsets`.
//! - [`kafka_listener`] / [`connection`]: one `ConnectionActor` per Kafka client connection;
//!   [`handlers`] has one file per Kafka API.
//! - [`admin`]: the warp admin API and `/metrics`; [`request_metrics`]: requests, latency
//!   and bytes per API.
//! - [`context`]: what the actors share; [`directory`]: the live tree for `/admin/actors`;
//!   [`supervision`]: the restart policy; [`clean_shutdown`]: whether the last stop was clean;
//!   [`blocking`]: disk work off the runtime's worker threads.

pub mod admin;
pub mod blocking;
pub mod clean_shutdown;
pub mod cli;
pub mod connection;
pub mod context;
pub mod controller;
pub mod directory;
pub mod group_coordinator;
pub mod handlers;
pub mod kafka_listener;
pub mod log_cleaner;
pub mod log_levels;
pub mod membership;
pub mod metadata_actor;
pub mod node_supervisor;
pub mod peer_auth;
pub mod raft;
pub mod rebalancer;
pub mod replica;
pub mod replica_supervisor;
pub mod replication_service;
pub mod request_metrics;
pub mod sasl;
pub mod supervision;
pub mod tls;
pub mod txn_coordinator;
pub mod txn_registry;
pub mod wal_flusher;

use std::sync::Arc;

use chronik::config::Config;
use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;

pub use context::NodeContext;
pub use node_supervisor::{NodeSupervisor, NodeSupervisorMsg};

/// Starts a node: its whole actor tree, listening on the configured addresses.
pub async fn start_node(
    config: Config,
) -> anyhow::Result<(ActorRef<NodeSupervisorMsg>, JoinHandle<()>, Arc<NodeContext>)> {
    // A certificate that cannot be used stops the start with its key named, instead of a
    // listener that fails over and over.
    for l in config.listeners().iter().filter(|l| l.protocol.tls()) {
        tls::acceptor(&config.tls, l.client_auth).map_err(anyhow::Error::msg)?;
    }
    tls::admin_acceptor(&config.security).map_err(anyhow::Error::msg)?;
    tls::admin_client(&config.security)
        .map_err(anyhow::Error::msg)?
        .build()
        .map_err(|e| anyhow::anyhow!("security.admin_ca_file: {e}"))?;
    let node_tls = peer_auth::NodeTls::load(&config.security, config.node_id).map_err(anyhow::Error::msg)?;
    let clean_start = clean_shutdown::take_marker(&config.data_dir)?;
    let ctx = NodeContext::new(Arc::new(config), clean_start, node_tls);
    raft::formation::check_identity(&ctx).await.map_err(anyhow::Error::msg)?;
    tracing::info!(clean_start, incarnation = ctx.incarnation, "starting the node");
    let (node, handle) = Actor::spawn(None, NodeSupervisor, ctx.clone()).await?;
    Ok((node, handle, ctx))
}
