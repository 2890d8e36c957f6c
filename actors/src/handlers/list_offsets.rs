//! ListOffsets (v1–v9): earliest (-2), latest (-1), max timestamp (-3, v7+), earliest local
//! (-4, v8+: the log start here, as there is no tiered storage), latest tiered (-5, v9+:
//! none, -1; latest is the last stable offset for `read_committed`, v2+) or the first offset whose timestamp is at or after a target. v0 has its own
//! legacy answer (see [`handle_v0`]). Arguments Kafka refuses are answered at once with its
//! codes: a partition named twice (INVALID_REQUEST), a negative timestamp that is no sentinel
//! of the request's version (UNSUPPORTED_VERSION).

use std::collections::HashSet;
use std::sync::Arc;

use chronik::protocol::list_offsets_v0::{ListOffsetsV0, PartitionAnswerV0, PartitionV0};
use chronik::protocol::versions::list_offsets_timestamp_supported;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};

use super::{ask_replica, check_leader_epoch, replica_for, topic_name};
use crate::context::NodeContext;
use crate::replica::{PartitionError, ReplicaMsg};

/// Handles one ListOffsets request.
pub async fn handle(ctx: &Arc<NodeContext>, req: ListOffsetsRequest, version: i16) -> ResponseKind {
    let mut seen = HashSet::new();
    let duplicated: HashSet<(&str, i32)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.as_str(), p.partition_index)))
        .filter(|tp| !seen.insert(*tp))
        .collect();
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let found = match check_arguments(version, p, duplicated.contains(&(name, p.partition_index))) {
                Ok(()) => {
                    let at = (p.current_leader_epoch, p.timestamp);
                    lookup(ctx, name, p.partition_index, at, req.isolation_level == 1).await
                }
                Err(code) => Err(PartitionError::new(code, "refused before the lookup")),
            };
            partitions.push(answer(r, found, version));
        }
        topics.push(ListOffsetsTopicResponse::default().with_name(topic_name(name)).with_partitions(partitions));
    }
    ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics))
}

/// Handles one ListOffsets v0 request: per partition, Kafka's legacy list of offsets.
pub async fn handle_v0(ctx: &Arc<NodeContext>, req: ListOffsetsV0) -> Vec<(String, Vec<PartitionAnswerV0>)> {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            partitions.push(match legacy_lookup(ctx, &topic.name, p).await {
                Ok(offsets) => (p.partition, 0, offsets),
                Err(e) => (p.partition, e.code, Vec::new()),
            });
        }
        topics.push((topic.name, partitions));
    }
    topics
}

/// One partition's v0 answer from its replica.
async fn legacy_lookup(ctx: &NodeContext, topic: &str, p: PartitionV0) -> Result<Vec<i64>, PartitionError> {
    let replica = replica_for(ctx, topic, p.partition)?;
    let (timestamp, max_num_offsets) = (p.timestamp, p.max_num_offsets);
    ask_replica(&replica, |reply| ReplicaMsg::LegacyOffsets { timestamp, max_num_offsets, reply }).await
}

/// Kafka's checks before any lookup (`ReplicaManager.fetchOffset`).
fn check_arguments(version: i16, p: &ListOffsetsPartition, duplicated: bool) -> Result<(), ResponseError> {
    if duplicated {
        return Err(ResponseError::InvalidRequest);
    }
    if !list_offsets_timestamp_supported(p.timestamp, version) {
        return Err(ResponseError::UnsupportedVersion);
    }
    Ok(())
}

/// The partition's answer in the shape of `version`.
fn answer(
    r: ListOffsetsPartitionResponse,
    found: Result<(i64, i64, i32), PartitionError>,
    version: i16,
) -> ListOffsetsPartitionResponse {
    match found {
        Ok((offset, timestamp, epoch)) => {
            let r = r.with_offset(offset).with_timestamp(timestamp);
            // Fields a version lacks must stay at their defaults or the encoder refuses them.
            if version >= 4 { r.with_leader_epoch(epoch) } else { r }
        }
        Err(e) => r.with_error_code(e.code).with_offset(-1).with_timestamp(-1),
    }
}

/// One partition's answer; `(epoch, timestamp)` are the request's, and `committed` is its
/// `read_committed` isolation (latest is then the last stable offset).
async fn lookup(
    ctx: &NodeContext,
    topic: &str,
    partition: i32,
    (epoch, timestamp): (i32, i64),
    committed: bool,
) -> Result<(i64, i64, i32), PartitionError> {
    check_leader_epoch(ctx, topic, partition, epoch)?;
    let replica = replica_for(ctx, topic, partition)?;
    let leader_epoch = ctx.metadata().partition(topic, partition).map_or(-1, |p| p.leader_epoch);
    let (offset, ts) = ask_replica(&replica, |reply| ReplicaMsg::ListOffset { timestamp, committed, reply }).await?;
    Ok((offset, ts, if offset >= 0 { leader_epoch } else { -1 }))
}
