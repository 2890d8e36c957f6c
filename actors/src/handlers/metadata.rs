//! Metadata: brokers, topics, partitions with leader, replicas and ISR. Unknown topics a client
//! names are created when auto-creation is on and the client allows it.

use std::sync::Arc;

use chronik::cluster::{ClusterMetadata, TopicMeta, validate_topic_name};
use chronik::offsets::OFFSETS_TOPIC;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, ResponseKind};

use super::{auto_create_topics, str_bytes, topic_name};
use crate::context::NodeContext;

/// The cluster id reported to clients before the cluster has its own (it gets one, a UUID, as
/// soon as its first Raft leader is elected).
const UNSET_CLUSTER_ID: &str = "chronik";

/// The cluster id clients are told: the one set when the cluster formed.
pub(crate) fn cluster_id(ctx: &NodeContext) -> String {
    ctx.metadata().cluster_id.clone().unwrap_or_else(|| UNSET_CLUSTER_ID.to_string())
}

/// Handles one Metadata request.
pub async fn handle(ctx: &Arc<NodeContext>, req: MetadataRequest, version: i16, listener: &str) -> ResponseKind {
    let requested = requested_topics(&req, version, &ctx.metadata());
    if let Some(names) = &requested {
        let allowed = version < 4 || req.allow_auto_topic_creation;
        if allowed && ctx.config.kafka.auto_create_topics {
            auto_create_topics(ctx, names).await;
        }
    }
    let metadata = ctx.metadata();
    let topics = match requested {
        None => metadata.topics.values().map(|t| topic_response(t, version)).collect(),
        Some(names) => names.iter().map(|n| named_topic_response(&metadata, n, version)).collect(),
    };
    let mut response = MetadataResponse::default().with_brokers(brokers(ctx, &metadata, listener)).with_topics(topics);
    // Fields a version lacks must stay at their defaults or the encoder refuses them.
    if version >= 1 {
        response = response.with_controller_id(super::controller_id(ctx));
    }
    if version >= 2 {
        response = response.with_cluster_id(Some(str_bytes(cluster_id(ctx))));
    }
    ResponseKind::Metadata(response)
}

/// `None` means every topic: a null list (v1+) or an empty one (v0). Topics asked for by id
/// (v10+) are resolved to their names.
fn requested_topics(req: &MetadataRequest, version: i16, metadata: &ClusterMetadata) -> Option<Vec<String>> {
    let topics = req.topics.as_ref()?;
    if version == 0 && topics.is_empty() {
        return None;
    }
    let names = topics.iter().filter_map(|t| match &t.name {
        Some(name) => Some(name.0.to_string()),
        None => metadata.topics.values().find(|m| m.id == t.topic_id).map(|m| m.name.clone()),
    });
    Some(names.collect())
}

/// The brokers a client is told of. A node that has not learned the cluster's metadata yet (it
/// started moments ago, or waits to be added) names itself: an empty list leaves a client with
/// nobody to ask again, and librdkafka's admin client then waits for a broker it never learns.
fn brokers(ctx: &NodeContext, metadata: &ClusterMetadata, listener: &str) -> Vec<MetadataResponseBroker> {
    let broker = |id: u64, address: &str| {
        let (host, port) = super::host_port(address)?;
        Some(
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id as i32))
                .with_host(str_bytes(host))
                .with_port(port),
        )
    };
    if metadata.nodes.is_empty() {
        let me = ctx.config.listeners().into_iter().find(|l| l.name == listener);
        return me.and_then(|l| broker(ctx.config.node_id, &l.advertised)).into_iter().collect();
    }
    metadata.nodes.values().filter_map(|n| broker(n.id, n.kafka_address(listener))).collect()
}

fn named_topic_response(metadata: &ClusterMetadata, name: &str, version: i16) -> MetadataResponseTopic {
    if let Some(topic) = metadata.topics.get(name) {
        return topic_response(topic, version);
    }
    let code = match validate_topic_name(name) {
        Ok(()) => ResponseError::UnknownTopicOrPartition,
        Err(_) => ResponseError::InvalidTopicException,
    };
    MetadataResponseTopic::default().with_name(Some(topic_name(name))).with_error_code(code.code())
}

fn topic_response(topic: &TopicMeta, version: i16) -> MetadataResponseTopic {
    let ids = |v: &[u64]| v.iter().map(|&id| BrokerId(id as i32)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let r = MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader as i32))
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr));
            if version >= 7 { r.with_leader_epoch(p.leader_epoch) } else { r }
        })
        .collect();
    let r = MetadataResponseTopic::default().with_name(Some(topic_name(&topic.name))).with_partitions(partitions);
    let r = if version >= 1 { r.with_is_internal(topic.name == OFFSETS_TOPIC) } else { r };
    if version >= 10 { r.with_topic_id(topic.id) } else { r }
}
