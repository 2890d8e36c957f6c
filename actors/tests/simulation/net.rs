//! The nodes' Raft traffic over turmoil's simulated TCP: one connection per request, a
//! length-prefixed JSON frame each way, as the real transport sends JSON in a gRPC message.
//! Latency, loss (links failing), partitions and held links come from turmoil; duplicates from
//! here: a duplicated request is sent again on a second connection and its answer dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chronik::cluster::{MetadataCommand, NodeInfo};
use chronik::config::NodeId;
use chronik_actors::raft::pre_vote::PreVote;
use chronik_actors::raft::{CommandResult, PeerChannels, TypeConfig};
use openraft::LogId;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use rand::Rng;
use rand::rngs::StdRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::TcpStream;

/// Every node listens here.
pub const PORT: u16 = 5000;
/// Largest frame accepted.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// A request to a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// openraft's AppendEntries.
    Append(AppendEntriesRequest<TypeConfig>),
    /// openraft's RequestVote.
    Vote(VoteRequest<NodeId>),
    /// A candidate's pre-vote (`chronik_actors::raft::pre_vote`), answered with a bool.
    PreVote(PreVote),
    /// openraft's InstallSnapshot (one chunk).
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// From the driver: commit these commands (answered only by the leader).
    Propose(Vec<MetadataCommand>),
    /// From the driver: plan a topic `l<n>` as a leader-only actor does (the rebalancer, the
    /// controller): in this node's current term, proposed after a while, forwarded to the leader
    /// if this node no longer leads by then.
    PlanAsLeader(u32),
    /// From a leader adding this node: who are you (the Raft service's ClusterInfo, its
    /// protobuf bytes as the answer)?
    ClusterInfo,
    /// From the driver: form the cluster from these voters (sent once, to the first node).
    Initialize(Vec<NodeId>),
    /// From the driver: add this node as a voter (learner, catch-up, promotion).
    AddNode(NodeId),
    /// From the driver: take this voter out of the cluster.
    RemoveNode(NodeId),
}

/// A client operation's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Answer {
    /// Committed and applied, with the commands' results and, for a proposal, the entry.
    Done(Vec<CommandResult>, Option<LogId<NodeId>>),
    /// This node does not lead; the leader it knows, if any.
    NotLeader(Option<NodeId>),
    /// Failed, maybe after being committed (ambiguous for the checker).
    Failed(String),
}

/// The address of node `id` on the simulated network.
pub fn host(id: NodeId) -> String {
    format!("n{id}")
}

/// Node `id`'s membership entry: only the Raft address matters in the simulation.
pub fn node_info(id: NodeId) -> NodeInfo {
    NodeInfo {
        id,
        kafka: format!("{}:9092", host(id)),
        wal: format!("{}:9093", host(id)),
        raft: format!("{}:{PORT}", host(id)),
        admin: String::new(),
        listeners: Default::default(),
    }
}

/// A topic with one partition and one replica, its id fixed by `n` so a run is reproducible.
pub fn create(name: String, n: u32) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name,
        id: uuid::Uuid::from_u64_pair(1, n as u64),
        partitions: 1,
        replication_factor: 1,
        configs: Default::default(),
        assignments: Vec::new(),
    }
}

/// Writes one frame.
pub async fn write_frame(stream: &mut TcpStream, value: &impl Serialize) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    stream.write_u32(bytes.len() as u32).await?;
    stream.write_all(&bytes).await?;
    stream.flush().await
}

/// Reads one frame, refusing one larger than [`MAX_FRAME`].
pub async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> std::io::Result<T> {
    let len = stream.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes")));
    }
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).await?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

/// One request and its answer, bounded by `timeout`.
pub async fn call<T: DeserializeOwned>(to: NodeId, request: &Request, timeout: Duration) -> std::io::Result<T> {
    let exchange = async {
        let mut stream = TcpStream::connect((host(to), PORT)).await?;
        write_frame(&mut stream, request).await?;
        read_frame(&mut stream).await
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| std::io::Error::other("timed out"))?
}

/// openraft's network for one node: duplicates requests at the seed's rate.
#[derive(Clone)]
pub struct SimNetwork {
    /// The simulation's random source (shared, drawn in the deterministic order of the run).
    pub rng: Arc<Mutex<StdRng>>,
    /// How often a request is sent twice.
    pub duplicate_rate: f64,
    /// When each peer last answered (the stranded-learner duty asks), as the real network
    /// records it.
    pub peers: Arc<PeerChannels>,
}

/// openraft's connection to one peer.
pub struct SimConnection {
    /// The peer.
    target: NodeId,
    /// The network it belongs to.
    net: SimNetwork,
}

impl chronik_actors::raft::pre_vote::PreVoteNetwork for SimNetwork {
    async fn ask(&self, target: NodeId, _node: &NodeInfo, request: PreVote, timeout: Duration) -> bool {
        let granted = call::<bool>(target, &Request::PreVote(request), timeout).await;
        if granted.is_ok() {
            self.peers.answered(target);
        }
        granted.unwrap_or(false)
    }
}

impl RaftNetworkFactory<TypeConfig> for SimNetwork {
    type Network = SimConnection;

    async fn new_client(&mut self, target: NodeId, _node: &NodeInfo) -> SimConnection {
        SimConnection { target, net: self.clone() }
    }
}

impl SimConnection {
    async fn send<Resp, E>(
        &mut self,
        request: Request,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let duplicate = {
            let mut rng = self.net.rng.lock().unwrap_or_else(|p| p.into_inner());
            rng.random_bool(self.net.duplicate_rate)
        };
        let ttl = option.hard_ttl();
        if duplicate {
            let (to, again) = (self.target, request.clone());
            tokio::spawn(async move {
                let _ = call::<serde_json::Value>(to, &again, ttl).await;
            });
        }
        let result: Result<Resp, RaftError<NodeId, E>> =
            call(self.target, &request, ttl).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => RPCError::Network(NetworkError::new(&e)),
                _ => RPCError::Unreachable(Unreachable::new(&e)),
            })?;
        self.net.peers.answered(self.target);
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for SimConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        // As the real transport does (actors/src/raft/network.rs).
        if let Some(later) = chronik_actors::raft::entry_from_a_later_leader(&rpc) {
            let why = std::io::Error::other(format!("entry {later} is from a later leader than {}", rpc.vote));
            return Err(RPCError::Network(NetworkError::new(&why)));
        }
        self.send(Request::Append(rpc), &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.send(Request::Snapshot(rpc), &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.send(Request::Vote(rpc), &option).await
    }
}
