//! The checks of requests about topics, their records and configs, and producers.

use chronik::cluster::acl::{CLUSTER_RESOURCE, Operation as Op, ResourceType};
use kafka_protocol::messages::{RequestKind as R, ResponseKind as A, *};

use super::{
    CLUSTER_DENIED, Check, IntoRefusal, Screened, TOPIC_DENIED, TRANSACTIONAL_ID_DENIED, amended, refused_topics, run,
    split,
};
use crate::handlers::str_bytes;

/// DescribeConfigs, AlterConfigs: the resource type of a topic (the others are a broker's).
const CONFIG_TOPIC: i8 = 2;

/// Produce: WRITE on each topic (and on the transactional id, if any).
pub(super) fn produce(c: Check, mut r: ProduceRequest) -> Screened {
    if let Some(id) = &r.transactional_id
        && !c.may(Op::Write, ResourceType::TransactionalId, id)
    {
        return refuse_produce(r, TRANSACTIONAL_ID_DENIED);
    }
    let (ok, denied) =
        split(std::mem::take(&mut r.topic_data), |t| c.on_topic(Op::Write, &c.topic_of(&t.name, &t.topic_id)));
    r.topic_data = ok;
    amended(R::Produce(r), move |a| {
        if let A::Produce(a) = a {
            a.responses.extend(denied.into_iter().map(produce_denied));
        }
    })
}

/// Fetch: a follower's needs CLUSTER_ACTION; a consumer's READ on each topic. Refused topics
/// leave the request, so the handler neither reads them nor waits for them.
pub(super) fn fetch(c: Check, mut r: FetchRequest, v: i16) -> Screened {
    if r.replica_id.0 >= 0 || r.replica_state.replica_id.0 >= 0 {
        if c.on_cluster(Op::ClusterAction) {
            return run(R::Fetch(r));
        }
        // Before v7 there is no top-level error: every partition asked for carries it.
        let (code, topics) =
            if v >= 7 { (CLUSTER_DENIED, Vec::new()) } else { (0, fetch_refused(r.topics, CLUSTER_DENIED)) };
        return A::Fetch(FetchResponse::default().with_error_code(code).with_responses(topics)).into_refusal();
    }
    let (ok, denied) =
        split(std::mem::take(&mut r.topics), |t| c.on_topic(Op::Read, &c.topic_of(&t.topic, &t.topic_id)));
    r.topics = ok;
    amended(R::Fetch(r), move |a| {
        if let A::Fetch(a) = a {
            a.responses.extend(fetch_refused(denied, TOPIC_DENIED));
        }
    })
}

/// The answers to fetches of `topics` refused with `code`.
fn fetch_refused(topics: Vec<fetch_request::FetchTopic>, code: i16) -> Vec<fetch_response::FetchableTopicResponse> {
    let topic = |t: fetch_request::FetchTopic| {
        let partitions = t.partitions.iter().map(|p| {
            fetch_response::PartitionData::default()
                .with_partition_index(p.partition)
                .with_error_code(code)
                .with_high_watermark(-1)
        });
        fetch_response::FetchableTopicResponse::default()
            .with_topic(t.topic)
            .with_topic_id(t.topic_id)
            .with_partitions(partitions.collect())
    };
    topics.into_iter().map(topic).collect()
}

/// ListOffsets: DESCRIBE on each topic.
pub(super) fn list_offsets(c: Check, r: ListOffsetsRequest) -> Screened {
    let refused = refused_topics(&c, Op::Describe, r.topics.iter().map(|t| t.name.to_string()));
    amended(R::ListOffsets(r), move |a| {
        if let A::ListOffsets(a) = a {
            for t in a.topics.iter_mut().filter(|t| refused.contains(t.name.as_str())) {
                for p in &mut t.partitions {
                    *p = list_offsets_response::ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_DENIED);
                }
            }
        }
    })
}

/// OffsetForLeaderEpoch (a consumer checking for truncation): DESCRIBE on each topic.
pub(super) fn offset_for_leader_epoch(c: Check, r: OffsetForLeaderEpochRequest) -> Screened {
    let refused = refused_topics(&c, Op::Describe, r.topics.iter().map(|t| t.topic.to_string()));
    amended(R::OffsetForLeaderEpoch(r), move |a| {
        if let A::OffsetForLeaderEpoch(a) = a {
            for t in a.topics.iter_mut().filter(|t| refused.contains(t.topic.as_str())) {
                for p in &mut t.partitions {
                    *p = offset_for_leader_epoch_response::EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_error_code(TOPIC_DENIED)
                        .with_end_offset(-1);
                }
            }
        }
    })
}

/// CreateTopics: CREATE on the cluster, or on the topic.
pub(super) fn create_topics(c: Check, mut r: CreateTopicsRequest) -> Screened {
    let may_create_any = c.may_quietly(Op::Create, ResourceType::Cluster, CLUSTER_RESOURCE);
    let (ok, denied) = split(std::mem::take(&mut r.topics), |t| may_create_any || c.on_topic(Op::Create, &t.name));
    r.topics = ok;
    amended(R::CreateTopics(r), move |a| {
        if let A::CreateTopics(a) = a {
            a.topics.extend(denied.into_iter().map(|t| {
                create_topics_response::CreatableTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(TOPIC_DENIED)
                    .with_error_message(Some(str_bytes("topic authorization failed")))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            }));
        }
    })
}

/// DeleteTopics: DELETE on each topic, named or (v6) given by id.
pub(super) fn delete_topics(c: Check, mut r: DeleteTopicsRequest) -> Screened {
    let (ok, denied_names) = split(std::mem::take(&mut r.topic_names), |t| c.on_topic(Op::Delete, t));
    let (ok_states, denied_states) = split(std::mem::take(&mut r.topics), |t| {
        c.on_topic(Op::Delete, &c.topic_of(t.name.as_deref().map(|n| n.as_str()).unwrap_or(""), &t.topic_id))
    });
    r.topic_names = ok;
    r.topics = ok_states;
    amended(R::DeleteTopics(r), move |a| {
        if let A::DeleteTopics(a) = a {
            let result = |name: Option<TopicName>, id| {
                delete_topics_response::DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(id)
                    .with_error_code(TOPIC_DENIED)
            };
            a.responses.extend(denied_names.into_iter().map(|n| result(Some(n), uuid::Uuid::nil())));
            a.responses.extend(denied_states.into_iter().map(|t| result(t.name, t.topic_id)));
        }
    })
}

/// CreatePartitions: ALTER on each topic.
pub(super) fn create_partitions(c: Check, mut r: CreatePartitionsRequest) -> Screened {
    let (ok, denied) = split(std::mem::take(&mut r.topics), |t| c.on_topic(Op::Alter, &t.name));
    r.topics = ok;
    amended(R::CreatePartitions(r), move |a| {
        if let A::CreatePartitions(a) = a {
            a.results.extend(denied.into_iter().map(|t| {
                create_partitions_response::CreatePartitionsTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(TOPIC_DENIED)
                    .with_error_message(Some(str_bytes("topic authorization failed")))
            }));
        }
    })
}

/// DeleteRecords: DELETE on each topic.
pub(super) fn delete_records(c: Check, mut r: DeleteRecordsRequest) -> Screened {
    let (ok, denied) = split(std::mem::take(&mut r.topics), |t| c.on_topic(Op::Delete, &t.name));
    r.topics = ok;
    amended(R::DeleteRecords(r), move |a| {
        if let A::DeleteRecords(a) = a {
            a.topics.extend(denied.into_iter().map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    delete_records_response::DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1)
                        .with_error_code(TOPIC_DENIED)
                });
                delete_records_response::DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions.collect())
            }));
        }
    })
}

/// DescribeConfigs: DESCRIBE_CONFIGS on the topic, or on the cluster for a broker.
pub(super) fn describe_configs(c: Check, r: DescribeConfigsRequest) -> Screened {
    let refused: Vec<(i8, String)> = r
        .resources
        .iter()
        .filter(|res| !config_allowed(&c, Op::DescribeConfigs, res.resource_type, &res.resource_name))
        .map(|res| (res.resource_type, res.resource_name.to_string()))
        .collect();
    amended(R::DescribeConfigs(r), move |a| {
        if let A::DescribeConfigs(a) = a {
            for res in &mut a.results {
                if refused.iter().any(|(t, n)| *t == res.resource_type && *n == res.resource_name.as_str()) {
                    res.error_code = config_denied(res.resource_type);
                    res.error_message = Some(str_bytes("authorization failed"));
                    res.configs.clear();
                }
            }
        }
    })
}

/// AlterConfigs and IncrementalAlterConfigs: ALTER_CONFIGS on the topic, or on the cluster for
/// a broker. The two APIs differ only in their types.
macro_rules! alter_configs {
    ($name:ident, $kind:ident, $request:ty, $response:ident) => {
        pub(super) fn $name(c: Check, mut r: $request) -> Screened {
            let (ok, denied) = split(std::mem::take(&mut r.resources), |res| {
                config_allowed(&c, Op::AlterConfigs, res.resource_type, &res.resource_name)
            });
            r.resources = ok;
            amended(R::$kind(r), move |a| {
                if let A::$kind(a) = a {
                    a.responses.extend(denied.into_iter().map(|res| {
                        $response::AlterConfigsResourceResponse::default()
                            .with_error_code(config_denied(res.resource_type))
                            .with_error_message(Some(str_bytes("authorization failed")))
                            .with_resource_type(res.resource_type)
                            .with_resource_name(res.resource_name)
                    }));
                }
            })
        }
    };
}

alter_configs!(alter_configs, AlterConfigs, AlterConfigsRequest, alter_configs_response);
alter_configs!(
    incremental_alter_configs,
    IncrementalAlterConfigs,
    IncrementalAlterConfigsRequest,
    incremental_alter_configs_response
);

/// DescribeProducers: READ on each topic.
pub(super) fn describe_producers(c: Check, r: DescribeProducersRequest) -> Screened {
    let refused = refused_topics(&c, Op::Read, r.topics.iter().map(|t| t.name.to_string()));
    amended(R::DescribeProducers(r), move |a| {
        if let A::DescribeProducers(a) = a {
            for t in a.topics.iter_mut().filter(|t| refused.contains(t.name.as_str())) {
                for p in &mut t.partitions {
                    p.error_code = TOPIC_DENIED;
                    p.active_producers.clear();
                }
            }
        }
    })
}

/// InitProducerId: WRITE on the transactional id; without one, IDEMPOTENT_WRITE on the cluster
/// or WRITE on some topic.
pub(super) fn init_producer_id(c: Check, r: InitProducerIdRequest) -> Screened {
    let allowed = match &r.transactional_id {
        Some(id) => c.may(Op::Write, ResourceType::TransactionalId, id),
        // Kafka lets WRITE on any topic stand in for IDEMPOTENT_WRITE on the cluster.
        None => {
            c.authorizer().allows_some(&c.principal, &c.host, Op::Write, ResourceType::Topic)
                || c.on_cluster(Op::IdempotentWrite)
        }
    };
    if allowed {
        return run(R::InitProducerId(r));
    }
    let code = if r.transactional_id.is_some() { TRANSACTIONAL_ID_DENIED } else { CLUSTER_DENIED };
    A::InitProducerId(InitProducerIdResponse::default().with_error_code(code).with_producer_id((-1).into()))
        .into_refusal()
}

/// Configs of a topic need the operation on the topic; a broker's (or its loggers') on the cluster.
fn config_allowed(c: &Check, op: Op, resource_type: i8, name: &str) -> bool {
    if resource_type == CONFIG_TOPIC { c.on_topic(op, name) } else { c.on_cluster(op) }
}

fn config_denied(resource_type: i8) -> i16 {
    if resource_type == CONFIG_TOPIC { TOPIC_DENIED } else { CLUSTER_DENIED }
}

fn produce_denied(t: produce_request::TopicProduceData) -> produce_response::TopicProduceResponse {
    let partitions = t.partition_data.iter().map(|p| {
        produce_response::PartitionProduceResponse::default()
            .with_index(p.index)
            .with_error_code(TOPIC_DENIED)
            .with_base_offset(-1)
            .with_error_message(Some(str_bytes("topic authorization failed")))
    });
    produce_response::TopicProduceResponse::default()
        .with_name(t.name)
        .with_topic_id(t.topic_id)
        .with_partition_responses(partitions.collect())
}

/// A transactional produce whose id the principal may not write: every partition refused.
fn refuse_produce(r: ProduceRequest, code: i16) -> Screened {
    let responses = r.topic_data.into_iter().map(|t| {
        let mut response = produce_denied(t);
        for p in &mut response.partition_responses {
            p.error_code = code;
        }
        response
    });
    ResponseKind::Produce(ProduceResponse::default().with_responses(responses.collect())).into_refusal()
}

/// Metadata: a named topic the principal may not describe, or a missing one it may not create,
/// is answered with the error and never created; a listing of every topic leaves out those it
/// may not describe.
pub(super) fn metadata(c: Check, mut r: MetadataRequest, v: i16) -> Screened {
    use Op::{Create, Describe};
    let Some(topics) = r.topics.take() else {
        return amended(RequestKind::Metadata(r), move |a| {
            if let ResponseKind::Metadata(a) = a {
                a.topics.retain(|t| {
                    let name = t.name.as_deref().map(|n| n.as_str()).unwrap_or("");
                    c.may_quietly(Describe, ResourceType::Topic, name)
                });
            }
        });
    };
    let may_create_any = c.may_quietly(Create, ResourceType::Cluster, CLUSTER_RESOURCE);
    let (ok, denied) = split(topics, |t| {
        let name = c.topic_of(t.name.as_deref().map(|n| n.as_str()).unwrap_or(""), &t.topic_id);
        c.on_topic(Describe, &name)
            && (c.metadata.topics.contains_key(&name) || may_create_any || c.on_topic(Create, &name))
    });
    // Version 0 reads an empty list as "every topic": with all refused, nothing may be listed.
    let nothing_left = ok.is_empty() && v == 0;
    r.topics = Some(ok);
    amended(RequestKind::Metadata(r), move |a| {
        if let ResponseKind::Metadata(a) = a {
            if nothing_left {
                a.topics.clear();
            }
            a.topics.extend(denied.into_iter().map(|t| {
                metadata_response::MetadataResponseTopic::default()
                    .with_name(t.name)
                    .with_topic_id(t.topic_id)
                    .with_error_code(TOPIC_DENIED)
            }));
        }
    })
}
