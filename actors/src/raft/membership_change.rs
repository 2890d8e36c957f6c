//! Changing the Raft membership without an election (docs/design.md explains why). Adding: check
//! the node is reachable and is who the request says (its id, no other cluster's member, no
//! address another member uses), add it as a learner, wait until it has replicated the entry that
//! added it, then promote it to voter. A request for a node that is already a learner (a previous
//! leader died between the two steps) continues from the learner. Removing (after the rebalancer
//! drained the node): drop it from the voters. Joint consensus keeps the leader; the term does not
//! change.

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
use super::proto::ClusterInfoReply;
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
    /// Something else answers at the address: another node of this cluster, or another id.
    #[error("Cannot add node {expected}: the node at {addr} is node {found}")]
    WrongNode {
        /// The id asked for.
        expected: NodeId,
        /// The raft address asked for.
        addr: String,
        /// The id the node at that address reports.
        found: NodeId,
    },
    /// The node belongs to another cluster (its data directory holds another cluster's log).
    #[error("Cannot add node {id}: it belongs to another cluster ({cluster})")]
    OtherCluster {
        /// The node.
        id: NodeId,
        /// The cluster it reports.
        cluster: String,
    },
    /// Another member already uses one of the new node's addresses.
    #[error("Cannot add node {id}: address {addr} belongs to node {owner}")]
    AddressInUse {
        /// The node asked for.
        id: NodeId,
        /// The address.
        addr: String,
        /// The member using it.
        owner: NodeId,
    },
    /// Raft refused a step.
    #[error("Raft refused the membership change: {0}")]
    Raft(String),
}

/// Adds `node` as a voter; one change at a time (`busy` is the node-wide flag).
pub async fn add_node(ctx: &NodeContext, raft: &Raft, node: NodeInfo, busy: &AtomicBool) -> Result<(), AddNodeError> {
    add_node_asking(ctx, raft, node, busy, async |addr: &str| cluster_info(&ctx.peers, addr).await).await
}

/// [`add_node`], asking the new node who it is through `ask` (given its raft address; `None`
/// when it does not answer): the Raft service's ClusterInfo, or the simulation's network.
pub async fn add_node_asking(
    ctx: &NodeContext,
    raft: &Raft,
    node: NodeInfo,
    busy: &AtomicBool,
    ask: impl AsyncFnOnce(&str) -> Option<ClusterInfoReply>,
) -> Result<(), AddNodeError> {
    let membership = Membership::of(ctx, raft);
    let step = check_new_node(&node, &membership)?;
    if busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(AddNodeError::InProgress);
    }
    let result = match step {
        AddStep::Learner => add_checked(ctx, raft, node, ask).await,
        AddStep::Promote => {
            info!(node = node.id, "node {} is already a learner; continuing its addition", node.id);
            promote(raft, node.id, membership.membership_index).await
        }
    };
    busy.store(false, Ordering::Release);
    result
}

/// What the leader knows when it checks a new node.
pub(super) struct Membership {
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
    /// Every member's addresses, by id.
    nodes: std::collections::BTreeMap<NodeId, NodeInfo>,
    /// The log index of the current membership (a learner holding it has caught up with its
    /// own addition).
    membership_index: u64,
}

impl Membership {
    /// As this node's Raft and metadata see it now.
    pub(super) fn of(ctx: &NodeContext, raft: &Raft) -> Self {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        let config = m.membership_config.membership();
        let metadata = ctx.metadata();
        Membership {
            me: ctx.config.node_id,
            leader: m.current_leader,
            voters: config.voter_ids().collect(),
            learners: config.learner_ids().collect(),
            removed: metadata.removed.clone(),
            nodes: config.nodes().map(|(id, n)| (*id, n.clone())).collect(),
            membership_index: m.membership_config.log_id().map_or(0, |id| id.index),
        }
    }
}

/// How an addition proceeds once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddStep {
    /// A new node: add it as a learner first.
    Learner,
    /// Already a learner with these addresses: wait for it to catch up, then promote it.
    Promote,
}

/// The checks made before anything is proposed, in the order an operator fixes them.
fn check_new_node(node: &NodeInfo, m: &Membership) -> Result<AddStep, AddNodeError> {
    for addr in [&node.kafka, &node.wal, &node.raft] {
        parse_host_port(addr).map_err(|why| AddNodeError::InvalidAddress(format!("{addr:?}: {why}")))?;
    }
    if m.leader != Some(m.me) {
        return Err(AddNodeError::NotLeader);
    }
    if m.learners.contains(&node.id) && m.nodes.get(&node.id).is_some_and(|n| n.raft == node.raft) {
        return Ok(AddStep::Promote);
    }
    if m.voters.contains(&node.id) || m.learners.contains(&node.id) {
        return Err(AddNodeError::Exists(node.id));
    }
    if m.removed.contains(&node.id) {
        return Err(AddNodeError::Retired(node.id));
    }
    for (id, member) in &m.nodes {
        for (addr, used) in [(&node.raft, &member.raft), (&node.wal, &member.wal), (&node.kafka, &member.kafka)] {
            if addr == used {
                return Err(AddNodeError::AddressInUse { id: node.id, addr: addr.clone(), owner: *id });
            }
        }
    }
    Ok(AddStep::Learner)
}

/// Asks the node at the new raft address who it is, before anything is proposed: a node that is
/// not running, that is another node (of this cluster or not), or that belongs to another
/// cluster is refused.
async fn check_identity(
    ctx: &NodeContext,
    node: &NodeInfo,
    ask: impl AsyncFnOnce(&str) -> Option<ClusterInfoReply>,
) -> Result<(), AddNodeError> {
    let (id, addr) = (node.id, node.raft.clone());
    let Some(answer) = ask(&addr).await else {
        return Err(AddNodeError::Unreachable { id, addr });
    };
    if answer.node_id != id {
        return Err(AddNodeError::WrongNode { expected: id, addr, found: answer.node_id });
    }
    let ours = ctx.metadata().cluster_id.clone().unwrap_or_default();
    let theirs = answer.cluster_id;
    if answer.initialized && theirs != ours {
        let cluster = if theirs.is_empty() { "a cluster without an id".to_string() } else { theirs };
        return Err(AddNodeError::OtherCluster { id, cluster });
    }
    Ok(())
}

async fn add_checked(
    ctx: &NodeContext,
    raft: &Raft,
    node: NodeInfo,
    ask: impl AsyncFnOnce(&str) -> Option<ClusterInfoReply>,
) -> Result<(), AddNodeError> {
    let id = node.id;
    // Reachable and itself before anything is proposed: a dead learner would make the leader
    // retry it forever, a dead voter would weaken the quorum, and a voter that is really another
    // member would hold two votes.
    check_identity(ctx, &node, ask).await?;
    info!(node = id, raft = %node.raft, "adding node {id} as a learner");
    let added = raft.add_learner(id, node, false).await.map_err(|e| AddNodeError::Raft(e.to_string()))?;
    let fail_points = &ctx.config.debug;
    let pause = fail_points.pause_after_add_learner_ms;
    if fail_points.fail_points && pause > 0 {
        warn!(node = id, ms = pause, "fail point: pausing between learner and voter");
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    promote(raft, id, added.log_id.index).await
}

/// Waits until learner `id` holds the entry at `index` (the one that added it), then makes it a
/// voter; removes it again if it does not catch up in time.
async fn promote(raft: &Raft, id: NodeId, index: u64) -> Result<(), AddNodeError> {
    // openraft's blocking add_learner returns early on a short log; wait for the learner to
    // hold the very entry that added it.
    if !caught_up(raft, id, index, CATCH_UP).await {
        warn!(node = id, "node {id} did not catch up; removing the learner");
        let _ = raft.change_membership(ChangeMembers::RemoveNodes([id].into()), false).await;
        return Err(AddNodeError::CatchUpTimeout(id));
    }
    // Not `retain`: no voter leaves in an addition, except when it finishes a removal a previous
    // leader left joint; that voter must leave for good, not stay on as a learner that the
    // stranded-learner duty would promote back.
    raft.change_membership(ChangeMembers::AddVoterIds([id].into()), false)
        .await
        .map_err(|e| AddNodeError::Raft(e.to_string()))?;
    info!(node = id, "node {id} is a voter");
    Ok(())
}

/// Whether learner `id` replicates the log up to `index` within `within`.
pub(super) async fn caught_up(raft: &Raft, id: NodeId, index: u64, within: Duration) -> bool {
    raft.wait(Some(within))
        .metrics(
            |m| {
                let matched = m.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten());
                matched.is_some_and(|log_id| log_id.index >= index)
            },
            "the learner to replicate its own addition",
        )
        .await
        .is_ok()
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

/// Finishes a joint membership a previous leader left: it committed the joint configuration and
/// died before the final one, so both voter sets must agree on every entry and no addition in
/// progress will finish it (a retried `add-node` finds the node already a voter). Does nothing
/// unless this node leads a joint configuration and no membership change runs here.
pub async fn finish_joint(raft: &Raft, busy: &AtomicBool) -> Result<(), String> {
    let joint = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        m.current_leader == Some(m.id) && m.membership_config.membership().get_joint_config().len() > 1
    };
    if !joint || busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Ok(());
    }
    info!("finishing a membership change a previous leader left joint");
    // No voter added: from the joint configuration openraft moves to its newer half; voters the
    // change removed leave (as `remove_voter` has them), they do not stay on as learners.
    let result = raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::new()), false).await;
    busy.store(false, Ordering::Release);
    result.map(|_| ()).map_err(|e| e.to_string())
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
            listeners: Default::default(),
        }
    }

    fn membership(me: NodeId, leader: NodeId) -> Membership {
        let members = [1, 2, 3, 5].map(|id| (id, node(id, &format!("localhost:919{id}"))));
        let mut nodes: std::collections::BTreeMap<NodeId, NodeInfo> = members.into();
        for (id, n) in nodes.iter_mut() {
            n.wal = format!("localhost:929{id}");
            n.raft = format!("localhost:500{id}");
        }
        Membership {
            me,
            leader: Some(leader),
            voters: [1, 2, 3].into(),
            learners: [5].into(),
            removed: [6].into(),
            nodes,
            membership_index: 10,
        }
    }

    #[test]
    fn a_new_node_is_checked_before_anything_is_proposed() {
        let leader = membership(1, 1);
        assert_eq!(check_new_node(&node(4, "localhost:9095"), &leader), Ok(AddStep::Learner));
        let bad = check_new_node(&node(4, "localhost"), &leader).expect_err("no port");
        assert!(bad.to_string().starts_with("Invalid address format"), "{bad}");
        assert_eq!(check_new_node(&node(1, "localhost:9092"), &leader), Err(AddNodeError::Exists(1)));
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

    #[test]
    fn a_learner_left_by_a_previous_leader_is_promoted_and_addresses_are_not_shared() {
        let leader = membership(1, 1);
        let learner = NodeInfo { raft: "localhost:5005".into(), ..node(5, "localhost:9096") };
        assert_eq!(check_new_node(&learner, &leader), Ok(AddStep::Promote), "a retry continues");
        let elsewhere = NodeInfo { raft: "localhost:6005".into(), ..learner.clone() };
        assert_eq!(check_new_node(&elsewhere, &leader), Err(AddNodeError::Exists(5)), "another node, same id");
        let twin = NodeInfo { raft: "localhost:5002".into(), ..node(8, "localhost:9098") };
        let err = check_new_node(&twin, &leader).expect_err("node 2's raft address");
        assert_eq!(err, AddNodeError::AddressInUse { id: 8, addr: "localhost:5002".into(), owner: 2 });
        assert_eq!(err.to_string(), "Cannot add node 8: address localhost:5002 belongs to node 2");
    }
}
