//! Realistic transaction requests at a given version, for round-trip tests. The story: the
//! producer `payments-1` adds partitions 0 and 1 of `orders` and the offsets of its consumer
//! group to its transaction and commits it; a tool then looks at the transactions.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::*;

use super::{TOPIC, s, topic};

/// The producer's transactional id.
const TXN: &str = "payments-1";

/// Partitions 0 and 1 of `orders` (the v0–v3 form clients send).
pub(super) fn add_partitions_to_txn() -> AddPartitionsToTxnRequest {
    let orders = AddPartitionsToTxnTopic::default().with_name(topic(TOPIC)).with_partitions(vec![0, 1]);
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(s(TXN).into())
        .with_v3_and_below_producer_id(ProducerId(4000))
        .with_v3_and_below_producer_epoch(2)
        .with_v3_and_below_topics(vec![orders])
}

/// The offsets of group `billing`.
pub(super) fn add_offsets_to_txn() -> AddOffsetsToTxnRequest {
    AddOffsetsToTxnRequest::default()
        .with_transactional_id(s(TXN).into())
        .with_producer_id(ProducerId(4000))
        .with_producer_epoch(2)
        .with_group_id(s("billing").into())
}

/// Commit.
pub(super) fn end_txn() -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(s(TXN).into())
        .with_producer_id(ProducerId(4000))
        .with_producer_epoch(2)
        .with_committed(true)
}

/// One id.
pub(super) fn describe_transactions() -> DescribeTransactionsRequest {
    DescribeTransactionsRequest::default().with_transactional_ids(vec![s(TXN).into()])
}

/// Ongoing ones; from v1 only those running for a minute.
pub(super) fn list_transactions(version: i16) -> ListTransactionsRequest {
    let request = ListTransactionsRequest::default().with_state_filters(vec![s("Ongoing")]);
    if version >= 1 { request.with_duration_filter(60_000) } else { request }
}

/// Offset 120 of `orders` 0 for group `billing`; from v3 with the member's generation.
pub(super) fn txn_offset_commit(version: i16) -> TxnOffsetCommitRequest {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let mut partition = TxnOffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(120);
    if version >= 2 {
        partition = partition.with_committed_leader_epoch(3);
    }
    let orders = TxnOffsetCommitRequestTopic::default().with_name(topic(TOPIC)).with_partitions(vec![partition]);
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(s(TXN).into())
        .with_group_id(s("billing").into())
        .with_producer_id(ProducerId(4000))
        .with_producer_epoch(2)
        .with_topics(vec![orders]);
    if version >= 3 { request.with_generation_id(5).with_member_id(s("consumer-1-abc")) } else { request }
}
