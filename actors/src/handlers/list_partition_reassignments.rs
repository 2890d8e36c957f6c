//! ListPartitionReassignments (v0, `kafka-reassign-partitions --list`, the admin clients'
//! `list_partition_reassignments`): the reassignments not done yet, in Kafka's terms: the
//! operators' (AlterPartitionReassignments, from the metadata) and the rebalancer's own moves. Like every controller API it is answered by the controller, here the Raft leader
//! whose rebalancer drives the moves; another node answers NOT_CONTROLLER, and the client asks
//! again after refreshing which broker that is.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::cluster::ClusterMetadata;
use chronik::config::NodeId;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ResponseKind,
};

use super::{str_bytes, topic_name};
use crate::context::NodeContext;
use crate::rebalancer::{Move, Origin, Phase};

/// Handles one ListPartitionReassignments request.
pub fn handle(ctx: &Arc<NodeContext>, req: ListPartitionReassignmentsRequest) -> ResponseKind {
    let response = ListPartitionReassignmentsResponse::default();
    // Its rebalancer may not have published its first plan yet; operators' reassignments are
    // listed from the metadata all the same.
    if let Some(message) = not_controller(ctx) {
        return ResponseKind::ListPartitionReassignments(
            response.with_error_code(ResponseError::NotController.code()).with_error_message(Some(str_bytes(message))),
        );
    }
    let wanted = |topic: &str, partition: i32| match &req.topics {
        None => true,
        Some(topics) => topics.iter().any(|t| t.name.0.as_str() == topic && t.partition_indexes.contains(&partition)),
    };
    let status = ctx.rebalance.borrow().clone();
    let ongoing = ongoing(&ctx.metadata(), &status.moves, wanted);
    let topics = ongoing
        .into_iter()
        .map(|(topic, partitions)| {
            OngoingTopicReassignment::default().with_name(topic_name(&topic)).with_partitions(partitions)
        })
        .collect();
    ResponseKind::ListPartitionReassignments(response.with_topics(topics))
}

/// Why this node cannot answer a reassignment API, unless it is the controller clients are told
/// of (Metadata's controller id): the Raft leader, whose rebalancer drives the moves.
pub(super) fn not_controller(ctx: &NodeContext) -> Option<String> {
    let me = ctx.config.node_id;
    (ctx.cluster.borrow().leader != Some(me))
        .then(|| format!("node {me} is not the controller: the Raft leader handles reassignments"))
}

/// Where a reassignment started and where it goes.
type FromTo<'a> = (&'a [NodeId], &'a [NodeId]);

/// The reassignments not done yet, by topic, as Kafka describes one under way: the replicas the
/// partition has now, the ones being added (in the target, not where it started) and the ones
/// being removed (where it started, not in the target). An operator's reassignment is read from
/// the metadata, so it is listed from the moment it is accepted.
fn ongoing(
    metadata: &ClusterMetadata,
    moves: &[Move],
    wanted: impl Fn(&str, i32) -> bool,
) -> BTreeMap<String, Vec<OngoingPartitionReassignment>> {
    let mut under_way: BTreeMap<(&str, i32), FromTo> = moves
        .iter()
        .filter(|m| m.phase != Phase::Done && m.origin == Origin::Rebalancer)
        .map(|m| ((m.topic.as_str(), m.partition), (m.from.as_slice(), m.to.as_slice())))
        .collect();
    for topic in metadata.topics.values() {
        for p in &topic.partitions {
            let Some(placement) = &p.placement else { continue };
            if let Some(from) = &placement.reassigning_from {
                under_way.insert((&topic.name, p.partition), (from, &placement.replicas));
            }
        }
    }
    let ids = |v: Vec<NodeId>| v.into_iter().map(|id| BrokerId(id as i32)).collect::<Vec<_>>();
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for ((topic, partition), (from, to)) in under_way.into_iter().filter(|((t, p), _)| wanted(t, *p)) {
        let Some(p) = metadata.partition(topic, partition) else { continue };
        let adding = to.iter().copied().filter(|id| !from.contains(id)).collect();
        let removing = from.iter().copied().filter(|id| !to.contains(id)).collect();
        by_topic.entry(topic.to_string()).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(partition)
                .with_replicas(ids(p.replicas.clone()))
                .with_adding_replicas(ids(adding))
                .with_removing_replicas(ids(removing)),
        );
    }
    by_topic
}

#[cfg(test)]
mod tests {
    use chronik::cluster::{MetadataCommand, NodeInfo};

    use super::*;

    fn moving(partition: i32, from: &[NodeId], to: &[NodeId], phase: Phase) -> Move {
        Move { topic: "t".into(), partition, from: from.to_vec(), to: to.to_vec(), phase, origin: Origin::Rebalancer }
    }

    #[test]
    fn moves_under_way_list_what_is_added_and_removed_and_finished_ones_are_left_out() {
        let mut m = ClusterMetadata::default();
        let nodes = (1..=4).map(|id| NodeInfo { id, ..NodeInfo::default() });
        m.set_membership((1..=4).collect(), nodes);
        let create = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions: 3,
            replication_factor: 2,
            configs: BTreeMap::new(),
            assignments: vec![vec![1, 2], vec![2, 3], vec![3, 1]],
        };
        m.apply(&create).expect("create");
        let add = MetadataCommand::ReassignPartition { topic: "t".into(), partition: 0, replicas: vec![1, 2, 4] };
        m.apply(&add).expect("copy first");
        let moves = [
            moving(0, &[1, 2], &[1, 4], Phase::CatchingUp),
            moving(1, &[2, 3], &[4, 3], Phase::Queued),
            moving(2, &[3, 1], &[4, 1], Phase::Done),
        ];
        let listed = ongoing(&m, &moves, |_, _| true);
        let rows: Vec<_> = listed["t"]
            .iter()
            .map(|r| (r.partition_index, r.replicas.clone(), r.adding_replicas.clone(), r.removing_replicas.clone()))
            .collect();
        let b = |v: &[i32]| v.iter().map(|&id| BrokerId(id)).collect::<Vec<_>>();
        assert_eq!(rows, vec![(0, b(&[1, 2, 4]), b(&[4]), b(&[2])), (1, b(&[2, 3]), b(&[4]), b(&[2])),]);
    }
}
