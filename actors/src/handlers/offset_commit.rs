//! OffsetCommit (v2–v9) and TxnOffsetCommit (v0–v3): validated by the group, written to
//! `__consumer_offsets`, answered once durable (a transaction's commits take effect with it). v9 only lets KIP-848 groups send a member epoch; for the classic groups served
//! here the field is the generation, as before. The commit reaches the coordinator before the handler returns, so the commits
//! of one connection are applied in the order they were sent.

use std::sync::Arc;
use std::time::Duration;

use chronik::offsets::CommittedOffset;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, ResponseKind, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{owned, send_to_coordinator, topic_name};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;
use crate::replica::now_ms;

/// Hands one OffsetCommit request to the coordinator and returns the wait for its answer.
pub fn handle(ctx: &Arc<NodeContext>, req: OffsetCommitRequest, version: i16) -> BoxFuture<'static, ResponseKind> {
    let now = now_ms();
    let mut offsets = Vec::new();
    for topic in &req.topics {
        for p in &topic.partitions {
            let committed = CommittedOffset {
                offset: p.committed_offset,
                leader_epoch: if version >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: owned(&p.committed_metadata),
                commit_timestamp: now,
            };
            offsets.push(((topic.name.0.to_string(), p.partition_index), committed));
        }
    }
    let n = offsets.len();
    let msg = |reply| CoordinatorMsg::Commit {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        group_instance_id: if version >= 7 { owned(&req.group_instance_id) } else { None },
        offsets,
        transaction: None,
        reply,
    };
    let answer = send_to_coordinator(ctx, msg, Duration::from_secs(30));
    async move {
        let codes = answer.await.unwrap_or_else(|code| vec![code; n]);
        respond(&req, codes)
    }
    .boxed()
}

/// How many times a TxnOffsetCommit waits 50 ms for a loading group (5 s).
const LOAD_RETRIES: usize = 100;

/// Hands one TxnOffsetCommit request (v0–v3) to the coordinator: the offsets are written as
/// the producer's transactional commit and take effect when its transaction commits. From v3
/// the group's generation and member are checked as for OffsetCommit; before, or with
/// generation -1, the commit stands alone (kafka-python names only the group).
pub fn handle_txn(
    ctx: &Arc<NodeContext>,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> BoxFuture<'static, ResponseKind> {
    let now = now_ms();
    let offsets: Vec<_> = req
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(move |p| {
                let committed = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: if version >= 2 { p.committed_leader_epoch } else { -1 },
                    metadata: owned(&p.committed_metadata),
                    commit_timestamp: now,
                };
                ((topic.name.0.to_string(), p.partition_index), committed)
            })
        })
        .collect();
    let n = offsets.len();
    let (member_id, generation_id) =
        if version >= 3 { (req.member_id.to_string(), req.generation_id) } else { (String::new(), -1) };
    let group_instance_id = if version >= 3 { owned(&req.group_instance_id) } else { None };
    let transaction = Some((req.producer_id.0, req.producer_epoch));
    let group_id = req.group_id.0.to_string();
    let send = move |ctx: &Arc<NodeContext>| -> BoxFuture<'static, Result<Vec<i16>, i16>> {
        let msg = |reply| CoordinatorMsg::Commit {
            group_id: group_id.clone(),
            member_id: member_id.clone(),
            generation_id,
            group_instance_id: group_instance_id.clone(),
            offsets: offsets.clone(),
            transaction,
            reply,
        };
        send_to_coordinator(ctx, msg, Duration::from_secs(30)).boxed()
    };
    let first = send(ctx);
    let ctx = ctx.clone();
    async move {
        // A group whose offsets topic was created for this transaction (AddOffsetsToTxn) may
        // still be loading: wait for it here, as some clients (kafkajs) do not retry.
        let loading = ResponseError::CoordinatorLoadInProgress.code();
        let mut codes = first.await.unwrap_or_else(|code| vec![code; n]);
        for _ in 0..LOAD_RETRIES {
            if !codes.contains(&loading) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            codes = send(&ctx).await.unwrap_or_else(|code| vec![code; n]);
        }
        let mut codes = codes.into_iter();
        let topics = req
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let code = codes.next().unwrap_or(0);
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
            })
            .collect();
        ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics))
    }
    .boxed()
}

/// The response: one code per partition, in the request's order.
fn respond(req: &OffsetCommitRequest, codes: Vec<i16>) -> ResponseKind {
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.next().unwrap_or(0);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic_name(topic.name.0.as_str()))
                .with_partitions(partitions)
        })
        .collect();
    ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
}
