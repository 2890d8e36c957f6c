use super::*;

fn peer(id: NodeId) -> PeerConfig {
    let port = |base: u64| format!("localhost:{}", base + id);
    PeerConfig { id, kafka: port(9091), wal: port(9290), raft: port(5000), admin: None }
}

fn health(id: NodeId, is_leader: bool, learners: Vec<NodeId>) -> Result<Health, String> {
    let status = "healthy".to_string();
    Ok(Health { node_id: id, is_leader, leader_id: Some(1), term: 2, cluster_nodes: vec![1, 2, 3], learners, status })
}

fn part(partition: i32, leader: i64, replicas: Vec<NodeId>) -> PartitionSummary {
    PartitionSummary { topic: "t".into(), partition, replicas, leader }
}

#[test]
fn admin_address_defaults_to_raft_host_and_id() {
    assert_eq!(peer(3).admin_addr(), "localhost:10003");
}

#[test]
fn renders_roles_counts_and_leader() {
    let probes = vec![
        Probe { peer: peer(1), health: health(1, true, vec![4]) },
        Probe { peer: peer(2), health: health(2, false, vec![4]) },
        Probe { peer: peer(3), health: Err("connection refused".into()) },
        Probe { peer: peer(4), health: health(4, false, vec![4]) },
    ];
    let leader = pick_leader(&probes);
    let partitions = Ok(vec![part(0, 1, vec![1, 2, 3]), part(1, 2, vec![2, 3, 1])]);
    let text = render_status(&probes, &partitions, &leader);
    let row = |id: &str| text.lines().find(|l| l.starts_with(id)).map(|l| l.split_whitespace().collect::<Vec<_>>());
    assert_eq!(row("1 ").unwrap(), ["1", "localhost:9092", "localhost:5001", "localhost:10001", "leader", "1", "2"]);
    assert_eq!(row("2 ").unwrap()[4..], ["follower", "1", "2"]);
    assert_eq!(row("3 ").unwrap()[4..], ["unreachable", "0", "2"]);
    assert_eq!(row("4 ").unwrap()[4..], ["learner", "0", "0"]);
    assert!(text.contains("node 3 unreachable: connection refused\n"));
    assert!(text.contains("Leader: node 1 (term 2)\nVoters: [1, 2, 3]\nLearners: [4]\nPartitions: 2\n"));
}

#[test]
fn no_leader_names_the_reason() {
    let probes = vec![
        Probe { peer: peer(1), health: Err("timeout".into()) },
        Probe { peer: peer(2), health: health(2, false, vec![]) },
    ];
    let leader = pick_leader(&probes);
    assert_eq!(leader.as_ref().unwrap_err(), "node 1 is reported leader but did not answer");
    let text = render_status(&probes, &Err("refused".into()), &leader);
    assert!(text.contains("✗ No leader found: node 1 is reported leader but did not answer\n"));
    assert!(text.contains("Partitions: unavailable (refused)\n"));
}
