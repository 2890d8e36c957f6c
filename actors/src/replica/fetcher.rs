//! A follower's fetcher: a task that streams batches from the partition leader over the wal port
//! (its own exchange on the link this node keeps to that leader) into its replica, and reports to
//! the leader how far the replica has fsynced. Only fsynced data counts towards the leader's high
//! watermark, so every fsync round is reported as it completes (a progress message on the same
//! exchange), not only with the next fetch, which the leader may be holding in a long poll.

use std::time::Duration;

use kafka_protocol::ResponseError;
use ractor::ActorRef;
use ractor::rpc::CallResult;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{ReplicaMsg, ReplicaState};
use crate::context::{NodeContext, TopicPartition};
use crate::directory::{TaskGuard, TaskRegistration};
use crate::replication_service::proto::replication_client::ReplicationClient;
use crate::replication_service::proto::{EpochRequest, FetchRequest, FetchResponse};
use chronik::cluster::{FOLLOWER_THROTTLE, LEADER_THROTTLE, dynamic_rate};
use chronik::config::ReplicationConfig;
use chronik::partition::replication::{CopyThrottle, EpochEndOffset, Truncation};

/// Longest pause before reconnecting after the stream failed or the leader refused.
const RETRY: Duration = Duration::from_millis(200);
/// The first pause, doubled after each quick failure up to [`RETRY`]: a replica just added by a
/// move often fetches before its leader has applied the same Raft entry and is refused as not a
/// replica; a few milliseconds later it is one, and every move would otherwise wait out `RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(25);
/// A stream that fails sooner than this after it started counts as failing again.
const STUCK_STREAM: Duration = Duration::from_secs(5);
/// Quick failures in a row after which (and after every further such run) it is a warning.
const STUCK_AFTER: u32 = 25;
/// Longest wait for this replica's own actor.
const ASK: Duration = Duration::from_secs(30);
/// Longest long poll an idle follower asks for (the leader holds none longer). See
/// [`fetch_wait_ms`].
const IDLE_WAIT_MS: u64 = 5_000;

/// Starts the fetcher for this follower, unless the leader is unknown (no node entry).
pub(super) fn start(state: &ReplicaState, myself: &ActorRef<ReplicaMsg>) -> Option<(TaskGuard, TaskRegistration)> {
    let l = &state.leadership;
    let leader = state.ctx.metadata().nodes.get(&l.leader).cloned()?;
    let fetch = Fetcher {
        ctx: state.ctx.clone(),
        replica: myself.clone(),
        tp: state.tp.clone(),
        leader_id: l.leader,
        leader_wal: leader.wal,
        leader_epoch: l.leader_epoch,
        durable: state.durable_tx.subscribe(),
    };
    info!(tp = %state.tp, leader = l.leader, epoch = l.leader_epoch, "following the partition leader");
    let name = format!("replication:{} <- node {}", state.tp, l.leader);
    let entry = state.ctx.directory.register_task(&myself.get_cell(), name, "ReplicationStream");
    Some((TaskGuard(tokio::spawn(fetch.run())), entry))
}

/// How long the leader may hold the next fetch. An idle follower asks for up to
/// [`IDLE_WAIT_MS`] instead of `fetch_max_wait_ms`: ten times fewer round trips for each idle
/// partition, which at thousands of partitions is most of what the nodes do. It learns nothing
/// later for it: with the leader's high watermark at its log end only an append can move either,
/// and an append answers the fetch, as do a new log start and a new role. It stays within half of
/// `replica_lag_max_ms`, so a fetch an append answers still finds the follower caught up as of
/// when it was parked.
fn fetch_wait_ms(r: &ReplicationConfig, idle: bool) -> u64 {
    if idle { IDLE_WAIT_MS.min(r.replica_lag_max_ms / 2).max(r.fetch_max_wait_ms) } else { r.fetch_max_wait_ms }
}

/// The pause after `quick_failures` quick failures in a row.
fn retry_after(quick_failures: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1 << quick_failures.saturating_sub(1).min(8)).min(RETRY)
}

/// One follower's fetch loop.
struct Fetcher {
    /// The node's shared context (channels, config).
    ctx: std::sync::Arc<NodeContext>,
    /// The replica the batches go to.
    replica: ActorRef<ReplicaMsg>,
    /// The partition.
    tp: TopicPartition,
    /// The leader's node id (for logs).
    leader_id: u64,
    /// The leader's replication address.
    leader_wal: String,
    /// The epoch being followed.
    leader_epoch: i32,
    /// The replica's durable log end, reported to the leader whenever it moves.
    durable: watch::Receiver<i64>,
}

/// This log's bounds after an append: where the next fetch starts and the log start it
/// reports.
#[derive(Debug, Clone, Copy)]
struct Fetched {
    /// The log end offset: the next fetch offset.
    log_end: i64,
    /// The log start offset.
    log_start: i64,
    /// The leader's last answer left nothing to learn: no batches, and its log end, log start
    /// and high watermark all equal to this log's.
    idle: bool,
    /// How many bytes the next fetch asks for (see [`Fetcher::fetch_bytes`]).
    max_bytes: u32,
}

/// What to do after a response.
enum Next {
    /// Fetch from this log's end, reporting its start.
    FetchFrom(Fetched),
    /// The log was reconciled with the leader's: start a new stream (truncation first).
    Restart,
}

impl Fetcher {
    /// Streams until the task is aborted (the role changed), reconnecting after failures.
    async fn run(mut self) {
        // Streams end for ordinary reasons (a leader change, a reconciliation); one that keeps
        // ending quickly is stuck, and says so at WARN so an operator sees it.
        let mut quick_failures = 0u32;
        loop {
            let started = std::time::Instant::now();
            if let Err(e) = self.stream().await {
                quick_failures = if started.elapsed() < STUCK_STREAM { quick_failures + 1 } else { 1 };
                if quick_failures.is_multiple_of(STUCK_AFTER) {
                    warn!(tp = %self.tp, leader = self.leader_id, error = %e, attempts = quick_failures,
                        "replication from the leader keeps failing; retrying");
                } else {
                    debug!(tp = %self.tp, leader = self.leader_id, error = %e, "replication stream ended; reconnecting");
                }
            }
            tokio::time::sleep(retry_after(quick_failures)).await;
        }
    }

    /// A fetch from `at` (this log's end and start) reporting `durable_offset`; a progress
    /// report only with `progress_only`.
    fn request(&self, at: Fetched, durable_offset: i64, progress_only: bool) -> FetchRequest {
        let Fetched { log_end: fetch_offset, log_start, idle, max_bytes } = at;
        let r = &self.ctx.config.replication;
        FetchRequest {
            topic: self.tp.topic.to_string(),
            partition: self.tp.partition,
            replica_id: self.ctx.config.node_id,
            leader_epoch: self.leader_epoch,
            fetch_offset,
            max_bytes,
            max_wait_ms: u32::try_from(fetch_wait_ms(r, idle)).unwrap_or(u32::MAX),
            durable_offset: durable_offset.min(fetch_offset),
            progress_only,
            log_start_offset: log_start,
        }
    }

    /// Asks this follower's replica; a replica that does not answer ends the stream.
    async fn ask<T>(&self, msg: impl FnOnce(ractor::RpcReplyPort<T>) -> ReplicaMsg) -> Result<T, String>
    where
        T: Send + 'static,
    {
        match self.replica.call(msg, Some(ASK)).await {
            Ok(CallResult::Success(answer)) => Ok(answer),
            _ => Err("the replica did not answer".into()),
        }
    }

    /// The copy rates a replica copying in bulk pays: this node's follower rate and, if an
    /// operator set one, its leader's leader rate (Kafka's replication throttles, changeable at
    /// run time). `None` for a replica in the ISR: it must keep up with new writes.
    fn bulk_rates(&self) -> Option<(u64, Option<u64>)> {
        let me = self.ctx.config.node_id;
        let metadata = self.ctx.metadata();
        // Until this process is registered, its metadata may be what it was before a restart,
        // ISR included: a node coming back is catching up, whatever that old ISR says.
        let current = metadata.incarnations.get(&me) == Some(&self.ctx.incarnation);
        if current && metadata.partition(&self.tp.topic, self.tp.partition).is_none_or(|p| p.isr.contains(&me)) {
            return None;
        }
        let follower = dynamic_rate(&metadata, me, FOLLOWER_THROTTLE)
            .unwrap_or(self.ctx.config.replication.rebalance_max_bytes_per_sec);
        Some((follower, dynamic_rate(&metadata, self.leader_id, LEADER_THROTTLE)))
    }

    /// How many bytes a fetch asks for. A fetch is charged once its bytes are in, so a bulk copy
    /// asks for one burst of its slowest rate, not `fetch_max_bytes`: copies that start together
    /// (a node restarting mid-rebalance) then overshoot the rate by a burst each, not a whole
    /// fetch each. The leader still sends at least one whole batch.
    fn fetch_bytes(&self, rates: Option<(u64, Option<u64>)>) -> u32 {
        let full = self.ctx.config.replication.fetch_max_bytes;
        let Some((follower, leader)) = rates else {
            return full;
        };
        [Some(follower), leader]
            .into_iter()
            .flatten()
            .filter(|&rate| rate > 0)
            .map(CopyThrottle::burst_bytes)
            .min()
            .map_or(full, |burst| u32::try_from(burst).unwrap_or(u32::MAX).min(full))
    }

    /// Bulk copies of a replica outside the ISR share the node's copy rate, so moving a
    /// partition leaves producers their share of disk and network. A replica in the ISR, or
    /// one that has reached the leader's high watermark, is never held back: it must keep up
    /// with new writes. Returns the next fetch's size.
    async fn pace(&self, copied: usize, log_end: i64, leader_high_watermark: i64) -> u32 {
        let rates = if log_end >= leader_high_watermark { None } else { self.bulk_rates() };
        let Some((follower_rate, leader_rate)) = rates else {
            return self.fetch_bytes(None);
        };
        self.ctx.copy_throttle.set_rate(follower_rate);
        let now = std::time::Instant::now();
        let mut wait = self.ctx.copy_throttle.charge(copied, now);
        if let Some(rate) = leader_rate {
            let throttle = self.ctx.leader_throttles.entry(self.leader_id).or_insert_with(|| CopyThrottle::new(rate));
            throttle.set_rate(rate);
            wait = wait.max(throttle.charge(copied, now));
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.fetch_bytes(rates)
    }

    /// Asks the leader where its log ends for this log's latest epoch and truncates to it, until
    /// the two logs agree (KIP-101/279: usually one round).
    async fn truncate_to_leader(
        &self,
        client: &mut ReplicationClient<crate::peer_auth::PeerChannel>,
    ) -> Result<(), String> {
        const ROUNDS: usize = 16;
        for _ in 0..ROUNDS {
            let epoch = self.ask(ReplicaMsg::LatestEpoch).await?;
            if epoch < 0 {
                return Ok(());
            }
            let request = EpochRequest {
                topic: self.tp.topic.to_string(),
                partition: self.tp.partition,
                current_leader_epoch: self.leader_epoch,
                epoch,
            };
            let answer = client.epoch_end_offset(request).await.map_err(|s| s.message().to_string())?.into_inner();
            if answer.error_code != 0 {
                return Err(answer.error_message);
            }
            let answer = EpochEndOffset::from_wire(answer.epoch, answer.end_offset);
            match self.ask(|reply| ReplicaMsg::TruncateToLeader { answer, reply }).await? {
                Ok(Truncation::Complete { .. }) => return Ok(()),
                Ok(Truncation::Partial { .. }) => {}
                Err(e) => return Err(e.message),
            }
        }
        Err(format!("the log did not converge with the leader's in {ROUNDS} rounds"))
    }

    /// One stream: agree with the leader's log, then fetch from this log's end, append each
    /// answer, fetch again; in between, report every fsync that completes.
    async fn stream(&mut self) -> Result<(), String> {
        let mut client = ReplicationClient::new(self.ctx.peers.channel(&self.leader_wal)?);
        self.truncate_to_leader(&mut client).await?;
        let info = self.ask(ReplicaMsg::Info).await?;
        let mut at = Fetched {
            log_end: info.log_end_offset,
            log_start: info.log_start_offset,
            idle: false,
            max_bytes: self.fetch_bytes(self.bulk_rates()),
        };
        let mut link = self.ctx.follow_links.open(&self.ctx.peers, &self.leader_wal)?;
        let durable = *self.durable.borrow_and_update();
        link.send(self.request(at, durable, false)).await?;
        loop {
            tokio::select! {
                response = link.next() => {
                    at = match self.on_response(response?).await? {
                        Next::FetchFrom(next) => next,
                        Next::Restart => return Err("reconciled with the leader's log".into()),
                    };
                    let durable = *self.durable.borrow_and_update();
                    link.send(self.request(at, durable, false)).await?;
                }
                changed = self.durable.changed() => {
                    changed.map_err(|_| "the replica stopped")?;
                    let durable = *self.durable.borrow_and_update();
                    link.send(self.request(at, durable, true)).await?;
                }
            }
        }
    }

    /// Appends an answer's batches, or acts on its refusal; says where to fetch next.
    async fn on_response(&self, response: FetchResponse) -> Result<Next, String> {
        if response.error_code == i32::from(ResponseError::OffsetOutOfRange.code()) {
            let (leader_log_start, leader_log_end) = (response.log_start_offset, response.log_end_offset);
            warn!(tp = %self.tp, leader = self.leader_id, leader_log_start, leader_log_end, error = %response.error_message,
                "the leader refused the fetch offset; reconciling the log with the leader's");
            let msg = |reply| ReplicaMsg::OutOfRange { leader_log_start, leader_log_end, reply };
            self.ask(msg).await?.map_err(|e| e.message)?;
            return Ok(Next::Restart);
        }
        if response.error_code == i32::from(ResponseError::NotLeaderOrFollower.code()) {
            // Metadata this node and the leader have not both applied yet (a replica just added
            // or removed, a leader just changed): retried at once, and `run` warns if it lasts.
            return Err(response.error_message);
        }
        if response.error_code != 0 {
            warn!(tp = %self.tp, leader = self.leader_id, code = response.error_code, error = %response.error_message,
                "the leader refused a fetch");
            return Err(response.error_message);
        }
        let copied = response.records.len();
        let leader_high_watermark = response.high_watermark;
        let (leader_log_start, leader_log_end) = (response.log_start_offset, response.log_end_offset);
        let leader_settled = copied == 0 && leader_high_watermark == leader_log_end;
        let msg = |reply| ReplicaMsg::AppendReplicated {
            records: response.records,
            leader_high_watermark,
            leader_log_start,
            leader_log_end,
            reply,
        };
        let (log_end, log_start) = self.ask(msg).await?.map_err(|e| e.message)?;
        let max_bytes = self.pace(copied, log_end, leader_high_watermark).await;
        let idle = leader_settled && log_end == leader_log_end && log_start == leader_log_start;
        Ok(Next::FetchFrom(Fetched { log_end, log_start, idle, max_bytes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(replica_lag_max_ms: u64, fetch_max_wait_ms: u64) -> ReplicationConfig {
        ReplicationConfig { replica_lag_max_ms, fetch_max_wait_ms, ..ReplicationConfig::default() }
    }

    #[test]
    fn an_idle_follower_waits_longer_but_within_half_the_lag_bound() {
        let defaults = ReplicationConfig::default();
        assert_eq!(fetch_wait_ms(&defaults, false), 500);
        assert_eq!(fetch_wait_ms(&defaults, true), 5_000);
        // A tight lag bound caps the idle wait at half of it...
        assert_eq!(fetch_wait_ms(&config(3_000, 500), true), 1_500);
        // ...but never below the configured wait, which is already below the bound.
        assert_eq!(fetch_wait_ms(&config(1_000, 800), true), 800);
        assert_eq!(fetch_wait_ms(&config(1_000, 800), false), 800);
    }

    #[test]
    fn retries_start_quick_and_back_off_to_the_longest_pause() {
        let pauses: Vec<u64> = (1..=7).map(|n| retry_after(n).as_millis() as u64).collect();
        assert_eq!(pauses, [25, 50, 100, 200, 200, 200, 200]);
        assert_eq!(retry_after(0), FIRST_RETRY);
        assert_eq!(retry_after(u32::MAX), RETRY);
    }
}
