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

use std::time::{Duration, Instant};

use bytes::Bytes;
use chronik::config::NodeId;
use kafka_protocol::ResponseError;
use ractor::RpcReplyPort;
use tokio::sync::mpsc;
use tracing::debug;

use super::{AppendOutcome, PartitionError, ReplicaState};
use crate::context::{NodeContext, TopicPartition};
use crate::directory::TaskGuard;
use crate::replication_service::proto::ForwardRequest;
use crate::replication_service::proto::replication_client::ReplicationClient;

/// How long after a handover this replica passes produces on to the new leader.
const FORWARD_WINDOW: Duration = Duration::from_secs(10);
/// Largest produce passed on: the rest of a peer request's limit is ample for its envelope.
const MAX_FORWARD_BYTES: usize = crate::replication_service::MAX_PEER_REQUEST_BYTES - 64 * 1024;
/// Longest one passed-on produce may take (the client's own request timeout answers sooner).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Passes nothing on from then on.
    until: Instant,
    /// The task's queue, in arrival order.
    queue: mpsc::UnboundedSender<PassedOn>,
    /// The task sending them, one at a time.
    _task: TaskGuard,
}

impl Forwarder {
    fn start(ctx: std::sync::Arc<NodeContext>, tp: TopicPartition, to: NodeId, epoch: i32) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let task = TaskGuard(tokio::spawn(run(ctx, tp, (to, epoch), rx)));
        Self { to, epoch, until: Instant::now() + FORWARD_WINDOW, queue, _task: task }
    }
}

impl ReplicaState {
    /// Passes on a produce refused as NOT_LEADER_OR_FOLLOWER; gives it back when it must be
    /// refused after all.
    pub(super) fn pass_on(&self, produce: PassedOn) -> Result<(), PassedOn> {
        if produce.batches.iter().map(Bytes::len).sum::<usize>() > MAX_FORWARD_BYTES {
            return Err(produce);
        }
        let leader = (self.leadership.leader, self.leadership.leader_epoch);
        match &self.forwarder {
            Some(f) if (f.to, f.epoch) == leader && f.until > Instant::now() => f.queue.send(produce).map_err(|e| e.0),
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

/// Sends each queued produce to `to` and answers it with what `to` answered.
async fn run(
    ctx: std::sync::Arc<NodeContext>,
    tp: TopicPartition,
    (to, leader_epoch): (NodeId, i32),
    mut queue: mpsc::UnboundedReceiver<PassedOn>,
) {
    let mut client = None;
    while let Some(p) = queue.recv().await {
        let request = ForwardRequest {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            batches: p.batches,
            acks_all: p.acks_all,
            no_reply: p.reply.is_none(),
            leader_epoch,
        };
        let result = forward_one(&ctx, &mut client, to, request).await.unwrap_or_else(|e| {
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
    client: &mut Option<ReplicationClient<crate::peer_auth::PeerChannel>>,
    to: NodeId,
    request: ForwardRequest,
) -> Result<Result<AppendOutcome, PartitionError>, String> {
    let c = match client {
        Some(c) => c,
        None => {
            let wal = ctx.metadata().nodes.get(&to).map(|n| n.wal.clone()).ok_or("not in the metadata")?;
            client.insert(ReplicationClient::new(ctx.peers.channel(&wal)?))
        }
    };
    let mut request = tonic::Request::new(request);
    request.set_timeout(FORWARD_TIMEOUT);
    let answer = c.forward(request).await.map_err(|s| s.message().to_string())?.into_inner();
    Ok(match answer.error_code {
        0 => Ok(AppendOutcome { base_offset: answer.base_offset, log_start_offset: answer.log_start_offset }),
        code => Err(PartitionError { code: i16::try_from(code).unwrap_or(-1), message: answer.error_message }),
    })
}
