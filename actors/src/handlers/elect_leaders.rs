//! ElectLeaders (v0–v2, `kafka-leader-election`, the admin clients' `elect_leaders`): each
//! partition's election is decided as Kafka's controller decides it
//! ([`operator_election`]: preferred moves leadership back to the first replica when it is in
//! sync; unclean is never done) and committed through Raft before the answer. Asked for every
//! partition (a null list), partitions that need no election are left out, as in Kafka.

use std::sync::Arc;

use chronik::cluster::{ElectionRefusal, MetadataCommand, operator_election};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, ResponseKind};

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
        other => return invalid(&req, version, format!("unknown election type {other}")),
    };
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
                .map(|p| match operator_election(&metadata, &topic, p, unclean) {
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
        ElectionRefusal::NoEligibleLeader => (
            ResponseError::EligibleLeadersNotAvailable,
            Some("unclean leader election is not enabled on this cluster".to_string()),
        ),
    };
    (kind.code(), message)
}

/// The answer to a request that cannot be carried out at all: INVALID_REQUEST for the request
/// (v1+) and for every partition it names.
fn invalid(req: &ElectLeadersRequest, version: i16, message: String) -> ResponseKind {
    let code = ResponseError::InvalidRequest.code();
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
