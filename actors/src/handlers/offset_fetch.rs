//! OffsetFetch (v1–v7): a group's committed offsets; -1 where nothing is committed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
    let msg = |reply| CoordinatorMsg::FetchOffsets { group_id: req.group_id.0.to_string(), partitions, reply };
    let committed = match ask_coordinator(ctx, msg, Duration::from_secs(10)).await {
        Ok(c) => c,
        Err(code) => {
            let response = OffsetFetchResponse::default();
            // Before v2 there is no top-level error: report it on every asked partition.
            return ResponseKind::OffsetFetch(if version >= 2 { response.with_error_code(code) } else { response });
        }
    };
    let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
    for ((topic, partition), c) in committed {
        let p = OffsetFetchResponsePartition::default().with_partition_index(partition);
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
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            OffsetFetchResponseTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect();
    ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_topics(topics))
}
