//! Subscriptions read from members' metadata and OffsetDelete's rules on them.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::harness::*;
use crate::group::GroupPhase;
use crate::group::subscription::{consumer_subscription, offset_delete_codes};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

/// A consumer's subscription to `topics`, as its JoinGroup carries it.
fn subscription(version: i16, topics: &[&str]) -> Bytes {
    let topics = topics.iter().map(|t| StrBytes::from_string(t.to_string())).collect();
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    let message = ConsumerProtocolSubscription::default().with_topics(topics);
    message.encode(&mut buf, version.min(3)).expect("encode");
    buf.freeze()
}

fn topics(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// `client` joins offering protocol "range" with a subscription to `subscribed`.
fn join_subscribed(h: &mut Harness, client: &str, subscribed: &[&str]) {
    let mut req = h.join_request("", client);
    req.protocols = vec![("range".into(), subscription(1, subscribed))];
    h.send_join(req);
}

#[test]
fn reads_the_topics_of_every_version_and_refuses_junk() {
    for version in 0..=3 {
        let bytes = subscription(version, &["orders", "audit"]);
        assert_eq!(consumer_subscription(&bytes), Some(vec!["orders".into(), "audit".into()]), "v{version}");
    }
    let mut newer = subscription(3, &["t"]).to_vec();
    newer[..2].copy_from_slice(&7i16.to_be_bytes());
    assert_eq!(consumer_subscription(&Bytes::from(newer)), Some(vec!["t".into()]));
    assert_eq!(consumer_subscription(&Bytes::new()), None);
    assert_eq!(consumer_subscription(&Bytes::from_static(&[0, 0, 0, 0, 0, 9])), None);
}

#[test]
fn members_keep_the_offsets_of_what_they_subscribe_to_in_every_phase() {
    let mut h = Harness::new(3_000);
    assert_eq!(h.group.offsets_in_use(), Ok(BTreeSet::new()), "an empty group keeps nothing");
    join_subscribed(&mut h, "a", &["orders"]);
    join_subscribed(&mut h, "b", &["orders", "audit"]);
    assert_eq!(h.group.offsets_in_use(), Ok(topics(&["audit", "orders"])), "before the first generation");
    h.finish_join_phase();
    let ids: Vec<String> = h.group.describe().members.iter().map(|m| m.member_id.clone()).collect();
    h.sync_all(&ids);
    assert_eq!(h.group.offsets_in_use(), Ok(topics(&["audit", "orders"])), "stable");
    h.leave(&[(&ids[1], None)]);
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    assert_eq!(h.group.offsets_in_use(), Ok(topics(&["orders"])), "b's topics are free once it left");
    h.leave(&[(&ids[0], None)]);
    assert_eq!(h.group.offsets_in_use(), Ok(BTreeSet::new()));
    h.group.delete().expect("empty");
    assert_eq!(h.group.offsets_in_use(), Err(GROUP_ID_NOT_FOUND));
    h.assert_all_answered();
}

#[test]
fn members_of_another_protocol_type_keep_every_offset() {
    let mut h = Harness::new(3_000);
    let mut req = h.join_request("", "connect");
    req.protocol_type = "connect".into();
    h.send_join(req);
    assert_eq!(h.group.offsets_in_use(), Err(NON_EMPTY_GROUP));
    h.finish_join_phase();
}

#[test]
fn codes_per_partition_unknown_first_then_subscribed() {
    let partitions = vec![("orders".to_string(), 0), ("audit".to_string(), 1), ("gone".to_string(), 0)];
    let exists = |t: &str, _: i32| t != "gone";
    assert_eq!(
        offset_delete_codes(&partitions, &topics(&["orders"]), exists),
        vec![GROUP_SUBSCRIBED_TO_TOPIC, NONE, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(
        offset_delete_codes(&partitions, &BTreeSet::new(), exists),
        vec![NONE, NONE, UNKNOWN_TOPIC_OR_PARTITION]
    );
}
