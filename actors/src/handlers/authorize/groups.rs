//! The checks of requests about consumer groups and their offsets.

use std::collections::HashSet;

use chronik::cluster::acl::{CLUSTER_RESOURCE, Operation as Op, ResourceType};
use kafka_protocol::messages::{RequestKind as R, ResponseKind as A, *};

use super::{Check, GROUP_DENIED, IntoRefusal, Screened, TOPIC_DENIED, TRANSACTIONAL_ID_DENIED, amended, run, split};
use crate::handlers::str_bytes;

/// FindCoordinator: DESCRIBE on the group (or transactional id); v4+ asks for several keys.
pub(super) fn find_coordinator(c: Check, mut r: FindCoordinatorRequest, v: i16) -> Screened {
    let (op, rt, code) = match r.key_type {
        1 => (Op::Describe, ResourceType::TransactionalId, TRANSACTIONAL_ID_DENIED),
        _ => (Op::Describe, ResourceType::Group, GROUP_DENIED),
    };
    if v < 4 {
        if c.may(op, rt, &r.key) {
            return run(R::FindCoordinator(r));
        }
        let message = Some(str_bytes("authorization failed"));
        return A::FindCoordinator(
            FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_error_message(if v >= 1 { message } else { None })
                .with_node_id((-1).into())
                .with_port(-1),
        )
        .into_refusal();
    }
    let (ok, denied) = split(std::mem::take(&mut r.coordinator_keys), |k| c.may(op, rt, k));
    r.coordinator_keys = ok;
    amended(R::FindCoordinator(r), move |a| {
        if let A::FindCoordinator(a) = a {
            a.coordinators.extend(denied.into_iter().map(|key| {
                find_coordinator_response::Coordinator::default()
                    .with_key(key)
                    .with_node_id((-1).into())
                    .with_port(-1)
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes("authorization failed")))
            }));
        }
    })
}

/// OffsetCommit: READ on the group, and READ on each topic.
pub(super) fn offset_commit(c: Check, mut r: OffsetCommitRequest) -> Screened {
    let group_ok = c.on_group(Op::Read, &r.group_id);
    let (ok, denied) =
        split(std::mem::take(&mut r.topics), |t| group_ok && c.on_topic(Op::Read, &c.topic_of(&t.name, &t.topic_id)));
    r.topics = ok;
    let code = if group_ok { TOPIC_DENIED } else { GROUP_DENIED };
    amended(R::OffsetCommit(r), move |a| {
        if let A::OffsetCommit(a) = a {
            a.topics.extend(denied.into_iter().map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    offset_commit_response::OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                });
                offset_commit_response::OffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_topic_id(t.topic_id)
                    .with_partitions(partitions.collect())
            }));
        }
    })
}

/// OffsetDelete: DELETE on the group, and READ on each topic.
pub(super) fn offset_delete(c: Check, mut r: OffsetDeleteRequest) -> Screened {
    if !c.on_group(Op::Delete, &r.group_id) {
        return A::OffsetDelete(OffsetDeleteResponse::default().with_error_code(GROUP_DENIED)).into_refusal();
    }
    let (ok, denied) = split(std::mem::take(&mut r.topics), |t| c.on_topic(Op::Read, &t.name));
    r.topics = ok;
    amended(R::OffsetDelete(r), move |a| {
        if let A::OffsetDelete(a) = a {
            a.topics.extend(denied.into_iter().map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    offset_delete_response::OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_DENIED)
                });
                offset_delete_response::OffsetDeleteResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions.collect())
            }));
        }
    })
}

/// DescribeGroups: DESCRIBE on each group.
pub(super) fn describe_groups(c: Check, r: DescribeGroupsRequest) -> Screened {
    let refused: HashSet<String> =
        r.groups.iter().filter(|g| !c.on_group(Op::Describe, g)).map(|g| g.to_string()).collect();
    amended(R::DescribeGroups(r), move |a| {
        if let A::DescribeGroups(a) = a {
            for g in a.groups.iter_mut().filter(|g| refused.contains(g.group_id.as_str())) {
                *g = describe_groups_response::DescribedGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(GROUP_DENIED);
            }
        }
    })
}

/// DeleteGroups: DELETE on each group.
pub(super) fn delete_groups(c: Check, mut r: DeleteGroupsRequest) -> Screened {
    let (ok, denied) = split(std::mem::take(&mut r.groups_names), |g| c.on_group(Op::Delete, g));
    r.groups_names = ok;
    amended(R::DeleteGroups(r), move |a| {
        if let A::DeleteGroups(a) = a {
            a.results.extend(denied.into_iter().map(|g| {
                delete_groups_response::DeletableGroupResult::default().with_group_id(g).with_error_code(GROUP_DENIED)
            }));
        }
    })
}

/// ListGroups: every group with DESCRIBE on the cluster, else those with DESCRIBE on them.
pub(super) fn list_groups(c: Check, r: ListGroupsRequest) -> Screened {
    if c.may_quietly(Op::Describe, ResourceType::Cluster, CLUSTER_RESOURCE) {
        return run(R::ListGroups(r));
    }
    amended(R::ListGroups(r), move |a| {
        if let A::ListGroups(a) = a {
            a.groups.retain(|g| c.may_quietly(Op::Describe, ResourceType::Group, &g.group_id));
        }
    })
}

/// OffsetFetch: a group needs DESCRIBE; a topic named needs DESCRIBE (its partitions get the
/// error); asked for every topic, those it may not describe are left out.
pub(super) fn offset_fetch(c: Check, r: OffsetFetchRequest, v: i16) -> Screened {
    use Op::Describe;
    if r.groups.is_empty() && !c.on_group(Describe, &r.group_id) {
        if v >= 2 {
            return A::OffsetFetch(OffsetFetchResponse::default().with_error_code(GROUP_DENIED)).into_refusal();
        }
        // Version 1 has no group-level error: each partition asked for carries it.
        let topics = r.topics.iter().flatten().map(|t| {
            let partitions = t.partition_indexes.iter().map(|&p| {
                offset_fetch_response::OffsetFetchResponsePartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(-1)
                    .with_error_code(GROUP_DENIED)
            });
            offset_fetch_response::OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions.collect())
        });
        return A::OffsetFetch(OffsetFetchResponse::default().with_topics(topics.collect())).into_refusal();
    }
    let every_topic = r.topics.is_none();
    let refused_groups: HashSet<String> =
        r.groups.iter().filter(|g| !c.on_group(Describe, &g.group_id)).map(|g| g.group_id.to_string()).collect();
    let every_topic_of: HashSet<String> =
        r.groups.iter().filter(|g| g.topics.is_none()).map(|g| g.group_id.to_string()).collect();
    amended(R::OffsetFetch(r), move |a| {
        let A::OffsetFetch(a) = a else { return };
        let visible = |name: &str| c.may_quietly(Describe, ResourceType::Topic, name);
        if every_topic {
            a.topics.retain(|t| visible(&t.name));
        }
        for t in a.topics.iter_mut().filter(|t| !visible(&t.name)) {
            for p in &mut t.partitions {
                *p = offset_fetch_response::OffsetFetchResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_committed_offset(-1)
                    .with_error_code(TOPIC_DENIED);
            }
        }
        for g in &mut a.groups {
            if refused_groups.contains(g.group_id.as_str()) {
                g.error_code = GROUP_DENIED;
                g.topics.clear();
                continue;
            }
            if every_topic_of.contains(g.group_id.as_str()) {
                g.topics.retain(|t| visible(&c.topic_of(&t.name, &t.topic_id)));
            }
            for t in g.topics.iter_mut().filter(|t| !visible(&c.topic_of(&t.name, &t.topic_id))) {
                for p in &mut t.partitions {
                    *p = offset_fetch_response::OffsetFetchResponsePartitions::default()
                        .with_partition_index(p.partition_index)
                        .with_committed_offset(-1)
                        .with_error_code(TOPIC_DENIED);
                }
            }
        }
    })
}
