//! `GET /admin/groups`: every consumer group this node coordinates, its state, its members with
//! their assignments, and per partition the committed offset, the high watermark and the lag
//! between them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use warp::reply::{Json, json};

use chronik::group::assignment::consumer_assignment;

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
    /// The generation (0 before the first rebalance, and for offsets-only groups); reported
    /// with the members.
    pub generation: Option<i32>,
    /// Current members, in the order they joined.
    pub members: Vec<MemberView>,
    /// Committed partitions.
    pub partitions: Vec<LagView>,
    /// Sum of the partitions' lag.
    pub total_lag: i64,
}

/// One member of a group.
#[derive(Debug, Serialize)]
pub(super) struct MemberView {
    /// Member id.
    pub member_id: String,
    /// Its `group.instance.id`, if static.
    pub group_instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// Its address.
    pub client_host: String,
    /// Topic → partitions assigned to it (consumer protocol, Stable groups only; empty otherwise).
    pub assignment: BTreeMap<String, Vec<i32>>,
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
    /// Its last stable offset: how far a read_committed consumer can get (an open transaction
    /// holds it back).
    pub last_stable_offset: Option<i64>,
    /// `high_watermark - committed_offset`, never negative.
    pub lag: Option<i64>,
}

const T: Duration = Duration::from_secs(5);

/// The handler.
pub(super) async fn groups(ctx: Arc<NodeContext>) -> Json {
    json(&serde_json::json!({ "groups": collect(&ctx, true).await }))
}

/// Every group with its committed offsets and lag, and its members if `with_members` (one more
/// question to the coordinator per group, which `/metrics` has no use for).
pub(super) async fn collect(ctx: &NodeContext, with_members: bool) -> Vec<GroupView> {
    let listings = ask_coordinator(ctx, CoordinatorMsg::List, T).await.map(|(_, l)| l).unwrap_or_default();
    let mut out = Vec::with_capacity(listings.len());
    for g in listings {
        let group_id = g.group_id.clone();
        let msg = |reply| CoordinatorMsg::FetchOffsets { group_id, partitions: None, require_stable: false, reply };
        let committed = ask_coordinator(ctx, msg, T).await.and_then(|answer| answer).unwrap_or_default();
        let mut partitions = Vec::with_capacity(committed.len());
        for ((topic, partition), _code, c) in committed {
            let Some(c) = c else { continue };
            let (high_watermark, last_stable_offset) =
                match replica_info(ctx, &TopicPartition::new(&topic, partition)).await {
                    Some(info) => (Some(info.high_watermark), Some(info.last_stable_offset)),
                    None => (None, None),
                };
            let lag = high_watermark.map(|hw| (hw - c.offset).max(0));
            let committed_offset = c.offset;
            partitions.push(LagView { topic, partition, committed_offset, high_watermark, last_stable_offset, lag });
        }
        let total_lag = partitions.iter().filter_map(|p| p.lag).sum();
        let (generation, members) = match with_members {
            true => members(ctx, &g.group_id).await.map_or((None, Vec::new()), |(g, m)| (Some(g), m)),
            false => (None, Vec::new()),
        };
        out.push(GroupView {
            group_id: g.group_id,
            state: g.state,
            protocol_type: g.protocol_type,
            generation,
            members,
            partitions,
            total_lag,
        });
    }
    out
}

/// A group's generation and its members as DescribeGroups reports them, assignments decoded.
async fn members(ctx: &NodeContext, group_id: &str) -> Option<(i32, Vec<MemberView>)> {
    let msg = |reply| CoordinatorMsg::Describe { groups: vec![group_id.to_string()], reply };
    let described = ask_coordinator(ctx, msg, T).await.unwrap_or_default();
    let Some((_, Ok(Some(description)))) = described.into_iter().next() else { return None };
    let members = description
        .members
        .into_iter()
        .map(|m| MemberView {
            assignment: consumer_assignment(&m.assignment).unwrap_or_default().into_iter().collect(),
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
        })
        .collect();
    Some((description.generation_id, members))
}
