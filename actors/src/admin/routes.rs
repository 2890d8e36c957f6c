//! The admin routes. Every mutation answers `{"success": bool, "message": str}`; bad input is
//! a 4xx with a message, never a panic.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorCell;
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::{Json, WithStatus, json, with_status};
use warp::{Filter, Rejection, Reply};

use crate::context::{NodeContext, TopicPartition};
use crate::replica::{ReplicaInfo, ReplicaMsg};

/// Largest admin request body accepted.
pub(super) const MAX_BODY: u64 = 64 * 1024;

/// `GET /admin/health`.
#[derive(Debug, Serialize)]
struct Health {
    node_id: u64,
    cluster_id: Option<String>,
    is_leader: bool,
    leader_id: Option<u64>,
    term: u64,
    cluster_nodes: Vec<u64>,
    learners: Vec<u64>,
    status: &'static str,
}

/// One entry of `GET /admin/partitions`.
#[derive(Debug, Serialize)]
struct PartitionView {
    topic: String,
    partition: i32,
    replicas: Vec<u64>,
    leader: u64,
    leader_epoch: i32,
    isr: Vec<u64>,
    log_start_offset: Option<i64>,
    log_end_offset: Option<i64>,
    high_watermark: Option<i64>,
    /// What `read_committed` consumers see up to (the high watermark without open transactions).
    last_stable_offset: Option<i64>,
    replica: Option<ReplicaInfo>,
    /// Set when this node's replica is offline (restart budget spent).
    offline: Option<crate::context::OfflineReplica>,
}

/// `POST /admin/partitions/online` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionRef {
    topic: String,
    partition: i32,
}

/// `POST /admin/add-node` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddNode {
    node_id: u64,
    kafka_addr: String,
    wal_addr: String,
    raft_addr: String,
}

/// `POST /admin/remove-node` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveNode {
    node_id: u64,
}

/// The reply shape of every mutation.
#[derive(Debug, Serialize)]
struct Outcome {
    success: bool,
    message: String,
}

pub(super) fn outcome(status: StatusCode, success: bool, message: impl Into<String>) -> WithStatus<Json> {
    with_status(json(&Outcome { success, message: message.into() }), status)
}

/// All admin routes.
pub fn routes(
    ctx: Arc<NodeContext>,
    root: ActorCell,
    local: SocketAddr,
) -> Result<impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + use<>, String> {
    let cluster_view = super::proxy::routes(ctx.clone(), local)?;
    let auth = Arc::new(super::auth::AdminAuth::new(&ctx.config.security));
    let with_ctx = warp::any().map(move || ctx.clone());
    let metrics_root = root.clone();
    let fail_point_root = root.clone();
    let health = warp::path!("admin" / "health")
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|ctx: Arc<NodeContext>| health(&ctx));
    let actors = warp::path!("admin" / "actors")
        .and(warp::get())
        .and(with_ctx.clone())
        .map(move |ctx: Arc<NodeContext>| json(&ctx.directory.tree(&root)));
    let partitions = warp::path!("admin" / "partitions").and(warp::get()).and(with_ctx.clone()).then(partitions);
    let digest = warp::path!("admin" / "partitions" / String / i32 / "digest")
        .and(warp::get())
        .and(warp::query::<super::digest::DigestParams>())
        .and(with_ctx.clone())
        .then(super::digest::digest);
    let rebalance = warp::path!("admin" / "rebalance")
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|ctx: Arc<NodeContext>| json(&*ctx.rebalance.borrow()));
    let groups = warp::path!("admin" / "groups").and(warp::get()).and(with_ctx.clone()).then(super::groups::groups);
    let transactions =
        warp::path!("admin" / "transactions").and(warp::get()).and(with_ctx.clone()).then(super::transactions::list);
    let abort_transaction = warp::path!("admin" / "transactions" / String / "abort")
        .and(warp::post())
        .and(with_ctx.clone())
        .then(super::transactions::abort);
    let metrics = warp::path!("metrics").and(warp::get()).and(with_ctx.clone()).then(move |ctx: Arc<NodeContext>| {
        let tree = ctx.directory.tree(&metrics_root);
        super::metrics::metrics(ctx, tree)
    });
    let fail_points = warp::path!("admin" / "fail-points")
        .and(warp::post())
        .and(with_ctx.clone())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .map(move |ctx, req| super::fail_points::fail_point(ctx, &fail_point_root, req));
    let add_node = warp::path!("admin" / "add-node")
        .and(warp::post())
        .and(with_ctx.clone())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .then(add_node);
    let online = warp::path!("admin" / "partitions" / "online")
        .and(warp::post())
        .and(with_ctx.clone())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .then(bring_online);
    let remove_node = warp::path!("admin" / "remove-node")
        .and(warp::post())
        .and(with_ctx.clone())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .then(remove_node);
    let pause = warp::path!("admin" / "rebalance" / "pause")
        .and(warp::post())
        .and(with_ctx.clone())
        .then(|ctx| set_rebalance_paused(ctx, true));
    let resume = warp::path!("admin" / "rebalance" / "resume")
        .and(warp::post())
        .and(with_ctx.clone())
        .then(|ctx| set_rebalance_paused(ctx, false));
    let users = warp::path!("admin" / "users").and(warp::get()).and(with_ctx.clone()).map(super::users::list);
    let set_user = warp::path!("admin" / "users")
        .and(warp::post())
        .and(with_ctx.clone())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .then(super::users::set);
    let delete_user = warp::path!("admin" / "users" / "delete")
        .and(warp::post())
        .and(with_ctx.clone())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .then(super::users::delete);
    let routes = super::console::routes()
        .or(health)
        .or(cluster_view)
        .or(pause)
        .or(resume)
        .or(actors)
        .or(partitions)
        .or(digest)
        .or(rebalance)
        .or(groups)
        .or(transactions)
        .or(abort_transaction)
        .or(metrics)
        .or(fail_points)
        .or(add_node)
        .or(remove_node)
        .or(online)
        .or(users)
        .or(set_user)
        .or(delete_user);
    Ok(super::auth::authorized(auth).and(routes).recover(reject))
}

/// Pauses or resumes the rebalancer through the metadata, so the choice outlives leader changes.
async fn set_rebalance_paused(ctx: Arc<NodeContext>, paused: bool) -> WithStatus<Json> {
    let command = chronik::cluster::MetadataCommand::SetRebalancePaused { paused };
    match crate::handlers::apply_metadata(&ctx, vec![command]).await.pop() {
        Some(Ok(())) if paused => {
            tracing::info!("Rebalancing paused by an operator");
            outcome(StatusCode::OK, true, "Rebalancing paused: moves hold in their current phase until resumed")
        }
        Some(Ok(())) => {
            tracing::info!("Rebalancing resumed by an operator");
            outcome(StatusCode::OK, true, "Rebalancing resumed")
        }
        Some(Err(e)) => outcome(StatusCode::SERVICE_UNAVAILABLE, false, e.to_string()),
        None => outcome(StatusCode::INTERNAL_SERVER_ERROR, false, "the metadata gave no answer"),
    }
}

/// Starts an offline replica of this node again (after the operator fixed the cause).
async fn bring_online(ctx: Arc<NodeContext>, req: PartitionRef) -> WithStatus<Json> {
    use crate::replica_supervisor::ReplicaSupervisorMsg;
    let tp = TopicPartition::new(&req.topic, req.partition);
    let Some(supervisor) = ctx.replica_supervisor.get() else {
        return outcome(StatusCode::SERVICE_UNAVAILABLE, false, "the replica supervisor is restarting");
    };
    let msg = |reply| ReplicaSupervisorMsg::BringOnline { tp: tp.clone(), reply };
    match supervisor.call(msg, Duration::from_secs(30)).await {
        Ok(ractor::rpc::CallResult::Success(Ok(()))) => {
            outcome(StatusCode::OK, true, format!("replica {tp} restarted; it rejoins the ISR once caught up"))
        }
        Ok(ractor::rpc::CallResult::Success(Err(e))) => outcome(StatusCode::CONFLICT, false, e),
        _ => outcome(StatusCode::GATEWAY_TIMEOUT, false, "the replica supervisor did not answer in time"),
    }
}

/// Starts removing a node: marks it draining; the rebalancer moves its replicas to the other
/// voters, then takes it out of the membership. Answers once the drain is committed.
async fn remove_node(ctx: Arc<NodeContext>, req: RemoveNode) -> WithStatus<Json> {
    let id = req.node_id;
    if ctx.cluster.borrow().leader != Some(ctx.config.node_id) {
        return outcome(StatusCode::MISDIRECTED_REQUEST, false, "Cannot remove node: this node is not the leader");
    }
    let command = chronik::cluster::MetadataCommand::DrainNode { node: id };
    match crate::handlers::apply_metadata(&ctx, vec![command]).await.pop() {
        Some(Ok(())) => outcome(
            StatusCode::OK,
            true,
            format!("Node {id} is draining: its replicas move to the other nodes, then it leaves the cluster"),
        ),
        Some(Err(e @ chronik::cluster::MetadataError::CannotDrain { .. })) => {
            outcome(StatusCode::CONFLICT, false, e.to_string())
        }
        Some(Err(e)) => outcome(StatusCode::SERVICE_UNAVAILABLE, false, e.to_string()),
        None => outcome(StatusCode::INTERNAL_SERVER_ERROR, false, "the metadata gave no answer"),
    }
}

/// Adds a node as a voter; answers once it votes, or why it cannot.
async fn add_node(ctx: Arc<NodeContext>, req: AddNode) -> WithStatus<Json> {
    use crate::raft::membership_change::AddNodeError;
    let Some(raft) = ctx.raft_actor.get() else {
        return outcome(StatusCode::SERVICE_UNAVAILABLE, false, "the Raft node is restarting");
    };
    let peer = chronik::config::PeerConfig {
        id: req.node_id,
        kafka: req.kafka_addr,
        wal: req.wal_addr,
        raft: req.raft_addr,
        admin: None,
    };
    let node = crate::raft::node_info(&peer);
    let msg = |reply| crate::raft::RaftMsg::AddNode { node, reply };
    match raft.call(msg, Duration::from_secs(60)).await {
        Ok(ractor::rpc::CallResult::Success(Ok(()))) => {
            outcome(StatusCode::OK, true, format!("Node {} added to the cluster as a voter", req.node_id))
        }
        Ok(ractor::rpc::CallResult::Success(Err(e))) => {
            let status = match e {
                AddNodeError::InvalidAddress(_) => StatusCode::BAD_REQUEST,
                AddNodeError::NotLeader => StatusCode::MISDIRECTED_REQUEST,
                AddNodeError::Exists(_)
                | AddNodeError::Retired(_)
                | AddNodeError::InProgress
                | AddNodeError::WrongNode { .. }
                | AddNodeError::OtherCluster { .. }
                | AddNodeError::AddressInUse { .. } => StatusCode::CONFLICT,
                AddNodeError::Unreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                AddNodeError::CatchUpTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
                AddNodeError::Raft(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            outcome(status, false, e.to_string())
        }
        _ => outcome(StatusCode::GATEWAY_TIMEOUT, false, "the Raft node did not answer in time"),
    }
}

fn health(ctx: &NodeContext) -> Json {
    let id = ctx.config.node_id;
    let view = ctx.cluster.borrow().clone();
    let status = match (view.member, view.leader) {
        (false, _) => "not_member",
        (true, None) => "no_leader",
        (true, Some(_)) => "healthy",
    };
    json(&Health {
        node_id: id,
        cluster_id: ctx.metadata().cluster_id.clone(),
        is_leader: view.leader == Some(id),
        leader_id: view.leader,
        term: view.term,
        cluster_nodes: view.voters,
        learners: view.learners,
        status,
    })
}

async fn partitions(ctx: Arc<NodeContext>) -> Json {
    let metadata = ctx.metadata();
    let mut out = Vec::new();
    for topic in metadata.topics.values() {
        for p in &topic.partitions {
            let info = replica_info(&ctx, &TopicPartition::new(&topic.name, p.partition)).await;
            out.push(PartitionView {
                topic: topic.name.clone(),
                partition: p.partition,
                replicas: p.replicas.clone(),
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                isr: p.isr.clone(),
                log_start_offset: info.as_ref().map(|i| i.log_start_offset),
                log_end_offset: info.as_ref().map(|i| i.log_end_offset),
                high_watermark: info.as_ref().map(|i| i.high_watermark),
                last_stable_offset: info.as_ref().map(|i| i.last_stable_offset),
                replica: info,
                offline: ctx.offline.get(&TopicPartition::new(&topic.name, p.partition)).map(|o| o.clone()),
            });
        }
    }
    json(&serde_json::json!({ "partitions": out }))
}

pub(super) async fn replica_info(ctx: &NodeContext, tp: &TopicPartition) -> Option<ReplicaInfo> {
    let replica = ctx.replicas.get(tp).map(|r| r.clone())?;
    match replica.call(ReplicaMsg::Info, Duration::from_secs(5)).await {
        Ok(ractor::rpc::CallResult::Success(info)) => Some(info),
        _ => None,
    }
}

async fn reject(r: Rejection) -> Result<warp::reply::Response, Infallible> {
    if let Some(refused) = r.find::<super::auth::Unauthorized>() {
        let reply = outcome(StatusCode::UNAUTHORIZED, false, refused.0);
        return Ok(
            warp::reply::with_header(reply, "www-authenticate", "Bearer realm=\"chronik-admin\"").into_response()
        );
    }
    let (status, message) = if r.is_not_found() {
        (StatusCode::NOT_FOUND, "no such endpoint".to_string())
    } else if let Some(e) = r.find::<warp::filters::body::BodyDeserializeError>() {
        (StatusCode::BAD_REQUEST, format!("invalid request body: {e}"))
    } else if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        (StatusCode::BAD_REQUEST, format!("invalid query string: {e}"))
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {MAX_BODY} bytes"))
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".to_string())
    } else {
        (StatusCode::BAD_REQUEST, format!("bad request: {r:?}"))
    };
    Ok(outcome(status, false, message).into_response())
}
