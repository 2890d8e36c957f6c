//! The console's view of the whole cluster from one admin port: `GET /admin/nodes` lists the
//! members with their addresses, and `/admin/nodes/{id}/{path}` relays a request to that member's
//! admin API. The browser thus talks to one origin (no CORS, one URL to open) while every number
//! it shows comes from the node that owns it.
//!
//! Only the read endpoints and the console's actions are relayed, with the caller's own
//! `Authorization` header, so the relay cannot reach anything on a member that its own admin
//! port does not already serve to the same caller.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use warp::http::{Method, StatusCode};
use warp::path::Tail;
use warp::reply::{Json, Reply, Response, json};
use warp::{Filter, Rejection};

use super::routes::{MAX_BODY, outcome};
use crate::context::NodeContext;

/// Paths a `GET` may be relayed to.
const READABLE: &[&str] = &[
    "admin/health",
    "admin/partitions",
    "admin/rebalance",
    "admin/actors",
    "admin/groups",
    "admin/transactions",
    "admin/nodes",
    "metrics",
];
/// Paths a `POST` may be relayed to: the console's actions (each still validated by the member).
const ACTIONS: &[&str] = &["admin/add-node", "admin/remove-node", "admin/rebalance/pause", "admin/rebalance/resume"];
/// A read that takes longer than this is reported as unreachable: the console polls every second.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// add-node answers once the node votes (its own limit is 60 s).
const ACTION_TIMEOUT: Duration = Duration::from_secs(90);

/// `GET /admin/nodes` and the relay `/admin/nodes/{id}/{path}`.
pub(super) fn routes(
    ctx: Arc<NodeContext>,
    local: SocketAddr,
) -> Result<impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone + use<>, String> {
    let client = crate::tls::admin_client(&ctx.config.security)?.build().map_err(|e| e.to_string())?;
    let relay = Relay { ctx: ctx.clone(), client, local };
    let nodes = warp::path!("admin" / "nodes").and(warp::get()).map(move || self::nodes(&ctx));
    let with_body = warp::path!("admin" / "nodes" / u64 / ..)
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes());
    // Without a content-length (a GET, a bodiless POST) nothing is read: the relayed endpoints
    // take small JSON bodies, which every client sends with a length.
    let without_body = warp::path!("admin" / "nodes" / u64 / ..)
        .and(warp::path::tail())
        .and(warp::method())
        .map(|node, tail, method| (node, tail, method, Bytes::new()))
        .untuple_one();
    let relayed = with_body.or(without_body).unify().and(warp::header::optional::<String>("authorization")).then(
        move |node, tail: Tail, method, body, authorization| {
            let request = Relayed { node, path: tail.as_str().to_string(), method, body, authorization };
            self::relay(relay.clone(), request)
        },
    );
    Ok(nodes.or(relayed))
}

/// One member as `GET /admin/nodes` lists it.
#[derive(Debug, Serialize)]
struct NodeView {
    /// Its id.
    id: u64,
    /// `voter` or `learner`.
    role: &'static str,
    /// Being drained by `remove-node`.
    draining: bool,
    /// Its advertised Kafka address.
    kafka: String,
    /// Its replication address.
    wal: String,
    /// Its Raft address.
    raft: String,
    /// Its admin address.
    admin: String,
}

/// `GET /admin/nodes`.
fn nodes(ctx: &NodeContext) -> Json {
    let metadata = ctx.metadata();
    let nodes: Vec<NodeView> = metadata
        .nodes
        .values()
        .map(|n| NodeView {
            id: n.id,
            role: if metadata.voters.contains(&n.id) { "voter" } else { "learner" },
            draining: metadata.draining.contains(&n.id),
            kafka: n.kafka.clone(),
            wal: n.wal.clone(),
            raft: n.raft.clone(),
            admin: n.admin.clone(),
        })
        .collect();
    json(&serde_json::json!({ "nodes": nodes }))
}

/// What a relay needs besides the request: the node's context, an HTTP client, and where this
/// node's own admin API listens (it may have no reachable advertised address of its own).
#[derive(Clone)]
struct Relay {
    /// The node's shared context (for member addresses).
    ctx: Arc<NodeContext>,
    /// Pooled connections to the members' admin APIs.
    client: reqwest::Client,
    /// This node's admin listener.
    local: SocketAddr,
}

/// One request to relay.
struct Relayed {
    /// The member to ask.
    node: u64,
    /// The path on its admin API.
    path: String,
    /// GET or POST.
    method: Method,
    /// The body (empty for a GET).
    body: Bytes,
    /// The caller's credential, passed on as it came.
    authorization: Option<String>,
}

/// `/admin/nodes/{id}/{path}`: relays the request to member `id` and passes its answer back.
async fn relay(relay: Relay, Relayed { node, path, method, body, authorization }: Relayed) -> Response {
    let (allowed, timeout) = match method {
        Method::GET => (READABLE, READ_TIMEOUT),
        Method::POST => (ACTIONS, ACTION_TIMEOUT),
        _ => return outcome(StatusCode::METHOD_NOT_ALLOWED, false, "only GET and POST are relayed").into_response(),
    };
    if !allowed.contains(&path.as_str()) {
        let message = format!("{method} /{path} is not relayed to other nodes");
        return outcome(StatusCode::NOT_FOUND, false, message).into_response();
    }
    let Some(addr) = admin_addr(&relay, node) else {
        return outcome(StatusCode::NOT_FOUND, false, format!("node {node} is not a member of the cluster"))
            .into_response();
    };
    let mut request = relay
        .client
        .request(method, format!("{}://{addr}/{path}", relay.ctx.config.security.admin_scheme()))
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(authorization) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    match request.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = answer.headers().get(reqwest::header::CONTENT_TYPE).cloned();
            match answer.bytes().await {
                Ok(bytes) => {
                    let mut response = Response::new(bytes.into());
                    *response.status_mut() = status;
                    if let Some(value) = content_type.and_then(|v| v.to_str().ok().and_then(|v| v.parse().ok())) {
                        response.headers_mut().insert(warp::http::header::CONTENT_TYPE, value);
                    }
                    response
                }
                Err(e) => unreachable(node, &addr, e),
            }
        }
        Err(e) => unreachable(node, &addr, e),
    }
}

fn unreachable(node: u64, addr: &str, e: reqwest::Error) -> Response {
    outcome(StatusCode::BAD_GATEWAY, false, format!("node {node}'s admin API at {addr} did not answer: {e}"))
        .into_response()
}

/// Where member `node`'s admin API answers; this node's own listener for itself.
fn admin_addr(relay: &Relay, node: u64) -> Option<String> {
    if node == relay.ctx.config.node_id {
        let ip = if relay.local.ip().is_unspecified() { [127, 0, 0, 1].into() } else { relay.local.ip() };
        return Some(SocketAddr::new(ip, relay.local.port()).to_string());
    }
    relay.ctx.metadata().nodes.get(&node).map(|n| n.admin.clone())
}
