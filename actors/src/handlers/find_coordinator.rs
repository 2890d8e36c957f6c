//! FindCoordinator (v0–v5): a group's coordinator is the leader of its `__consumer_offsets`
//! partition, as in Kafka. The first lookup proposes the offsets topic and waits a moment for it
//! (some admin clients do not retry COORDINATOR_NOT_AVAILABLE); if it takes longer, it answers
//! COORDINATOR_NOT_AVAILABLE, which consumers retry. Transaction coordinators (key type 1) do not
//! exist: transactions are not supported.
//!
//! From v4 (KIP-699) a request names several keys and each gets its own answer; v5 only adds an
//! error code this broker never returns.

use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::ClusterMetadata;
use chronik::offsets::OFFSETS_TOPIC;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;
use crate::group_coordinator::ownership::{NoCoordinator, coordinator_for};

/// Key type of a group coordinator lookup.
const GROUP: i8 = 0;
/// How long the first lookup waits for the offsets topic it asked for.
const CREATE_WAIT: Duration = Duration::from_secs(5);
/// The first version whose request carries a list of keys.
const BATCHED: i16 = 4;

/// Where one key's coordinator is: `(node id, host, port)`, or why it is not available.
type Found = Result<(i32, String, i32), String>;

/// Handles one FindCoordinator request.
pub async fn handle(ctx: &Arc<NodeContext>, req: FindCoordinatorRequest, version: i16, listener: &str) -> ResponseKind {
    let metadata = if req.key_type == GROUP { Some(offsets_topic_metadata(ctx).await) } else { None };
    let find = |key: &str| match &metadata {
        Some(metadata) => locate(metadata, key, listener),
        None => Err("transactions are not supported".to_owned()),
    };
    let response = if version >= BATCHED {
        let coordinators = req.coordinator_keys.into_iter().map(|key| batched(find(key.as_str()), key)).collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        single(find(req.key.as_str()), version)
    };
    ResponseKind::FindCoordinator(response)
}

/// The metadata to answer from. If the offsets topic does not exist yet, the coordinator
/// proposes it (one proposal at a time; a later lookup asks again) and this waits a moment
/// for it.
async fn offsets_topic_metadata(ctx: &NodeContext) -> Arc<ClusterMetadata> {
    let metadata = ctx.metadata();
    let missing = |m: &ClusterMetadata| !m.topics.contains_key(OFFSETS_TOPIC);
    if !missing(&metadata) {
        return metadata;
    }
    if let Some(coordinator) = ctx.coordinator.get() {
        let _ = coordinator.cast(CoordinatorMsg::CreateOffsetsTopic);
    }
    let mut updates = ctx.metadata.subscribe();
    let created = async { updates.wait_for(|m| !missing(m)).await.map(|m| m.clone()) };
    match tokio::time::timeout(CREATE_WAIT, created).await {
        Ok(Ok(latest)) => latest,
        _ => metadata,
    }
}

/// The coordinator of `group` in `metadata`.
fn locate(metadata: &ClusterMetadata, group: &str, listener: &str) -> Found {
    let node = match coordinator_for(metadata, group) {
        Ok(node) => node,
        Err(NoCoordinator::NoTopic) => return Err(format!("{OFFSETS_TOPIC} is being created")),
        Err(NoCoordinator::NoLeader(p)) => return Err(format!("{OFFSETS_TOPIC}-{p} has no available leader")),
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
