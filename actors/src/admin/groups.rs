//! `GET /admin/groups`: every consumer group this node coordinates, its state, and per partition
//! the committed offset, the high watermark and the lag between them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use warp::reply::{Json, json};

use super::routes::replica_info;
use crate::context::{NodeContext, TopicPartition};
use crate::group_coordinator::CoordinatorMsg;
use crate::handlers::ask_coordinator;

/// One group.
#[derive(Debug, Serialize)]
pub(super) struct GroupView {
    /// Group id.
    pub group_id: String,
    /// Kafka's state name.
    pub state: String,
    /// `consumer` for consumer groups; empty for offsets-only groups.
    pub protocol_type: String,
    /// Committed partitions.
    pub partitions: Vec<LagView>,
    /// Sum of the partitions' lag.
    pub total_lag: i64,
}

/// One committed partition of a group.
#[derive(Debug, Serialize)]
pub(super) struct LagView {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The group's committed offset.
    pub committed_offset: i64,
    /// The partition's high watermark, if it is served here.
    pub high_watermark: Option<i64>,
    /// `high_watermark - committed_offset`, never negative.
    pub lag: Option<i64>,
}

const T: Duration = Duration::from_secs(5);

/// The handler.
pub(super) async fn groups(ctx: Arc<NodeContext>) -> Json {
    json(&serde_json::json!({ "groups": collect(&ctx).await }))
}

/// Every group with its committed offsets and lag.
pub(super) async fn collect(ctx: &NodeContext) -> Vec<GroupView> {
    let listings = ask_coordinator(ctx, CoordinatorMsg::List, T).await.map(|(_, l)| l).unwrap_or_default();
    let mut out = Vec::with_capacity(listings.len());
    for g in listings {
        let group_id = g.group_id.clone();
        let msg = |reply| CoordinatorMsg::FetchOffsets { group_id, partitions: None, reply };
        let committed = ask_coordinator(ctx, msg, T).await.and_then(|answer| answer).unwrap_or_default();
        let mut partitions = Vec::with_capacity(committed.len());
        for ((topic, partition), c) in committed {
            let Some(c) = c else { continue };
            let hw = replica_info(ctx, &TopicPartition::new(&topic, partition)).await.map(|i| i.high_watermark);
            let lag = hw.map(|hw| (hw - c.offset).max(0));
            partitions.push(LagView { topic, partition, committed_offset: c.offset, high_watermark: hw, lag });
        }
        let total_lag = partitions.iter().filter_map(|p| p.lag).sum();
        out.push(GroupView {
            group_id: g.group_id,
            state: g.state,
            protocol_type: g.protocol_type,
            partitions,
            total_lag,
        });
    }
    out
}
