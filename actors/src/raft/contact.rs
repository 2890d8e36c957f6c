//! Whether this node's metadata can be trusted right now: it is in touch with the Raft leader
//! (or, as the leader, with a majority), and has applied what the leader had committed when it
//! came back in touch.
//!
//! A node that was frozen (SIGSTOP, a stalled VM) or cut off wakes up with the metadata of
//! before: it still believes it leads the partitions and coordinates the groups it did, while
//! the controller fenced it after `session_timeout_ms` and moved them. Until it hears from the
//! leader again it would answer OffsetFetch from its old cache and read requests buffered in its
//! sockets as if nothing had happened. Kafka brokers have the same window; here the group and
//! transaction coordinators, FindCoordinator and a fetch about to answer OFFSET_OUT_OF_RANGE ask
//! [`in_touch`] first and send clients elsewhere while it says no. Its bound is half the
//! session, so a node stops serving before the controller can have fenced it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chronik::config::NodeId;
use openraft::ServerState;
use tokio::time::Instant;

use crate::context::NodeContext;

/// The last contact with the Raft leader, seen from both sides.
#[derive(Default)]
pub struct LeaderContact {
    /// As a follower or learner: when this node last accepted the leader's AppendEntries.
    heard: Mutex<Heard>,
    /// As the leader: when each peer last accepted this node's AppendEntries.
    acked: Mutex<HashMap<NodeId, Instant>>,
}

/// A follower's side of [`LeaderContact`].
#[derive(Default)]
struct Heard {
    /// When the leader's last AppendEntries was accepted here.
    at: Option<Instant>,
    /// The leader's commit index at the first contact after a lapse: what must be applied
    /// here before the metadata is current again.
    catch_up_to: u64,
}

impl LeaderContact {
    /// This node accepted an AppendEntries (a heartbeat included) from the leader, whose commit
    /// index was `leader_commit`. After a lapse longer than `bound` that index is what this
    /// node has to apply before it is current again.
    pub fn heard(&self, leader_commit: u64, bound: Duration) {
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if heard.at.is_none_or(|at| now.duration_since(at) > bound) {
            heard.catch_up_to = leader_commit;
        }
        heard.at = Some(now);
    }

    /// `peer` accepted an AppendEntries this node sent as the leader.
    pub fn acked(&self, peer: NodeId) {
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).insert(peer, Instant::now());
    }

    /// As a follower: heard from the leader within `bound`, and applied (`applied`) past what
    /// it had committed when contact came back.
    fn follower_current(&self, applied: u64, bound: Duration) -> bool {
        let heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        heard.at.is_some_and(|at| at.elapsed() <= bound) && applied >= heard.catch_up_to
    }

    /// As the leader `me` of `voters`: a majority of them (itself included) accepted its
    /// appends within `bound`.
    fn leader_current(&self, me: NodeId, voters: &[NodeId], bound: Duration) -> bool {
        let acked = self.acked.lock().unwrap_or_else(|p| p.into_inner());
        let in_touch =
            voters.iter().filter(|&&id| id == me || acked.get(&id).is_some_and(|at| at.elapsed() <= bound)).count();
        in_touch > voters.len() / 2
    }
}

/// How long without contact before this node's metadata may be stale: half the session after
/// which the controller fences a silent broker.
pub fn bound(ctx: &NodeContext) -> Duration {
    Duration::from_millis(ctx.config.replication.session_timeout_ms / 2)
}

/// Whether this node is in touch with the Raft leader and caught up (see the module doc).
pub fn in_touch(ctx: &NodeContext) -> bool {
    let Some(raft) = ctx.raft.borrow().clone() else { return false };
    let (state, voters) = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        (m.state, m.membership_config.membership().voter_ids().collect::<Vec<_>>())
    };
    let me = ctx.config.node_id;
    // Openraft's state may itself be stale right after a freeze; either way the contact's age
    // decides, so a stale "leader" is no more current than a stale follower.
    if state == ServerState::Leader {
        ctx.peers.contact.leader_current(me, &voters, bound(ctx))
    } else {
        ctx.peers.contact.follower_current(*ctx.applied_index.borrow(), bound(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(3);

    #[tokio::test(start_paused = true)]
    async fn a_follower_is_current_while_it_hears_from_the_leader_and_has_applied_what_it_missed() {
        let c = LeaderContact::default();
        assert!(!c.follower_current(100, BOUND), "never heard from a leader");
        c.heard(10, BOUND);
        assert!(!c.follower_current(9, BOUND), "the first contact's commit index is not applied yet");
        assert!(c.follower_current(10, BOUND));
        // Steady contact: later commit indexes are not waited for (applying always trails).
        tokio::time::advance(Duration::from_secs(1)).await;
        c.heard(50, BOUND);
        assert!(c.follower_current(10, BOUND));
        // Frozen for longer than the bound: stale, and after the next contact stale until
        // that contact's commit index is applied.
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(!c.follower_current(10, BOUND));
        c.heard(80, BOUND);
        assert!(!c.follower_current(79, BOUND));
        assert!(c.follower_current(80, BOUND));
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_is_current_while_a_majority_accepts_its_appends() {
        let c = LeaderContact::default();
        assert!(c.leader_current(1, &[1], BOUND), "a single voter is its own majority");
        assert!(!c.leader_current(1, &[1, 2, 3], BOUND));
        c.acked(2);
        assert!(c.leader_current(1, &[1, 2, 3], BOUND));
        assert!(!c.leader_current(1, &[1, 2, 3, 4], BOUND), "two of four is not a majority");
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(!c.leader_current(1, &[1, 2, 3], BOUND), "the acknowledgement is too old");
        c.acked(3);
        assert!(c.leader_current(1, &[1, 2, 3], BOUND));
    }
}
