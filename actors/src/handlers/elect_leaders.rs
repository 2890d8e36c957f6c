//! ElectLeaders (v0–v2, `kafka-leader-election`, the admin clients' `elect_leaders`): each
//! partition's election is decided as Kafka's controller decides it
//! ([`operator_election`]: preferred moves leadership back to the first replica when it is in
//! sync; unclean replaces a leader that stopped answering, with an out-of-sync replica only where
//! the topic sets `unclean.leader.election.enable`) and committed through Raft before the
//! answer. Asked for every partition (a null list), partitions that need no election are left
//! out, as in Kafka. Preferred elections are answered by any node; unclean ones only by the
//! controller (the Raft leader), which alone knows which brokers stopped answering.

use std::sync::Arc;

use chronik::cluster::{ElectionRefusal, MetadataCommand, operator_election};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, ResponseKind};

use super::list_partition_reassignments::not_controller;
use super::{applied_outcome, apply_metadata, str_bytes, topic_name};
use crate::context::NodeContext;

/// One partition's outcome before the elections are applied.
enum Outcome {
    /// The election to apply: the index of its command in the batch.
    Elect(usize),
    /// Refused without an election.
    Refused(ElectionRefusal),
}

/// Handles one ElectLeaders request.
pub async fn handle(ctx: &Arc<NodeContext>, req: ElectLeadersRequest, version: i16) -> ResponseKind {
    let unclean = match req.election_type {
        0 => false,
        1 => true,
        other => {
            let message = format!("unknown election type {other}");
            return refused_whole(&req, version, ResponseError::InvalidRequest.code(), message);
        }
    };
    if unclean && let Some(message) = not_controller(ctx) {
        return refused_whole(&req, version, ResponseError::NotController.code(), message);
    }
    let fenced = ctx.fenced.borrow().clone();
    let metadata = ctx.metadata();
    let every_partition = req.topic_partitions.is_none();
    let requested: Vec<(String, Vec<i32>)> = match &req.topic_partitions {
        Some(topics) => topics.iter().map(|t| (t.topic.0.to_string(), t.partitions.clone())).collect(),
        None => metadata
            .topics
            .values()
            .map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition).collect()))
            .collect(),
    };
    let mut commands: Vec<MetadataCommand> = Vec::new();
    let decided: Vec<(String, Vec<(i32, Outcome)>)> = requested
        .into_iter()
        .map(|(topic, partitions)| {
            let outcomes = partitions
                .into_iter()
                .map(|p| match operator_election(&metadata, &topic, p, unclean, &fenced) {
                    Ok(command) => {
                        commands.push(command);
                        (p, Outcome::Elect(commands.len() - 1))
                    }
                    Err(refusal) => (p, Outcome::Refused(refusal)),
                })
                .collect();
            (topic, outcomes)
        })
        .collect();
    let applied = if commands.is_empty() { Vec::new() } else { apply_metadata(ctx, commands).await };
    let results = decided
        .into_iter()
        .map(|(topic, outcomes)| {
            let rows = outcomes
                .into_iter()
                .filter(|(_, o)| !(every_partition && matches!(o, Outcome::Refused(ElectionRefusal::NotNeeded))))
                .map(|(p, outcome)| {
                    let (code, message) = match outcome {
                        Outcome::Elect(i) => applied_outcome(&applied, i),
                        Outcome::Refused(r) => refusal(&r, &topic, p),
                    };
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes))
                })
                .collect();
            ReplicaElectionResult::default().with_topic(topic_name(&topic)).with_partition_result(rows)
        })
        .collect();
    ResponseKind::ElectLeaders(ElectLeadersResponse::default().with_replica_election_results(results))
}

/// Kafka's code and message for a refused election.
fn refusal(r: &ElectionRefusal, topic: &str, partition: i32) -> (i16, Option<String>) {
    let (kind, message) = match r {
        ElectionRefusal::UnknownPartition => {
            (ResponseError::UnknownTopicOrPartition, Some(format!("no such partition as {topic}-{partition}")))
        }
        ElectionRefusal::NotNeeded => (ResponseError::ElectionNotNeeded, None),
        ElectionRefusal::PreferredNotAvailable => (
            ResponseError::PreferredLeaderNotAvailable,
            Some(format!("the preferred replica of {topic}-{partition} is not in sync or not active")),
        ),
        ElectionRefusal::UncleanDisabled => (
            ResponseError::EligibleLeadersNotAvailable,
            Some(format!(
                "no in-sync replica of {topic}-{partition} answers, and unclean.leader.election.enable is off for {topic}"
            )),
        ),
        ElectionRefusal::NoLiveReplica => {
            (ResponseError::EligibleLeadersNotAvailable, Some(format!("no replica of {topic}-{partition} answers")))
        }
    };
    (kind.code(), message)
}

/// The answer to a request that cannot be carried out at all: `code` for the request (v1+) and
/// for every partition it names.
fn refused_whole(req: &ElectLeadersRequest, version: i16, code: i16, message: String) -> ResponseKind {
    let results = req
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            let rows = t
                .partitions
                .iter()
                .map(|&p| {
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message.clone())))
                })
                .collect();
            ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(rows)
        })
        .collect();
    let response = ElectLeadersResponse::default().with_replica_election_results(results);
    ResponseKind::ElectLeaders(if version >= 1 { response.with_error_code(code) } else { response })
}
