//! Kafka request handlers, one file per API. [`dispatch`] decodes a frame and returns the
//! future that produces its encoded response; anything that must happen in request order
//! (handing produce batches to replicas) happens before it returns.

mod acls;
mod alter_configs;
mod alter_partition_reassignments;
mod api_versions;
mod authorize;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod elect_leaders;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leader_hint;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
pub(crate) mod transactions;
mod user_scram_credentials;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chronik::cluster::{MetadataCommand, MetadataError};
use chronik::protocol::{Parsed, ParsedRequest, ProtocolError, encode_response, parse_request};
use futures::FutureExt;
use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::context::NodeContext;
use crate::metadata_actor::MetadataMsg;

/// The encoded response of one request: `Ok(None)` when Kafka sends none (acks=0), `Err` when
/// the connection must close.
pub type ResponseFuture = BoxFuture<'static, Result<Option<Bytes>, String>>;

/// Who sent a request, and through which listener.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener it connected to: addresses in answers are that listener's.
    pub listener: Arc<str>,
    /// Who it authenticated as (`User:ANONYMOUS` when nobody).
    pub principal: Arc<str>,
}

/// Decodes one frame and starts handling it.
pub fn dispatch(ctx: &Arc<NodeContext>, frame: Bytes, client: &Client) -> Result<ResponseFuture, ProtocolError> {
    let (peer, listener) = (client.peer, client.listener.clone());
    let request = match parse_request(frame)? {
        Parsed::ApiVersionsTooNew { correlation_id, .. } => {
            let body = ResponseKind::ApiVersions(chronik::protocol::api_versions_unsupported());
            let bytes = encode_response(ApiKey::ApiVersions, 0, correlation_id, &body);
            return Ok(async move { bytes.map(Some).map_err(|e| e.to_string()) }.boxed());
        }
        Parsed::ListOffsetsV0 { correlation_id, request } => {
            ctx.requests.record(ApiKey::ListOffsets);
            let (ctx, decoded) = (ctx.clone(), Instant::now());
            let refused = authorize::refused_v0_topics(&ctx, client, &request);
            return Ok(async move {
                let mut topics = list_offsets::handle_v0(&ctx, request).await;
                for (_, partitions) in topics.iter_mut().filter(|(name, _)| refused.contains(name)) {
                    for (_, code, offsets) in partitions.iter_mut() {
                        (*code, *offsets) = (authorize::TOPIC_DENIED, Vec::new());
                    }
                }
                ctx.requests.observe(ApiKey::ListOffsets, decoded.elapsed());
                Ok(Some(chronik::protocol::list_offsets_v0::encode_response(correlation_id, &topics)))
            }
            .boxed());
        }
        Parsed::Request(request) => request,
    };
    let ParsedRequest { api_key, api_version: v, correlation_id, body, client_id } = *request;
    let decoded = Instant::now();
    ctx.requests.record(api_key);
    let ctx = ctx.clone();
    let metrics = ctx.clone();
    let (body, amend) = match authorize::screen(&ctx, client, v, body) {
        authorize::Screened::Run(body, amend) => (body, amend),
        authorize::Screened::Refuse(answer) => {
            let bytes = encode_response(api_key, v, correlation_id, &answer);
            return Ok(async move { bytes.map(Some).map_err(|e| e.to_string()) }.boxed());
        }
    };
    let response: BoxFuture<'static, Option<ResponseKind>> = match body {
        RequestKind::Produce(r) => produce::handle(&ctx, r, v, listener),
        RequestKind::ApiVersions(_) => async move { Some(api_versions::handle(v)) }.boxed(),
        RequestKind::Metadata(r) => async move { Some(metadata::handle(&ctx, r, v, &listener).await) }.boxed(),
        RequestKind::Fetch(r) => async move { Some(fetch::handle(&ctx, r, v, listener).await) }.boxed(),
        RequestKind::ListOffsets(r) => async move { Some(list_offsets::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::CreateTopics(r) => async move { Some(create_topics::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::DeleteTopics(r) => async move { Some(delete_topics::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::CreatePartitions(r) => async move { Some(create_partitions::handle(&ctx, r).await) }.boxed(),
        RequestKind::DescribeConfigs(r) => async move { Some(describe_configs::handle(&ctx, r, v)) }.boxed(),
        RequestKind::InitProducerId(r) => async move { Some(init_producer_id::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::AddPartitionsToTxn(r) => {
            async move { Some(transactions::add_partitions(&ctx, r, v).await) }.boxed()
        }
        RequestKind::AddOffsetsToTxn(r) => async move { Some(transactions::add_offsets(&ctx, r, v).await) }.boxed(),
        RequestKind::EndTxn(r) => async move { Some(transactions::end_txn(&ctx, r, v).await) }.boxed(),
        RequestKind::DescribeTransactions(r) => async move { Some(transactions::describe(&ctx, r).await) }.boxed(),
        RequestKind::ListTransactions(r) => async move { Some(transactions::list(&ctx, r).await) }.boxed(),
        RequestKind::OffsetForLeaderEpoch(r) => {
            async move { Some(offset_for_leader_epoch::handle(&ctx, r).await) }.boxed()
        }
        RequestKind::AlterConfigs(r) => async move { Some(alter_configs::handle(&ctx, r).await) }.boxed(),
        RequestKind::IncrementalAlterConfigs(r) => {
            async move { Some(incremental_alter_configs::handle(&ctx, r).await) }.boxed()
        }
        RequestKind::DescribeCluster(r) => async move { Some(describe_cluster::handle(&ctx, r, &listener)) }.boxed(),
        RequestKind::FindCoordinator(r) => {
            async move { Some(find_coordinator::handle(&ctx, r, v, &listener).await) }.boxed()
        }
        RequestKind::JoinGroup(r) => {
            let client_id = client_id.unwrap_or_default();
            async move { Some(join_group::handle(&ctx, r, v, client_id, peer).await) }.boxed()
        }
        RequestKind::SyncGroup(r) => async move { Some(sync_group::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::Heartbeat(r) => async move { Some(heartbeat::handle(&ctx, r).await) }.boxed(),
        RequestKind::LeaveGroup(r) => async move { Some(leave_group::handle(&ctx, r, v).await) }.boxed(),
        // Handed to the coordinator here, in request order: commits apply in the order sent.
        RequestKind::OffsetCommit(r) => offset_commit::handle(&ctx, r, v).map(Some).boxed(),
        RequestKind::TxnOffsetCommit(r) => offset_commit::handle_txn(&ctx, r, v).map(Some).boxed(),
        RequestKind::OffsetFetch(r) => async move { Some(offset_fetch::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::ListGroups(r) => async move { Some(list_groups::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::DescribeGroups(r) => async move { Some(describe_groups::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::DeleteGroups(r) => async move { Some(delete_groups::handle(&ctx, r).await) }.boxed(),
        RequestKind::DeleteRecords(r) => async move { Some(delete_records::handle(&ctx, r).await) }.boxed(),
        RequestKind::DescribeLogDirs(r) => async move { Some(describe_log_dirs::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::OffsetDelete(r) => async move { Some(offset_delete::handle(&ctx, r).await) }.boxed(),
        RequestKind::DescribeProducers(r) => async move { Some(describe_producers::handle(&ctx, r).await) }.boxed(),
        RequestKind::ElectLeaders(r) => async move { Some(elect_leaders::handle(&ctx, r, v).await) }.boxed(),
        RequestKind::AlterPartitionReassignments(r) => {
            async move { Some(alter_partition_reassignments::handle(&ctx, r).await) }.boxed()
        }
        RequestKind::ListPartitionReassignments(r) => {
            async move { Some(list_partition_reassignments::handle(&ctx, r)) }.boxed()
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            async move { Some(user_scram_credentials::describe(&ctx, r)) }.boxed()
        }
        RequestKind::AlterUserScramCredentials(r) => {
            async move { Some(user_scram_credentials::alter(&ctx, r).await) }.boxed()
        }
        RequestKind::DescribeAcls(r) => async move { Some(acls::describe(&ctx, r)) }.boxed(),
        RequestKind::CreateAcls(r) => async move { Some(acls::create(&ctx, r).await) }.boxed(),
        RequestKind::DeleteAcls(r) => async move { Some(acls::delete(&ctx, r).await) }.boxed(),
        _ => return Err(ProtocolError::UnsupportedApi { key: api_key as i16, version: v, correlation_id }),
    };
    Ok(async move {
        let encoded = match response.await {
            Some(mut body) => {
                if let Some(amend) = amend {
                    amend(&mut body);
                }
                encode_response(api_key, v, correlation_id, &body).map(Some).map_err(|e| {
                // The broker built an answer its own codec refuses: a bug to fix, not the client's.
                tracing::error!(?api_key, version = v, error = %e, "cannot encode a response; closing the connection");
                e.to_string()
            })
            }
            None => Ok(None),
        };
        metrics.requests.observe(api_key, decoded.elapsed());
        encoded
    }
    .boxed())
}

/// A topic name as the protocol carries it.
pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Protocol string from a Rust string.
pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Applies metadata commands through the MetadataActor; every command fails alike when it
/// cannot be reached in time.
pub(crate) async fn apply_metadata(
    ctx: &NodeContext,
    commands: Vec<MetadataCommand>,
) -> Vec<Result<(), MetadataError>> {
    let n = commands.len();
    let unavailable = || vec![Err(MetadataError::Unavailable("the metadata actor did not answer in time".into())); n];
    let Some(actor) = ctx.metadata_actor.get() else { return unavailable() };
    let msg = |reply| MetadataMsg::Apply { commands, reply };
    match actor.call(msg, Duration::from_secs(30)).await {
        Ok(ractor::rpc::CallResult::Success(results)) => results,
        _ => unavailable(),
    }
}

/// Kafka's code and message for command `i` of a batch [`apply_metadata`] answered.
pub(crate) fn applied_outcome(applied: &[Result<(), MetadataError>], i: usize) -> (i16, Option<String>) {
    match applied.get(i) {
        Some(Ok(())) => (0, None),
        Some(Err(e)) => (metadata_error_code(e), Some(e.to_string())),
        None => (ResponseError::RequestTimedOut.code(), Some("not applied".to_string())),
    }
}

/// The Kafka error code for a metadata failure.
pub(crate) fn metadata_error_code(e: &MetadataError) -> i16 {
    let kind = match e {
        MetadataError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        MetadataError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        MetadataError::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
        MetadataError::UncleanElectionDisabled(_) => ResponseError::EligibleLeadersNotAvailable,
        MetadataError::InvalidReplicationFactor { .. } | MetadataError::ReplicationFactorChange { .. } => {
            ResponseError::InvalidReplicationFactor
        }
        MetadataError::InvalidReplicaAssignment { .. } => ResponseError::InvalidReplicaAssignment,
        MetadataError::Unavailable(_) => ResponseError::RequestTimedOut,
        MetadataError::StaleLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        MetadataError::StaleTerm { .. } | MetadataError::StaleLeader { .. } => ResponseError::NotController,
        MetadataError::NoReassignmentInProgress { .. } => ResponseError::NoReassignmentInProgress,
        MetadataError::NoScramCredential { .. } => ResponseError::ResourceNotFound,
        MetadataError::InvalidIsr { .. }
        | MetadataError::CannotDrain { .. }
        | MetadataError::UnsafeReassignment { .. } => ResponseError::InvalidRequest,
    };
    kind.code()
}

/// Creates, with the broker's defaults, the topics among `names` that are valid and missing.
/// Failures are left for the caller's normal lookup to report.
pub(crate) async fn auto_create_topics(ctx: &NodeContext, names: &[String]) {
    let metadata = ctx.metadata();
    let config = &ctx.config;
    let commands: Vec<MetadataCommand> = names
        .iter()
        .filter(|n| !metadata.topics.contains_key(n.as_str()))
        .filter(|n| metadata.check_create_topic(n, config.kafka.num_partitions, config.replication_factor).is_ok())
        .map(|n| MetadataCommand::CreateTopic {
            name: n.clone(),
            id: uuid::Uuid::new_v4(),
            partitions: config.kafka.num_partitions,
            replication_factor: config.replication_factor,
            configs: Default::default(),
            assignments: Vec::new(),
        })
        .collect();
    if !commands.is_empty() {
        apply_metadata(ctx, commands).await;
    }
}

/// The broker clients see as the controller: the Raft leader (which commits every metadata
/// change), as long as it is a broker the same answer lists. Clients look the controller up
/// among the listed brokers (kafkajs' admin fails inside the client when it is missing), so a
/// leader that is unknown or not listed yet is answered with this node, else the lowest listed
/// broker: any node forwards admin requests to the leader, so every listed broker works.
pub(crate) fn controller_id(ctx: &NodeContext) -> kafka_protocol::messages::BrokerId {
    let metadata = ctx.metadata();
    let listed: Vec<u64> = metadata.nodes.values().filter(|n| host_port(&n.kafka).is_some()).map(|n| n.id).collect();
    let id = chronik::cluster::controller_for_clients(ctx.cluster.borrow().leader, ctx.config.node_id, &listed);
    kafka_protocol::messages::BrokerId(id)
}

/// The replica serving `topic`-`partition` here, or the error a client should see.
pub(crate) fn replica_for(
    ctx: &NodeContext,
    topic: &str,
    partition: i32,
) -> Result<crate::directory::Counted<crate::replica::ReplicaMsg>, crate::replica::PartitionError> {
    use crate::context::TopicPartition;
    let metadata = ctx.metadata();
    let Some(meta) = metadata.partition(topic, partition) else {
        let msg = format!("{topic}-{partition} does not exist");
        return Err(crate::replica::PartitionError::new(ResponseError::UnknownTopicOrPartition, msg));
    };
    // Only the leader serves clients; the client refreshes its metadata and goes there.
    let tp = TopicPartition::new(topic, partition);
    if meta.leader == ctx.config.node_id
        && let Some(r) = ctx.replicas.get(&tp)
    {
        return Ok(r.clone());
    }
    if let Some(offline) = ctx.offline.get(&tp) {
        let msg = format!("{tp} is offline on this node: {}", offline.reason);
        return Err(crate::replica::PartitionError::new(ResponseError::KafkaStorageError, msg));
    }
    let msg = format!("{topic}-{partition} is led by node {}, not this one", meta.leader);
    Err(crate::replica::PartitionError::new(ResponseError::NotLeaderOrFollower, msg))
}

/// A client that names a leader epoch must name the current one (KIP-320); -1 skips the check.
pub(crate) fn check_leader_epoch(
    ctx: &NodeContext,
    topic: &str,
    partition: i32,
    client_epoch: i32,
) -> Result<(), crate::replica::PartitionError> {
    let Some(current) = ctx.metadata().partition(topic, partition).map(|p| p.leader_epoch) else { return Ok(()) };
    let kind = match client_epoch {
        e if e < 0 || e == current => return Ok(()),
        e if e < current => ResponseError::FencedLeaderEpoch,
        _ => ResponseError::UnknownLeaderEpoch,
    };
    let msg = format!("{topic}-{partition}: leader epoch {client_epoch}, current {current}");
    Err(crate::replica::PartitionError::new(kind, msg))
}

/// Asks a replica and waits for its answer; a replica that is gone or restarting reads as
/// NOT_LEADER_OR_FOLLOWER, which clients retry after refreshing metadata.
pub(crate) async fn ask_replica<T: Send + 'static>(
    replica: &crate::directory::Counted<crate::replica::ReplicaMsg>,
    msg: impl FnOnce(ractor::RpcReplyPort<Result<T, crate::replica::PartitionError>>) -> crate::replica::ReplicaMsg,
) -> Result<T, crate::replica::PartitionError> {
    ask_replica_within(replica, msg, Duration::from_secs(10)).await
}

/// [`ask_replica`] for a question the replica may take up to `timeout` to answer.
pub(crate) async fn ask_replica_within<T: Send + 'static>(
    replica: &crate::directory::Counted<crate::replica::ReplicaMsg>,
    msg: impl FnOnce(ractor::RpcReplyPort<Result<T, crate::replica::PartitionError>>) -> crate::replica::ReplicaMsg,
    timeout: Duration,
) -> Result<T, crate::replica::PartitionError> {
    match replica.call(msg, timeout).await {
        Ok(ractor::rpc::CallResult::Success(result)) => result,
        _ => Err(crate::replica::PartitionError::new(ResponseError::NotLeaderOrFollower, "the replica is restarting")),
    }
}

/// Asks the GroupCoordinator; a coordinator that is missing, restarting or silent for
/// `timeout` reads as COORDINATOR_NOT_AVAILABLE, which clients retry.
pub(crate) async fn ask_coordinator<T: Send + 'static>(
    ctx: &NodeContext,
    msg: impl FnOnce(ractor::RpcReplyPort<T>) -> crate::group_coordinator::CoordinatorMsg,
    timeout: Duration,
) -> Result<T, i16> {
    let unavailable = ResponseError::CoordinatorNotAvailable.code();
    let coordinator = ctx.coordinator.get().ok_or(unavailable)?;
    match coordinator.call(msg, timeout).await {
        Ok(ractor::rpc::CallResult::Success(answer)) => Ok(answer),
        _ => Err(unavailable),
    }
}

/// Hands a message to the GroupCoordinator now, so messages from one connection reach it in
/// request order, and returns the wait for its answer (outcomes as for [`ask_coordinator`]).
pub(crate) fn send_to_coordinator<T: Send + 'static>(
    ctx: &NodeContext,
    msg: impl FnOnce(ractor::RpcReplyPort<T>) -> crate::group_coordinator::CoordinatorMsg,
    timeout: Duration,
) -> impl std::future::Future<Output = Result<T, i16>> + Send + 'static {
    let unavailable = ResponseError::CoordinatorNotAvailable.code();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = match ctx.coordinator.get() {
        Some(coordinator) => coordinator.cast(msg(tx.into())).map_err(|_| unavailable),
        None => Err(unavailable),
    };
    async move {
        sent?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => Err(unavailable),
        }
    }
}

/// A string field from the protocol as an owned string.
pub(crate) fn owned(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.to_string())
}

/// Splits an advertised `host:port` (`[v6]:port` too) the way Metadata and friends report it.
pub(crate) fn host_port(addr: &str) -> Option<(&str, i32)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']'), port.parse().ok()?))
}
