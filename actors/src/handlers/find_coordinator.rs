//! FindCoordinator (v0–v3): a group's coordinator is the leader of its `__consumer_offsets`
//! partition, as in Kafka. The first lookup proposes the offsets topic and waits a moment for it
//! (some admin clients do not retry COORDINATOR_NOT_AVAILABLE); if it takes longer, it answers
//! COORDINATOR_NOT_AVAILABLE, which consumers retry. Transaction coordinators (key type 1) do not
//! exist: transactions are not supported.

use std::sync::Arc;
use std::time::Duration;

use chronik::offsets::OFFSETS_TOPIC;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind};

use super::str_bytes;
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;
use crate::group_coordinator::ownership::{NoCoordinator, coordinator_for};

/// Key type of a group coordinator lookup.
const GROUP: i8 = 0;
/// How long the first lookup waits for the offsets topic it asked for.
const CREATE_WAIT: Duration = Duration::from_secs(5);

/// Handles one FindCoordinator request.
pub async fn handle(ctx: &Arc<NodeContext>, req: FindCoordinatorRequest, version: i16) -> ResponseKind {
    if req.key_type != GROUP {
        return unavailable("transactions are not supported", version);
    }
    let group = req.key.as_str();
    let mut metadata = ctx.metadata();
    if let Err(NoCoordinator::NoTopic) = coordinator_for(&metadata, group) {
        // The coordinator proposes it, one proposal at a time; without it, a later lookup
        // asks again.
        if let Some(coordinator) = ctx.coordinator.get() {
            let _ = coordinator.cast(CoordinatorMsg::CreateOffsetsTopic);
        }
        let mut updates = ctx.metadata.subscribe();
        let created = async {
            let m = updates.wait_for(|m| !matches!(coordinator_for(m, group), Err(NoCoordinator::NoTopic))).await;
            m.map(|m| m.clone())
        };
        if let Ok(Ok(latest)) = tokio::time::timeout(CREATE_WAIT, created).await {
            metadata = latest;
        }
    }
    let found = coordinator_for(&metadata, group);
    let node = match found {
        Ok(node) => node,
        Err(NoCoordinator::NoTopic) => return unavailable(&format!("{OFFSETS_TOPIC} is being created"), version),
        Err(NoCoordinator::NoLeader(p)) => {
            return unavailable(&format!("{OFFSETS_TOPIC}-{p} has no available leader"), version);
        }
    };
    let Some((host, port)) = super::host_port(&node.kafka) else {
        return unavailable(&format!("broker {} has no usable address {:?}", node.id, node.kafka), version);
    };
    let response = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(node.id as i32))
        .with_host(str_bytes(host))
        .with_port(port);
    ResponseKind::FindCoordinator(response)
}

/// COORDINATOR_NOT_AVAILABLE (retriable), with why from v1 on.
fn unavailable(why: &str, version: i16) -> ResponseKind {
    let r = FindCoordinatorResponse::default()
        .with_error_code(ResponseError::CoordinatorNotAvailable.code())
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    let r = if version >= 1 { r.with_error_message(Some(str_bytes(why))) } else { r };
    ResponseKind::FindCoordinator(r)
}
