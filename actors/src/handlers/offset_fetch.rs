//! OffsetFetch (v1–v9): a group's committed offsets; -1 where nothing is committed.
//!
//! From v8 (KIP-709) one request asks for several groups and each gets its own answer and
//! error. v9's member id and epoch belong to KIP-848 consumer groups; for the classic groups
//! this broker runs, Kafka ignores them, and so does this. With `require_stable` (v7+, sent by
//! read_committed consumers) a partition whose transactional offset commit is still pending
//! answers UNSTABLE_OFFSET_COMMIT, and the client retries until the transaction ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chronik::offsets::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, ResponseKind};

use super::{ask_coordinator, str_bytes, topic_name};
use crate::context::NodeContext;
use crate::group_coordinator::{CoordinatorMsg, FetchedOffset as Answer};

/// The first version that names several groups.
const BATCHED: i16 = 8;

/// Handles one OffsetFetch request.
pub async fn handle(ctx: &Arc<NodeContext>, req: OffsetFetchRequest, version: i16) -> ResponseKind {
    if version >= BATCHED {
        let mut groups = Vec::with_capacity(req.groups.len());
        for group in req.groups {
            let partitions = group.topics.map(|topics| {
                topics.iter().flat_map(|t| t.partition_indexes.iter().map(|&p| (t.name.0.to_string(), p))).collect()
            });
            groups.push(match fetch_group(ctx, &group.group_id, partitions, req.require_stable).await {
                Ok(answers) => group_answer(group.group_id, answers, 0),
                Err(code) => group_answer(group.group_id, Vec::new(), code),
            });
        }
        return ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_groups(groups));
    }
    let partitions: Option<Vec<(String, i32)>> = req.topics.as_ref().map(|topics| {
        topics.iter().flat_map(|t| t.partition_indexes.iter().map(|&p| (t.name.0.to_string(), p))).collect()
    });
    let asked = partitions.clone().unwrap_or_default();
    let response = match fetch_group(ctx, &req.group_id, partitions, req.require_stable).await {
        Ok(answers) => OffsetFetchResponse::default().with_topics(by_topic(answers, version)),
        Err(code) if version >= 2 => OffsetFetchResponse::default().with_error_code(code),
        // Before v2 there is no top-level error: as in Kafka, every asked partition carries it.
        Err(code) => {
            let answers = asked.into_iter().map(|tp| (tp, code, None)).collect();
            OffsetFetchResponse::default().with_topics(by_topic(answers, version))
        }
    };
    ResponseKind::OffsetFetch(response)
}

/// One group's committed offsets (for `partitions`, or all it has when `None`), or the
/// group-level error code.
async fn fetch_group(
    ctx: &NodeContext,
    group_id: &GroupId,
    partitions: Option<Vec<(String, i32)>>,
    require_stable: bool,
) -> Result<Vec<Answer>, i16> {
    let group_id = group_id.0.to_string();
    let msg = |reply| CoordinatorMsg::FetchOffsets { group_id, partitions, require_stable, reply };
    ask_coordinator(ctx, msg, Duration::from_secs(10)).await.and_then(|answer| answer)
}

/// The committed offset, leader epoch and metadata to report: -1, -1 and "" where none.
fn committed_fields(c: Option<CommittedOffset>) -> (i64, i32, String) {
    match c {
        Some(c) => (c.offset, c.leader_epoch, c.metadata.unwrap_or_default()),
        None => (-1, -1, String::new()),
    }
}

/// Groups answers by topic name, in name order.
fn grouped(answers: Vec<Answer>) -> BTreeMap<String, Vec<(i32, i16, Option<CommittedOffset>)>> {
    let mut by_topic: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for ((topic, partition), code, c) in answers {
        by_topic.entry(topic).or_default().push((partition, code, c));
    }
    by_topic
}

/// A v1–v7 response's topics.
fn by_topic(answers: Vec<Answer>, version: i16) -> Vec<OffsetFetchResponseTopic> {
    let topic = |(name, partitions): (String, Vec<(i32, i16, Option<CommittedOffset>)>)| {
        let partitions = partitions.into_iter().map(|(index, code, c)| {
            let (offset, epoch, metadata) = committed_fields(c);
            let p = OffsetFetchResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code)
                .with_committed_offset(offset)
                .with_metadata(Some(str_bytes(metadata)));
            // Fields a version lacks must stay at their defaults or the encoder refuses them.
            if version >= 5 { p.with_committed_leader_epoch(epoch) } else { p }
        });
        OffsetFetchResponseTopic::default().with_name(topic_name(&name)).with_partitions(partitions.collect())
    };
    grouped(answers).into_iter().map(topic).collect()
}

/// One group's entry in a v8+ response.
fn group_answer(group_id: GroupId, answers: Vec<Answer>, code: i16) -> OffsetFetchResponseGroup {
    let topic = |(name, partitions): (String, Vec<(i32, i16, Option<CommittedOffset>)>)| {
        let partitions = partitions.into_iter().map(|(index, code, c)| {
            let (offset, epoch, metadata) = committed_fields(c);
            OffsetFetchResponsePartitions::default()
                .with_partition_index(index)
                .with_error_code(code)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_metadata(Some(str_bytes(metadata)))
        });
        OffsetFetchResponseTopics::default().with_name(topic_name(&name)).with_partitions(partitions.collect())
    };
    let topics = grouped(answers).into_iter().map(topic).collect();
    OffsetFetchResponseGroup::default().with_group_id(group_id).with_topics(topics).with_error_code(code)
}
