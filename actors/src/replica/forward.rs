//! Produces that reach a leader just after it handed its leadership over are passed on to the
//! new leader instead of refused. A refusal costs the client a NOT_LEADER_OR_FOLLOWER, a backoff
//! (librdkafka's `retry.backoff.ms`, 100 ms) and a retry; a passed-on produce costs one hop
//! between brokers, and its answer names the new leader (KIP-951), so the client's next produce
//! goes there directly.
//!
//! They go one at a time and in arrival order, since an idempotent producer's sequence numbers
//! must reach the new leader in order. Only produces whose client can learn the new leader from
//! the answer are passed on (the handler decides: Produce v10+, not transactional), and only for
//! [`FORWARD_WINDOW`]: a client that keeps coming back after that gets the refusal it would have
//! got at once. Produces that arrive during the handover itself are still refused: holding them
//! would hold every other partition's answer in the same request too.
//!
//! Both halves live here: the old leader's [`Forwarder`] and the new leader's
//! [`append_passed_on`], which the wal port's `Forward` RPC calls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik::config::NodeId;
use kafka_protocol::ResponseError;
use ractor::RpcReplyPort;
use tokio::sync::mpsc;
use tracing::debug;

use super::{AppendOutcome, PartitionError, ReplicaMsg, ReplicaState};
use crate::context::{NodeContext, TopicPartition};
use crate::directory::TaskGuard;
use crate::handlers::replica_for;
use crate::replication_service::peer_client;
use crate::replication_service::proto::ForwardRequest;
use chronik::cluster::ClusterMetadata;

/// How long after a handover this replica passes produces on to the new leader.
const FORWARD_WINDOW: Duration = Duration::from_secs(10);
/// Largest produce passed on: the rest of a peer request's limit is ample for its envelope.
const MAX_FORWARD_BYTES: usize = crate::replication_service::MAX_PEER_REQUEST_BYTES - 64 * 1024;
/// Longest one passed-on produce may take (the client's own request timeout answers sooner).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a passed-on produce waits for the new leader to apply the election that made it.
const ELECTION_WAIT: Duration = Duration::from_secs(1);

type AppendReply = RpcReplyPort<Result<AppendOutcome, PartitionError>>;

/// A produce this replica passes on instead of refusing.
pub(super) struct PassedOn {
    /// Its batches, validated by the handler.
    pub(super) batches: Vec<Bytes>,
    /// acks=all.
    pub(super) acks_all: bool,
    /// Where the answer goes (`None` for acks=0).
    pub(super) reply: Option<AppendReply>,
}

/// Passes produces on to the node that took this partition's leadership over.
pub(super) struct Forwarder {
    /// The new leader.
    to: NodeId,
    /// The epoch it leads in.
    epoch: i32,
    /// The task's queue, in arrival order; closed once [`FORWARD_WINDOW`] has passed.
    queue: mpsc::UnboundedSender<PassedOn>,
    /// The task sending them, one at a time.
    _task: TaskGuard,
}

impl Forwarder {
    fn start(ctx: Arc<NodeContext>, tp: TopicPartition, to: NodeId, epoch: i32) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let task = TaskGuard(tokio::spawn(run(ctx, tp, (to, epoch), rx)));
        Self { to, epoch, queue, _task: task }
    }
}

impl ReplicaState {
    /// Passes on a produce refused as NOT_LEADER_OR_FOLLOWER; gives it back when it must be
    /// refused after all.
    pub(super) fn pass_on(&self, produce: PassedOn) -> Result<(), PassedOn> {
        let leader = (self.leadership.leader, self.leadership.leader_epoch);
        match &self.forwarder {
            Some(f)
                if (f.to, f.epoch) == leader
                    && produce.batches.iter().map(Bytes::len).sum::<usize>() <= MAX_FORWARD_BYTES =>
            {
                f.queue.send(produce).map_err(|e| e.0)
            }
            _ => Err(produce),
        }
    }

    /// After a leadership change: a handover this replica finished starts passing produces on
    /// to its target; any other change ends the passing on.
    pub(super) fn follow_forwarding(&mut self, handed_over_to: Option<NodeId>) {
        let now = (self.leadership.leader, self.leadership.leader_epoch);
        if handed_over_to == Some(now.0) && self.forwarder.as_ref().is_none_or(|f| (f.to, f.epoch) != now) {
            debug!(tp = %self.tp, to = now.0, epoch = now.1, "passing produces on to the new leader");
            self.forwarder = Some(Forwarder::start(self.ctx.clone(), self.tp.clone(), now.0, now.1));
        } else if self.forwarder.as_ref().is_some_and(|f| (f.to, f.epoch) != now) {
            self.forwarder = None;
        }
    }
}

/// Sends each queued produce to `to` and answers it with what `to` answered. After
/// [`FORWARD_WINDOW`] it takes nothing more, answers what it already took, and ends (with its
/// queue closed, the replica refuses instead).
async fn run(
    ctx: Arc<NodeContext>,
    tp: TopicPartition,
    (to, leader_epoch): (NodeId, i32),
    mut queue: mpsc::UnboundedReceiver<PassedOn>,
) {
    let window = tokio::time::sleep(FORWARD_WINDOW);
    tokio::pin!(window);
    let mut open = true;
    loop {
        let next = tokio::select! {
            next = queue.recv() => next,
            () = &mut window, if open => {
                open = false;
                queue.close();
                continue;
            }
        };
        let Some(p) = next else { return };
        let request = ForwardRequest {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            batches: p.batches,
            acks_all: p.acks_all,
            no_reply: p.reply.is_none(),
            leader_epoch,
        };
        let result = forward_one(&ctx, to, request).await.unwrap_or_else(|e| {
            let msg = format!("{tp}: passing the produce on to node {to} failed: {e}");
            Err(PartitionError::new(ResponseError::NotLeaderOrFollower, msg))
        });
        if let Some(reply) = p.reply {
            let _ = reply.send(result);
        }
    }
}

/// One produce to `to`; the outer error is the transport's.
async fn forward_one(
    ctx: &NodeContext,
    to: NodeId,
    request: ForwardRequest,
) -> Result<Result<AppendOutcome, PartitionError>, String> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(FORWARD_TIMEOUT);
    let answer = peer_client(ctx, to)?.forward(request).await.map_err(|s| s.message().to_string())?.into_inner();
    Ok(match answer.error_code {
        0 => Ok(AppendOutcome { base_offset: answer.base_offset, log_start_offset: answer.log_start_offset }),
        code => Err(PartitionError { code: i16::try_from(code).unwrap_or(-1), message: answer.error_message }),
    })
}

/// On the new leader: appends a passed-on produce. The forwarding node applied the election
/// first; this node may be a moment behind, in its metadata or in telling its replica, so it
/// waits up to [`ELECTION_WAIT`] for both before refusing.
pub(crate) async fn append_passed_on(ctx: &NodeContext, req: ForwardRequest) -> Result<AppendOutcome, PartitionError> {
    let deadline = tokio::time::Instant::now() + ELECTION_WAIT;
    let mut metadata = ctx.metadata.subscribe();
    let (topic, partition, epoch) = (req.topic.as_str(), req.partition, req.leader_epoch);
    let caught_up = |m: &Arc<ClusterMetadata>| m.partition(topic, partition).is_none_or(|p| p.leader_epoch >= epoch);
    let _ = tokio::time::timeout_at(deadline, metadata.wait_for(caught_up)).await;
    let restarting = || PartitionError::new(ResponseError::NotLeaderOrFollower, "the leader replica is restarting");
    loop {
        let replica = replica_for(ctx, topic, partition)?;
        let (batches, acks_all) = (req.batches.clone(), req.acks_all);
        if req.no_reply {
            let _ = replica.cast(ReplicaMsg::Append { batches, acks_all, reply: None, forward: false });
            return Ok(AppendOutcome { base_offset: -1, log_start_offset: -1 });
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = ReplicaMsg::Append { batches, acks_all, reply: Some(tx.into()), forward: false };
        let answer = match replica.cast(msg) {
            Ok(()) => rx.await.unwrap_or_else(|_| Err(restarting())),
            Err(_) => Err(restarting()),
        };
        // Refused as not the leader although the metadata says it is: the replica has not been
        // told yet.
        match answer {
            Err(e) if e.code == ResponseError::NotLeaderOrFollower.code() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answer => return answer,
        }
    }
}
