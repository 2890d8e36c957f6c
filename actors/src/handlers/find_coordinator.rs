//! FindCoordinator (v0–v3): on a single node every group's coordinator is this broker.
//! Transaction coordinators (key type 1) do not exist: transactions are not supported.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind};

use super::str_bytes;
use crate::context::NodeContext;

/// Key type of a group coordinator lookup.
const GROUP: i8 = 0;

/// Handles one FindCoordinator request.
pub fn handle(ctx: &Arc<NodeContext>, req: FindCoordinatorRequest, version: i16) -> ResponseKind {
    let response = FindCoordinatorResponse::default();
    if req.key_type != GROUP {
        let r = response
            .with_error_code(ResponseError::CoordinatorNotAvailable.code())
            .with_node_id(BrokerId(-1))
            .with_port(-1);
        let r = if version >= 1 { r.with_error_message(Some(str_bytes("transactions are not supported"))) } else { r };
        return ResponseKind::FindCoordinator(r);
    }
    let advertised = ctx.config.advertised_kafka();
    // The advertised address was validated at start, so it always splits.
    let (host, port) = super::host_port(&advertised).unwrap_or(("localhost", 9092));
    let response =
        response.with_node_id(BrokerId(ctx.config.node_id as i32)).with_host(str_bytes(host)).with_port(port);
    ResponseKind::FindCoordinator(response)
}
