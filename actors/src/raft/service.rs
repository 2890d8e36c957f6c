//! The server side of the Raft service (tonic, on the raft port): openraft's RPCs, pre-votes,
//! cluster discovery, and forwarding a proposal to the leader's `Propose` RPC.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use chronik::cluster::{MetadataCommand, NodeInfo};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tracing::{error, warn};

use super::proto::raft_service_server::{RaftService, RaftServiceServer};
use super::proto::{ClusterInfoReply, ClusterInfoRequest, ProposeReply, ProposeRequest, RaftPayload};
use super::writer::Writer;
use super::{CommandResult, TypeConfig};
use crate::context::NodeContext;
use crate::peer_auth::{RequireSecret, caller_node};
use chronik::config::NodeId;
use openraft::Vote;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest};
use tonic::service::interceptor::InterceptedService;

/// What this node tells a peer asking who it is and what it knows of the cluster.
pub fn cluster_info_reply(ctx: &NodeContext, raft: &super::Raft) -> ClusterInfoReply {
    let metrics = raft.metrics().borrow().clone();
    let voters: Vec<u64> = metrics.membership_config.membership().voter_ids().collect();
    let metadata = ctx.metadata();
    ClusterInfoReply {
        node_id: ctx.config.node_id,
        initialized: !voters.is_empty(),
        voters,
        leader_id: metrics.current_leader,
        term: metrics.current_term,
        removed: metadata.removed.iter().copied().collect(),
        cluster_id: metadata.cluster_id.clone().unwrap_or_default(),
    }
}

/// Serves the Raft service on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, writer: Writer, ctx: Arc<NodeContext>, max_message_bytes: usize) {
    let secret = RequireSecret::new(ctx.config.security.cluster_secret.as_ref(), "raft");
    let ctx_tls = ctx.node_tls.clone();
    let service = RaftServiceServer::new(Service { writer, ctx })
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let service = InterceptedService::new(service, secret);
    // Accepted sockets do not inherit TCP_NODELAY; without it heartbeats wait on Nagle.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    // tonic serves each connection on a task of its own. Without a shutdown signal those tasks
    // outlive an aborted server and keep answering with the actor's old, stopped Raft after a
    // restart: peers' votes, appends and forwarded proposals failed on them for good. With
    // one, aborting the server drops the signal's sender, and every connection shuts down
    // gracefully; peers reconnect to the restarted server.
    let result = match crate::peer_auth::server_builder(&ctx_tls) {
        Ok(mut builder) => {
            builder.add_service(service).serve_with_incoming_shutdown(incoming, std::future::pending()).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        error!(error = %e, "Raft gRPC server stopped");
    }
}

/// The service: openraft's RPCs, cluster discovery and forwarded proposals.
struct Service {
    /// This node's Raft, and its leader's door for proposals.
    writer: Writer,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
}

fn decode<T: DeserializeOwned>(payload: &RaftPayload) -> Result<T, Status> {
    serde_json::from_slice(&payload.data).map_err(|e| Status::invalid_argument(format!("malformed Raft payload: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Response<RaftPayload>, Status> {
    let data = serde_json::to_vec(value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftPayload { data: data.into() }))
}

impl Service {
    /// With node TLS, a Raft message must come from the node it speaks for (the candidate of a
    /// vote, the leader of an append or a snapshot): one node's certificate, even stolen, cannot
    /// campaign or lead as another.
    fn check_sender(&self, request: &Request<RaftPayload>, vote: &Vote<NodeId>) -> Result<(), Status> {
        if self.ctx.node_tls.is_none() {
            return Ok(());
        }
        let (caller, claimed) = (caller_node(request), vote.leader_id.voted_for());
        if caller.is_some() && caller == claimed {
            return Ok(());
        }
        let caller = caller.map_or_else(|| "no node".to_string(), |id| format!("node {id}"));
        let claimed = claimed.map_or_else(|| "no node".to_string(), |id| format!("node {id}"));
        warn!(peer = ?request.remote_addr(), %caller, %claimed, "refused a Raft message sent as another node");
        Err(Status::permission_denied(format!("{caller}'s certificate cannot speak for {claimed}")))
    }
}

#[tonic::async_trait]
impl RaftService for Service {
    async fn append_entries(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let append: AppendEntriesRequest<TypeConfig> = decode(request.get_ref())?;
        self.check_sender(&request, &append.vote)?;
        if let Some(later) = super::entry_from_a_later_leader(&append) {
            let why = format!("entry {later} is from a later leader than the sender's vote {}", append.vote);
            return Err(Status::failed_precondition(why));
        }
        let leader_commit = append.leader_commit.map_or(0, |id| id.index);
        let answer = self.writer.raft().append_entries(append).await;
        if let Ok(AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_)) = answer {
            self.ctx.peers.contact.heard(leader_commit, super::contact::bound(&self.ctx));
        }
        encode(&answer)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let vote: VoteRequest<NodeId> = decode(request.get_ref())?;
        self.check_sender(&request, &vote.vote)?;
        encode(&self.writer.raft().vote(vote).await)
    }

    async fn pre_vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let asked: super::pre_vote::PreVote = decode(request.get_ref())?;
        self.check_sender(&request, &Vote::new(asked.term, asked.candidate))?;
        let quiet = Duration::from_millis(self.ctx.config.raft.election_timeout_min_ms);
        encode(&super::pre_vote::grant(self.writer.raft(), quiet).await)
    }

    async fn install_snapshot(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let snapshot: InstallSnapshotRequest<TypeConfig> = decode(request.get_ref())?;
        self.check_sender(&request, &snapshot.vote)?;
        encode(&self.writer.raft().install_snapshot(snapshot).await)
    }

    async fn cluster_info(&self, _: Request<ClusterInfoRequest>) -> Result<Response<ClusterInfoReply>, Status> {
        Ok(Response::new(cluster_info_reply(&self.ctx, self.writer.raft())))
    }

    async fn propose(&self, request: Request<ProposeRequest>) -> Result<Response<ProposeReply>, Status> {
        let commands: Vec<MetadataCommand> = serde_json::from_slice(&request.get_ref().commands)
            .map_err(|e| Status::invalid_argument(format!("malformed proposal: {e}")))?;
        // Only the leader commits; a stale forward is answered with who leads now, never
        // forwarded again (no loops).
        let reply = match super::leader_write(&self.ctx, &self.writer, commands).await {
            Ok((log_index, results)) => ProposeReply {
                log_index,
                results: serde_json::to_vec(&results).map_err(|e| Status::internal(e.to_string()))?.into(),
                ..Default::default()
            },
            Err(e) => ProposeReply {
                error: e.to_string(),
                leader_id: e.forward_to_leader::<NodeInfo>().and_then(|f| f.leader_id),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }
}

/// Sends `commands` to `leader`, then waits until this node has applied the entry, so the caller
/// sees its own change (and its replicas) when it gets the answer.
pub async fn forward(
    ctx: &NodeContext,
    leader: &NodeInfo,
    commands: &[MetadataCommand],
    deadline: Instant,
) -> Result<Vec<CommandResult>, String> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut client = ctx.peers.client(&leader.raft)?;
    let payload = serde_json::to_vec(commands).map_err(|e| e.to_string())?;
    let mut request = Request::new(ProposeRequest { commands: payload.into() });
    request.set_timeout(remaining);
    let reply = client
        .propose(request)
        .await
        .map_err(|s| format!("forwarding to the leader (node {}) failed: {}", leader.id, s.message()))?
        .into_inner();
    if !reply.error.is_empty() {
        return Err(format!("node {} could not commit: {}", leader.id, reply.error));
    }
    let results: Vec<CommandResult> = serde_json::from_slice(&reply.results).map_err(|e| e.to_string())?;
    let mut applied = ctx.applied_index.subscribe();
    let wait = applied.wait_for(|index| *index >= reply.log_index);
    match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), wait).await {
        Ok(Ok(_)) => Ok(results),
        _ => {
            warn!(index = reply.log_index, "committed on the leader but not yet applied here");
            Ok(results)
        }
    }
}
