//! OffsetFetch (v1–v7): a group's committed offsets; -1 where nothing is committed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chronik::offsets::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, ResponseKind};

use super::{ask_coordinator, str_bytes, topic_name};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// Handles one OffsetFetch request (single group, v1–v7).
pub async fn handle(ctx: &Arc<NodeContext>, req: OffsetFetchRequest, version: i16) -> ResponseKind {
    let partitions = req.topics.as_ref().map(|topics| {
        topics.iter().flat_map(|t| t.partition_indexes.iter().map(|&p| (t.name.0.to_string(), p))).collect::<Vec<_>>()
    });
    let asked = partitions.clone().unwrap_or_default();
    let msg = |reply| CoordinatorMsg::FetchOffsets { group_id: req.group_id.0.to_string(), partitions, reply };
    let committed = match ask_coordinator(ctx, msg, Duration::from_secs(10)).await.and_then(|answer| answer) {
        Ok(c) => c,
        Err(code) => {
            if version >= 2 {
                return ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_error_code(code));
            }
            // Before v2 there is no top-level error: as in Kafka, every asked partition carries it.
            let partitions = asked.into_iter().map(|tp| (tp, code, None)).collect();
            return ResponseKind::OffsetFetch(
                OffsetFetchResponse::default().with_topics(by_topic(partitions, version)),
            );
        }
    };
    let partitions = committed.into_iter().map(|(tp, c)| (tp, 0, c)).collect();
    ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_topics(by_topic(partitions, version)))
}

/// The response's topics: per partition its code and committed offset (-1 where none).
fn by_topic(
    partitions: Vec<((String, i32), i16, Option<CommittedOffset>)>,
    version: i16,
) -> Vec<OffsetFetchResponseTopic> {
    let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
    for ((topic, partition), code, c) in partitions {
        let p = OffsetFetchResponsePartition::default().with_partition_index(partition).with_error_code(code);
        let p = match c {
            Some(c) => {
                let p =
                    p.with_committed_offset(c.offset).with_metadata(Some(str_bytes(c.metadata.unwrap_or_default())));
                if version >= 5 { p.with_committed_leader_epoch(c.leader_epoch) } else { p }
            }
            None => p.with_committed_offset(-1).with_metadata(Some(str_bytes(""))),
        };
        by_topic.entry(topic).or_default().push(p);
    }
    by_topic
        .into_iter()
        .map(|(name, partitions)| {
            OffsetFetchResponseTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect()
}
