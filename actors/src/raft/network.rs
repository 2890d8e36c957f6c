//! The client side of the Raft service: one lazily connected tonic channel per peer (with
//! TCP_NODELAY, so heartbeats are not held back by Nagle), openraft's network over it, and the
//! peers' last successful contact, which tells the leader which brokers are alive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

use chronik::cluster::NodeInfo;
use chronik::config::NodeId;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::TypeConfig;
use super::proto::RaftPayload;
use super::proto::raft_service_client::RaftServiceClient;
use crate::peer_auth::{PeerChannel, SendSecret};
use chronik::config::Secret;

/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Channels to the peers and when each last answered. Shared by openraft's network, formation,
/// forwarding and the membership view.
#[derive(Default)]
pub struct PeerChannels {
    /// One channel per peer Raft address; tonic reconnects it as needed.
    channels: Mutex<HashMap<String, Channel>>,
    /// Adds the cluster secret (if any) to every request on them.
    secret: SendSecret,
    /// Node TLS: this node's certificate and the cluster's CA; `None`, plain HTTP/2.
    tls: Option<ClientTlsConfig>,
    /// When each peer last answered a Raft RPC.
    last_ok: Mutex<HashMap<NodeId, Instant>>,
    /// When this node was last in step with the Raft leader (see [`super::contact`]).
    pub contact: super::contact::LeaderContact,
}

impl PeerChannels {
    /// Channels that send `secret` (the cluster secret) with every request, over node TLS
    /// when `tls` is given.
    pub fn new(secret: Option<&Secret>, tls: Option<ClientTlsConfig>) -> Self {
        Self { secret: SendSecret::new(secret), tls, ..Self::default() }
    }

    /// The Raft client for the peer at `addr` (`host:port`).
    pub fn client(&self, addr: &str) -> Result<RaftServiceClient<PeerChannel>, String> {
        self.channel(addr).map(RaftServiceClient::new)
    }

    /// The channel to `addr` (`host:port`), created on first use and shared by every stream to
    /// that address (HTTP/2 multiplexes them).
    pub fn channel(&self, addr: &str) -> Result<PeerChannel, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(addr) {
            return Ok(PeerChannel::new(channel.clone(), self.secret.clone()));
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("invalid address {addr:?}: {e}"))?
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(|e| format!("node TLS for {addr}: {e}"))?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(PeerChannel::new(channel, self.secret.clone()))
    }

    /// Records that `node` answered just now.
    pub fn answered(&self, node: NodeId) {
        self.last_ok.lock().unwrap_or_else(|p| p.into_inner()).insert(node, Instant::now());
    }

    /// Whether `node` answered within `within`.
    pub fn answered_within(&self, node: NodeId, within: Duration) -> bool {
        let last = self.last_ok.lock().unwrap_or_else(|p| p.into_inner()).get(&node).copied();
        last.is_some_and(|t| t.elapsed() <= within)
    }
}

/// openraft's network factory: a connection per target over the shared channels.
#[derive(Clone)]
pub struct Network {
    /// The shared channels.
    pub peers: Arc<PeerChannels>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Connection {
        Connection { target, addr: node.raft.clone(), peers: self.peers.clone() }
    }
}

/// openraft's view of one peer.
pub struct Connection {
    /// The peer's id.
    target: NodeId,
    /// Its Raft address.
    addr: String,
    /// The shared channels.
    peers: Arc<PeerChannels>,
}

/// A transport failure: unreachable peers make openraft back off instead of retrying hot.
fn transport_error<E: std::error::Error>(status: tonic::Status) -> RPCError<NodeId, NodeInfo, E> {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            RPCError::Unreachable(Unreachable::new(&status))
        }
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

impl Connection {
    /// Sends one openraft RPC as JSON and decodes the peer's `Result`.
    async fn call<Req, Resp, E>(
        &mut self,
        rpc: &Req,
        option: &RPCOption,
        send: impl AsyncFnOnce(
            RaftServiceClient<PeerChannel>,
            tonic::Request<RaftPayload>,
        ) -> Result<tonic::Response<RaftPayload>, tonic::Status>,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = self.peers.client(&self.addr).map_err(|e| RPCError::Unreachable(Unreachable::new(&Msg(e))))?;
        let data = serde_json::to_vec(rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = tonic::Request::new(RaftPayload { data: data.into() });
        request.set_timeout(option.hard_ttl());
        let reply = send(client, request).await.map_err(transport_error)?;
        let result: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&reply.get_ref().data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.peers.answered(self.target);
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// A plain message as an error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        if let Some(later) = super::entry_from_a_later_leader(&rpc) {
            let why =
                format!("not sending entry {later}: it is from a later leader than this node's vote {}", rpc.vote);
            return Err(RPCError::Network(NetworkError::new(&Msg(why))));
        }
        let answer = self.call(&rpc, &option, async |mut c, r| c.append_entries(r).await).await;
        if let Ok(AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_)) = answer {
            self.peers.contact.acked(self.target);
        }
        answer
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call(&rpc, &option, async |mut c, r| c.install_snapshot(r).await).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call(&rpc, &option, async |mut c, r| c.vote(r).await).await
    }
}

impl super::pre_vote::PreVoteNetwork for Network {
    async fn ask(&self, target: NodeId, node: &NodeInfo, request: super::pre_vote::PreVote, timeout: Duration) -> bool {
        let (Ok(mut client), Ok(data)) = (self.peers.client(&node.raft), serde_json::to_vec(&request)) else {
            return false;
        };
        let mut call = tonic::Request::new(RaftPayload { data: data.into() });
        call.set_timeout(timeout);
        let Ok(reply) = client.pre_vote(call).await else { return false };
        self.peers.answered(target);
        serde_json::from_slice(&reply.get_ref().data).unwrap_or(false)
    }
}

/// Asks the peer at `addr` what it knows about the cluster; `None` if it does not answer in time.
pub async fn cluster_info(peers: &PeerChannels, addr: &str) -> Option<super::proto::ClusterInfoReply> {
    let mut client = peers.client(addr).ok()?;
    let mut request = tonic::Request::new(super::proto::ClusterInfoRequest {});
    request.set_timeout(Duration::from_secs(1));
    let reply = client.cluster_info(request).await.ok()?.into_inner();
    peers.answered(reply.node_id);
    Some(reply)
}
