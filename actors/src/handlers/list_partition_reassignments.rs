//! ListPartitionReassignments (v0, `kafka-reassign-partitions --list`, the admin clients'
//! `list_partition_reassignments`): the rebalancer's moves that are not done yet, in Kafka's
//! terms. Like every controller API it is answered by the controller, here the Raft leader
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
use crate::rebalancer::{Move, Phase};

/// Handles one ListPartitionReassignments request.
pub fn handle(ctx: &Arc<NodeContext>, req: ListPartitionReassignmentsRequest) -> ResponseKind {
    let response = ListPartitionReassignmentsResponse::default();
    // The Raft leader is the controller clients are told of (Metadata's controller id); its
    // rebalancer may not have published its first plan yet, which then lists nothing.
    if ctx.cluster.borrow().leader != Some(ctx.config.node_id) {
        let message = format!("node {} is not the controller: the Raft leader lists reassignments", ctx.config.node_id);
        return ResponseKind::ListPartitionReassignments(
            response.with_error_code(ResponseError::NotController.code()).with_error_message(Some(str_bytes(message))),
        );
    }
    let wanted = |topic: &str, partition: i32| match &req.topics {
        None => true,
        Some(topics) => topics.iter().any(|t| t.name.0.as_str() == topic && t.partition_indexes.contains(&partition)),
    };
    let status = ctx.rebalance.borrow().clone();
    let ongoing = ongoing(&ctx.metadata(), status.moves.iter().filter(|m| wanted(&m.topic, m.partition)));
    let topics = ongoing
        .into_iter()
        .map(|(topic, partitions)| {
            OngoingTopicReassignment::default().with_name(topic_name(&topic)).with_partitions(partitions)
        })
        .collect();
    ResponseKind::ListPartitionReassignments(response.with_topics(topics))
}

/// The moves not done yet, by topic, as Kafka describes a reassignment under way: the replicas
/// the partition has now, the ones being added (in the target, not where it started) and the ones
/// being removed (where it started, not in the target).
fn ongoing<'a>(
    metadata: &ClusterMetadata,
    moves: impl Iterator<Item = &'a Move>,
) -> BTreeMap<String, Vec<OngoingPartitionReassignment>> {
    let ids = |v: Vec<NodeId>| v.into_iter().map(|id| BrokerId(id as i32)).collect::<Vec<_>>();
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for m in moves.filter(|m| m.phase != Phase::Done) {
        let Some(p) = metadata.partition(&m.topic, m.partition) else { continue };
        let adding = m.to.iter().copied().filter(|id| !m.from.contains(id)).collect();
        let removing = m.from.iter().copied().filter(|id| !m.to.contains(id)).collect();
        by_topic.entry(m.topic.clone()).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(m.partition)
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
        Move { topic: "t".into(), partition, from: from.to_vec(), to: to.to_vec(), phase }
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
        let listed = ongoing(&m, moves.iter());
        let rows: Vec<_> = listed["t"]
            .iter()
            .map(|r| (r.partition_index, r.replicas.clone(), r.adding_replicas.clone(), r.removing_replicas.clone()))
            .collect();
        let b = |v: &[i32]| v.iter().map(|&id| BrokerId(id)).collect::<Vec<_>>();
        assert_eq!(rows, vec![(0, b(&[1, 2, 4]), b(&[4]), b(&[2])), (1, b(&[2, 3]), b(&[4]), b(&[2])),]);
    }
}
