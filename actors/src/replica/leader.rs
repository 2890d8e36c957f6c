//! The leader side of replication: roles, serving followers' fetches, the high watermark over the
//! ISR, parked acks and fetches, and ISR changes proposed through Raft.

use chronik::cluster::MetadataCommand;
use chronik::partition::replication::{IsrTracker, acks_all_outcome};
use kafka_protocol::ResponseError;
use ractor::{ActorRef, RpcReplyPort};
use tracing::{info, warn};

use super::{Leadership, PartitionError, ReadOutcome, ReplicaMsg, ReplicaState, now_ms};
use crate::handlers::apply_metadata;

impl ReplicaState {
    /// Starts acting on `self.leadership`: the leader tracks its followers, a follower fetches.
    pub(super) fn take_role(&mut self, myself: &ActorRef<ReplicaMsg>) {
        let me = self.ctx.config.node_id;
        if self.leadership.leader == me {
            self.fetcher = None;
            let l = &self.leadership;
            let end = self.log.log_end_offset();
            self.followers = Some(IsrTracker::new(me, self.high_watermark, end, &l.isr, now_ms()));
            self.advance_high_watermark();
        } else {
            self.followers = None;
            self.fail_parked_acks();
            self.fetcher = super::follower::start(self, myself);
        }
    }

    /// The metadata changed this partition's leadership: a new leader or epoch restarts the role;
    /// a new ISR (or min.insync) only moves the high watermark and the acks.
    pub(super) fn set_leadership(&mut self, myself: &ActorRef<ReplicaMsg>, leadership: Leadership) {
        if leadership == self.leadership {
            return;
        }
        let new_role =
            leadership.leader != self.leadership.leader || leadership.leader_epoch != self.leadership.leader_epoch;
        info!(tp = %self.tp, leader = leadership.leader, epoch = leadership.leader_epoch, isr = ?leadership.isr,
            "partition leadership updated");
        self.leadership = leadership;
        if new_role {
            self.take_role(myself);
        } else {
            self.advance_high_watermark();
        }
    }

    /// A follower's fetch: its offset is its log end, so it moves the high watermark; answers
    /// batches from there up to this log's end.
    pub(super) fn replica_fetch(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        replica_id: u64,
        leader_epoch: i32,
        fetch_offset: i64,
        max_bytes: usize,
    ) -> Result<ReadOutcome, PartitionError> {
        let l = &self.leadership;
        let Some(followers) = self.followers.as_mut() else {
            let msg = format!("{} is led by node {}", self.tp, l.leader);
            return Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg));
        };
        if leader_epoch != l.leader_epoch {
            let kind = if leader_epoch < l.leader_epoch {
                ResponseError::FencedLeaderEpoch
            } else {
                ResponseError::UnknownLeaderEpoch
            };
            return Err(PartitionError::new(
                kind,
                format!("{}: epoch {leader_epoch}, current {}", self.tp, l.leader_epoch),
            ));
        }
        if !l.replicas.contains(&replica_id) {
            let msg = format!("node {replica_id} is not a replica of {}", self.tp);
            return Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg));
        }
        let end = self.log.log_end_offset();
        followers.record_fetch(replica_id, fetch_offset, end, now_ms());
        self.advance_high_watermark();
        self.maybe_change_isr(myself);
        match self.log.read(fetch_offset, end, max_bytes, true) {
            Ok(r) => Ok(ReadOutcome {
                records: r.records,
                high_watermark: self.high_watermark,
                log_start_offset: r.log_start_offset,
            }),
            Err(chronik::log::LogError::OffsetOutOfRange { offset, log_start, log_end }) => Err(PartitionError::new(
                ResponseError::OffsetOutOfRange,
                format!("follower offset {offset} is outside [{log_start}, {log_end}]"),
            )),
            Err(e) => Err(PartitionError::new(ResponseError::KafkaStorageError, e.to_string())),
        }
    }

    /// Each follower's progress, for `/admin/partitions`.
    pub(super) fn follower_infos(&self) -> Vec<super::FollowerInfo> {
        let Some(tracker) = &self.followers else { return Vec::new() };
        let l = &self.leadership;
        let followers = l.replicas.iter().filter(|&&id| id != l.leader);
        followers
            .map(|&id| {
                let state = tracker.follower(id);
                super::FollowerInfo {
                    id,
                    log_end_offset: state.and_then(|f| f.log_end_offset()),
                    last_caught_up_ms: state.and_then(|f| f.last_caught_up_ms()),
                    in_sync: l.isr.contains(&id),
                }
            })
            .collect()
    }

    /// Parks a follower's long poll until the log grows past `offset`.
    pub(super) fn park_log_end(&mut self, offset: i64, reply: RpcReplyPort<()>) {
        if self.log.log_end_offset() > offset || self.followers.is_none() {
            let _ = reply.send(());
            return;
        }
        self.parked_log_end.retain(|(_, r)| !r.is_closed());
        self.parked_log_end.push((offset, reply));
    }

    /// Wakes the followers' long polls the log end has passed.
    pub(super) fn log_end_grew(&mut self) {
        let end = self.log.log_end_offset();
        let (ready, waiting) = std::mem::take(&mut self.parked_log_end).into_iter().partition(|(o, _)| *o < end);
        self.parked_log_end = waiting;
        for (_, reply) in ready {
            let _ = reply.send(());
        }
    }

    /// Recomputes the high watermark — the durable log end here, capped by the slowest ISR
    /// follower on a leader — and answers the acks and fetches it releases.
    pub(super) fn advance_high_watermark(&mut self) {
        let hw = match self.followers.as_mut() {
            Some(followers) => followers.update_high_watermark(self.durable_end, &self.leadership.isr),
            // A follower's high watermark comes from its leader (see `append_replicated`).
            None => self.high_watermark.min(self.durable_end),
        };
        if hw > self.high_watermark {
            self.high_watermark = hw;
            let (ready, waiting) = std::mem::take(&mut self.parked_fetches).into_iter().partition(|(o, _)| *o < hw);
            self.parked_fetches = waiting;
            for (_, reply) in ready {
                let _ = reply.send(());
            }
        }
        self.complete_acks();
    }

    /// Answers every parked produce whose condition holds: durable here (acks=1), or below the
    /// high watermark with enough replicas in sync (acks=all).
    pub(super) fn complete_acks(&mut self) {
        let (durable, hw) = (self.durable_end, self.high_watermark);
        let (isr_len, min_insync) = (self.leadership.isr.len(), self.leadership.min_insync);
        let mut waiting = std::collections::VecDeque::with_capacity(self.parked_acks.len());
        for ack in std::mem::take(&mut self.parked_acks) {
            if !ack.acks_all {
                if ack.target <= durable {
                    let _ = ack.reply.send(ack.outcome);
                } else {
                    waiting.push_back(ack);
                }
                continue;
            }
            match acks_all_outcome(hw, ack.target, isr_len, min_insync) {
                None => waiting.push_back(ack),
                Some(Ok(())) => {
                    let _ = ack.reply.send(ack.outcome);
                }
                Some(Err(e)) => {
                    let _ =
                        ack.reply.send(Err(PartitionError { code: e.code(), message: format!("{}: {e}", self.tp) }));
                }
            }
        }
        self.parked_acks = waiting;
    }

    /// A replica that stops leading answers its waiting produces so clients retry elsewhere.
    fn fail_parked_acks(&mut self) {
        for ack in std::mem::take(&mut self.parked_acks) {
            let msg = format!("{} is no longer led here", self.tp);
            let _ = ack.reply.send(Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg)));
        }
    }

    /// Timer: a follower that stopped fetching cannot trigger the check itself.
    pub(super) fn check_isr(&mut self, myself: &ActorRef<ReplicaMsg>) {
        self.maybe_change_isr(myself);
    }

    /// Proposes the ISR the followers' progress calls for, one proposal at a time; the change
    /// takes effect when the metadata applies it (`set_leadership`).
    fn maybe_change_isr(&mut self, myself: &ActorRef<ReplicaMsg>) {
        let Some(followers) = &self.followers else { return };
        if self.isr_pending {
            return;
        }
        let l = &self.leadership;
        let lag = i64::try_from(self.ctx.config.replication.replica_lag_max_ms).unwrap_or(i64::MAX);
        let end = self.log.log_end_offset();
        let Some(isr) = followers.isr_change(&l.isr, &l.replicas, end, now_ms(), lag) else { return };
        info!(tp = %self.tp, from = ?l.isr, to = ?isr, "proposing an ISR change");
        self.isr_pending = true;
        let command = MetadataCommand::UpdateIsr {
            topic: self.tp.topic.to_string(),
            partition: self.tp.partition,
            leader_epoch: l.leader_epoch,
            isr,
        };
        let (ctx, me, tp) = (self.ctx.clone(), myself.clone(), self.tp.clone());
        tokio::spawn(async move {
            if let Some(Err(e)) = apply_metadata(&ctx, vec![command]).await.pop() {
                warn!(%tp, error = %e, "ISR change not applied");
            }
            let _ = me.cast(ReplicaMsg::IsrProposalDone);
        });
    }
}
