//! Which topics a consumer group's members subscribe to (Kafka's `ConsumerProtocolSubscription`
//! in their JoinGroup metadata), and the OffsetDelete rules built on it: a group may not lose
//! the committed offsets of a topic its members consume.

use std::collections::BTreeSet;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Message};

use super::{Group, GroupPhase, code};

/// The topics a consumer-protocol subscription names; `None` if the bytes are not one.
pub fn consumer_subscription(bytes: &Bytes) -> Option<Vec<String>> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return None;
    }
    // Later versions only add fields at the end, so a newer client's is read as the newest known.
    let version = buf.get_i16().clamp(0, ConsumerProtocolSubscription::VERSIONS.max);
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    Some(subscription.topics.into_iter().map(|t| t.to_string()).collect())
}

impl Group {
    /// Kafka's OffsetDelete rule for the group as a whole: the topics whose offsets must stay
    /// (those its members subscribe to; none for an empty group), or the group's error code:
    /// GROUP_ID_NOT_FOUND once deleted, NON_EMPTY_GROUP for members of another protocol type,
    /// whose subscriptions cannot be read.
    pub fn offsets_in_use(&self) -> Result<BTreeSet<String>, i16> {
        if self.phase == GroupPhase::Dead {
            return Err(code::GROUP_ID_NOT_FOUND);
        }
        if self.members.is_empty() {
            return Ok(BTreeSet::new());
        }
        if self.protocol_type.as_deref() != Some("consumer") {
            return Err(code::NON_EMPTY_GROUP);
        }
        Ok(self.subscribed_topics())
    }

    /// Every topic a member subscribes to: in the generation's protocol once one is chosen,
    /// else (before the first generation) in any protocol the member offers, so a group that is
    /// still forming keeps its offsets too.
    fn subscribed_topics(&self) -> BTreeSet<String> {
        let chosen = self.protocol_name.as_deref();
        self.members
            .iter()
            .flat_map(|m| {
                let in_chosen = chosen.filter(|p| m.supports(p));
                m.protocols.iter().filter(move |(name, _)| in_chosen.is_none_or(|p| p == name))
            })
            .filter_map(|(_, metadata)| consumer_subscription(metadata))
            .flatten()
            .collect()
    }
}

/// The OffsetDelete code of each partition, in order: UNKNOWN_TOPIC_OR_PARTITION where
/// `exists` says no, GROUP_SUBSCRIBED_TO_TOPIC where the group consumes the topic, else 0
/// (its offset, if any, is deleted).
pub fn offset_delete_codes(
    partitions: &[(String, i32)],
    in_use: &BTreeSet<String>,
    exists: impl Fn(&str, i32) -> bool,
) -> Vec<i16> {
    use kafka_protocol::ResponseError as E;
    partitions
        .iter()
        .map(|(topic, partition)| {
            if !exists(topic, *partition) {
                E::UnknownTopicOrPartition.code()
            } else if in_use.contains(topic) {
                E::GroupSubscribedToTopic.code()
            } else {
                code::NONE
            }
        })
        .collect()
}
