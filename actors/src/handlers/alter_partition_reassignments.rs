//! AlterPartitionReassignments (v0-1, `kafka-reassign-partitions --execute` and `--cancel`, the
//! admin clients' `alter_partition_reassignments`, Cruise Control): each partition's new replica
//! list (or its cancellation) is committed through Raft as an operator placement before the
//! answer, as Kafka's controller records the target before it answers. The rebalancer then
//! carries it out with the steps of its own moves (copy first, every new replica in sync, the
//! leader handed over gracefully if it leaves, drop last), and leaves the partition there. Like
//! ListPartitionReassignments it is answered by the controller, the Raft leader.

use std::sync::Arc;

use chronik::cluster::MetadataCommand;
use chronik::config::NodeId;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ResponseKind};

use super::list_partition_reassignments::not_controller;
use super::{applied_outcome, apply_metadata, str_bytes};
use crate::context::NodeContext;

/// One partition's outcome before the commands are applied.
enum Outcome {
    /// Its command's index in the batch.
    Proposed(usize),
    /// Refused before proposing: Kafka's code and a message.
    Refused(i16, String),
}

/// Handles one AlterPartitionReassignments request.
pub async fn handle(ctx: &Arc<NodeContext>, req: AlterPartitionReassignmentsRequest) -> ResponseKind {
    // v1 (KIP-860) echoes whether the replication factor could change; v0 always allowed it.
    let response = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(req.allow_replication_factor_change);
    if let Some(message) = not_controller(ctx) {
        let response =
            response.with_error_code(ResponseError::NotController.code()).with_error_message(Some(str_bytes(message)));
        return ResponseKind::AlterPartitionReassignments(response);
    }
    let mut commands = Vec::new();
    let decided: Vec<_> = req
        .topics
        .iter()
        .map(|t| {
            let topic = t.name.0.to_string();
            let rows: Vec<(i32, Outcome)> = t
                .partitions
                .iter()
                .map(|p| {
                    let partition = p.partition_index;
                    let replicas = match &p.replicas {
                        None => None,
                        Some(ids) => match ids.iter().map(|id| NodeId::try_from(id.0)).collect() {
                            Ok(ids) => Some(ids),
                            Err(_) => {
                                let message = format!("partition {partition} names a negative broker id");
                                return (
                                    partition,
                                    Outcome::Refused(ResponseError::InvalidReplicaAssignment.code(), message),
                                );
                            }
                        },
                    };
                    commands.push(MetadataCommand::AlterReassignment {
                        topic: topic.clone(),
                        partition,
                        replicas,
                        keep_replication_factor: !req.allow_replication_factor_change,
                    });
                    (partition, Outcome::Proposed(commands.len() - 1))
                })
                .collect();
            (t.name.clone(), rows)
        })
        .collect();
    let applied = if commands.is_empty() { Vec::new() } else { apply_metadata(ctx, commands).await };
    let responses = decided
        .into_iter()
        .map(|(name, rows)| {
            let partitions = rows
                .into_iter()
                .map(|(partition, outcome)| {
                    let (code, message) = match outcome {
                        Outcome::Proposed(i) => applied_outcome(&applied, i),
                        Outcome::Refused(code, message) => (code, Some(message)),
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(partition)
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes))
                })
                .collect();
            ReassignableTopicResponse::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    ResponseKind::AlterPartitionReassignments(response.with_responses(responses))
}
