//! `ReplicationService`: the tonic service on the wal port. Each follower node keeps one
//! `FollowMany` stream to each leader, carrying one ordered exchange per partition it follows
//! there (see [`many`]); every fetch goes to the leader's ReplicaActor, which
//! records the follower's progress and answers batches, held up to `max_wait_ms` when there is
//! nothing new (a long poll, so an idle partition costs no traffic). Progress reports (the
//! follower's fsyncs) arrive on the same stream while a fetch is held and are passed on at once.

use std::sync::Arc;
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use kafka_protocol::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};
use tracing::{error, info, warn};

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration, TaskGuard};
use crate::handlers::replica_for;
use crate::peer_auth::{RequireSecret, caller_node};
use crate::replica::{FollowerFetch, PartitionError, ReadOutcome, ReplicaMsg, TxnMarker};
use crate::txn_coordinator::markers as txn_markers;
use chronik::config::NodeId;

mod many;
pub(crate) use many::{FRAME_ITEMS, batches};

/// Generated from `proto/replication.proto`.
pub mod proto {
    tonic::include_proto!("chronik.replication");
}

use proto::replication_client::ReplicationClient;
use proto::replication_server::{Replication, ReplicationServer};
use proto::{
    EpochRequest, EpochResponse, FetchRequest, FetchResponse, FollowFrame, ForwardRequest, ForwardResponse,
    MarkerResult, RegisterTxnRequest, RegisterTxnResponse, WriteMarkersRequest, WriteMarkersResponse,
};

/// Largest batch payload a fetch may ask for (a follower asks for `fetch_max_bytes`).
const MAX_FETCH_BYTES: usize = 64 * 1024 * 1024;
/// Largest answer message: one fetch's batches, or a frame of several smaller answers (at most
/// [`many::FRAME_BYTES`] of batches), with room for their other fields.
pub(crate) const MAX_ANSWER_BYTES: usize = MAX_FETCH_BYTES + 1024 * 1024;
/// Largest request a peer may send (a produce passed on after a handover is the largest).
pub(crate) const MAX_PEER_REQUEST_BYTES: usize = 1024 * 1024;
/// Longest a fetch may be held.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The service's mailbox: it has no requests of its own; the streams run on tasks.
pub enum ReplicationMsg {}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct ReplicationArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The service's state.
pub struct ReplicationState {
    /// The tonic server (none on a standalone node, which has no followers).
    _server: Option<TaskGuard>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    _registration: Registration,
}

/// The actor.
pub struct ReplicationService;

impl Actor for ReplicationService {
    type Msg = ReplicationMsg;
    type State = ReplicationState;
    type Arguments = ReplicationArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ReplicationMsg>,
        args: ReplicationArgs,
    ) -> Result<ReplicationState, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "replication".into(),
            "ReplicationService",
            args.restarts,
            MailboxGauge::default(),
        );
        let server = if ctx.config.peers.is_empty() && ctx.config.bind.wal.is_none() {
            None
        } else {
            let bind = ctx.config.wal_bind();
            let listener =
                TcpListener::bind(&bind).await.map_err(|e| format!("bind.wal: cannot listen on {bind}: {e}"))?;
            let local = listener.local_addr()?;
            let secret = RequireSecret::new(ctx.config.security.cluster_secret.as_ref(), "wal");
            let service = ReplicationServer::new(Service { ctx: ctx.clone() })
                .max_decoding_message_size(MAX_PEER_REQUEST_BYTES)
                .max_encoding_message_size(MAX_ANSWER_BYTES);
            let service = tonic::service::interceptor::InterceptedService::new(service, secret);
            // Accepted sockets do not inherit TCP_NODELAY; replication latency is acks=all latency.
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            info!(addr = %local, "✓ Replication service started");
            let mut builder = crate::peer_auth::server_builder(&ctx.node_tls)?;
            Some(TaskGuard(tokio::spawn(async move {
                // Connections outlive an aborted server unless it serves with a shutdown signal:
                // see `raft::service::serve`.
                let result =
                    builder.add_service(service).serve_with_incoming_shutdown(incoming, std::future::pending()).await;
                if let Err(e) = result {
                    error!(error = %e, "replication service stopped");
                }
            })))
        };
        Ok(ReplicationState { _server: server, _registration: registration })
    }
}

/// The tonic service.
struct Service {
    /// The node's shared context.
    ctx: Arc<NodeContext>,
}

#[tonic::async_trait]
impl Replication for Service {
    type FollowManyStream = many::Frames;

    async fn epoch_end_offset(&self, request: Request<EpochRequest>) -> Result<Response<EpochResponse>, Status> {
        let req = request.into_inner();
        let refused = |e: PartitionError| EpochResponse {
            error_code: i32::from(e.code),
            error_message: e.message,
            epoch: -1,
            end_offset: -1,
        };
        if let Err(e) =
            crate::handlers::check_leader_epoch(&self.ctx, &req.topic, req.partition, req.current_leader_epoch)
        {
            return Ok(Response::new(refused(e)));
        }
        let replica = match replica_for(&self.ctx, &req.topic, req.partition) {
            Ok(replica) => replica,
            Err(e) => return Ok(Response::new(refused(e))),
        };
        let msg = |reply| ReplicaMsg::EpochEndOffset { epoch: req.epoch, reply };
        let answer = match replica.call(msg, Duration::from_secs(10)).await {
            Ok(ractor::rpc::CallResult::Success(result)) => result,
            _ => Err(PartitionError::new(ResponseError::NotLeaderOrFollower, "the leader replica is restarting")),
        };
        Ok(Response::new(match answer {
            Ok(answer) => {
                let (epoch, end_offset) = chronik::partition::replication::EpochEndOffset::to_wire(answer);
                EpochResponse { epoch, end_offset, ..Default::default() }
            }
            Err(e) => refused(e),
        }))
    }

    /// A produce passed on by the node that handed this partition's leadership over: appended
    /// here as the leader (refused like any produce when this node does not lead), answered
    /// once its acks are met. The forwarding node validated the batches and waits in order.
    async fn forward(&self, request: Request<ForwardRequest>) -> Result<Response<ForwardResponse>, Status> {
        Ok(Response::new(match crate::replica::append_passed_on(&self.ctx, request.into_inner()).await {
            Ok(o) => ForwardResponse {
                base_offset: o.base_offset,
                log_start_offset: o.log_start_offset,
                ..Default::default()
            },
            Err(e) => ForwardResponse {
                error_code: i32::from(e.code),
                error_message: e.message,
                base_offset: -1,
                log_start_offset: -1,
            },
        }))
    }

    async fn register_txn_partitions(
        &self,
        request: Request<RegisterTxnRequest>,
    ) -> Result<Response<RegisterTxnResponse>, Status> {
        let req = request.into_inner();
        let partitions = txn_markers::from_wire(req.partitions);
        let epoch = txn_markers::epoch_from_wire(req.producer_epoch);
        txn_markers::register_here(&self.ctx, req.producer_id, epoch, &partitions);
        Ok(Response::new(RegisterTxnResponse {}))
    }

    async fn write_txn_markers(
        &self,
        request: Request<WriteMarkersRequest>,
    ) -> Result<Response<WriteMarkersResponse>, Status> {
        let req = request.into_inner();
        let marker = TxnMarker {
            producer_id: req.producer_id,
            producer_epoch: txn_markers::epoch_from_wire(req.producer_epoch),
            commit: req.commit,
            coordinator_epoch: req.coordinator_epoch,
        };
        let written = txn_markers::write_markers_here(&self.ctx, marker, txn_markers::from_wire(req.partitions)).await;
        let results = written
            .into_iter()
            .map(|((topic, partition), result)| {
                let (error_code, error_message) = match result {
                    Ok(()) => (0, String::new()),
                    Err(e) => (i32::from(e.code), e.message),
                };
                MarkerResult { topic, partition, error_code, error_message }
            })
            .collect();
        Ok(Response::new(WriteMarkersResponse { results }))
    }

    async fn follow_many(&self, request: Request<Streaming<FollowFrame>>) -> Result<Response<many::Frames>, Status> {
        // With node TLS a follower fetches only as the node its certificate names.
        let caller = match self.ctx.node_tls {
            Some(_) => Some(caller_node(&request).ok_or_else(|| Status::permission_denied("no node certificate"))?),
            None => None,
        };
        Ok(Response::new(many::serve(self.ctx.clone(), request.into_inner(), caller)))
    }
}

/// The wal-port client of `node`.
pub(crate) fn peer_client(
    ctx: &NodeContext,
    node: NodeId,
) -> Result<ReplicationClient<crate::peer_auth::PeerChannel>, String> {
    let metadata = ctx.metadata();
    let info = metadata.nodes.get(&node).ok_or_else(|| format!("node {node} is not in the metadata"))?;
    Ok(ReplicationClient::new(ctx.peers.channel(&info.wal)?))
}

/// Serves one partition's exchange with its follower, in the order it sent: a fetch is recorded
/// by the replica before the next message is read (so a progress report sent after it never
/// lands before it), and only its long poll runs beside the exchange, during which progress
/// reports keep being passed on. The follower sends its next fetch once it has the answer, so
/// at most one waits.
async fn follow<R, T>(ctx: Arc<NodeContext>, mut requests: R, mut tx: T, caller: Option<NodeId>)
where
    R: Stream<Item = Result<FetchRequest, Status>> + Unpin,
    T: Sink<Result<FetchResponse, Status>> + Unpin,
{
    let mut waiting: Option<futures::future::BoxFuture<'static, FetchResponse>> = None;
    loop {
        let response = tokio::select! {
            request = requests.next() => match request {
                Some(Ok(req)) if caller.is_some_and(|node| node != req.replica_id) => {
                    let node = caller.unwrap_or_default();
                    warn!(node, replica_id = req.replica_id, topic = %req.topic, partition = req.partition, "refused a fetch as another node");
                    let refusal = format!("node {node}'s certificate cannot fetch as node {}", req.replica_id);
                    let _ = tx.send(Err(Status::permission_denied(refusal))).await;
                    return;
                }
                Some(Ok(req)) if req.progress_only => {
                    report_progress(&ctx, &req);
                    continue;
                }
                Some(Ok(req)) => match fetch_now(&ctx, req).await {
                    Fetched::Answer(response) => response,
                    Fetched::Nothing(long_poll) => {
                        waiting = Some(long_poll);
                        continue;
                    }
                },
                _ => return,
            },
            response = async { waiting.as_mut().expect("guarded").await }, if waiting.is_some() => {
                waiting = None;
                response
            }
        };
        if tx.send(Ok(response)).await.is_err() {
            return;
        }
    }
}

/// Passes a follower's fsync progress to the leader replica (dropped if it is not running here:
/// the next fetch carries the same offset).
fn report_progress(ctx: &NodeContext, req: &FetchRequest) {
    if let Ok(replica) = replica_for(ctx, &req.topic, req.partition) {
        let _ = replica.cast(ReplicaMsg::FollowerProgress {
            replica_id: req.replica_id,
            leader_epoch: req.leader_epoch,
            durable_offset: req.durable_offset,
        });
    }
}

/// A fetch's first attempt: its answer, or the long poll to await when nothing is new yet.
enum Fetched {
    /// Batches, or a refusal.
    Answer(FetchResponse),
    /// Nothing past the follower's offset yet: wait for the log to grow, then fetch again.
    Nothing(futures::future::BoxFuture<'static, FetchResponse>),
}

/// Records the fetch in the leader replica and answers straight away when there are batches past
/// the follower's offset; otherwise returns the long poll (answered after the log grows or the
/// wait runs out).
async fn fetch_now(ctx: &NodeContext, req: FetchRequest) -> Fetched {
    let replica = match replica_for(ctx, &req.topic, req.partition) {
        Ok(replica) => replica,
        Err(e) => return Fetched::Answer(refused(e)),
    };
    match ask(&replica, fetch_msg(&req)).await {
        Ok(read) if read.records.is_empty() => Fetched::Nothing(Box::pin(long_poll(replica, req))),
        result => Fetched::Answer(respond(&replica, result).await),
    }
}

/// Waits (at most `max_wait_ms`) for the log to pass the follower's offset, then fetches again.
async fn long_poll(replica: crate::directory::Counted<ReplicaMsg>, req: FetchRequest) -> FetchResponse {
    let wait = Duration::from_millis(u64::from(req.max_wait_ms)).min(MAX_WAIT);
    let park = |reply| ReplicaMsg::WaitForLogEnd { offset: req.fetch_offset, reply };
    let _ = tokio::time::timeout(wait, replica.call(park, wait + Duration::from_secs(1))).await;
    let result = ask(&replica, fetch_msg(&req)).await;
    respond(&replica, result).await
}

/// The replica's message for a follower's fetch.
fn fetch_msg(
    req: &FetchRequest,
) -> impl FnOnce(ractor::RpcReplyPort<Result<ReadOutcome, PartitionError>>) -> ReplicaMsg {
    let fetch = FollowerFetch {
        replica_id: req.replica_id,
        leader_epoch: req.leader_epoch,
        fetch_offset: req.fetch_offset,
        durable_offset: req.durable_offset,
        log_start_offset: req.log_start_offset,
        max_bytes: (req.max_bytes as usize).clamp(1024, MAX_FETCH_BYTES),
    };
    move |reply| ReplicaMsg::ReplicaFetch { fetch, reply }
}

/// The wire answer; an out-of-range fetch carries the leader's log bounds, so the follower can
/// tell whether it is ahead or behind.
async fn respond(
    replica: &crate::directory::Counted<ReplicaMsg>,
    result: Result<ReadOutcome, PartitionError>,
) -> FetchResponse {
    match result {
        Err(e) if e.code == ResponseError::OffsetOutOfRange.code() => out_of_range(replica, e).await,
        other => answer(other),
    }
}

/// OFFSET_OUT_OF_RANGE with the leader's log start and end.
async fn out_of_range(replica: &crate::directory::Counted<ReplicaMsg>, e: PartitionError) -> FetchResponse {
    match replica.call(ReplicaMsg::Info, Duration::from_secs(10)).await {
        Ok(ractor::rpc::CallResult::Success(info)) => {
            FetchResponse { log_start_offset: info.log_start_offset, log_end_offset: info.log_end_offset, ..refused(e) }
        }
        _ => refused(PartitionError::new(ResponseError::NotLeaderOrFollower, "the leader replica is restarting")),
    }
}

async fn ask(
    replica: &crate::directory::Counted<ReplicaMsg>,
    msg: impl FnOnce(ractor::RpcReplyPort<Result<ReadOutcome, PartitionError>>) -> ReplicaMsg,
) -> Result<ReadOutcome, PartitionError> {
    match replica.call(msg, Duration::from_secs(10)).await {
        Ok(ractor::rpc::CallResult::Success(result)) => result,
        _ => Err(PartitionError::new(ResponseError::NotLeaderOrFollower, "the leader replica is restarting")),
    }
}

fn answer(result: Result<ReadOutcome, PartitionError>) -> FetchResponse {
    match result {
        Ok(read) => FetchResponse {
            records: read.records,
            high_watermark: read.high_watermark,
            log_start_offset: read.log_start_offset,
            log_end_offset: read.log_end_offset,
            ..Default::default()
        },
        Err(e) => refused(e),
    }
}

fn refused(e: PartitionError) -> FetchResponse {
    FetchResponse { error_code: i32::from(e.code), error_message: e.message, ..Default::default() }
}
