//! KIP-951: a Produce (v10+) or Fetch (v16+) partition answered NOT_LEADER_OR_FOLLOWER or
//! FENCED_LEADER_EPOCH names the leader and epoch this node's metadata knows, and the response
//! lists those leaders' addresses, so the client goes straight there instead of first asking
//! for metadata.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::cluster::ClusterMetadata;
use kafka_protocol::ResponseError;

/// The leaders named so far in one response, with the Kafka address of each that has one.
pub(crate) struct LeaderHints {
    /// The listener the request came in on: its addresses are the ones the client can use.
    listener: Arc<str>,
    /// Node id to (host, port), for the response's `node_endpoints`.
    endpoints: BTreeMap<i32, (String, i32)>,
}

impl LeaderHints {
    /// No hint yet, for a request that came in on `listener`.
    pub(crate) fn new(listener: Arc<str>) -> Self {
        Self { listener, endpoints: BTreeMap::new() }
    }

    /// The (leader id, leader epoch) to put in a partition's answer carrying `error_code`
    /// from node `me`, or `None` when the error is not one KIP-951 hints or the metadata knows
    /// no leader (Kafka then leaves the field at its default -1/-1, which encodes as nothing).
    /// An answer without error is hinted when another node leads: `me` passed the produce on
    /// after a handover, and the client should go to the new leader next.
    pub(crate) fn hint(
        &mut self,
        metadata: &ClusterMetadata,
        topic: &str,
        partition: i32,
        error_code: i16,
        me: chronik::config::NodeId,
    ) -> Option<(i32, i32)> {
        let hinted = [ResponseError::NotLeaderOrFollower.code(), ResponseError::FencedLeaderEpoch.code()];
        let meta = metadata.partition(topic, partition)?;
        if !hinted.contains(&error_code) && (error_code != 0 || meta.leader == me) {
            return None;
        }
        let leader = i32::try_from(meta.leader).ok()?;
        if let Some((host, port)) =
            metadata.nodes.get(&meta.leader).and_then(|n| super::host_port(n.kafka_address(&self.listener)))
        {
            self.endpoints.insert(leader, (host.to_string(), port));
        }
        Some((leader, meta.leader_epoch))
    }

    /// Every hinted leader's id, host and port, in id order.
    pub(crate) fn endpoints(self) -> impl Iterator<Item = (i32, String, i32)> {
        self.endpoints.into_iter().map(|(id, (host, port))| (id, host, port))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chronik::cluster::{NodeInfo, PartitionMeta, TopicMeta};
    use uuid::Uuid;

    use super::*;

    /// Nodes 1 and 2, where node 2 has no Kafka address yet; topic `t` has partition 0 led by
    /// node 2 at epoch 7 and partition 1 led by node 1 at epoch 3.
    fn cluster() -> ClusterMetadata {
        let mut m = ClusterMetadata::default();
        let nodes = [
            NodeInfo {
                id: 1,
                kafka: "h1:9092".into(),
                listeners: [("SECURE".to_string(), "h1:9093".to_string())].into(),
                ..NodeInfo::default()
            },
            NodeInfo { id: 2, ..NodeInfo::default() },
        ];
        m.set_membership([1, 2].into_iter().collect(), nodes);
        let partition = |partition, leader, leader_epoch| PartitionMeta {
            partition,
            replicas: vec![leader],
            leader,
            leader_epoch,
            isr: vec![leader],
            handover: None,
            placement: None,
        };
        let topic = TopicMeta {
            name: "t".into(),
            id: Uuid::from_u128(1),
            replication_factor: 1,
            partitions: vec![partition(0, 2, 7), partition(1, 1, 3)],
            configs: BTreeMap::new(),
        };
        m.topics.insert("t".into(), topic);
        m
    }

    #[test]
    fn only_leader_errors_and_passed_on_produces_are_hinted_and_only_known_addresses_listed() {
        let m = cluster();
        let mut hints = LeaderHints::new("PLAINTEXT".into());
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        assert_eq!(hints.hint(&m, "t", 0, not_leader, 1), Some((2, 7)));
        assert_eq!(hints.hint(&m, "t", 1, ResponseError::FencedLeaderEpoch.code(), 1), Some((1, 3)));
        assert_eq!(hints.hint(&m, "t", 1, ResponseError::UnknownTopicOrPartition.code(), 1), None);
        assert_eq!(hints.hint(&m, "t", 0, ResponseError::UnknownTopicOrPartition.code(), 1), None);
        // Answered without error by the leader itself: nothing to learn.
        assert_eq!(hints.hint(&m, "t", 1, 0, 1), None);
        // Answered without error by node 1 for a partition node 2 leads: passed on.
        assert_eq!(hints.hint(&m, "t", 0, 0, 1), Some((2, 7)));
        assert_eq!(hints.hint(&m, "t", 9, not_leader, 1), None);
        assert_eq!(hints.hint(&m, "gone", 0, not_leader, 1), None);
        // Node 2 leads but has no Kafka address: named, not listed.
        assert_eq!(hints.endpoints().collect::<Vec<_>>(), vec![(1, "h1".to_string(), 9092)]);
    }

    #[test]
    fn a_client_of_another_listener_is_given_that_listeners_address() {
        let m = cluster();
        let mut hints = LeaderHints::new("SECURE".into());
        hints.hint(&m, "t", 1, ResponseError::NotLeaderOrFollower.code(), 2);
        assert_eq!(hints.endpoints().collect::<Vec<_>>(), vec![(1, "h1".to_string(), 9093)]);
    }
}
