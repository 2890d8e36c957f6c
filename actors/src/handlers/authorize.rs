//! ACL checks on Kafka requests (`[authorization] enabled`), in one place in front of the
//! handlers, with Kafka's operations and error codes per API.
//!
//! Three shapes, as Kafka's own request handling has them:
//! - a request about one group or about the cluster is refused whole, before its handler runs;
//! - a request that changes several resources loses the refused ones before its handler runs,
//!   and their errors are merged into its answer;
//! - a request that only reads runs as sent, and its answer is then cut: a refused resource's
//!   entry gets the error (or, in a listing of everything, is left out).

use std::collections::HashSet;
use std::sync::Arc;

use chronik::cluster::ClusterMetadata;
use chronik::cluster::acl::{Authorizer, CLUSTER_RESOURCE, Operation, ResourceType};
use chronik::protocol::list_offsets_v0::ListOffsetsV0;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tracing::info;

mod groups;
mod topics;

use super::{Client, str_bytes};
use crate::context::NodeContext;

/// Changes an answer after its handler made it.
pub(crate) type Amend = Box<dyn FnOnce(&mut ResponseKind) + Send>;

/// What the checks make of a request.
pub(crate) enum Screened {
    /// Run it (possibly with refused parts taken out), then amend the answer if there is an amendment.
    Run(RequestKind, Option<Amend>),
    /// Refused whole: this is the answer.
    Refuse(ResponseKind),
}

/// One request's authority: who asks, from where, against which ACLs.
struct Check {
    /// The principal, `User:...`.
    principal: Arc<str>,
    /// The client's address, as ACL hosts name it.
    host: String,
    /// The metadata the ACLs and topic ids come from.
    metadata: Arc<ClusterMetadata>,
    /// `[authorization] allow_everyone_if_no_acl_found`.
    allow_if_no_acls: bool,
}

/// TOPIC_AUTHORIZATION_FAILED.
pub(crate) const TOPIC_DENIED: i16 = 29;
/// GROUP_AUTHORIZATION_FAILED.
pub(crate) const GROUP_DENIED: i16 = 30;
/// CLUSTER_AUTHORIZATION_FAILED.
pub(crate) const CLUSTER_DENIED: i16 = 31;
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
pub(crate) const TRANSACTIONAL_ID_DENIED: i16 = 53;

impl Check {
    fn authorizer(&self) -> Authorizer<'_> {
        Authorizer {
            // Super users never get this far (`check_for`).
            super_users: &[],
            allow_if_no_acls: self.allow_if_no_acls,
            acls: &self.metadata.acls,
        }
    }

    /// Whether the operation is allowed; a refusal is logged.
    fn may(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        let allowed = self.may_quietly(op, rt, name);
        if !allowed {
            info!(principal = %self.principal, host = %self.host, operation = %op, resource = %format!("{rt}:{name}"), "authorization denied");
        }
        allowed
    }

    /// Whether the operation is allowed, with nothing logged: for listings that simply leave out
    /// what the principal may not see.
    fn may_quietly(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        self.authorizer().allows(&self.principal, &self.host, op, rt, name)
    }

    fn on_cluster(&self, op: Operation) -> bool {
        self.may(op, ResourceType::Cluster, CLUSTER_RESOURCE)
    }

    fn on_topic(&self, op: Operation, name: &str) -> bool {
        self.may(op, ResourceType::Topic, name)
    }

    fn on_group(&self, op: Operation, name: &str) -> bool {
        self.may(op, ResourceType::Group, name)
    }

    fn topic_of(&self, name: &str, id: &uuid::Uuid) -> String {
        topic_name_of(&self.metadata, name, id)
    }
}

/// The name of a topic a request gives by name or (newer versions) by id.
fn topic_name_of(metadata: &ClusterMetadata, name: &str, id: &uuid::Uuid) -> String {
    if name.is_empty()
        && !id.is_nil()
        && let Some(t) = metadata.topics.values().find(|t| t.id == *id)
    {
        return t.name.clone();
    }
    name.to_string()
}

/// The checks for `client`'s requests: `None` when authorization is off or it is a super user.
fn check_for(ctx: &NodeContext, client: &Client) -> Option<Check> {
    let auth = &ctx.config.authorization;
    if !auth.enabled || auth.super_users.iter().any(|s| **s == *client.principal) {
        return None;
    }
    Some(Check {
        principal: client.principal.clone(),
        host: client.peer.ip().to_string(),
        metadata: ctx.metadata(),
        allow_if_no_acls: auth.allow_everyone_if_no_acl_found,
    })
}

/// Checks `request` for `client` when authorization is on; with it off, runs everything as sent.
pub(crate) fn screen(ctx: &NodeContext, client: &Client, version: i16, request: RequestKind) -> Screened {
    match check_for(ctx, client) {
        Some(check) => screen_request(check, version, request),
        None => run(request),
    }
}

/// The topics of a ListOffsets v0 request (decoded apart from the others) `client` may not describe.
pub(crate) fn refused_v0_topics(ctx: &NodeContext, client: &Client, request: &ListOffsetsV0) -> HashSet<String> {
    match check_for(ctx, client) {
        Some(c) => refused_topics(&c, Operation::Describe, request.topics.iter().map(|t| t.name.clone())),
        None => HashSet::new(),
    }
}

fn run(request: RequestKind) -> Screened {
    Screened::Run(request, None)
}

fn amended(request: RequestKind, amend: impl FnOnce(&mut ResponseKind) + Send + 'static) -> Screened {
    Screened::Run(request, Some(Box::new(amend)))
}

fn refuse_cluster(message: &str) -> Option<StrBytes> {
    Some(str_bytes(format!("cluster authorization failed: {message}")))
}

fn screen_request(c: Check, v: i16, request: RequestKind) -> Screened {
    use Operation::{Alter, Describe, Read};
    use RequestKind as R;
    use ResponseKind as A;
    match request {
        // DescribeCluster tells what Metadata tells anyone: Kafka asks no ACL for it either.
        R::ApiVersions(_) | R::SaslHandshake(_) | R::SaslAuthenticate(_) | R::DescribeCluster(_) => run(request),
        R::Produce(r) => topics::produce(c, r),
        R::Fetch(r) => topics::fetch(c, r, v),
        R::ListOffsets(r) => topics::list_offsets(c, r),
        R::OffsetForLeaderEpoch(r) => topics::offset_for_leader_epoch(c, r),
        R::Metadata(r) => topics::metadata(c, r, v),
        R::CreateTopics(r) => topics::create_topics(c, r),
        R::DeleteTopics(r) => topics::delete_topics(c, r),
        R::CreatePartitions(r) => topics::create_partitions(c, r),
        R::DeleteRecords(r) => topics::delete_records(c, r),
        R::DescribeConfigs(r) => topics::describe_configs(c, r),
        R::AlterConfigs(r) => topics::alter_configs(c, r),
        R::IncrementalAlterConfigs(r) => topics::incremental_alter_configs(c, r),
        R::DescribeProducers(r) => topics::describe_producers(c, r),
        R::InitProducerId(r) => topics::init_producer_id(c, r),
        R::FindCoordinator(r) => groups::find_coordinator(c, r, v),
        // A transaction's requests need WRITE on its transactional id, as in Kafka; a
        // transaction's topics were checked when the producer wrote them.
        R::AddPartitionsToTxn(r) => {
            if c.may(Operation::Write, ResourceType::TransactionalId, &r.v3_and_below_transactional_id) {
                return run(R::AddPartitionsToTxn(r));
            }
            let results = r.v3_and_below_topics.iter().map(|t| {
                let partitions = t.partitions.iter().map(|&p| {
                    add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(TRANSACTIONAL_ID_DENIED)
                });
                add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(partitions.collect())
            });
            let response = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results.collect());
            A::AddPartitionsToTxn(response).into_refusal()
        }
        R::AddOffsetsToTxn(r) => {
            let allowed = c.may(Operation::Write, ResourceType::TransactionalId, &r.transactional_id)
                && c.on_group(Read, &r.group_id);
            gate(allowed, R::AddOffsetsToTxn(r), || {
                A::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(TRANSACTIONAL_ID_DENIED))
            })
        }
        R::EndTxn(r) => {
            let allowed = c.may(Operation::Write, ResourceType::TransactionalId, &r.transactional_id);
            gate(allowed, R::EndTxn(r), || {
                A::EndTxn(EndTxnResponse::default().with_error_code(TRANSACTIONAL_ID_DENIED))
            })
        }
        R::DescribeTransactions(r) => {
            if r.transactional_ids.iter().all(|id| c.may(Describe, ResourceType::TransactionalId, id)) {
                return run(R::DescribeTransactions(r));
            }
            let states = r.transactional_ids.iter().map(|id| {
                describe_transactions_response::TransactionState::default()
                    .with_transactional_id(id.clone())
                    .with_error_code(TRANSACTIONAL_ID_DENIED)
                    .with_producer_id((-1).into())
                    .with_producer_epoch(-1)
            });
            A::DescribeTransactions(DescribeTransactionsResponse::default().with_transaction_states(states.collect()))
                .into_refusal()
        }
        R::ListTransactions(r) => gate(c.on_cluster(Describe), R::ListTransactions(r), || {
            A::ListTransactions(ListTransactionsResponse::default().with_error_code(CLUSTER_DENIED))
        }),
        R::JoinGroup(r) => {
            let allowed = c.on_group(Read, &r.group_id);
            gate(allowed, R::JoinGroup(r), || {
                A::JoinGroup(JoinGroupResponse::default().with_error_code(GROUP_DENIED).with_generation_id(-1))
            })
        }
        R::SyncGroup(r) => {
            let allowed = c.on_group(Read, &r.group_id);
            gate(allowed, R::SyncGroup(r), || A::SyncGroup(SyncGroupResponse::default().with_error_code(GROUP_DENIED)))
        }
        R::Heartbeat(r) => {
            let allowed = c.on_group(Read, &r.group_id);
            gate(allowed, R::Heartbeat(r), || A::Heartbeat(HeartbeatResponse::default().with_error_code(GROUP_DENIED)))
        }
        R::LeaveGroup(r) => {
            let allowed = c.on_group(Read, &r.group_id);
            gate(allowed, R::LeaveGroup(r), || {
                A::LeaveGroup(LeaveGroupResponse::default().with_error_code(GROUP_DENIED))
            })
        }
        R::OffsetCommit(r) => groups::offset_commit(c, r),
        R::TxnOffsetCommit(r) => {
            let allowed = c.may(Operation::Write, ResourceType::TransactionalId, &r.transactional_id)
                && c.on_group(Read, &r.group_id)
                && r.topics.iter().all(|t| c.on_topic(Read, &t.name));
            if allowed {
                return run(R::TxnOffsetCommit(r));
            }
            let topics = r.topics.iter().map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    txn_offset_commit_response::TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TRANSACTIONAL_ID_DENIED)
                });
                txn_offset_commit_response::TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions.collect())
            });
            A::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics.collect())).into_refusal()
        }
        R::OffsetFetch(r) => groups::offset_fetch(c, r, v),
        R::OffsetDelete(r) => groups::offset_delete(c, r),
        R::DescribeGroups(r) => groups::describe_groups(c, r),
        R::DeleteGroups(r) => groups::delete_groups(c, r),
        R::ListGroups(r) => groups::list_groups(c, r),
        R::DescribeLogDirs(r) => gate(c.on_cluster(Describe), R::DescribeLogDirs(r), || {
            // Before v3 there is no top-level error: Kafka answers with no directories.
            let code = if v >= 3 { CLUSTER_DENIED } else { 0 };
            A::DescribeLogDirs(DescribeLogDirsResponse::default().with_error_code(code))
        }),
        R::ListPartitionReassignments(r) => gate(c.on_cluster(Describe), R::ListPartitionReassignments(r), || {
            A::ListPartitionReassignments(
                ListPartitionReassignmentsResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(refuse_cluster("DESCRIBE")),
            )
        }),
        R::AlterPartitionReassignments(r) => gate(c.on_cluster(Alter), R::AlterPartitionReassignments(r), || {
            A::AlterPartitionReassignments(
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(refuse_cluster("ALTER")),
            )
        }),
        R::ElectLeaders(r) => {
            if c.on_cluster(Alter) {
                return run(R::ElectLeaders(r));
            }
            // Before v1 there is no top-level error: every named partition carries it.
            let results = if v >= 1 {
                Vec::new()
            } else {
                r.topic_partitions
                    .iter()
                    .flatten()
                    .map(|t| {
                        let partitions = t.partitions.iter().map(|&p| {
                            elect_leaders_response::PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(CLUSTER_DENIED)
                        });
                        elect_leaders_response::ReplicaElectionResult::default()
                            .with_topic(t.topic.clone())
                            .with_partition_result(partitions.collect())
                    })
                    .collect()
            };
            let code = if v >= 1 { CLUSTER_DENIED } else { 0 };
            A::ElectLeaders(
                ElectLeadersResponse::default().with_error_code(code).with_replica_election_results(results),
            )
            .into_refusal()
        }
        R::DescribeUserScramCredentials(r) => gate(c.on_cluster(Describe), R::DescribeUserScramCredentials(r), || {
            A::DescribeUserScramCredentials(
                DescribeUserScramCredentialsResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(refuse_cluster("DESCRIBE")),
            )
        }),
        R::AlterUserScramCredentials(r) => {
            if c.on_cluster(Alter) {
                return run(R::AlterUserScramCredentials(r));
            }
            let users: Vec<StrBytes> = r
                .deletions
                .iter()
                .map(|d| d.name.clone())
                .chain(r.upsertions.iter().map(|u| u.name.clone()))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let results = users.into_iter().map(|u| {
                alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                    .with_user(u)
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(refuse_cluster("ALTER"))
            });
            A::AlterUserScramCredentials(AlterUserScramCredentialsResponse::default().with_results(results.collect()))
                .into_refusal()
        }
        R::DescribeAcls(r) => gate(c.on_cluster(Describe), R::DescribeAcls(r), || {
            A::DescribeAcls(
                DescribeAclsResponse::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(refuse_cluster("DESCRIBE")),
            )
        }),
        R::CreateAcls(r) => {
            if c.on_cluster(Alter) {
                return run(R::CreateAcls(r));
            }
            let results = r.creations.iter().map(|_| {
                create_acls_response::AclCreationResult::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(refuse_cluster("ALTER"))
            });
            A::CreateAcls(CreateAclsResponse::default().with_results(results.collect())).into_refusal()
        }
        R::DeleteAcls(r) => {
            if c.on_cluster(Alter) {
                return run(R::DeleteAcls(r));
            }
            let results = r.filters.iter().map(|_| {
                delete_acls_response::DeleteAclsFilterResult::default()
                    .with_error_code(CLUSTER_DENIED)
                    .with_error_message(refuse_cluster("ALTER"))
            });
            A::DeleteAcls(DeleteAclsResponse::default().with_filter_results(results.collect())).into_refusal()
        }
        // Every other API is refused by the dispatcher as unsupported.
        other => run(other),
    }
}

/// Turns an answer into a refusal.
trait IntoRefusal {
    fn into_refusal(self) -> Screened;
}

impl IntoRefusal for ResponseKind {
    fn into_refusal(self) -> Screened {
        Screened::Refuse(self)
    }
}

/// Splits `items` into the allowed and the refused, in their order.
fn split<T>(items: Vec<T>, mut allowed: impl FnMut(&T) -> bool) -> (Vec<T>, Vec<T>) {
    items.into_iter().partition(|t| allowed(t))
}

fn refused_topics(c: &Check, op: Operation, names: impl Iterator<Item = String>) -> HashSet<String> {
    names.filter(|n| !c.on_topic(op, n)).collect()
}

/// Runs the request if `allowed`, else answers with the refusal.
fn gate(allowed: bool, request: RequestKind, refusal: impl FnOnce() -> ResponseKind) -> Screened {
    if allowed { run(request) } else { Screened::Refuse(refusal()) }
}
