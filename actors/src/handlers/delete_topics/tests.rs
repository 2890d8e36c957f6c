//! The row checks of DeleteTopics, against a metadata with topics `a` and `b`.

use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Topics `a` (id 1) and `b` (id 2).
fn topics() -> BTreeMap<String, TopicMeta> {
    ["a", "b"]
        .into_iter()
        .zip(1..)
        .map(|(name, n)| {
            let meta = TopicMeta {
                name: name.into(),
                id: id(n),
                replication_factor: 1,
                partitions: Vec::new(),
                configs: BTreeMap::new(),
            };
            (name.to_string(), meta)
        })
        .collect()
}

fn named(name: &str) -> (Option<String>, Uuid) {
    (Some(name.into()), Uuid::nil())
}

fn by_id(n: u128) -> (Option<String>, Uuid) {
    (None, id(n))
}

fn delete(name: &str, n: u128) -> Row {
    Row::Delete { name: name.into(), id: id(n) }
}

/// The (name, id, code, message) of a rejected row.
fn rejected(row: &Row) -> (Option<&str>, Uuid, i16, &str) {
    match row {
        Row::Reject { name, id, code, message } => (name.as_deref(), *id, *code, message.as_str()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn names_and_ids_both_delete_and_carry_the_topic_id() {
    let rows = plan(&[named("a"), by_id(2)], &topics());
    assert_eq!(rows, vec![delete("a", 1), delete("b", 2)]);
}

#[test]
fn an_unknown_name_is_left_to_the_delete_and_an_unknown_id_is_unknown_topic_id() {
    let rows = plan(&[named("zz"), by_id(9)], &topics());
    assert_eq!(rows[0], Row::Delete { name: "zz".into(), id: Uuid::nil() });
    let (name, got, code, _) = rejected(&rows[1]);
    assert_eq!((name, got, code), (None, id(9), 100));
}

#[test]
fn neither_or_both_is_an_invalid_request() {
    let rows = plan(&[(None, Uuid::nil()), (Some("a".into()), id(1))], &topics());
    assert_eq!(rejected(&rows[0]), (None, Uuid::nil(), 42, "Neither topic name nor id were specified."));
    assert_eq!(rejected(&rows[1]), (Some("a"), id(1), 42, "You may not specify both topic name and topic id."));
}

#[test]
fn a_name_or_id_given_twice_is_answered_once_and_deletes_nothing() {
    let rows = plan(&[named("a"), by_id(2), named("a"), by_id(2), named("a")], &topics());
    assert_eq!(rows.len(), 2);
    assert_eq!(rejected(&rows[0]), (Some("a"), Uuid::nil(), 42, "Duplicate topic name."));
    assert_eq!(rejected(&rows[1]), (None, id(2), 42, "Duplicate topic id."));
}

#[test]
fn a_name_whose_id_another_row_gives_is_rejected_and_the_id_row_dropped() {
    let rows = plan(&[by_id(1), named("a"), named("b")], &topics());
    let msg = "The provided topic name maps to an ID that was already supplied.";
    assert_eq!(rows.len(), 2);
    assert_eq!(rejected(&rows[0]), (Some("a"), id(1), 42, msg));
    assert_eq!(rows[1], delete("b", 2));
}

#[test]
fn the_offsets_topic_is_kept_by_name_and_by_id() {
    let mut topics = topics();
    let offsets = TopicMeta { name: OFFSETS_TOPIC.into(), id: id(7), ..topics["a"].clone() };
    topics.insert(OFFSETS_TOPIC.into(), offsets);
    let rows = plan(&[named(OFFSETS_TOPIC), named("b")], &topics);
    assert_eq!(rejected(&rows[0]).2, ResponseError::InvalidTopicException.code());
    assert_eq!(rows[1], delete("b", 2));
    let rows = plan(&[by_id(7)], &topics);
    assert_eq!(rejected(&rows[0]).0, Some(OFFSETS_TOPIC));
}

#[test]
fn results_carry_name_id_and_a_null_message_on_success() {
    let ok = result(delete("a", 1), Ok(()));
    assert_eq!((ok.name.as_deref().map(|n| n.as_str()), ok.topic_id, ok.error_code), (Some("a"), id(1), 0));
    assert_eq!(ok.error_message, None);
    let gone =
        result(Row::Delete { name: "zz".into(), id: Uuid::nil() }, Err(MetadataError::UnknownTopic("zz".into())));
    assert_eq!((gone.error_code, gone.topic_id), (3, Uuid::nil()));
    assert!(gone.error_message.is_some());
    let unknown = result(plan(&[by_id(9)], &topics()).remove(0), Ok(()));
    assert_eq!((unknown.name, unknown.error_code), (None, 100));
}
