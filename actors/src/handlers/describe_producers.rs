//! DescribeProducers (v0, KIP-664): the idempotent producers of each asked partition, as its
//! leader's producer state tracks them. Chronik has no transactions, so no producer has one
//! open (`current_txn_start_offset` -1) and no coordinator epoch is known (-1).

use std::sync::Arc;

use chronik::partition::ProducerSummary;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId, ResponseKind};

use super::{ask_replica, replica_for, str_bytes, topic_name};
use crate::context::NodeContext;
use crate::replica::{PartitionError, ReplicaMsg};

/// Handles one DescribeProducers request.
pub async fn handle(ctx: &Arc<NodeContext>, req: DescribeProducersRequest) -> ResponseKind {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
        for &index in &topic.partition_indexes {
            let found = match replica_for(ctx, name, index) {
                Ok(replica) => ask_replica(&replica, ReplicaMsg::DescribeProducers).await,
                Err(e) => Err(e),
            };
            partitions.push(answer(index, found));
        }
        topics.push(TopicResponse::default().with_name(topic_name(name)).with_partitions(partitions));
    }
    ResponseKind::DescribeProducers(DescribeProducersResponse::default().with_topics(topics))
}

/// One partition's answer: its producers, or its error with the reason.
fn answer(index: i32, found: Result<Vec<ProducerSummary>, PartitionError>) -> PartitionResponse {
    let r = PartitionResponse::default().with_partition_index(index);
    match found {
        Ok(producers) => r.with_active_producers(producers.into_iter().map(producer_state).collect()),
        Err(e) => r.with_error_code(e.code).with_error_message(Some(str_bytes(e.message))),
    }
}

fn producer_state(p: ProducerSummary) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(p.producer_id))
        .with_producer_epoch(i32::from(p.producer_epoch))
        .with_last_sequence(p.last_sequence)
        .with_last_timestamp(p.last_timestamp)
        .with_coordinator_epoch(-1)
        .with_current_txn_start_offset(-1)
}
