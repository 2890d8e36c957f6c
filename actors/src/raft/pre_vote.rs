//! Elections with a pre-vote round (Raft thesis §9.6): a voter that has not heard from a leader
//! for its election timeout first asks the other voters whether they would vote for it, and
//! starts an election (a new term) only when a majority says yes.
//!
//! Why: openraft 0.9 has no pre-vote. A voter that was frozen (SIGSTOP, a stalled VM, a long GC
//! pause) or cut off wakes up past its election timeout and campaigns at once, in a higher
//! term; the leader, answered with that term on its next append, steps down, and the cluster
//! holds an election it did not need (measured: a follower frozen for 6 s took the leadership
//! from a healthy leader when it woke). Here openraft's own election timer starts off
//! (`enable_elect = false`) and [`run`] turns it on only after a won pre-vote round. A peer
//! grants a pre-vote only when it does not lead and has not heard from a leader for its minimum
//! election timeout either; a pre-vote changes nothing on either side.
//!
//! The thesis also compares terms and logs; here both are left to the real vote, because
//! openraft learns a higher term only from a vote's answer: a voter refusing a candidate's
//! RequestVote on its log keeps its own lower term. Refusing pre-votes from lower terms then
//! locked the up-to-date nodes out of every election while the stale ones, in higher terms,
//! lost every vote (the simulation's seed 1 had no leader for 20 s). With no leader heard from
//! by a majority an election is due anyway; a candidate with a shorter log loses it as it
//! always did, and its answers carry the higher term to the candidate that can win.

use std::future::Future;
use std::time::Duration;

use chronik::cluster::NodeInfo;
use chronik::config::NodeId;
use openraft::ServerState;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{debug, info};

use super::Raft;

/// A candidate's question: would you vote for me in `term`?
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PreVote {
    /// The node asking.
    pub candidate: NodeId,
    /// The term it would campaign in (its current term + 1), for the logs: the real vote
    /// compares terms (see the module doc).
    pub term: u64,
}

/// How a candidate asks one peer for its pre-vote: `true` only for a grant (no answer is no).
pub trait PreVoteNetwork: Send + Sync + 'static {
    /// Asks `target` (at `node`) whether it would vote for `request`, within `timeout`.
    fn ask(
        &self,
        target: NodeId,
        node: &NodeInfo,
        request: PreVote,
        timeout: Duration,
    ) -> impl Future<Output = bool> + Send;
}

/// Whether this node leads, or follows a leader it heard from within `quiet`; `None` once
/// openraft has stopped.
async fn leader_heard(raft: &Raft, quiet: Duration) -> Option<bool> {
    let (leads, heard, following) = raft
        .with_raft_state(|s| {
            (s.server_state == ServerState::Leader, s.vote_last_modified(), s.vote_ref().is_committed())
        })
        .await
        .ok()?;
    Some(leads || (following && heard.is_some_and(|at| at.elapsed() < quiet)))
}

/// Whether this node would vote for a candidate now: it neither leads nor heard from a leader
/// within `quiet`, its minimum election timeout.
pub async fn grant(raft: &Raft, quiet: Duration) -> bool {
    leader_heard(raft, quiet).await == Some(false)
}

/// The election timeout of attempt `attempt` of node `me`, in `[min, max)` ms (`min` when the
/// range is empty). Drawn from the node id and attempt, not a random source: different nodes
/// still draw different timeouts, and the simulation replays it exactly.
fn timeout(me: NodeId, attempt: u64, (min, max): (u64, u64)) -> Duration {
    let span = max.saturating_sub(min).max(1);
    // splitmix64: spreads consecutive ids and attempts over the whole range.
    let mut z = me.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(attempt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    Duration::from_millis(min + z % span)
}

/// This node's elections, until the task is aborted. While it leads or hears from a leader,
/// openraft's election timer stays off. Once it has heard from none for its election timeout
/// (and ran no pre-vote round within it), it runs one; with a majority of the voters granting,
/// it turns openraft's timer on until a leader is heard from again, so openraft campaigns with
/// its own timing (its backoff after seeing a longer log included, which ends split votes
/// between a stale and an up-to-date candidate). `timeouts` is the configured election timeout
/// range, in ms.
pub async fn run(raft: Raft, me: NodeId, network: impl PreVoteNetwork, timeouts: (u64, u64)) {
    let quiet = Duration::from_millis(timeouts.0);
    let tick = (quiet / 4).max(Duration::from_millis(10));
    let (mut attempt, mut last_round, mut electing) = (0u64, Instant::now(), false);
    loop {
        let Some(led) = leader_heard(&raft, quiet).await else { return };
        if led {
            last_round = Instant::now();
            if electing {
                raft.runtime_config().elect(false);
                electing = false;
            }
        }
        let wait = timeout(me, attempt, timeouts);
        if led || electing || last_round.elapsed() < wait {
            tokio::time::sleep(tick).await;
            continue;
        }
        let (voters, peers): (Vec<NodeId>, Vec<(NodeId, NodeInfo)>) = {
            let metrics = raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let voters: Vec<NodeId> = membership.voter_ids().collect();
            let peers = voters
                .iter()
                .filter(|&&id| id != me)
                .filter_map(|&id| membership.get_node(&id).map(|n| (id, n.clone())))
                .collect();
            (voters, peers)
        };
        last_round = Instant::now();
        attempt += 1;
        if !voters.contains(&me) {
            continue;
        }
        let request = PreVote { candidate: me, term: raft.metrics().borrow().current_term + 1 };
        let asked = peers.iter().map(|(id, node)| network.ask(*id, node, request, wait));
        let granted = 1 + futures::future::join_all(asked).await.into_iter().filter(|&yes| yes).count();
        if granted > voters.len() / 2 {
            info!(granted, voters = voters.len(), "no leader heard from; pre-vote won, elections on");
            raft.runtime_config().elect(true);
            electing = true;
        } else {
            debug!(granted, voters = voters.len(), "pre-vote lost: a majority still hears from a leader");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_timeouts_stay_in_range_and_differ_between_nodes() {
        let range = (1500, 3000);
        let drawn: Vec<Duration> = (1..=3).flat_map(|me| (0..50).map(move |a| timeout(me, a, range))).collect();
        assert!(drawn.iter().all(|t| (1500..3000).contains(&(t.as_millis() as u64))));
        let firsts: std::collections::BTreeSet<_> = (1..=3).map(|me| timeout(me, 0, range)).collect();
        assert_eq!(firsts.len(), 3, "nodes 1-3 draw different first timeouts");
        assert_eq!(timeout(2, 7, (40, 41)), Duration::from_millis(40), "an empty range gives its minimum");
    }
}
