//! OffsetCommit (v2–v9): validated by the group, written to `__consumer_offsets`, answered
//! once durable. v9 only lets KIP-848 groups send a member epoch; for the classic groups served
//! here the field is the generation, as before. The commit reaches the coordinator before the handler returns, so the commits
//! of one connection are applied in the order they were sent.

use std::sync::Arc;
use std::time::Duration;

use chronik::offsets::CommittedOffset;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};

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
        reply,
    };
    let answer = send_to_coordinator(ctx, msg, Duration::from_secs(30));
    async move {
        let codes = answer.await.unwrap_or_else(|code| vec![code; n]);
        respond(&req, codes)
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
