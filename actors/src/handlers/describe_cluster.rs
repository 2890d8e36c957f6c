//! DescribeCluster (v0–v1): the cluster id (the one `/admin/health` shows), the controller and
//! every broker.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind};

use super::metadata::cluster_id;
use super::str_bytes;
use crate::context::NodeContext;

/// Handles one DescribeCluster request.
pub fn handle(ctx: &Arc<NodeContext>, _req: DescribeClusterRequest, listener: &str) -> ResponseKind {
    let brokers = ctx
        .metadata()
        .nodes
        .values()
        .filter_map(|n| {
            let (host, port) = super::host_port(n.kafka_address(listener))?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(n.id as i32))
                    .with_host(str_bytes(host))
                    .with_port(port),
            )
        })
        .collect();
    let response = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(cluster_id(ctx)))
        .with_controller_id(super::controller_id(ctx))
        .with_brokers(brokers);
    ResponseKind::DescribeCluster(response)
}
