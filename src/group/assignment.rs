//! Reading a consumer's assignment out of the bytes its group leader sent in SyncGroup (Kafka's
//! `ConsumerProtocolAssignment`, prefixed by its version), for operators: the coordinator itself
//! never looks inside, it only hands the bytes on.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::{Decodable, Message};

/// The topics and partitions an assignment gives its member, in the order the leader wrote them;
/// `None` if the bytes are not a consumer-protocol assignment (another protocol type, or junk).
pub fn consumer_assignment(bytes: &Bytes) -> Option<Vec<(String, Vec<i32>)>> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return None;
    }
    // A newer client's version is read as the newest one known, as Kafka's consumer does: later
    // versions only add fields at the end.
    let version = buf.get_i16().clamp(0, ConsumerProtocolAssignment::VERSIONS.max);
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version).ok()?;
    Some(assignment.assigned_partitions.into_iter().map(|tp| (tp.topic.0.to_string(), tp.partitions)).collect())
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn encoded(version: i16, topics: &[(&str, Vec<i32>)]) -> Bytes {
        let assigned = topics
            .iter()
            .map(|(t, p)| {
                TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partitions(p.clone())
            })
            .collect();
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        let message = ConsumerProtocolAssignment::default().with_assigned_partitions(assigned);
        message.encode(&mut buf, version.min(3)).expect("encode");
        buf.freeze()
    }

    #[test]
    fn reads_the_topics_and_partitions_of_every_version() {
        for version in 0..=3 {
            let bytes = encoded(version, &[("orders", vec![0, 3]), ("audit", vec![1])]);
            let want = vec![("orders".to_string(), vec![0, 3]), ("audit".to_string(), vec![1])];
            assert_eq!(consumer_assignment(&bytes), Some(want), "version {version}");
        }
    }

    #[test]
    fn a_newer_version_is_read_as_the_newest_known() {
        let mut bytes = encoded(3, &[("t", vec![2])]).to_vec();
        bytes[..2].copy_from_slice(&9i16.to_be_bytes());
        assert_eq!(consumer_assignment(&Bytes::from(bytes)), Some(vec![("t".to_string(), vec![2])]));
    }

    // (A huge claimed count is not tried here: kafka-protocol pre-sizes by it, which the broker's
    // guarded allocator absorbs — see `actors/src/alloc.rs` — but a unit test has no such guard.)
    #[test]
    fn junk_is_not_an_assignment() {
        assert_eq!(consumer_assignment(&Bytes::new()), None);
        assert_eq!(consumer_assignment(&Bytes::from_static(&[0, 1, 0, 0, 0, 1, 0])), None);
    }
}
