//! Fetch: read each partition up to its high watermark (`read_committed`, v4+: its last stable
//! offset, with the aborted transactions the consumer drops) within the byte limits; if fewer than
//! `min_bytes` are there, park on the replicas until data arrives or `max_wait_ms` passes.
//! From v13 topics are named by id; from v16 a partition answered NOT_LEADER_OR_FOLLOWER or
//! FENCED_LEADER_EPOCH names its current leader (KIP-951). v15's replica state and v17's
//! directory id concern Kafka's own follower fetches, which Chronik replicates another way.

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, ResponseKind};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::leader_hint::LeaderHints;
use super::str_bytes;
use crate::context::{NodeContext, TopicPartition};
use crate::replica::{PartitionError, ReadOutcome, ReplicaMsg};

/// Handles one fetch, long-polling when asked to.
pub async fn handle(ctx: &Arc<NodeContext>, req: FetchRequest, version: i16, listener: Arc<str>) -> ResponseKind {
    if req.session_id != 0 {
        // No fetch sessions are created (every answer carries session id 0), so none can be
        // continued; the client falls back to full fetches.
        let response = FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
        return ResponseKind::Fetch(response);
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let topics = resolve(ctx, &req.topics, version);
    loop {
        let (response, bytes, errors) = read_all(ctx, &req, &topics, version, &listener).await;
        let waited_out = Instant::now() >= deadline;
        if bytes >= req.min_bytes.max(0) as usize || waited_out || errors {
            ctx.requests.fetched(bytes);
            return ResponseKind::Fetch(response);
        }
        wait_for_data(ctx, &req, &topics, deadline).await;
    }
}

/// Each requested topic's name: as sent before v13, looked up by id from v13 (`None` for an id
/// this cluster does not know, answered UNKNOWN_TOPIC_ID).
fn resolve(ctx: &NodeContext, topics: &[FetchTopic], version: i16) -> Vec<Option<String>> {
    let metadata = ctx.metadata();
    let by_id = |t: &FetchTopic| metadata.topics.values().find(|m| m.id == t.topic_id).map(|m| m.name.clone());
    topics.iter().map(|t| if version >= 13 { by_id(t) } else { Some(t.topic.0.to_string()) }).collect()
}

/// Reads every requested partition once; returns the response, the bytes read and whether any
/// partition failed (an error is answered at once rather than waited on).
async fn read_all(
    ctx: &NodeContext,
    req: &FetchRequest,
    names: &[Option<String>],
    version: i16,
    listener: &Arc<str>,
) -> (FetchResponse, usize, bool) {
    let mut budget = req.max_bytes.max(0) as usize;
    let committed = req.isolation_level == 1;
    let (mut total, mut errors) = (0usize, false);
    let mut hints = LeaderHints::new(listener.clone());
    let mut topics = Vec::with_capacity(req.topics.len());
    for (topic, name) in req.topics.iter().zip(names) {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let max = (p.partition_max_bytes.max(0) as usize).min(budget);
            // KIP-74: the first partition with data returns at least one whole batch, so a
            // batch larger than the limits still makes progress.
            let min_one = total == 0;
            let data = PartitionData::default().with_partition_index(p.partition);
            let read = match name {
                Some(name) => {
                    let at = (p.current_leader_epoch, p.fetch_offset);
                    read_partition(ctx, name, p.partition, at, committed, max, min_one).await
                }
                None => Err(PartitionError::new(ResponseError::UnknownTopicId, "no topic has this id")),
            };
            let data = match read {
                Ok(r) => {
                    total += r.records.len();
                    budget = budget.saturating_sub(r.records.len());
                    let aborted = r
                        .aborted
                        .iter()
                        .map(|a| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(a.producer_id))
                                .with_first_offset(a.first_offset)
                        })
                        .collect();
                    let data = data
                        .with_high_watermark(r.high_watermark)
                        .with_last_stable_offset(r.last_stable_offset)
                        .with_aborted_transactions(Some(aborted))
                        .with_records(Some(r.records));
                    if version >= 5 { data.with_log_start_offset(r.log_start_offset) } else { data }
                }
                Err(e) => {
                    errors = true;
                    let data = data.with_error_code(e.code).with_high_watermark(-1).with_last_stable_offset(-1);
                    let hint = name
                        .as_ref()
                        .filter(|_| version >= 16)
                        .and_then(|name| hints.hint(&ctx.metadata(), name, p.partition, e.code, ctx.config.node_id));
                    match hint {
                        Some((leader, epoch)) => data.with_current_leader(
                            LeaderIdAndEpoch::default().with_leader_id(BrokerId(leader)).with_leader_epoch(epoch),
                        ),
                        None => data,
                    }
                }
            };
            partitions.push(data);
        }
        // The encoder writes the name before v13 and the id from v13: echo what was sent.
        let answer = FetchableTopicResponse::default().with_topic(topic.topic.clone()).with_topic_id(topic.topic_id);
        topics.push(answer.with_partitions(partitions));
    }
    let endpoints = hints
        .endpoints()
        .map(|(id, host, port)| {
            NodeEndpoint::default().with_node_id(BrokerId(id)).with_host(str_bytes(host)).with_port(port)
        })
        .collect();
    (FetchResponse::default().with_responses(topics).with_node_endpoints(endpoints), total, errors)
}

/// Reads one partition; `(leader_epoch, offset)` are the fetch's, `committed` its isolation.
async fn read_partition(
    ctx: &NodeContext,
    topic: &str,
    partition: i32,
    (leader_epoch, offset): (i32, i64),
    committed: bool,
    max_bytes: usize,
    min_one: bool,
) -> Result<ReadOutcome, PartitionError> {
    super::check_leader_epoch(ctx, topic, partition, leader_epoch)?;
    let replica = super::replica_for(ctx, topic, partition)?;
    let read = super::ask_replica(&replica, |reply| ReplicaMsg::Read { offset, committed, max_bytes, min_one, reply });
    match read.await {
        // A node out of touch with the Raft leader (frozen, cut off) may lead here no more, and
        // its log may lack what the new leader took since: OFFSET_OUT_OF_RANGE would make the
        // consumer reset its position (kafka-python, with no leader epoch, to the earliest
        // offset, reading everything again). NOT_LEADER_OR_FOLLOWER sends it to the leader.
        Err(e) if e.code == ResponseError::OffsetOutOfRange.code() && !crate::raft::contact::in_touch(ctx) => {
            let why = format!("{topic}-{partition}: this broker's leadership may be stale ({})", e.message);
            Err(PartitionError::new(ResponseError::NotLeaderOrFollower, why))
        }
        read => read,
    }
}

/// Parks on every fetched partition until one has data past its fetch offset or the deadline.
async fn wait_for_data(ctx: &NodeContext, req: &FetchRequest, names: &[Option<String>], deadline: Instant) {
    let committed = req.isolation_level == 1;
    let mut waits = Vec::new();
    for (topic, name) in req.topics.iter().zip(names) {
        let Some(name) = name else { continue };
        for p in &topic.partitions {
            let tp = TopicPartition::new(name.as_str(), p.partition);
            let Some(replica) = ctx.replicas.get(&tp).map(|r| r.clone()) else { continue };
            let (tx, rx) = oneshot::channel();
            let msg = ReplicaMsg::WaitForData { offset: p.fetch_offset, committed, reply: tx.into() };
            if replica.cast(msg).is_ok() {
                waits.push(rx);
            }
        }
    }
    if waits.is_empty() {
        tokio::time::sleep_until(deadline).await;
    } else {
        let _ = tokio::time::timeout_at(deadline, select_all(waits)).await;
    }
}
