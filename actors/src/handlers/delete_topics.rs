//! DeleteTopics: remove topics; their replicas stop and their data is deleted.
//!
//! Up to v5 topics are named; from v6 each row names a topic or gives its id (Metadata v10's).
//! Rows are checked as Kafka's `ControllerApis.deleteTopics` checks them before deleting
//! anything: a row with neither or both, a name or id given twice, a name whose id another
//! row gives, and an id no topic has are answered with an error and delete nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chronik::cluster::{MetadataCommand, MetadataError, TopicMeta};
use chronik::offsets::OFFSETS_TOPIC;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind};
use uuid::Uuid;

use super::{apply_metadata, metadata_error_code, str_bytes, topic_name};
use crate::context::NodeContext;
use crate::group_coordinator::CoordinatorMsg;

/// What to do with one requested row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Row {
    /// Delete the topic `name`; `id` is its id, or zero when the metadata does not know the
    /// name (the delete then answers UNKNOWN_TOPIC_OR_PARTITION).
    Delete { name: String, id: Uuid },
    /// Answer with this error and delete nothing.
    Reject { name: Option<String>, id: Uuid, code: i16, message: String },
}

/// Handles one DeleteTopics request.
pub async fn handle(ctx: &Arc<NodeContext>, req: DeleteTopicsRequest, version: i16) -> ResponseKind {
    let requested: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.0.to_string()), Uuid::nil())).collect()
    };
    // The delete itself goes by name (the metadata command has no id): a topic deleted and
    // re-created under the same name between this look-up and the delete would go instead.
    let rows = plan(&requested, &ctx.metadata().topics);
    let commands = rows
        .iter()
        .filter_map(|row| match row {
            Row::Delete { name, .. } => Some(MetadataCommand::DeleteTopic { name: name.clone() }),
            Row::Reject { .. } => None,
        })
        .collect();
    let mut applied = apply_metadata(ctx, commands).await.into_iter();
    let unavailable = || Err(MetadataError::Unavailable("the metadata actor gave no answer".into()));
    let outcomes: Vec<Result<(), MetadataError>> = rows
        .iter()
        .map(|row| match row {
            Row::Delete { .. } => applied.next().unwrap_or_else(unavailable),
            Row::Reject { .. } => Ok(()),
        })
        .collect();
    let deleted: Vec<String> = rows
        .iter()
        .zip(&outcomes)
        .filter_map(|(row, outcome)| match (row, outcome) {
            (Row::Delete { name, .. }, Ok(())) => Some(name.clone()),
            _ => None,
        })
        .collect();
    if !deleted.is_empty()
        && let Some(coordinator) = ctx.coordinator.get()
    {
        // Before answering, so a client that re-creates the topic never sees the old offsets.
        let _ = coordinator.cast(CoordinatorMsg::TopicsDeleted(deleted));
    }
    let responses = rows.into_iter().zip(outcomes).map(|(row, outcome)| result(row, outcome)).collect();
    ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(responses))
}

/// One row's answer. The message is null on success (the codec's default is ""); versions
/// before 5 do not carry it, nor the id before 6.
fn result(row: Row, outcome: Result<(), MetadataError>) -> DeletableTopicResult {
    let (name, id, error) = match (row, outcome) {
        (Row::Delete { name, id }, Ok(())) => (Some(name), id, None),
        (Row::Delete { name, id }, Err(e)) => (Some(name), id, Some((metadata_error_code(&e), e.to_string()))),
        (Row::Reject { name, id, code, message }, _) => (name, id, Some((code, message))),
    };
    let r = DeletableTopicResult::default().with_name(name.as_deref().map(topic_name)).with_topic_id(id);
    match error {
        None => r.with_error_message(None),
        Some((code, message)) => r.with_error_code(code).with_error_message(Some(str_bytes(message))),
    }
}

/// Resolves the requested `(name, id)` rows against `topics`, in request order; a name or id
/// given more than once is answered once, where it first appears. Kafka answers a row whose id
/// a named row also reaches with nothing, and the named row with INVALID_REQUEST: so here.
fn plan(requested: &[(Option<String>, Uuid)], topics: &BTreeMap<String, TopicMeta>) -> Vec<Row> {
    let invalid = |name: Option<&String>, id: Uuid, message: &str| Row::Reject {
        name: name.cloned(),
        id,
        code: ResponseError::InvalidRequest.code(),
        message: message.into(),
    };
    let mut names: HashMap<&String, usize> = HashMap::new();
    let mut ids: HashMap<Uuid, usize> = HashMap::new();
    for (name, id) in requested {
        match (name, id.is_nil()) {
            (Some(name), true) => *names.entry(name).or_default() += 1,
            (None, false) => *ids.entry(*id).or_default() += 1,
            _ => {}
        }
    }
    let by_id: HashMap<Uuid, &TopicMeta> = topics.values().map(|t| (t.id, t)).collect();
    // Ids both given by a row and reached by a (single) name.
    let reached: HashSet<Uuid> =
        names.iter().filter(|(_, n)| **n == 1).filter_map(|(name, _)| topics.get(*name).map(|t| t.id)).collect();
    let mut answered: HashSet<(Option<&String>, Uuid)> = HashSet::new();
    let mut rows = Vec::with_capacity(requested.len());
    for (name, id) in requested {
        let row = match (name, id.is_nil()) {
            (None, true) => invalid(None, *id, "Neither topic name nor id were specified."),
            (Some(name), false) => invalid(Some(name), *id, "You may not specify both topic name and topic id."),
            (Some(name), true) if names[name] > 1 => {
                if !answered.insert((Some(name), *id)) {
                    continue;
                }
                invalid(Some(name), *id, "Duplicate topic name.")
            }
            (None, false) if ids[id] > 1 => {
                if !answered.insert((None, *id)) {
                    continue;
                }
                invalid(None, *id, "Duplicate topic id.")
            }
            (Some(name), true) => match topics.get(name) {
                Some(t) if ids.contains_key(&t.id) => {
                    invalid(Some(name), t.id, "The provided topic name maps to an ID that was already supplied.")
                }
                Some(t) => Row::Delete { name: name.clone(), id: t.id },
                None => Row::Delete { name: name.clone(), id: Uuid::nil() },
            },
            (None, false) => match by_id.get(id) {
                _ if reached.contains(id) => continue,
                Some(t) => Row::Delete { name: t.name.clone(), id: *id },
                None => Row::Reject {
                    name: None,
                    id: *id,
                    code: ResponseError::UnknownTopicId.code(),
                    message: "This server does not host this topic ID.".into(),
                },
            },
        };
        rows.push(internal_kept(row));
    }
    rows
}

/// The offsets topic holds every group's committed offsets; it cannot be deleted.
fn internal_kept(row: Row) -> Row {
    match row {
        Row::Delete { name, id } if name == OFFSETS_TOPIC => {
            let e = MetadataError::InvalidTopicName { name: name.clone(), reason: "it is internal".into() };
            Row::Reject { name: Some(name), id, code: metadata_error_code(&e), message: e.to_string() }
        }
        row => row,
    }
}

#[cfg(test)]
mod tests;
