use super::*;

mod elections;

fn node(id: NodeId) -> NodeInfo {
    NodeInfo { id, kafka: format!("localhost:{}", 9091 + id), ..NodeInfo::default() }
}

fn cluster(nodes: &[NodeId]) -> ClusterMetadata {
    let mut m = ClusterMetadata::default();
    m.set_membership(nodes.iter().copied().collect(), nodes.iter().map(|&id| node(id)));
    m
}

fn create(name: &str, partitions: i32, rf: i16) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: name.into(),
        id: Uuid::nil(),
        partitions,
        replication_factor: rf,
        configs: BTreeMap::new(),
        assignments: Vec::new(),
    }
}

#[test]
fn round_robin_matches_the_seed_table() {
    let nodes = [1, 2, 3];
    let expected = [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 2, 3], [2, 3, 1], [3, 1, 2]];
    for (p, want) in expected.iter().enumerate() {
        assert_eq!(assign_replicas(p as i32, &nodes, 3), want.to_vec());
    }
    let four = [1, 2, 3, 4];
    assert_eq!(assign_replicas(1, &four, 3), vec![2, 3, 4]);
    assert_eq!(assign_replicas(3, &four, 3), vec![4, 1, 2]);
}

#[test]
fn create_grow_and_delete_a_topic() {
    let mut m = cluster(&[1]);
    m.apply(&create("orders", 3, 1)).expect("create");
    let t = &m.topics["orders"];
    assert_eq!(t.partitions.len(), 3);
    assert!(t.partitions.iter().all(|p| p.leader == 1 && p.isr == vec![1] && p.leader_epoch == 0));
    assert_eq!(m.apply(&create("orders", 1, 1)), Err(MetadataError::TopicExists("orders".into())));
    m.apply(&MetadataCommand::CreatePartitions { name: "orders".into(), count: 5, assignments: Vec::new() })
        .expect("grow");
    assert_eq!(m.topics["orders"].partitions[4].partition, 4);
    let shrink =
        m.apply(&MetadataCommand::CreatePartitions { name: "orders".into(), count: 2, assignments: Vec::new() });
    assert!(matches!(shrink, Err(MetadataError::InvalidPartitions { .. })));
    m.apply(&MetadataCommand::DeleteTopic { name: "orders".into() }).expect("delete");
    assert!(m.topics.is_empty());
    let again = m.apply(&MetadataCommand::DeleteTopic { name: "orders".into() });
    assert_eq!(again, Err(MetadataError::UnknownTopic("orders".into())));
}

#[test]
fn replication_factor_beyond_brokers_is_refused() {
    let mut m = cluster(&[1]);
    let err = m.apply(&create("t", 1, 3)).unwrap_err();
    assert_eq!(err, MetadataError::InvalidReplicationFactor { requested: 3, available: 1 });
    assert!(m.topics.is_empty());
}

#[test]
fn topic_names_follow_kafka_rules() {
    for good in ["a", "test-topic", "x.y_z-1", &"n".repeat(249)] {
        assert!(validate_topic_name(good).is_ok(), "{good}");
    }
    for bad in ["", ".", "..", "bad topic!", "über", &"n".repeat(250)] {
        assert!(validate_topic_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn topic_configs_are_replaced_whole() {
    let mut m = cluster(&[1]);
    m.apply(&create("t", 1, 1)).expect("create");
    let configs: BTreeMap<String, String> = [("retention.ms".to_string(), "1000".to_string())].into();
    m.apply(&MetadataCommand::SetTopicConfigs { name: "t".into(), configs: configs.clone() }).expect("set");
    assert_eq!(m.topics["t"].configs, configs);
    let missing = m.apply(&MetadataCommand::SetTopicConfigs { name: "nope".into(), configs });
    assert_eq!(missing, Err(MetadataError::UnknownTopic("nope".into())));
}

#[test]
fn producer_id_blocks_advance() {
    let mut m = cluster(&[1]);
    let first = m.apply(&MetadataCommand::AllocateProducerIds { count: 1000 });
    assert_eq!(first, Ok(Applied::ProducerIds { first: 0 }));
    let second = m.apply(&MetadataCommand::AllocateProducerIds { count: 1000 });
    assert_eq!(second, Ok(Applied::ProducerIds { first: 1000 }));
    assert_eq!(m.next_producer_id, 2000);
}

#[test]
fn topics_spread_over_voters_round_robin_with_the_leader_first() {
    let mut m = cluster(&[3, 1, 2]);
    m.apply(&create("test-topic", 6, 3)).expect("create");
    let replicas: Vec<Vec<NodeId>> = m.topics["test-topic"].partitions.iter().map(|p| p.replicas.clone()).collect();
    assert_eq!(replicas, [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 2, 3], [2, 3, 1], [3, 1, 2]].map(Vec::from));
    assert!(m.topics["test-topic"].partitions.iter().all(|p| p.leader == p.replicas[0] && p.isr == p.replicas));
    // Learners are brokers but get no replicas until they vote.
    let mut with_learner = cluster(&[1, 2]);
    with_learner.set_membership([1, 2].into(), [1, 2, 3].map(node));
    assert_eq!(with_learner.nodes.len(), 3);
    let err = with_learner.apply(&create("t", 1, 3)).unwrap_err();
    assert_eq!(err, MetadataError::InvalidReplicationFactor { requested: 3, available: 2 });
}

#[test]
fn isr_updates_are_fenced_by_leader_epoch_and_keep_the_leader() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 3)).expect("create");
    let update = |epoch, isr: &[NodeId]| MetadataCommand::UpdateIsr {
        topic: "t".into(),
        partition: 0,
        leader_epoch: epoch,
        isr: isr.to_vec(),
    };
    m.apply(&update(0, &[1, 3])).expect("shrink");
    assert_eq!(m.topics["t"].partitions[0].isr, vec![1, 3]);
    assert_eq!(m.apply(&update(5, &[1])), Err(MetadataError::StaleLeaderEpoch { current: 0, got: 5 }));
    assert!(matches!(m.apply(&update(0, &[2, 3])), Err(MetadataError::InvalidIsr { .. })), "leader left out");
    assert!(matches!(m.apply(&update(0, &[1, 9])), Err(MetadataError::InvalidIsr { .. })), "not a replica");
    assert_eq!(m.topics["t"].partitions[0].isr, vec![1, 3], "refused changes change nothing");
}

#[test]
fn reassignment_keeps_the_leader_and_trims_the_isr() {
    let mut m = cluster(&[1, 2, 3, 4]);
    m.set_membership([1, 2, 3].into(), [1, 2, 3, 4].map(node));
    m.apply(&create("t", 1, 3)).expect("create");
    m.set_membership([1, 2, 3, 4].into(), [1, 2, 3, 4].map(node));
    let reassign = |replicas: &[NodeId]| MetadataCommand::ReassignPartition {
        topic: "t".into(),
        partition: 0,
        replicas: replicas.to_vec(),
    };
    m.apply(&reassign(&[1, 2, 3, 4])).expect("grow");
    assert_eq!(m.topics["t"].partitions[0].isr, vec![1, 2, 3], "a new replica joins the ISR later");
    m.apply(&reassign(&[1, 2, 4])).expect("shrink");
    let p = &m.topics["t"].partitions[0];
    assert_eq!((p.replicas.clone(), p.isr.clone()), (vec![1, 2, 4], vec![1, 2]));
    assert!(m.apply(&reassign(&[2, 4])).is_err(), "the leader must stay");
    assert!(m.apply(&reassign(&[1, 1, 2])).is_err(), "no duplicates");
    assert!(m.apply(&reassign(&[1, 9])).is_err(), "only voters");
}

#[test]
fn membership_keeps_registered_addresses_and_drops_removed_nodes() {
    let mut m = cluster(&[1, 2]);
    let moved = NodeInfo { kafka: "elsewhere:1".into(), ..node(2) };
    m.apply(&MetadataCommand::RegisterNode(moved.clone())).expect("register");
    assert_eq!(m.nodes[&2], moved);
    m.set_membership([2, 3].into(), [2, 3].map(node));
    assert_eq!(m.nodes.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(m.nodes[&2], moved, "a member keeps what it registered");
    assert_eq!(m.removed, [1].into(), "node 1's id is retired");
    m.apply(&MetadataCommand::RegisterNode(node(1))).expect("ignored");
    assert!(!m.nodes.contains_key(&1), "a removed node does not come back by registering");
}

#[test]
fn a_draining_node_takes_no_new_replicas_and_leaves_the_drain_set_with_the_membership() {
    let mut m = cluster(&[1, 2, 3, 4]);
    m.apply(&create("t", 4, 3)).expect("create");
    m.apply(&MetadataCommand::DrainNode { node: 4 }).expect("drain");
    m.apply(&MetadataCommand::DrainNode { node: 4 }).expect("draining again is a no-op");
    assert_eq!(m.placement_nodes(), vec![1, 2, 3]);
    m.apply(&create("u", 3, 3)).expect("create on the remaining three");
    assert!(m.topics["u"].partitions.iter().all(|p| !p.replicas.contains(&4)));
    assert!(m.holds_replicas(4), "t keeps node 4's replicas until they are moved");

    // Once it left the membership, it is retired and no longer draining.
    m.set_membership([1, 2, 3].into(), [1, 2, 3].map(node));
    assert!(m.draining.is_empty() && m.removed.contains(&4));
}

#[test]
fn draining_is_refused_when_the_rest_cannot_hold_every_topic() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 3)).expect("create");
    let err = m.apply(&MetadataCommand::DrainNode { node: 3 }).expect_err("RF 3 needs three nodes");
    assert_eq!(
        err.to_string(),
        "Cannot remove node 3: topic 't' has replication factor 3 and only 2 node(s) would remain"
    );
    let err = m.apply(&MetadataCommand::DrainNode { node: 9 }).expect_err("not a member");
    assert_eq!(err.to_string(), "Cannot remove node 9: it is not a voting member of the cluster");
    let mut single = cluster(&[1]);
    let err = single.apply(&MetadataCommand::DrainNode { node: 1 }).expect_err("the last node");
    assert_eq!(err.to_string(), "Cannot remove node 1: it is the last node");
    assert!(m.draining.is_empty() && single.draining.is_empty(), "a refused drain changes nothing");
}

fn partition(m: &ClusterMetadata, topic: &str, p: usize) -> (NodeId, i32, Vec<NodeId>) {
    let p = &m.topics[topic].partitions[p];
    (p.leader, p.leader_epoch, p.isr.clone())
}

fn register(node: NodeId, incarnation: u64, clean_shutdown: bool) -> MetadataCommand {
    MetadataCommand::RegisterBroker { node, incarnation, clean_shutdown }
}

#[test]
fn reassignment_never_drops_in_sync_replicas_below_min_insync() {
    let mut m = cluster(&[1, 2, 3, 4]);
    m.apply(&MetadataCommand::InitCluster { cluster_id: "c".into(), min_insync_replicas: 2 }).expect("init");
    m.apply(&create("t", 1, 3)).expect("create");
    let reassign = |replicas: &[NodeId]| MetadataCommand::ReassignPartition {
        topic: "t".into(),
        partition: 0,
        replicas: replicas.to_vec(),
    };
    m.apply(&MetadataCommand::UpdateIsr { topic: "t".into(), partition: 0, leader_epoch: 0, isr: vec![1, 3] })
        .expect("node 2 is behind");
    m.apply(&reassign(&[1, 2, 3, 4])).expect("adding is always allowed");
    let err = m.apply(&reassign(&[1, 2, 4])).expect_err("only node 1 would stay in sync");
    assert!(err.to_string().contains("below min.insync.replicas 2"), "{err}");
    let err = m.apply(&reassign(&[2, 3, 4])).expect_err("the leader must stay");
    assert!(err.to_string().contains("drops the current leader 1"), "{err}");
    m.apply(&reassign(&[1, 3, 4])).expect("two in sync remain");
    // A topic override counts over the cluster default.
    let configs: BTreeMap<String, String> = [("min.insync.replicas".to_string(), "1".to_string())].into();
    m.apply(&MetadataCommand::SetTopicConfigs { name: "t".into(), configs }).expect("set");
    m.apply(&reassign(&[1, 4])).expect("min.insync.replicas 1");
}

#[test]
fn leader_only_commands_apply_only_in_their_term_and_the_cluster_id_is_set_once() {
    let mut m = cluster(&[1, 2, 3]);
    let init = |id: &str| MetadataCommand::InitCluster { cluster_id: id.into(), min_insync_replicas: 2 };
    m.apply(&init("first")).expect("init");
    m.apply(&init("second")).expect("a second InitCluster is a no-op");
    assert_eq!((m.cluster_id.as_deref(), m.min_insync_replicas), (Some("first"), 2));
    let drain = |leader| MetadataCommand::AsLeader {
        term: 4,
        leader,
        command: Box::new(MetadataCommand::DrainNode { node: 3 }),
    };
    let under = |term, node| Some(EntryLeader { term, node });
    assert_eq!(m.apply_in_term(&drain(Some(1)), under(5, 1)), Err(MetadataError::StaleTerm { planned: 4, current: 5 }));
    let deposed = m.apply_in_term(&drain(Some(1)), under(4, 2));
    assert_eq!(
        deposed,
        Err(MetadataError::StaleLeader { term: 4, planner: 1, appender: 2 }),
        "a later leader of term 4"
    );
    assert!(m.draining.is_empty());
    m.apply_in_term(&drain(Some(1)), under(4, 1)).expect("applied under the leadership that planned it");
    assert!(m.draining.contains(&3));
    m.draining.clear();
    m.apply_in_term(&drain(None), under(4, 2)).expect("logged before the leader was recorded: the term decides");
    assert!(m.draining.contains(&3));
    assert_eq!(drain(None).name(), "DrainNode");
}

#[test]
fn rebalancing_pauses_and_resumes_and_the_flag_survives_a_snapshot() {
    let mut m = cluster(&[1, 2, 3]);
    assert!(!m.rebalance_paused);
    m.apply(&MetadataCommand::SetRebalancePaused { paused: true }).expect("pause");
    let restored: ClusterMetadata = serde_json::from_slice(&serde_json::to_vec(&m).expect("ser")).expect("de");
    assert!(restored.rebalance_paused, "a snapshot keeps the pause");
    m.apply(&MetadataCommand::SetRebalancePaused { paused: false }).expect("resume");
    assert!(!m.rebalance_paused);
}

fn create_assigned(name: &str, assignments: Vec<Vec<NodeId>>) -> MetadataCommand {
    let (partitions, replication_factor) = (assignments.len() as i32, assignments[0].len() as i16);
    MetadataCommand::CreateTopic {
        name: name.into(),
        id: Uuid::nil(),
        partitions,
        replication_factor,
        configs: BTreeMap::new(),
        assignments,
    }
}

#[test]
fn a_manual_assignment_is_honoured_with_its_first_replica_leading() {
    let mut m = cluster(&[0, 1, 2]);
    m.apply(&create_assigned("t", vec![vec![2, 0], vec![0, 1], vec![1, 2]])).expect("valid assignment");
    let t = &m.topics["t"];
    assert_eq!(t.replication_factor, 2);
    let got: Vec<(Vec<NodeId>, NodeId, Vec<NodeId>)> =
        t.partitions.iter().map(|p| (p.replicas.clone(), p.leader, p.isr.clone())).collect();
    assert_eq!(got, [(vec![2, 0], 2, vec![2, 0]), (vec![0, 1], 0, vec![0, 1]), (vec![1, 2], 1, vec![1, 2])]);
}

#[test]
fn a_bad_manual_assignment_is_refused_as_kafka_does() {
    let m = cluster(&[1, 2, 3]);
    let cases: [(Vec<Vec<NodeId>>, &str); 4] = [
        (vec![vec![1], vec![]], "empty replica list"),
        (vec![vec![1, 2], vec![3]], "the other partitions have 2"),
        (vec![vec![1, 1]], "more than once"),
        (vec![vec![1, 9]], "broker 9"),
    ];
    for (assignment, why) in cases {
        let err = m.check_assignment("t", &assignment).expect_err(why);
        assert!(matches!(err, MetadataError::InvalidReplicaAssignment { .. }), "{why}: {err:?}");
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
}

#[test]
fn grown_partitions_take_a_manual_assignment_checked_as_kafka_does() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 2, 2)).expect("create");
    let grow = |count, assignments: Vec<Vec<NodeId>>| MetadataCommand::CreatePartitions {
        name: "t".into(),
        count,
        assignments,
    };
    let refused = |m: &mut ClusterMetadata, cmd: MetadataCommand, why: &str| match m.apply(&cmd) {
        Err(MetadataError::InvalidReplicaAssignment { reason, .. }) => assert!(reason.contains(why), "{reason}"),
        other => panic!("{why}: {other:?}"),
    };
    refused(&mut m, grow(4, vec![vec![3, 1]]), "2 partition(s) would be added, but 1 assignment(s)");
    refused(&mut m, grow(3, vec![vec![3]]), "partition 2 has 1 replica(s), but the other partitions have 2");
    refused(&mut m, grow(3, vec![vec![3, 3]]), "partition 2 names broker 3 more than once");
    refused(&mut m, grow(3, vec![vec![3, 9]]), "partition 2 names broker 9, which is not an active member");
    assert_eq!(m.topics["t"].partitions.len(), 2, "nothing refused was added");
    m.apply(&grow(4, vec![vec![3, 1], vec![2, 3]])).expect("grow");
    let added: Vec<_> = m.topics["t"].partitions[2..].iter().map(|p| (p.partition, p.leader, p.isr.clone())).collect();
    assert_eq!(added, vec![(2, 3, vec![3, 1]), (3, 2, vec![2, 3])]);
    assert!(matches!(m.apply(&grow(4, vec![vec![1, 2]])), Err(MetadataError::InvalidPartitions { .. })));
}

#[test]
fn an_operator_reassignment_is_recorded_completed_by_the_moves_and_cancelled_back() {
    let mut m = cluster(&[1, 2, 3, 4]);
    m.apply(&create("t", 2, 2)).expect("create");
    let alter = |partition, replicas: Option<Vec<NodeId>>| MetadataCommand::AlterReassignment {
        topic: "t".into(),
        partition,
        replicas,
        keep_replication_factor: false,
    };
    let placement = |m: &ClusterMetadata, partition| m.partition("t", partition).expect("partition").placement.clone();
    // Kafka's checks, and nothing recorded on a refusal.
    for (bad, why) in [(vec![], "empty replica list"), (vec![3, 3], "more than once"), (vec![3, 9], "broker 9")] {
        let err = m.apply(&alter(0, Some(bad))).expect_err(why);
        assert!(
            matches!(err, MetadataError::InvalidReplicaAssignment { .. }) && err.to_string().contains(why),
            "{err}"
        );
    }
    assert!(matches!(m.apply(&alter(7, Some(vec![1]))), Err(MetadataError::UnknownTopic(_))));
    let none = m.apply(&alter(0, None));
    assert_eq!(none, Err(MetadataError::NoReassignmentInProgress { topic: "t".into(), partition: 0 }));
    assert_eq!(placement(&m, 0), None);

    // Partition 0 ([1, 2]) moves to [3, 4]: recorded, nothing moved yet.
    m.apply(&alter(0, Some(vec![3, 4]))).expect("alter");
    let started = Some(Placement { replicas: vec![3, 4], reassigning_from: Some(vec![1, 2]) });
    assert_eq!(placement(&m, 0), started);
    assert_eq!(m.partition("t", 0).expect("p").replicas, vec![1, 2]);
    // A new target keeps the original replicas; the moves that reach it end the reassignment.
    m.apply(&alter(0, Some(vec![4, 1]))).expect("new target");
    assert_eq!(placement(&m, 0).and_then(|p| p.reassigning_from), Some(vec![1, 2]));
    let reassign =
        |replicas: Vec<NodeId>| MetadataCommand::ReassignPartition { topic: "t".into(), partition: 0, replicas };
    m.apply(&reassign(vec![1, 2, 4])).expect("copy first");
    assert!(placement(&m, 0).is_some_and(|p| p.reassigning_from.is_some()), "still under way");
    m.apply(&reassign(vec![4, 1])).expect("drop last");
    assert_eq!(placement(&m, 0), Some(Placement { replicas: vec![4, 1], reassigning_from: None }));
    assert_eq!(
        m.apply(&alter(0, None)),
        Err(MetadataError::NoReassignmentInProgress { topic: "t".into(), partition: 0 })
    );

    // Cancelled halfway: the way back starts where the partition is.
    m.apply(&alter(1, Some(vec![3, 4]))).expect("alter");
    let p1 = MetadataCommand::ReassignPartition { topic: "t".into(), partition: 1, replicas: vec![2, 3, 4] };
    m.apply(&p1).expect("copy first");
    m.apply(&alter(1, None)).expect("cancel");
    assert_eq!(placement(&m, 1), Some(Placement { replicas: vec![2, 3], reassigning_from: Some(vec![2, 3, 4]) }));

    // Only the order changes: in place at once.
    m.apply(&alter(0, Some(vec![1, 4]))).expect("reorder");
    let p = m.partition("t", 0).expect("p");
    assert_eq!(
        (p.replicas.clone(), p.leader, p.placement.clone().and_then(|p| p.reassigning_from)),
        (vec![1, 4], 1, None)
    );

    // Draining a node releases the placements that name it, so its replicas can move.
    m.apply(&MetadataCommand::DrainNode { node: 4 }).expect("drain");
    assert_eq!(placement(&m, 0), None);
    assert!(placement(&m, 1).is_some(), "partition 1's placement names 2 and 3 only");
}

#[test]
fn a_reassignment_that_must_keep_the_replication_factor_is_measured_from_the_original_replicas() {
    let mut m = cluster(&[1, 2, 3, 4]);
    m.apply(&create("t", 1, 2)).expect("create");
    let keep = |replicas: Vec<NodeId>| MetadataCommand::AlterReassignment {
        topic: "t".into(),
        partition: 0,
        replicas: Some(replicas),
        keep_replication_factor: true,
    };
    let refused = m.apply(&keep(vec![1, 2, 3])).expect_err("2 -> 3 replicas");
    assert!(matches!(refused, MetadataError::ReplicationFactorChange { from: 2, to: 3, .. }), "{refused}");
    assert_eq!(m.partition("t", 0).expect("p").placement, None, "nothing recorded");
    m.apply(&keep(vec![3, 4])).expect("same factor");
    // Halfway through a move the partition has 3 replicas; the factor it started from counts.
    let copying = MetadataCommand::ReassignPartition { topic: "t".into(), partition: 0, replicas: vec![1, 2, 3] };
    m.apply(&copying).expect("copy first");
    m.apply(&keep(vec![4, 1])).expect("still 2 replicas");
    assert!(matches!(m.apply(&keep(vec![4, 1, 2])), Err(MetadataError::ReplicationFactorChange { from: 2, .. })));
}

#[test]
fn a_manual_assignment_at_creation_is_an_operator_placement() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create_assigned("t", vec![vec![2, 1]])).expect("create");
    let p = m.partition("t", 0).expect("p");
    assert_eq!(p.placement, Some(Placement { replicas: vec![2, 1], reassigning_from: None }));
}

#[test]
fn scram_credentials_are_set_per_mechanism_and_deleting_a_missing_one_is_refused() {
    let mut m = cluster(&[1]);
    let credential =
        |n: u8| ScramCredential { iterations: 4096, salt: vec![n], stored_key: vec![n; 32], server_key: vec![n; 32] };
    let set = |user: &str, mechanism: &str, c: Option<ScramCredential>| MetadataCommand::SetScramCredential {
        user: user.into(),
        mechanism: mechanism.into(),
        credential: c,
    };
    m.apply(&set("alice", "SCRAM-SHA-256", Some(credential(1)))).expect("set");
    m.apply(&set("alice", "SCRAM-SHA-512", Some(credential(2)))).expect("set");
    m.apply(&set("alice", "SCRAM-SHA-256", Some(credential(3)))).expect("replace");
    assert_eq!(m.scram_credentials["alice"]["SCRAM-SHA-256"], credential(3));
    assert_eq!(m.scram_credentials["alice"].len(), 2);
    m.apply(&set("alice", "SCRAM-SHA-256", None)).expect("delete");
    m.apply(&set("alice", "SCRAM-SHA-512", None)).expect("delete");
    assert!(m.scram_credentials.is_empty(), "a user without credentials is gone");
    let missing = m.apply(&set("alice", "SCRAM-SHA-512", None)).expect_err("nothing to delete");
    assert!(matches!(missing, MetadataError::NoScramCredential { .. }), "{missing:?}");
    // Old snapshots (no credentials field) still load.
    let mut json = serde_json::to_value(cluster(&[1])).expect("json");
    json.as_object_mut().expect("object").remove("scram_credentials");
    let loaded: ClusterMetadata = serde_json::from_value(json).expect("old snapshot");
    assert!(loaded.scram_credentials.is_empty());
}
