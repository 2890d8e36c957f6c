//! Realistic transaction responses at a given version, for round-trip tests (the story of the
//! request samples).

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::*;

use super::{TOPIC, s, topic};

/// Both partitions added.
pub(super) fn add_partitions_to_txn() -> AddPartitionsToTxnResponse {
    let result = |p: i32| AddPartitionsToTxnPartitionResult::default().with_partition_index(p);
    let orders = AddPartitionsToTxnTopicResult::default()
        .with_name(topic(TOPIC))
        .with_results_by_partition(vec![result(0), result(1)]);
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(vec![orders])
}

/// The group's offsets partition is in the transaction.
pub(super) fn add_offsets_to_txn() -> AddOffsetsToTxnResponse {
    AddOffsetsToTxnResponse::default()
}

/// Committed.
pub(super) fn end_txn() -> EndTxnResponse {
    EndTxnResponse::default()
}

/// An ongoing transaction over `orders` 0 and 1.
pub(super) fn describe_transactions() -> DescribeTransactionsResponse {
    let topics =
        vec![describe_transactions_response::TopicData::default().with_topic(topic(TOPIC)).with_partitions(vec![0, 1])];
    let state = describe_transactions_response::TransactionState::default()
        .with_transactional_id(s("payments-1").into())
        .with_transaction_state(s("Ongoing"))
        .with_transaction_timeout_ms(60_000)
        .with_transaction_start_time_ms(1_700_000_000_000)
        .with_producer_id(ProducerId(4000))
        .with_producer_epoch(2)
        .with_topics(topics);
    DescribeTransactionsResponse::default().with_transaction_states(vec![state])
}

/// One ongoing transaction.
pub(super) fn list_transactions() -> ListTransactionsResponse {
    let state = list_transactions_response::TransactionState::default()
        .with_transactional_id(s("payments-1").into())
        .with_producer_id(ProducerId(4000))
        .with_transaction_state(s("Ongoing"));
    ListTransactionsResponse::default().with_transaction_states(vec![state])
}

/// Committed in the transaction.
pub(super) fn txn_offset_commit() -> TxnOffsetCommitResponse {
    use kafka_protocol::messages::txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };
    let partition = TxnOffsetCommitResponsePartition::default().with_partition_index(0);
    TxnOffsetCommitResponse::default().with_topics(vec![
        TxnOffsetCommitResponseTopic::default().with_name(topic(TOPIC)).with_partitions(vec![partition]),
    ])
}
