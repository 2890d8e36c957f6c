//! OffsetForLeaderEpoch (v2–v4; v4 is the flexible encoding): where the leader's log ends for a leader epoch (the largest
//! epoch it knows at or below the asked one, and the start of the next), so a consumer can tell
//! whether the log was truncated under it. Followers ask the same over the wal port.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ResponseKind};

use super::{ask_replica, check_leader_epoch, replica_for, topic_name};
use crate::context::NodeContext;
use crate::replica::{PartitionError, ReplicaMsg};

/// Handles one OffsetForLeaderEpoch request.
pub async fn handle(ctx: &Arc<NodeContext>, req: OffsetForLeaderEpochRequest) -> ResponseKind {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.topic.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let r = EpochEndOffset::default().with_partition(p.partition);
            partitions.push(match end_offset(ctx, name, p.partition, p.current_leader_epoch, p.leader_epoch).await {
                Ok((epoch, offset)) => r.with_leader_epoch(epoch).with_end_offset(offset),
                Err(e) => r.with_error_code(e.code).with_leader_epoch(-1).with_end_offset(-1),
            });
        }
        topics.push(OffsetForLeaderTopicResult::default().with_topic(topic_name(name)).with_partitions(partitions));
    }
    ResponseKind::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse::default().with_topics(topics))
}

async fn end_offset(
    ctx: &NodeContext,
    topic: &str,
    partition: i32,
    current: i32,
    wanted: i32,
) -> Result<(i32, i64), PartitionError> {
    check_leader_epoch(ctx, topic, partition, current)?;
    let replica = replica_for(ctx, topic, partition)?;
    let answer = ask_replica(&replica, |reply| ReplicaMsg::EpochEndOffset { epoch: wanted, reply }).await?;
    Ok(chronik::partition::replication::EpochEndOffset::to_wire(answer))
}
