//! `ReplicationService`: the tonic service on the wal port. Each follower keeps one `Follow`
//! stream per partition it follows; every request goes to the leader's ReplicaActor, which
//! records the follower's progress and answers batches, held up to `max_wait_ms` when there is
//! nothing new (a long poll, so an idle partition costs no traffic).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, Stream, StreamExt};
use kafka_protocol::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};
use tracing::{error, info};

use crate::context::{NodeContext, TopicPartition};
use crate::directory::{MailboxGauge, Registration, TaskGuard};
use crate::handlers::replica_for;
use crate::replica::{PartitionError, ReadOutcome, ReplicaMsg};

/// Generated from `proto/replication.proto`.
pub mod proto {
    tonic::include_proto!("chronik.replication");
}

use proto::replication_server::{Replication, ReplicationServer};
use proto::{EpochRequest, EpochResponse, FetchRequest, FetchResponse};

/// Largest batch payload a fetch may ask for (a follower asks for `fetch_max_bytes`).
const MAX_FETCH_BYTES: usize = 64 * 1024 * 1024;
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
            let service = ReplicationServer::new(Service { ctx: ctx.clone() })
                .max_decoding_message_size(1024 * 1024)
                .max_encoding_message_size(MAX_FETCH_BYTES + 1024 * 1024);
            // Accepted sockets do not inherit TCP_NODELAY; replication latency is acks=all latency.
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            info!(addr = %local, "✓ Replication service started");
            Some(TaskGuard(tokio::spawn(async move {
                let result =
                    tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
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

type ResponseStream = Pin<Box<dyn Stream<Item = Result<FetchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Replication for Service {
    type FollowStream = ResponseStream;

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

    async fn follow(&self, request: Request<Streaming<FetchRequest>>) -> Result<Response<ResponseStream>, Status> {
        let mut requests = request.into_inner();
        let (mut tx, rx) = futures::channel::mpsc::channel(1);
        let ctx = self.ctx.clone();
        // One task per stream answers its requests in order; it ends with the stream.
        tokio::spawn(async move {
            while let Some(Ok(req)) = requests.next().await {
                let response = serve(&ctx, req).await;
                if tx.send(Ok(response)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(rx)))
    }
}

/// Answers one fetch: straight away when there are batches past the follower's offset, else
/// after the log grows or the wait runs out.
async fn serve(ctx: &NodeContext, req: FetchRequest) -> FetchResponse {
    let tp = TopicPartition::new(&req.topic, req.partition);
    let replica = match replica_for(ctx, &tp.topic, tp.partition) {
        Ok(replica) => replica,
        Err(e) => return refused(e),
    };
    let max_bytes = (req.max_bytes as usize).clamp(1024, MAX_FETCH_BYTES);
    let wait = Duration::from_millis(u64::from(req.max_wait_ms)).min(MAX_WAIT);
    let fetch = |reply| ReplicaMsg::ReplicaFetch {
        replica_id: req.replica_id,
        leader_epoch: req.leader_epoch,
        fetch_offset: req.fetch_offset,
        max_bytes,
        reply,
    };
    let first = ask(&replica, fetch).await;
    match &first {
        Ok(read) if read.records.is_empty() => {}
        _ => return answer(first),
    }
    let park = |reply| ReplicaMsg::WaitForLogEnd { offset: req.fetch_offset, reply };
    let _ = tokio::time::timeout(wait, replica.call(park, wait + Duration::from_secs(1))).await;
    answer(ask(&replica, fetch).await)
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
            ..Default::default()
        },
        Err(e) => refused(e),
    }
}

fn refused(e: PartitionError) -> FetchResponse {
    FetchResponse { error_code: i32::from(e.code), error_message: e.message, ..Default::default() }
}
