//! Which broker clients are told is the controller (Metadata, DescribeCluster).

use crate::config::NodeId;

/// The controller id for clients: the Raft `leader` if it is among the `listed` brokers, else
/// this node (`me`) if listed, else the lowest listed id; -1 (Kafka's "no controller") only when
/// no broker is listed. Clients look the controller up among the listed brokers, and every node
/// forwards admin requests to the Raft leader, so any listed broker is a working answer.
pub fn controller_for_clients(leader: Option<NodeId>, me: NodeId, listed: &[NodeId]) -> i32 {
    let chosen = leader
        .filter(|l| listed.contains(l))
        .or_else(|| listed.contains(&me).then_some(me))
        .or_else(|| listed.iter().copied().min());
    chosen.and_then(|id| i32::try_from(id).ok()).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::controller_for_clients as pick;

    #[test]
    fn the_controller_is_always_a_listed_broker() {
        assert_eq!(pick(Some(2), 1, &[1, 2, 3]), 2, "the Raft leader when listed");
        assert_eq!(pick(Some(4), 1, &[1, 2, 3]), 1, "a leader not listed yet: this node");
        assert_eq!(pick(None, 3, &[1, 2, 3]), 3, "no leader known: this node");
        assert_eq!(pick(Some(4), 5, &[2, 3]), 2, "neither listed: the lowest listed");
        assert_eq!(pick(Some(0), 1, &[0, 1]), 0, "node id 0 is a broker like any other");
        assert_eq!(pick(Some(1), 1, &[]), -1, "nothing listed: Kafka's no-controller");
    }
}
