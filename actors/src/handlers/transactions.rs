//! The transaction APIs: what a transactional producer sends its coordinator (InitProducerId
//! with a transactional id, AddPartitionsToTxn v0–3, AddOffsetsToTxn v0–3, EndTxn v0–3) and
//! what tools ask (DescribeTransactions v0, ListTransactions v0–1). Each goes to this node's
//! TxnCoordinator, which answers NOT_COORDINATOR for an id it does not coordinate: the client
//! then asks FindCoordinator again.

use std::sync::Arc;
use std::time::Duration;

use chronik::offsets::{OFFSETS_TOPIC, partition_for_group};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId, ResponseKind,
    describe_transactions_response, list_transactions_response,
};
use ractor::RpcReplyPort;

use super::{str_bytes, topic_name};
use crate::context::NodeContext;
use crate::txn_coordinator::{TxnCoordinatorMsg, TxnListing, TxnPartition};

/// How long the coordinator may take (an append on acks=all, a producer id from Raft).
const WAIT: Duration = Duration::from_secs(30);

/// Asks this node's transaction coordinator.
pub(crate) async fn ask<T: Send + 'static>(
    ctx: &NodeContext,
    msg: impl FnOnce(RpcReplyPort<Result<T, ResponseError>>) -> TxnCoordinatorMsg,
) -> Result<T, ResponseError> {
    let Some(coordinator) = ctx.txn_coordinator.get() else { return Err(ResponseError::CoordinatorNotAvailable) };
    match coordinator.call(msg, WAIT).await {
        Ok(ractor::rpc::CallResult::Success(result)) => result,
        _ => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// The code a client of `version` understands: PRODUCER_FENCED (KIP-588) is new in version
/// `first`; older clients know it as INVALID_PRODUCER_EPOCH.
pub(crate) fn code_for(result: Result<(), ResponseError>, version: i16, first: i16) -> i16 {
    match result {
        Ok(()) => 0,
        Err(ResponseError::ProducerFenced) if version < first => ResponseError::InvalidProducerEpoch.code(),
        Err(e) => e.code(),
    }
}

/// InitProducerId with a transactional id (v0–5; PRODUCER_FENCED from v4).
pub async fn init_producer_id(ctx: &Arc<NodeContext>, req: InitProducerIdRequest, version: i16) -> ResponseKind {
    let transactional_id = req.transactional_id.map(|id| id.to_string()).unwrap_or_default();
    let expected =
        (req.producer_id.0 >= 0 && req.producer_epoch >= 0).then_some((req.producer_id.0, req.producer_epoch));
    let timeout_ms = req.transaction_timeout_ms;
    let msg = |reply| TxnCoordinatorMsg::InitProducerId { transactional_id, timeout_ms, expected, reply };
    let response = match ask(ctx, msg).await {
        Ok((id, epoch)) => {
            InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(epoch)
        }
        Err(e) => InitProducerIdResponse::default()
            .with_error_code(code_for(Err(e), version, 4))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    };
    ResponseKind::InitProducerId(response)
}

/// AddPartitionsToTxn v0–3: every partition gets the outcome of the whole request.
pub async fn add_partitions(ctx: &Arc<NodeContext>, req: AddPartitionsToTxnRequest, version: i16) -> ResponseKind {
    let partitions: Vec<TxnPartition> =
        req.v3_and_below_topics.iter().flat_map(|t| t.partitions.iter().map(|&p| (t.name.0.to_string(), p))).collect();
    let transactional_id = req.v3_and_below_transactional_id.0.to_string();
    let (producer_id, producer_epoch) = (req.v3_and_below_producer_id.0, req.v3_and_below_producer_epoch);
    let msg =
        |reply| TxnCoordinatorMsg::AddPartitions { transactional_id, producer_id, producer_epoch, partitions, reply };
    let code = code_for(ask(ctx, msg).await, version, 2);
    let results = req
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|&p| {
                AddPartitionsToTxnPartitionResult::default().with_partition_index(p).with_partition_error_code(code)
            });
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions.collect())
        })
        .collect();
    ResponseKind::AddPartitionsToTxn(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results))
}

/// AddOffsetsToTxn v0–3: the group's offsets partition joins the transaction, so its
/// TxnOffsetCommits are decided with it.
pub async fn add_offsets(ctx: &Arc<NodeContext>, req: AddOffsetsToTxnRequest, version: i16) -> ResponseKind {
    // The group may never have been used: its offsets topic is created as FindCoordinator would.
    let metadata = super::find_coordinator::internal_topic_metadata(ctx, OFFSETS_TOPIC).await;
    let Some(offsets) = metadata.topics.get(OFFSETS_TOPIC).map(|t| t.partitions.len() as i32) else {
        let code = ResponseError::CoordinatorNotAvailable.code();
        return ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code));
    };
    let partition = (OFFSETS_TOPIC.to_string(), partition_for_group(&req.group_id.0, offsets));
    let msg = |reply| TxnCoordinatorMsg::AddPartitions {
        transactional_id: req.transactional_id.0.to_string(),
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
        partitions: vec![partition],
        reply,
    };
    let code = code_for(ask(ctx, msg).await, version, 2);
    ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
}

/// EndTxn v0–3: commit or abort.
pub async fn end_txn(ctx: &Arc<NodeContext>, req: EndTxnRequest, version: i16) -> ResponseKind {
    let msg = |reply| TxnCoordinatorMsg::EndTxn {
        transactional_id: req.transactional_id.0.to_string(),
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
        commit: req.committed,
        reply,
    };
    let code = code_for(ask(ctx, msg).await, version, 2);
    ResponseKind::EndTxn(EndTxnResponse::default().with_error_code(code))
}

/// The transactions this node coordinates (all, or those named).
pub(crate) async fn listings(
    ctx: &NodeContext,
    ids: Option<Vec<String>>,
) -> Vec<(String, Result<TxnListing, ResponseError>)> {
    let Some(coordinator) = ctx.txn_coordinator.get() else { return Vec::new() };
    match coordinator.call(|reply| TxnCoordinatorMsg::Describe { ids, reply }, WAIT).await {
        Ok(ractor::rpc::CallResult::Success(found)) => found,
        _ => Vec::new(),
    }
}

/// DescribeTransactions v0.
pub async fn describe(ctx: &Arc<NodeContext>, req: DescribeTransactionsRequest) -> ResponseKind {
    let ids = req.transactional_ids.iter().map(|id| id.0.to_string()).collect();
    let states = listings(ctx, Some(ids))
        .await
        .into_iter()
        .map(|(id, found)| {
            let state =
                describe_transactions_response::TransactionState::default().with_transactional_id(str_bytes(id).into());
            match found {
                Ok(t) => {
                    let mut topics: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
                    for (topic, partition) in &t.metadata.partitions {
                        topics.entry(topic.clone()).or_default().push(*partition);
                    }
                    let topics = topics
                        .into_iter()
                        .map(|(topic, partitions)| {
                            describe_transactions_response::TopicData::default()
                                .with_topic(topic_name(&topic))
                                .with_partitions(partitions)
                        })
                        .collect();
                    state
                        .with_transaction_state(str_bytes(t.state_name))
                        .with_transaction_timeout_ms(t.metadata.timeout_ms)
                        .with_transaction_start_time_ms(t.metadata.start_ms)
                        .with_producer_id(ProducerId(t.metadata.producer_id))
                        .with_producer_epoch(t.metadata.producer_epoch)
                        .with_topics(topics)
                }
                Err(e) => state.with_error_code(e.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1),
            }
        })
        .collect();
    ResponseKind::DescribeTransactions(DescribeTransactionsResponse::default().with_transaction_states(states))
}

/// ListTransactions v0–1: those coordinated here, filtered by state, producer id and (v1)
/// how long they have been running.
pub async fn list(ctx: &Arc<NodeContext>, req: ListTransactionsRequest) -> ResponseKind {
    let states: Vec<String> = req.state_filters.iter().map(|s| s.to_string()).collect();
    let unknown: Vec<_> = states
        .iter()
        .filter(|s| chronik::txn::TxnState::from_name(s).is_none())
        .map(|s| str_bytes(s.clone()))
        .collect();
    let now = crate::replica::now_ms();
    let listed = listings(ctx, None)
        .await
        .into_iter()
        .filter_map(|(_, found)| found.ok())
        .filter(|t| states.is_empty() || states.iter().any(|s| s == t.state_name))
        .filter(|t| {
            req.producer_id_filters.is_empty() || req.producer_id_filters.iter().any(|p| p.0 == t.metadata.producer_id)
        })
        .filter(|t| {
            req.duration_filter < 0 || (t.metadata.start_ms >= 0 && now - t.metadata.start_ms >= req.duration_filter)
        })
        .map(|t| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(str_bytes(t.transactional_id).into())
                .with_producer_id(ProducerId(t.metadata.producer_id))
                .with_transaction_state(str_bytes(t.state_name))
        })
        .collect();
    let response =
        ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(listed);
    ResponseKind::ListTransactions(response)
}
