//! What the Raft leader does on its own, on a timer: give the cluster its identity once
//! (`InitCluster`), and finish or undo a membership change a previous leader left half done — a
//! joint configuration, or a learner that no `add-node` in progress will promote
//! (`chronik::cluster::learners`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

use chronik::cluster::MetadataCommand;
use chronik::cluster::learners::{StrandedLearner, decide_stranded};
use chronik::config::NodeId;
use openraft::ChangeMembers;
use tracing::{info, warn};

use super::membership_change::caught_up;
use super::writer::Writer;
use super::{Raft, leader_write};
use crate::context::NodeContext;

/// How often the leader looks.
pub(super) const TICK: Duration = Duration::from_secs(2);
/// How recently a learner must have answered the leader to count as alive.
const ANSWERED_WITHIN: Duration = Duration::from_secs(5);

/// The leader's memory between ticks.
#[derive(Default)]
pub(super) struct LeaderDuties {
    /// Learners with no addition in progress, and since when they were seen so.
    stranded: BTreeMap<NodeId, Instant>,
    /// An `InitCluster` proposal is in flight.
    initializing: Arc<AtomicBool>,
}

impl LeaderDuties {
    /// One tick: nothing unless this node leads; `busy` is the node-wide membership-change flag.
    pub(super) fn tick(&mut self, ctx: &Arc<NodeContext>, writer: &Writer, busy: &Arc<AtomicBool>) {
        let raft = writer.raft();
        let (leader, learners, index) = {
            let metrics = raft.metrics();
            let m = metrics.borrow();
            let learners: Vec<NodeId> = m.membership_config.membership().learner_ids().collect();
            (m.current_leader, learners, m.membership_config.log_id().map_or(0, |id| id.index))
        };
        if leader != Some(ctx.config.node_id) {
            self.stranded.clear();
            return;
        }
        self.ensure_cluster_id(ctx, writer);
        self.stranded.retain(|id, _| learners.contains(id));
        if busy.load(Ordering::Acquire) {
            // An addition is running here: its learner is not stranded; look again later.
            self.stranded.clear();
            return;
        }
        if raft.metrics().borrow().membership_config.membership().get_joint_config().len() > 1 {
            let (raft, busy) = (raft.clone(), busy.clone());
            tokio::spawn(async move {
                if let Err(e) = super::membership_change::finish_joint(&raft, &busy).await {
                    warn!(error = %e, "could not finish the joint membership; retrying later");
                }
            });
            return;
        }
        for id in learners {
            let since = *self.stranded.entry(id).or_insert_with(Instant::now);
            let synced = raft.metrics().borrow().replication.as_ref().and_then(|r| r.get(&id).cloned().flatten());
            let caught_up = synced.is_some_and(|log_id| log_id.index >= index);
            let answering = ctx.peers.answered_within(id, ANSWERED_WITHIN);
            let decision = decide_stranded(since.elapsed(), caught_up, answering);
            if decision == StrandedLearner::Wait
                || busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err()
            {
                continue;
            }
            self.stranded.remove(&id);
            tokio::spawn(settle(raft.clone(), id, index, decision, busy.clone()));
            return;
        }
    }

    /// A cluster formed without an id (or before ids existed) gets one from its leader.
    fn ensure_cluster_id(&self, ctx: &Arc<NodeContext>, writer: &Writer) {
        if ctx.metadata().cluster_id.is_some() || self.initializing.swap(true, Ordering::AcqRel) {
            return;
        }
        let command = MetadataCommand::InitCluster {
            cluster_id: uuid::Uuid::new_v4().to_string(),
            min_insync_replicas: ctx.config.min_insync_replicas,
        };
        let (ctx, writer, flag) = (ctx.clone(), writer.clone(), self.initializing.clone());
        // Only as the leader, never forwarded: a node deposed meanwhile leaves it to the next
        // leader's duty, and a forward would reach for the network from a timer.
        tokio::spawn(async move {
            match leader_write(&ctx, &writer, vec![command]).await {
                Ok(_) => info!(cluster_id = ?ctx.metadata().cluster_id, "cluster identity set"),
                Err(e) => warn!(error = %e, "could not set the cluster identity yet"),
            }
            flag.store(false, Ordering::Release);
        });
    }
}

/// The duties on their timer, outside a RaftActor (which ticks the same [`LeaderDuties`] from its
/// mailbox): how the simulation runs them next to its openraft.
pub async fn run(ctx: Arc<NodeContext>, raft: Raft, busy: Arc<AtomicBool>) {
    let (writer, _writer_task) = Writer::start(raft);
    let mut duties = LeaderDuties::default();
    loop {
        tokio::time::sleep(TICK).await;
        duties.tick(&ctx, &writer, &busy);
    }
}

/// Promotes or removes stranded learner `id`, holding the membership-change flag meanwhile.
async fn settle(raft: Raft, id: NodeId, index: u64, decision: StrandedLearner, busy: Arc<AtomicBool>) {
    let result = match decision {
        StrandedLearner::Promote => {
            info!(node = id, "finishing the addition of node {id}: a learner no addition was promoting, caught up");
            if caught_up(&raft, id, index, Duration::from_secs(5)).await {
                // Not `retain`, as in `promote`.
                raft.change_membership(ChangeMembers::AddVoterIds([id].into()), false).await.map(|_| ())
            } else {
                Ok(())
            }
        }
        StrandedLearner::Remove => {
            warn!(node = id, "removing node {id}: a learner no addition was promoting never caught up");
            raft.change_membership(ChangeMembers::RemoveNodes([id].into()), false).await.map(|_| ())
        }
        StrandedLearner::Wait => Ok(()),
    };
    if let Err(e) = result {
        warn!(node = id, error = %e, "the stranded learner's membership change failed; retrying later");
    }
    busy.store(false, Ordering::Release);
}
