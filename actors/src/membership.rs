//! `MembershipActor`: turns Raft's metrics into the node's [`ClusterView`] — voters, learners,
//! leader, term — and publishes it on `NodeContext::cluster` for the admin API and anyone else
//! who subscribes. A node outside the membership (started to be added later) learns the view
//! from its peers instead.
//!
//! A removed node never applies the change that removed it (the leader stops sending it the
//! log first), so a follower also asks its leader, or its peers while it knows none, whether it
//! was removed. Once it was, it stops taking part in elections: otherwise it would campaign
//! forever, sending vote requests to the nodes that carry on without it.

use std::sync::Arc;
use std::time::Duration;

use chronik::config::NodeId;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tracing::info;

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration, TaskGuard};
use crate::raft::{Raft, cluster_info};

/// How often a node outside the membership asks its peers for the cluster's view, and a
/// follower asks whether it was removed.
const OUTSIDER_POLL: Duration = Duration::from_secs(1);

/// The cluster as this node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// Voting members, sorted.
    pub voters: Vec<NodeId>,
    /// Non-voting members, sorted.
    pub learners: Vec<NodeId>,
    /// The Raft leader, if one is known.
    pub leader: Option<NodeId>,
    /// The current Raft term.
    pub term: u64,
    /// Whether this node is a voter or learner of the cluster.
    pub member: bool,
}

/// The membership actor's mailbox.
pub enum MembershipMsg {
    /// From the watcher task: the view as of now.
    Observed(ClusterView),
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct MembershipArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The membership actor's state.
pub struct MembershipState {
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// Follows Raft's metrics and feeds this actor.
    _watcher: TaskGuard,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct MembershipActor;

impl Actor for MembershipActor {
    type Msg = MembershipMsg;
    type State = MembershipState;
    type Arguments = MembershipArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MembershipMsg>,
        args: MembershipArgs,
    ) -> Result<MembershipState, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "membership".into(),
            "MembershipActor",
            args.restarts,
            MailboxGauge::default(),
        );
        let watcher = TaskGuard(tokio::spawn(watch(ctx.clone(), myself)));
        Ok(MembershipState { ctx, _watcher: watcher, registration })
    }

    async fn handle(
        &self,
        _: ActorRef<MembershipMsg>,
        msg: MembershipMsg,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        let MembershipMsg::Observed(view) = msg;
        let previous = state.ctx.cluster.borrow().clone();
        if view == previous {
            return Ok(());
        }
        if view.leader != previous.leader || view.term != previous.term {
            match view.leader {
                Some(leader) => info!(leader, term = view.term, "Raft leader: node {leader} (term {})", view.term),
                None => info!(term = view.term, "no Raft leader known"),
            }
        }
        if view.voters != previous.voters || view.learners != previous.learners {
            info!(voters = ?view.voters, learners = ?view.learners, member = view.member, "cluster membership");
        }
        state.ctx.cluster.send_replace(view);
        Ok(())
    }
}

/// Feeds the actor a view whenever Raft's metrics change, across RaftActor restarts; while this
/// node is not a member, polls its peers instead.
async fn watch(ctx: Arc<NodeContext>, actor: ActorRef<MembershipMsg>) {
    let mut handles = ctx.raft.subscribe();
    loop {
        let raft = handles.borrow_and_update().clone();
        let Some(raft) = raft else {
            if handles.changed().await.is_err() {
                return;
            }
            continue;
        };
        let mut metrics = raft.metrics();
        let mut removed = false;
        // Metrics change with every applied entry; ask about removal at most once per poll.
        let mut asked = tokio::time::Instant::now();
        loop {
            let me = ctx.config.node_id;
            let mut view = local_view(&raft, me);
            let ask = view.member && view.leader != Some(me) && !removed && asked.elapsed() >= OUTSIDER_POLL;
            if ask {
                asked = tokio::time::Instant::now();
                if was_removed(&ctx, view.leader).await {
                    info!("this node was removed from the cluster; it no longer takes part in Raft elections");
                    raft.runtime_config().elect(false);
                    removed = true;
                }
            }
            view.member &= !removed;
            let view = if view.member { view } else { outsider_view(&ctx).await.unwrap_or(view) };
            if actor.cast(MembershipMsg::Observed(view.clone())).is_err() {
                return;
            }
            let leads = view.leader == Some(me);
            let poll = async {
                if leads { std::future::pending::<()>().await } else { tokio::time::sleep(OUTSIDER_POLL).await }
            };
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { break },
                changed = handles.changed() => if changed.is_err() { return } else { break },
                () = poll => {}
            }
        }
    }
}

/// The view from this node's own Raft state.
fn local_view(raft: &Raft, me: NodeId) -> ClusterView {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let membership = m.membership_config.membership();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let learners: Vec<NodeId> = membership.learner_ids().collect();
    let member = voters.contains(&me) || learners.contains(&me);
    ClusterView { member, voters, learners, leader: m.current_leader, term: m.current_term }
}

/// Whether the leader (or, with none known, any peer) lists this node among the removed ones.
async fn was_removed(ctx: &NodeContext, leader: Option<NodeId>) -> bool {
    let me = ctx.config.node_id;
    let metadata = ctx.metadata();
    let addrs: Vec<String> = match leader.and_then(|id| metadata.nodes.get(&id)) {
        Some(node) => vec![node.raft.clone()],
        None => metadata.nodes.values().filter(|n| n.id != me).map(|n| n.raft.clone()).collect(),
    };
    for addr in addrs {
        if cluster_info(&ctx.peers, &addr).await.is_some_and(|info| info.removed.contains(&me)) {
            return true;
        }
    }
    false
}

/// The view of an initialized peer, for a node outside the membership.
async fn outsider_view(ctx: &NodeContext) -> Option<ClusterView> {
    let me = ctx.config.node_id;
    for peer in ctx.config.members().iter().filter(|p| p.id != me) {
        if let Some(info) = cluster_info(&ctx.peers, &peer.raft).await.filter(|i| i.initialized) {
            let mut voters = info.voters;
            voters.sort_unstable();
            let leader = info.leader_id;
            return Some(ClusterView { voters, learners: Vec::new(), leader, term: info.term, member: false });
        }
    }
    None
}
