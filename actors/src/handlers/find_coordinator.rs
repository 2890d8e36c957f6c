//! FindCoordinator (v0–v5): a group's coordinator is the leader of its `__consumer_offsets`
//! partition, a transactional id's the leader of its `__transaction_state` partition (key type
//! 1), as in Kafka. The first lookup proposes the internal topic and waits a moment for it
//! (some admin clients do not retry COORDINATOR_NOT_AVAILABLE); if it takes longer, it answers
//! COORDINATOR_NOT_AVAILABLE, which clients retry.
//!
//! From v4 (KIP-699) a request names several keys and each gets its own answer; v5 only adds an
//! error code this broker never returns.

use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::ClusterMetadata;
use chronik::offsets::OFFSETS_TOPIC;
use chronik::txn::TRANSACTION_STATE_TOPIC;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;
use crate::group_coordinator::ownership::{NoCoordinator, coordinator_for};
use crate::txn_coordinator::TxnCoordinatorMsg;

/// Key type of a group coordinator lookup.
const GROUP: i8 = 0;
/// Key type of a transaction coordinator lookup.
const TRANSACTION: i8 = 1;
/// How long the first lookup waits for the offsets topic it asked for.
const CREATE_WAIT: Duration = Duration::from_secs(5);
/// Why a broker out of touch with the Raft leader names no coordinator.
const STALE: &str = "this broker has not heard from the Raft leader lately; its metadata may be stale";
/// The first version whose request carries a list of keys.
const BATCHED: i16 = 4;

/// Where one key's coordinator is: `(node id, host, port)`, or why it is not available.
type Found = Result<(i32, String, i32), String>;

/// Handles one FindCoordinator request.
pub async fn handle(ctx: &Arc<NodeContext>, req: FindCoordinatorRequest, version: i16, listener: &str) -> ResponseKind {
    let topic = match req.key_type {
        GROUP => Some(OFFSETS_TOPIC),
        TRANSACTION => Some(TRANSACTION_STATE_TOPIC),
        _ => None,
    };
    let metadata = match topic {
        Some(topic) => Some(internal_topic_metadata(ctx, topic).await),
        None => None,
    };
    let in_touch = crate::raft::contact::in_touch(ctx);
    let find = |key: &str| match (&metadata, topic) {
        // Its metadata may name itself for partitions the controller has since moved.
        (Some(_), Some(_)) if !in_touch => Err(STALE.to_string()),
        (Some(metadata), Some(topic)) => locate(metadata, topic, key, listener),
        _ => Err(format!("unknown coordinator key type {}", req.key_type)),
    };
    let response = if version >= BATCHED {
        let coordinators = req.coordinator_keys.into_iter().map(|key| batched(find(key.as_str()), key)).collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        single(find(req.key.as_str()), version)
    };
    ResponseKind::FindCoordinator(response)
}

/// The metadata to answer from. If the coordinators' internal `topic` does not exist yet, its
/// coordinator proposes it (one proposal at a time; a later lookup asks again) and this waits
/// a moment for it.
pub(crate) async fn internal_topic_metadata(ctx: &NodeContext, topic: &str) -> Arc<ClusterMetadata> {
    let metadata = ctx.metadata();
    let missing = |m: &ClusterMetadata| !m.topics.contains_key(topic);
    if !missing(&metadata) {
        return metadata;
    }
    if topic == OFFSETS_TOPIC {
        if let Some(coordinator) = ctx.coordinator.get() {
            let _ = coordinator.cast(CoordinatorMsg::CreateOffsetsTopic);
        }
    } else if let Some(coordinator) = ctx.txn_coordinator.get() {
        let _ = coordinator.cast(TxnCoordinatorMsg::CreateTopic);
    }
    let mut updates = ctx.metadata.subscribe();
    let created = async { updates.wait_for(|m| !missing(m)).await.map(|m| m.clone()) };
    match tokio::time::timeout(CREATE_WAIT, created).await {
        Ok(Ok(latest)) => latest,
        _ => metadata,
    }
}

/// The coordinator of `key` (a group or a transactional id) in `metadata`: the leader of its
/// partition of internal topic `topic`.
fn locate(metadata: &ClusterMetadata, topic: &str, key: &str, listener: &str) -> Found {
    let node = match coordinator_for(metadata, topic, key) {
        Ok(node) => node,
        Err(NoCoordinator::NoTopic) => return Err(format!("{topic} is being created")),
        Err(NoCoordinator::NoLeader(p)) => return Err(format!("{topic}-{p} has no available leader")),
    };
    let address = node.kafka_address(listener);
    match super::host_port(address) {
        Some((host, port)) => Ok((node.id as i32, host.to_owned(), port)),
        None => Err(format!("broker {} has no usable address {address:?}", node.id)),
    }
}

/// A v0–v3 answer; COORDINATOR_NOT_AVAILABLE (retriable) where not found, with why from v1 on.
fn single(found: Found, version: i16) -> FindCoordinatorResponse {
    match found {
        Ok((node, host, port)) => {
            FindCoordinatorResponse::default().with_node_id(BrokerId(node)).with_host(str_bytes(host)).with_port(port)
        }
        Err(why) => {
            let r = FindCoordinatorResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1);
            if version >= 1 { r.with_error_message(Some(str_bytes(why))) } else { r }
        }
    }
}

/// One key's row of a v4+ answer.
fn batched(found: Found, key: StrBytes) -> Coordinator {
    let row = Coordinator::default().with_key(key);
    match found {
        Ok((node, host, port)) => row.with_node_id(BrokerId(node)).with_host(str_bytes(host)).with_port(port),
        Err(why) => row
            .with_error_code(ResponseError::CoordinatorNotAvailable.code())
            .with_error_message(Some(str_bytes(why)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}
