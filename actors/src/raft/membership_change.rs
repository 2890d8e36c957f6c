//! Changing the Raft membership without an election (DESIGN §3). Adding: check the node is
//! reachable, add it as a learner, wait until it has replicated the entry that added it, then
//! promote it to voter. Removing (after the rebalancer drained the node): drop it from the
//! voters. Joint consensus keeps the leader; the term does not change.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chronik::cluster::NodeInfo;
use chronik::config::NodeId;
use chronik::config::parse_host_port;
use openraft::ChangeMembers;
use tracing::{info, warn};

use super::Raft;
use super::network::cluster_info;
use crate::context::NodeContext;

/// How long a new learner may take to replicate the log before the addition is abandoned.
const CATCH_UP: Duration = Duration::from_secs(30);

/// Why a node cannot be added; each maps to an HTTP status in the admin API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddNodeError {
    /// An address is not `host:port`.
    #[error("Invalid address format: {0}")]
    InvalidAddress(String),
    /// This node does not lead the Raft cluster.
    #[error("Cannot add node: this node is not the leader")]
    NotLeader,
    /// The id is a voter or learner already.
    #[error("Node {0} already exists in cluster")]
    Exists(NodeId),
    /// The id belonged to a node that was removed; a removed node keeps campaigning with its
    /// old id, so ids are never reused.
    #[error("Node {0} was removed from the cluster; node ids are never reused")]
    Retired(NodeId),
    /// Another membership change has not finished.
    #[error("Cannot add node: a membership change is in progress")]
    InProgress,
    /// Nothing answers on the new node's raft address; nothing was proposed.
    #[error("Node {id} is not reachable at {addr}: start it first")]
    Unreachable {
        /// The node.
        id: NodeId,
        /// Its raft address.
        addr: String,
    },
    /// The learner did not catch up in time and was removed again.
    #[error("Node {0} did not catch up within 30 s; it was removed again")]
    CatchUpTimeout(NodeId),
    /// Raft refused a step.
    #[error("Raft refused the membership change: {0}")]
    Raft(String),
}

/// Adds `node` as a voter; one change at a time (`busy` is the node-wide flag).
pub async fn add_node(ctx: &NodeContext, raft: &Raft, node: NodeInfo, busy: &AtomicBool) -> Result<(), AddNodeError> {
    for addr in [&node.kafka, &node.wal, &node.raft] {
        parse_host_port(addr).map_err(|why| AddNodeError::InvalidAddress(format!("{addr:?}: {why}")))?;
    }
    let me = ctx.config.node_id;
    let (leader, voters, learners) = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        (
            m.current_leader,
            membership.voter_ids().collect::<BTreeSet<_>>(),
            membership.learner_ids().collect::<BTreeSet<_>>(),
        )
    };
    if leader != Some(me) {
        return Err(AddNodeError::NotLeader);
    }
    if voters.contains(&node.id) || learners.contains(&node.id) {
        return Err(AddNodeError::Exists(node.id));
    }
    if ctx.metadata().removed.contains(&node.id) {
        return Err(AddNodeError::Retired(node.id));
    }
    if busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(AddNodeError::InProgress);
    }
    let result = add_checked(ctx, raft, node).await;
    busy.store(false, Ordering::Release);
    result
}

async fn add_checked(ctx: &NodeContext, raft: &Raft, node: NodeInfo) -> Result<(), AddNodeError> {
    let id = node.id;
    // Reachable before anything is proposed: a dead learner would make the leader retry it
    // forever, and a dead voter would weaken the quorum.
    if cluster_info(&ctx.peers, &node.raft).await.is_none() {
        return Err(AddNodeError::Unreachable { id, addr: node.raft.clone() });
    }
    info!(node = id, raft = %node.raft, "adding node {id} as a learner");
    let added = raft.add_learner(id, node, false).await.map_err(|e| AddNodeError::Raft(e.to_string()))?;
    let index = added.log_id.index;
    // openraft's blocking add_learner returns early on a short log; wait for the learner to
    // hold the very entry that added it.
    let caught_up = raft
        .wait(Some(CATCH_UP))
        .metrics(
            |m| {
                let matched = m.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten());
                matched.is_some_and(|log_id| log_id.index >= index)
            },
            "the learner to replicate its own addition",
        )
        .await;
    if caught_up.is_err() {
        warn!(node = id, "node {id} did not catch up; removing the learner");
        let _ = raft.change_membership(ChangeMembers::RemoveNodes([id].into()), false).await;
        return Err(AddNodeError::CatchUpTimeout(id));
    }
    raft.change_membership(ChangeMembers::AddVoterIds([id].into()), true)
        .await
        .map_err(|e| AddNodeError::Raft(e.to_string()))?;
    info!(node = id, "node {id} is a voter");
    Ok(())
}

/// The last step of removing a node, once the rebalancer has moved all its replicas away: the
/// node leaves the Raft voters (joint consensus again, so the leader stays unless it is the node
/// removed). Skipped, to be retried, while another membership change runs.
pub async fn remove_voter(raft: &Raft, id: NodeId, busy: &AtomicBool) -> Result<(), String> {
    if busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err("a membership change is in progress".into());
    }
    info!(node = id, "node {id} holds no replicas; removing it from the Raft voters");
    let result = raft.change_membership(ChangeMembers::RemoveVoters([id].into()), false).await;
    busy.store(false, Ordering::Release);
    result.map_err(|e| e.to_string())?;
    info!(node = id, "node {id} removed from the cluster");
    Ok(())
}
