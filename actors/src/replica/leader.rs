//! The leader side of replication: roles, serving followers' fetches, the high watermark over the
//! ISR, parked acks and fetches, and ISR changes proposed through Raft.

use chronik::cluster::MetadataCommand;
use chronik::partition::replication::{IsrTracker, acks_all_outcome};
use kafka_protocol::ResponseError;
use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{info, warn};

use super::{FollowerFetch, Leadership, PartitionError, ReadOutcome, ReplicaMsg, ReplicaState, now_ms};
use crate::context::TopicPartition;
use crate::handlers::apply_metadata;

impl ReplicaState {
    /// Starts acting on `self.leadership`: the leader tracks its followers, a follower fetches.
    /// A replica the metadata names leader leads only once this node's process is registered
    /// (which gave it a new epoch); until then it neither leads nor fetches.
    pub(super) fn take_role(&mut self, myself: &ActorRef<ReplicaMsg>) -> Result<(), ActorProcessingErr> {
        let me = self.ctx.config.node_id;
        self.leader_log_end = None;
        // A follower's long poll held under the old role is answered now: it learns the change
        // on its next fetch instead of after its wait.
        self.wake_parked_fetches();
        if self.leadership.leader != me {
            self.followers = None;
            self.fail_parked_acks();
            self.fetcher = super::fetcher::start(self, myself);
            return Ok(());
        }
        self.fetcher = None;
        let epoch = self.leadership.leader_epoch;
        let wait = if !self.leadership.registered {
            Some("waiting for this node's registration before leading")
        } else if self.fenced_epoch.is_some_and(|fenced| epoch <= fenced) {
            Some("restarted: waiting for a new leader epoch before leading")
        } else {
            None
        };
        if let Some(why) = wait {
            self.followers = None;
            self.fail_parked_acks();
            info!(tp = %self.tp, epoch, "{why}");
            return Ok(());
        }
        let end = self.log.log_end_offset();
        // Kafka's leader-epoch start: a follower asking where an older epoch ends learns it
        // ends here, even before this leader writes (a diverging follower truncates to it).
        if self.epochs.assign(self.leadership.leader_epoch, end) {
            self.checkpoint_epochs()?;
        }
        let l = &self.leadership;
        self.followers = Some(IsrTracker::new(me, self.high_watermark, end, &l.isr, now_ms()));
        self.advance_high_watermark();
        Ok(())
    }

    /// `leader`, `follower`, or `unregistered` (named leader, waiting for its registration or,
    /// after a restart, for a new epoch).
    pub(super) fn role(&self) -> &'static str {
        match (self.followers.is_some(), self.leadership.leader == self.ctx.config.node_id) {
            (true, _) => "leader",
            (false, true) => "unregistered",
            (false, false) => "follower",
        }
    }

    /// The metadata changed this partition's leadership: a new leader, epoch or registration
    /// restarts the role; a new ISR (or min.insync) only moves the high watermark and the acks.
    pub(super) fn set_leadership(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        leadership: Leadership,
    ) -> Result<(), ActorProcessingErr> {
        if leadership == self.leadership {
            return Ok(());
        }
        let old = &self.leadership;
        let new_role = leadership.leader != old.leader
            || leadership.leader_epoch != old.leader_epoch
            || leadership.registered != old.registered;
        info!(tp = %self.tp, leader = leadership.leader, epoch = leadership.leader_epoch, isr = ?leadership.isr,
            "partition leadership updated");
        // A follower dropped from the ISR (for lag, or fenced by the controller) rejoins only
        // after it fetches again: what this leader knew of it may predate a freeze, and a frozen
        // follower that was at the log end would otherwise look caught up and be taken back.
        if let Some(followers) = self.followers.as_mut().filter(|_| !new_role) {
            for &id in old.isr.iter().filter(|id| !leadership.isr.contains(id)) {
                followers.dropped_from_isr(id);
            }
        }
        let handed_over_to = self.proposed_handover();
        self.leadership = leadership;
        if new_role {
            self.take_role(myself)?;
        } else {
            self.advance_high_watermark();
        }
        self.follow_handover(myself);
        self.follow_forwarding(handed_over_to);
        Ok(())
    }

    /// Whether a follower's request may touch this leadership: this replica leads, in the epoch
    /// the follower follows, and the follower holds a replica.
    fn check_follower(&self, replica_id: u64, leader_epoch: i32) -> Result<(), PartitionError> {
        let l = &self.leadership;
        if self.followers.is_none() {
            let msg = format!("{} is led by node {}", self.tp, l.leader);
            return Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg));
        }
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
        Ok(())
    }

    /// A follower's fetch: its offset is its log end and its durable offset what it fsynced,
    /// so it may move the high watermark; answers batches from there up to this log's end.
    pub(super) fn replica_fetch(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        fetch: FollowerFetch,
    ) -> Result<ReadOutcome, PartitionError> {
        self.check_follower(fetch.replica_id, fetch.leader_epoch)?;
        let end = self.log.log_end_offset();
        if let Some(followers) = self.followers.as_mut() {
            followers.record_fetch(fetch.replica_id, fetch.fetch_offset, fetch.durable_offset, end, now_ms());
            followers.record_log_start(fetch.replica_id, fetch.log_start_offset);
        }
        self.answer_deletes();
        self.advance_high_watermark();
        self.maybe_change_isr(myself);
        self.maybe_hand_over(myself);
        match self.log.read(fetch.fetch_offset, end, fetch.max_bytes, true) {
            Ok(r) => Ok(ReadOutcome {
                records: r.records,
                high_watermark: self.high_watermark,
                log_start_offset: r.log_start_offset,
                log_end_offset: r.log_end_offset,
                // A follower replays the log's transactions itself.
                last_stable_offset: self.high_watermark,
                aborted: Vec::new(),
            }),
            Err(chronik::log::LogError::OffsetOutOfRange { offset, log_start, log_end }) => Err(PartitionError::new(
                ResponseError::OffsetOutOfRange,
                format!("follower offset {offset} is outside [{log_start}, {log_end}]"),
            )),
            Err(e) => Err(PartitionError::new(ResponseError::KafkaStorageError, e.to_string())),
        }
    }

    /// A follower's progress report: it fsynced up to `durable_offset`.
    pub(super) fn follower_progress(
        &mut self,
        myself: &ActorRef<ReplicaMsg>,
        replica_id: u64,
        leader_epoch: i32,
        durable_offset: i64,
    ) {
        if self.check_follower(replica_id, leader_epoch).is_err() {
            return;
        }
        if let Some(followers) = self.followers.as_mut() {
            followers.record_durable(replica_id, durable_offset);
        }
        self.advance_high_watermark();
        self.maybe_change_isr(myself);
        self.maybe_hand_over(myself);
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
                    durable_offset: state.and_then(|f| f.durable_offset()),
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

    /// Wakes every follower's long poll: something other than the log end changed (the role,
    /// the log start) that an idle follower, parked for long, must learn.
    pub(super) fn wake_parked_fetches(&mut self) {
        for (_, reply) in self.parked_log_end.drain(..) {
            let _ = reply.send(());
        }
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
            self.txns.forget_decided_below(hw);
            let (hw, lso) = (hw, self.txns.last_stable_offset(hw));
            let (ready, waiting) = std::mem::take(&mut self.parked_fetches)
                .into_iter()
                .partition(|p| p.offset < if p.committed { lso } else { hw });
            self.parked_fetches = waiting;
            for p in ready {
                let _ = p.reply.send(());
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

/// Asks the metadata for a new epoch for a leader replica that restarted in `epoch`, retrying
/// while the cluster cannot take it; gives up once the leadership moved on anyway.
pub(super) async fn request_new_epoch(
    ctx: std::sync::Arc<crate::context::NodeContext>,
    tp: TopicPartition,
    epoch: i32,
) {
    const ATTEMPTS: u32 = 30;
    let command = MetadataCommand::BumpLeaderEpoch {
        topic: tp.topic.to_string(),
        partition: tp.partition,
        leader: ctx.config.node_id,
        leader_epoch: epoch,
    };
    for _ in 0..ATTEMPTS {
        match apply_metadata(&ctx, vec![command.clone()]).await.pop() {
            Some(Ok(())) | Some(Err(chronik::cluster::MetadataError::StaleLeaderEpoch { .. })) => return,
            Some(Err(e)) => warn!(%tp, error = %e, "could not get a new leader epoch yet"),
            None => {}
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
