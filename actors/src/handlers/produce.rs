//! Produce: check each partition's records (exactly one batch, every record walked: see
//! `chronik::records::validate`), hand the batch to the partition's replica right away (so
//! pipelined requests append in order), then wait for the acks. A refused batch never reaches
//! the replica; its answer carries Kafka's code, a message and, from v8, the records to blame.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik::cluster::{topic_produce_rules, validate_topic_name};
use chronik::offsets::OFFSETS_TOPIC;
use chronik::records::{
    NoTransactions, OngoingTransactions, ProduceRules, Refusal, TimestampRule, TopicRules, claims_transaction,
    validate_produce,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, ResponseKind};
use tokio::sync::oneshot;
use tracing::debug;

use super::leader_hint::LeaderHints;
use super::{auto_create_topics, str_bytes, topic_name};
use crate::context::{NodeContext, TopicPartition};
use crate::replica::{AppendOutcome, PartitionError, ReplicaMsg, now_ms};
use crate::txn_registry::PartitionTransactions;

/// One partition's answer: known now, refused before appending, or to be awaited.
enum Pending {
    /// Answered without waiting for the replica.
    Done(Result<AppendOutcome, PartitionError>),
    /// The records failed validation; nothing was appended.
    Refused(Refusal),
    /// Appended (or queued); the replica answers once `acks` is satisfied.
    Waiting {
        /// The answer.
        rx: oneshot::Receiver<Result<AppendOutcome, PartitionError>>,
        /// Record bytes in the batch, counted once it is accepted.
        bytes: usize,
    },
}

/// Starts the produce; the returned future yields the response (`None` for acks=0).
pub fn handle(
    ctx: &Arc<NodeContext>,
    req: ProduceRequest,
    version: i16,
    listener: Arc<str>,
) -> BoxFuture<'static, Option<ResponseKind>> {
    let acks = req.acks;
    let shared_failure = request_failure(&req);
    let has_transactional_id = req.transactional_id.is_some();
    let now = now_ms();
    let metadata = ctx.metadata();
    let mut missing = Vec::new();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let configs = metadata.topics.get(&name).map(|t| &t.configs);
        if configs.is_none() && ctx.config.kafka.auto_create_topics && validate_topic_name(&name).is_ok() {
            missing.push(name.clone());
        }
        let topic_rules =
            configs.map_or_else(TopicRules::default, |c| topic_produce_rules(c, ctx.config.kafka.max_request_bytes));
        let partitions: Vec<(i32, Pending)> = topic
            .partition_data
            .into_iter()
            .map(|p| match shared_failure {
                Some(fail) => (p.index, fail()),
                None => {
                    // A transactional batch needs its partition registered in the producer's
                    // transaction by the coordinator (KIP-890). Without a transactional id the
                    // batch checks refuse one before asking, so plain produces skip the lookup.
                    let registered = has_transactional_id.then(|| PartitionTransactions {
                        registry: &ctx.transactions,
                        tp: TopicPartition::new(&name, p.index),
                    });
                    let transactions: &dyn OngoingTransactions = match &registered {
                        Some(registered) => registered,
                        None => &NoTransactions,
                    };
                    let rules = ProduceRules {
                        api_version: version,
                        has_transactional_id,
                        transactions,
                        topic: topic_rules,
                        now_ms: now,
                    };
                    (p.index, start_append(ctx, &name, p.index, p.records.as_ref(), acks, &rules))
                }
            })
            .collect();
        let log_append_time = if topic_rules.timestamps == TimestampRule::LogAppendTime { now } else { -1 };
        topics.push(TopicPending { name, log_append_time, partitions });
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
        Some(ResponseKind::Produce(respond(&ctx, topics, timeout, version, listener).await))
    }
    .boxed()
}

/// A failure every partition of the request shares, found before any records are looked at:
/// like Kafka, a transactional batch in a request without a transactional id fails the whole
/// request (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); then acks outside -1..=1.
fn request_failure(req: &ProduceRequest) -> Option<fn() -> Pending> {
    let partitions = || req.topic_data.iter().flat_map(|t| &t.partition_data);
    if req.transactional_id.is_none() && partitions().any(|p| p.records.as_deref().is_some_and(claims_transaction)) {
        return Some(|| Pending::Refused(Refusal::TransactionalWithoutId));
    }
    if !matches!(req.acks, -1..=1) {
        return Some(|| {
            Pending::Done(Err(PartitionError::new(ResponseError::InvalidRequiredAcks, "acks must be -1, 0 or 1")))
        });
    }
    None
}

/// One topic of the request, its partitions under way.
struct TopicPending {
    /// The topic's name.
    name: String,
    /// The time its batches were stamped with (LogAppendTime topics), else -1.
    log_append_time: i64,
    /// Each partition's index and answer to come.
    partitions: Vec<(i32, Pending)>,
}

/// Waits for every partition's answer, in request order. From v10 a NOT_LEADER_OR_FOLLOWER
/// answer names the current leader and the response lists its address (KIP-951), and so does
/// the answer to a produce passed on to the new leader after a handover.
async fn respond(
    ctx: &NodeContext,
    topics: Vec<TopicPending>,
    timeout: Duration,
    version: i16,
    listener: Arc<str>,
) -> ProduceResponse {
    let mut hints = LeaderHints::new(listener);
    let mut responses = Vec::with_capacity(topics.len());
    for TopicPending { name, log_append_time, partitions } in topics {
        let mut results = Vec::with_capacity(partitions.len());
        for (index, pending) in partitions {
            let answer = finish(ctx, pending, timeout).await;
            let mut r = partition_response(index, answer, log_append_time, version);
            if r.error_code == ResponseError::NotLeaderOrFollower.code() {
                ctx.requests.misdirected(false);
            }
            if version >= 10
                && let Some((leader, epoch)) =
                    hints.hint(&ctx.metadata(), &name, index, r.error_code, ctx.config.node_id)
            {
                if r.error_code == 0 {
                    ctx.requests.misdirected(true);
                }
                r = r.with_current_leader(
                    LeaderIdAndEpoch::default().with_leader_id(BrokerId(leader)).with_leader_epoch(epoch),
                );
            }
            results.push(r);
        }
        responses.push(TopicProduceResponse::default().with_name(topic_name(&name)).with_partition_responses(results));
    }
    let endpoints = hints
        .endpoints()
        .map(|(id, host, port)| {
            NodeEndpoint::default().with_node_id(BrokerId(id)).with_host(str_bytes(host)).with_port(port)
        })
        .collect();
    ProduceResponse::default().with_responses(responses).with_node_endpoints(endpoints)
}

fn start_append(
    ctx: &NodeContext,
    topic: &str,
    partition: i32,
    records: Option<&Bytes>,
    acks: i16,
    rules: &ProduceRules<'_>,
) -> Pending {
    let err = |kind: ResponseError, msg: String| Pending::Done(Err(PartitionError::new(kind, msg)));
    if let Err(e) = validate_topic_name(topic) {
        return err(ResponseError::InvalidTopicException, e.to_string());
    }
    if topic == OFFSETS_TOPIC || topic == chronik::txn::TRANSACTION_STATE_TOPIC {
        // Only the coordinators write their internal topics (Kafka refuses this too).
        return err(ResponseError::InvalidTopicException, format!("{topic} is internal"));
    }
    // A replica that just handed its leadership over may pass the produce on to the new
    // leader, when the answer can tell the client where to go next (KIP-951, v10+).
    // Transactional batches are not passed on: their partition's registration is checked here.
    let forward = rules.api_version >= 10 && !rules.has_transactional_id;
    let replica = match super::replica_for(ctx, topic, partition) {
        Ok(replica) => replica,
        Err(e) if forward && e.code == ResponseError::NotLeaderOrFollower.code() => {
            match ctx.replicas.get(&TopicPartition::new(topic, partition)) {
                Some(r) => r.clone(),
                None => return Pending::Done(Err(e)),
            }
        }
        Err(e) => return Pending::Done(Err(e)),
    };
    let batches = match validate_produce(records, rules) {
        Ok(batch) => vec![batch],
        Err(refusal) => {
            debug!(topic, partition, error = %refusal, code = refusal.error().code(), "refusing a produced batch");
            return Pending::Refused(refusal);
        }
    };
    let bytes = batches.iter().map(Bytes::len).sum();
    if acks == 0 {
        if replica.cast(ReplicaMsg::Append { batches, acks_all: false, reply: None, forward }).is_ok() {
            ctx.requests.produced(bytes);
        }
        return Pending::Done(Ok(AppendOutcome { base_offset: -1, log_start_offset: -1 }));
    }
    let (tx, rx) = oneshot::channel();
    match replica.cast(ReplicaMsg::Append { batches, acks_all: acks == -1, reply: Some(tx.into()), forward }) {
        Ok(()) => Pending::Waiting { rx, bytes },
        Err(_) => err(ResponseError::NotLeaderOrFollower, format!("{topic}-{partition} is restarting")),
    }
}

/// A partition's final answer; a refusal keeps its record errors for the response.
type Answer = Result<AppendOutcome, (PartitionError, Vec<(i32, String)>)>;

async fn finish(ctx: &NodeContext, pending: Pending, timeout: Duration) -> Answer {
    let (rx, bytes) = match pending {
        Pending::Done(result) => return result.map_err(|e| (e, Vec::new())),
        Pending::Refused(r) => return Err((PartitionError::new(r.error(), r.to_string()), r.record_errors())),
        Pending::Waiting { rx, bytes } => (rx, bytes),
    };
    let no_records = |e| (e, Vec::new());
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => {
            if result.is_ok() {
                ctx.requests.produced(bytes);
            }
            result.map_err(no_records)
        }
        // The replica stopped before answering (a crash and restart): the batch may or may not
        // be in the log; a retry with the same sequence is deduplicated either way.
        Ok(Err(_)) => Err(no_records(PartitionError::new(ResponseError::NotLeaderOrFollower, "replica restarted"))),
        Err(_) => Err(no_records(PartitionError::new(
            ResponseError::RequestTimedOut,
            "not durable within the request timeout",
        ))),
    }
}

fn partition_response(index: i32, result: Answer, log_append_time: i64, version: i16) -> PartitionProduceResponse {
    let r = PartitionProduceResponse::default().with_index(index).with_log_append_time_ms(-1);
    match result {
        Ok(o) => {
            let r = r.with_base_offset(o.base_offset).with_log_append_time_ms(log_append_time);
            if version >= 5 { r.with_log_start_offset(o.log_start_offset) } else { r }
        }
        Err((e, records)) => {
            let r = r.with_error_code(e.code).with_base_offset(-1);
            if version < 8 {
                return r;
            }
            let record_errors = records
                .into_iter()
                .map(|(i, msg)| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(i)
                        .with_batch_index_error_message(Some(str_bytes(msg)))
                })
                .collect();
            r.with_error_message(Some(str_bytes(e.message))).with_record_errors(record_errors)
        }
    }
}
