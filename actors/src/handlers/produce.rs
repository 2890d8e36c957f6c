//! Produce: split each partition's records into batches, hand them to the partition's replica
//! right away (so pipelined requests append in order), then wait for the acks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik::cluster::validate_topic_name;
use chronik::log::split_batches;
use chronik::offsets::OFFSETS_TOPIC;
use futures::FutureExt;
use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use tokio::sync::oneshot;
use tracing::debug;

use super::{auto_create_topics, str_bytes, topic_name};
use crate::context::NodeContext;
use crate::replica::{AppendOutcome, PartitionError, ReplicaMsg};
use chronik::records::validate_batches;

/// One partition's answer: known now, or to be awaited.
enum Pending {
    Done(Result<AppendOutcome, PartitionError>),
    Waiting(oneshot::Receiver<Result<AppendOutcome, PartitionError>>),
}

/// Starts the produce; the returned future yields the response (`None` for acks=0).
pub fn handle(ctx: &Arc<NodeContext>, req: ProduceRequest, version: i16) -> BoxFuture<'static, Option<ResponseKind>> {
    let acks = req.acks;
    let bad_acks = !matches!(acks, -1..=1);
    let metadata = ctx.metadata();
    let mut missing = Vec::new();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let known = metadata.topics.contains_key(&name);
        if !known && ctx.config.kafka.auto_create_topics && validate_topic_name(&name).is_ok() {
            missing.push(name.clone());
        }
        let partitions: Vec<(i32, Pending)> = topic
            .partition_data
            .into_iter()
            .map(|p| {
                let pending = if bad_acks {
                    Pending::Done(Err(PartitionError::new(
                        ResponseError::InvalidRequiredAcks,
                        "acks must be -1, 0 or 1",
                    )))
                } else {
                    start_append(ctx, &name, p.index, p.records.unwrap_or_default(), acks)
                };
                (p.index, pending)
            })
            .collect();
        topics.push((name, partitions));
    }
    let ctx = ctx.clone();
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    async move {
        if !missing.is_empty() {
            auto_create_topics(&ctx, &missing).await;
        }
        if acks == 0 {
            return None;
        }
        let mut responses = Vec::with_capacity(topics.len());
        for (name, partitions) in topics {
            let mut results = Vec::with_capacity(partitions.len());
            for (index, pending) in partitions {
                results.push(partition_response(index, finish(pending, timeout).await, version));
            }
            responses
                .push(TopicProduceResponse::default().with_name(topic_name(&name)).with_partition_responses(results));
        }
        Some(ResponseKind::Produce(ProduceResponse::default().with_responses(responses)))
    }
    .boxed()
}

fn start_append(ctx: &NodeContext, topic: &str, partition: i32, records: Bytes, acks: i16) -> Pending {
    let err = |kind: ResponseError, msg: String| Pending::Done(Err(PartitionError::new(kind, msg)));
    if let Err(e) = validate_topic_name(topic) {
        return err(ResponseError::InvalidTopicException, e.to_string());
    }
    if topic == OFFSETS_TOPIC {
        // Only the group coordinator writes committed offsets (Kafka refuses this too).
        return err(ResponseError::InvalidTopicException, format!("{topic} is internal"));
    }
    let replica = match super::replica_for(ctx, topic, partition) {
        Ok(replica) => replica,
        Err(e) => return Pending::Done(Err(e)),
    };
    let batches =
        match split_batches(&records).map_err(|e| e.to_string()).and_then(|b| validate_batches(&b).map(|()| b)) {
            Ok(batches) => batches,
            Err(e) => {
                debug!(topic, partition, error = %e, "rejecting a corrupt produce");
                return err(ResponseError::CorruptMessage, e);
            }
        };
    if acks == 0 {
        let _ = replica.cast(ReplicaMsg::Append { batches, acks_all: false, reply: None });
        return Pending::Done(Ok(AppendOutcome { base_offset: -1, log_start_offset: -1 }));
    }
    let (tx, rx) = oneshot::channel();
    match replica.cast(ReplicaMsg::Append { batches, acks_all: acks == -1, reply: Some(tx.into()) }) {
        Ok(()) => Pending::Waiting(rx),
        Err(_) => err(ResponseError::NotLeaderOrFollower, format!("{topic}-{partition} is restarting")),
    }
}

async fn finish(pending: Pending, timeout: Duration) -> Result<AppendOutcome, PartitionError> {
    let rx = match pending {
        Pending::Done(result) => return result,
        Pending::Waiting(rx) => rx,
    };
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        // The replica stopped before answering (a crash and restart): the batch may or may not
        // be in the log; a retry with the same sequence is deduplicated either way.
        Ok(Err(_)) => Err(PartitionError::new(ResponseError::NotLeaderOrFollower, "replica restarted")),
        Err(_) => Err(PartitionError::new(ResponseError::RequestTimedOut, "not durable within the request timeout")),
    }
}

fn partition_response(
    index: i32,
    result: Result<AppendOutcome, PartitionError>,
    version: i16,
) -> PartitionProduceResponse {
    let r = PartitionProduceResponse::default().with_index(index).with_log_append_time_ms(-1);
    match result {
        Ok(o) => {
            let r = r.with_base_offset(o.base_offset);
            if version >= 5 { r.with_log_start_offset(o.log_start_offset) } else { r }
        }
        Err(e) => {
            let r = r.with_error_code(e.code).with_base_offset(-1);
            if version >= 8 { r.with_error_message(Some(str_bytes(e.message))) } else { r }
        }
    }
}
