//! Cluster formation (docs/architecture.md, "Formation"). A node with Raft state rejoins from it.
//! A fresh node asks its peers whether a cluster exists: if one does, it waits to be reached (or
//! added); if none does, the lowest configured id initializes Raft with every configured peer as a
//! voter, once all of them answer (or, after `ALL_PEERS_WAIT`, a majority): a vote sent to a peer
//! that is not listening yet fails loudly and costs a term.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::network::cluster_info;
use super::{Raft, node_info};
use crate::context::NodeContext;

/// Between two rounds of asking the peers.
const RETRY: Duration = Duration::from_secs(1);
/// How long the bootstrapping node waits for every peer before settling for a majority.
const ALL_PEERS_WAIT: Duration = Duration::from_secs(10);

/// Refuses to start a node whose data directory belongs to another cluster than the one its
/// configured peers form: with the other cluster's Raft log and partition data it would be taken
/// for a member here and serve that cluster's records to this one's clients. Peers that do not
/// answer, or whose cluster has no id yet, prove nothing either way.
pub async fn check_identity(ctx: &NodeContext) -> Result<(), String> {
    let db = ctx.raft_db.get()?;
    let Some(ours) = super::state_machine::StateMachine::stored_cluster_id(&db)? else { return Ok(()) };
    let me = ctx.config.node_id;
    let members = ctx.config.members();
    let others: Vec<_> = members.iter().filter(|p| p.id != me).collect();
    let answers = futures::future::join_all(others.iter().map(|p| cluster_info(&ctx.peers, &p.raft))).await;
    for (peer, answer) in others.iter().zip(answers) {
        let Some(theirs) = answer.filter(|a| a.initialized).map(|a| a.cluster_id) else { continue };
        if !theirs.is_empty() && theirs != ours {
            return Err(format!(
                "the data directory {} belongs to cluster {ours}, but peer {} at {} is a member of cluster \
                 {theirs}: refusing to start (start this node on its own data directory, or an empty one \
                 to join as a new node)",
                ctx.config.data_dir, peer.id, peer.raft
            ));
        }
    }
    Ok(())
}

/// Runs until this node is part of a cluster or knows it has to wait to be added.
pub async fn form(ctx: Arc<NodeContext>, raft: Raft) {
    if raft.is_initialized().await.unwrap_or(false) {
        info!("Raft state recovered from the data dir; rejoining the cluster");
        return;
    }
    let me = ctx.config.node_id;
    let members = ctx.config.members();
    let lowest = members.iter().map(|p| p.id).min().unwrap_or(me);
    let started = tokio::time::Instant::now();
    loop {
        let others = members.iter().filter(|p| p.id != me);
        let answers = futures::future::join_all(others.map(|p| cluster_info(&ctx.peers, &p.raft))).await;
        if let Some(existing) = answers.iter().flatten().find(|a| a.initialized) {
            if existing.voters.contains(&me) {
                info!(voters = ?existing.voters, "a cluster exists with this node as a member; waiting for its leader");
            } else {
                info!(
                    voters = ?existing.voters,
                    "a cluster already exists and this node is not a member: running as a non-voter, waiting to be added"
                );
            }
            return;
        }
        if raft.is_initialized().await.unwrap_or(false) {
            return;
        }
        // Peers that answered, this node included.
        let up = 1 + answers.iter().filter(|a| a.is_some()).count();
        let quorum = members.len() / 2 + 1;
        let ready = up == members.len() || (up >= quorum && started.elapsed() >= ALL_PEERS_WAIT);
        if me == lowest && !ready {
            info!(answering = up, configured = members.len(), "waiting for the peers to start before bootstrapping");
        }
        if me == lowest && ready {
            let nodes: BTreeMap<_, _> = members.iter().map(|p| (p.id, node_info(p))).collect();
            let voters: Vec<_> = nodes.keys().copied().collect();
            match raft.initialize(nodes).await {
                Ok(()) => info!(?voters, "✓ Raft cluster bootstrapped successfully"),
                Err(e) => warn!(error = %e, "Raft initialization refused (already initialized?)"),
            }
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}
