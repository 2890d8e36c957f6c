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
    let membership = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        let config = m.membership_config.membership();
        Membership {
            me: ctx.config.node_id,
            leader: m.current_leader,
            voters: config.voter_ids().collect(),
            learners: config.learner_ids().collect(),
            removed: ctx.metadata().removed.clone(),
        }
    };
    check_new_node(&node, &membership)?;
    if busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(AddNodeError::InProgress);
    }
    let result = add_checked(ctx, raft, node).await;
    busy.store(false, Ordering::Release);
    result
}

/// What the leader knows when it checks a new node.
struct Membership {
    /// This node.
    me: NodeId,
    /// The Raft leader, if known.
    leader: Option<NodeId>,
    /// Current voters.
    voters: BTreeSet<NodeId>,
    /// Current learners.
    learners: BTreeSet<NodeId>,
    /// Ids of nodes that left; never reused.
    removed: BTreeSet<NodeId>,
}

/// The checks made before anything is proposed, in the order an operator fixes them.
fn check_new_node(node: &NodeInfo, m: &Membership) -> Result<(), AddNodeError> {
    for addr in [&node.kafka, &node.wal, &node.raft] {
        parse_host_port(addr).map_err(|why| AddNodeError::InvalidAddress(format!("{addr:?}: {why}")))?;
    }
    if m.leader != Some(m.me) {
        return Err(AddNodeError::NotLeader);
    }
    if m.voters.contains(&node.id) || m.learners.contains(&node.id) {
        return Err(AddNodeError::Exists(node.id));
    }
    if m.removed.contains(&node.id) {
        return Err(AddNodeError::Retired(node.id));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: NodeId, kafka: &str) -> NodeInfo {
        NodeInfo {
            id,
            kafka: kafka.into(),
            wal: "localhost:9294".into(),
            raft: "localhost:5004".into(),
            admin: "".into(),
        }
    }

    fn membership(me: NodeId, leader: NodeId) -> Membership {
        Membership { me, leader: Some(leader), voters: [1, 2, 3].into(), learners: [5].into(), removed: [6].into() }
    }

    #[test]
    fn a_new_node_is_checked_before_anything_is_proposed() {
        let leader = membership(1, 1);
        assert_eq!(check_new_node(&node(4, "localhost:9095"), &leader), Ok(()));
        let bad = check_new_node(&node(4, "localhost"), &leader).expect_err("no port");
        assert!(bad.to_string().starts_with("Invalid address format"), "{bad}");
        assert_eq!(check_new_node(&node(1, "localhost:9092"), &leader), Err(AddNodeError::Exists(1)));
        assert_eq!(check_new_node(&node(5, "localhost:9096"), &leader), Err(AddNodeError::Exists(5)), "a learner");
        assert_eq!(check_new_node(&node(6, "localhost:9097"), &leader), Err(AddNodeError::Retired(6)));
        let follower = membership(2, 1);
        assert_eq!(check_new_node(&node(4, "localhost:9095"), &follower), Err(AddNodeError::NotLeader));
        assert_eq!(
            AddNodeError::NotLeader.to_string(),
            "Cannot add node: this node is not the leader",
            "the seed's exact words"
        );
        assert_eq!(AddNodeError::Exists(1).to_string(), "Node 1 already exists in cluster");
    }
}
