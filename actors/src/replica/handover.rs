//! A graceful leadership handover on the leader (`Handover` in the metadata): it stops taking
//! writes, lets every in-sync replica reach its log end (the high watermark reaches the log
//! end, so every produce already appended gets its answer), then proposes the target as leader
//! one epoch up. Nothing acknowledged is lost even with acks=1, and no produce in flight fails:
//! only new ones get a retriable NOT_LEADER_OR_FOLLOWER for the moment the handover takes, and
//! those that arrive just after it are passed on to the new leader (`forward`).
//!
//! A target that does not catch up within [`HANDOVER_WAIT`] (a stalled follower) ends the
//! handover: the leader takes writes again and ignores the request for the rest of its epoch.

use std::time::{Duration, Instant};

use chronik::cluster::MetadataCommand;
use kafka_protocol::ResponseError;
use ractor::ActorRef;
use tracing::{info, warn};

use super::{PartitionError, ReplicaMsg, ReplicaState};
use crate::handlers::apply_metadata;

/// Longest a leader refuses writes waiting for its handover's target.
pub(super) const HANDOVER_WAIT: Duration = Duration::from_secs(5);

/// A handover under way on this leader.
#[derive(Debug, Clone, Copy)]
pub(super) struct HandoverState {
    /// The in-sync replica taking over.
    to: chronik::config::NodeId,
    /// When this leader began refusing writes for it.
    since: Instant,
    /// The election was proposed (once per handover).
    proposed: bool,
}

impl ReplicaState {
    /// Starts or ends the handover the leadership asks for: only a leader, only towards an
    /// in-sync replica, and not again in an epoch whose handover ran out of time.
    pub(super) fn follow_handover(&mut self, myself: &ActorRef<ReplicaMsg>) {
        let l = &self.leadership;
        let wanted = l.handover.filter(|to| {
            self.followers.is_some() && l.isr.contains(to) && self.handover_expired != Some(l.leader_epoch)
        });
        match (wanted, self.handover) {
            (None, _) => self.handover = None,
            (Some(to), Some(h)) if h.to == to => {}
            (Some(to), _) => {
                info!(tp = %self.tp, to, epoch = l.leader_epoch, "handing partition leadership over: taking no more writes");
                self.handover = Some(HandoverState { to, since: Instant::now(), proposed: false });
            }
        }
        self.maybe_hand_over(myself);
    }

    /// The node whose election this leader proposed, if it did: the new leader once it leads.
    pub(super) fn proposed_handover(&self) -> Option<chronik::config::NodeId> {
        self.handover.filter(|h| h.proposed).map(|h| h.to)
    }

    /// Refuses a produce while handing over (retriable: the client finds the new leader).
    pub(super) fn check_handover(&self) -> Result<(), PartitionError> {
        match self.handover {
            Some(h) => Err(PartitionError::new(
                ResponseError::NotLeaderOrFollower,
                format!("{} is handing its leadership over to node {}", self.tp, h.to),
            )),
            None => Ok(()),
        }
    }

    /// Proposes the election once every in-sync replica holds the whole log; gives the
    /// handover up when it has taken too long.
    pub(super) fn maybe_hand_over(&mut self, myself: &ActorRef<ReplicaMsg>) {
        let Some(h) = self.handover else { return };
        let epoch = self.leadership.leader_epoch;
        if h.since.elapsed() >= HANDOVER_WAIT && !h.proposed {
            warn!(tp = %self.tp, to = h.to, epoch, "handover target did not catch up in time; taking writes again");
            self.handover = None;
            self.handover_expired = Some(epoch);
            return;
        }
        if h.proposed || self.high_watermark < self.log.log_end_offset() {
            return;
        }
        self.handover = Some(HandoverState { proposed: true, ..h });
        let command = MetadataCommand::ElectLeader {
            topic: self.tp.topic.to_string(),
            partition: self.tp.partition,
            leader: h.to,
            leader_epoch: epoch + 1,
            isr: self.leadership.isr.clone(),
        };
        let (ctx, me, tp) = (self.ctx.clone(), myself.clone(), self.tp.clone());
        tokio::spawn(async move {
            if let Some(Err(e)) = apply_metadata(&ctx, vec![command]).await.pop() {
                warn!(%tp, error = %e, "handover not applied; taking writes again");
                let _ = me.cast(ReplicaMsg::HandoverFailed { epoch });
            }
        });
    }

    /// The handover was refused: writes resume, and this epoch's request is dropped.
    pub(super) fn handover_failed(&mut self, epoch: i32) {
        if self.leadership.leader_epoch == epoch {
            self.handover = None;
            self.handover_expired = Some(epoch);
        }
    }
}
