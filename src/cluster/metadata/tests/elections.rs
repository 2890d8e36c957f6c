//! Leader elections: a fenced leader replaced from the ISR (or, where a topic allows it, from
//! outside it), restarts and offline replicas, operator elections and graceful handovers.

use super::*;

/// The controller's view when every broker answers.
const NONE_FENCED: BTreeSet<NodeId> = BTreeSet::new();

#[test]
fn fenced_leaders_are_replaced_from_the_isr_only() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 3, 3)).expect("create");
    m.apply(&create("solo", 1, 1)).expect("create");
    // t-1 (leader 2) lost node 3 from its ISR earlier.
    let shrink = MetadataCommand::UpdateIsr { topic: "t".into(), partition: 1, leader_epoch: 0, isr: vec![2] };
    m.apply(&shrink).expect("shrink");
    // t-1's only ISR member is fenced: no unclean election.
    assert!(elect_leaders(&m, &[2].into()).is_empty());
    // Node 1 leads t-0 and "solo"; only t-0 has a live ISR member to take over.
    let elections = elect_leaders(&m, &[1].into());
    assert_eq!(
        elections,
        vec![MetadataCommand::ElectLeader {
            topic: "t".into(),
            partition: 0,
            leader: 2,
            leader_epoch: 1,
            isr: vec![2, 3]
        }]
    );
    for e in &elections {
        m.apply(e).expect("elect");
    }
    let p0 = &m.topics["t"].partitions[0];
    assert_eq!((p0.leader, p0.leader_epoch, p0.isr.clone()), (2, 1, vec![2, 3]));
    assert!(matches!(m.apply(&elections[0]), Err(MetadataError::StaleLeaderEpoch { current: 1, got: 1 })));
    assert!(elect_leaders(&m, &[1].into()).is_empty(), "nothing left to elect");
}

#[test]
fn fenced_followers_leave_the_isrs_of_partitions_live_brokers_lead() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 3, 3)).expect("create");
    // t-1 (leader 2) has only 2 and 3 in sync.
    m.apply(&MetadataCommand::UpdateIsr { topic: "t".into(), partition: 1, leader_epoch: 0, isr: vec![2, 3] })
        .expect("shrink");
    assert!(drop_fenced_from_isrs(&m, &NONE_FENCED).is_empty());
    // Node 1 is fenced: it leaves t-2's ISR (leader 3); t-0 is its own, an election's; t-1's
    // ISR does not hold it.
    let shrinks = drop_fenced_from_isrs(&m, &[1].into());
    let isr = |m: &ClusterMetadata, p: usize| m.topics["t"].partitions[p].isr.clone();
    let want = vec![MetadataCommand::UpdateIsr {
        topic: "t".into(),
        partition: 2,
        leader_epoch: 0,
        isr: isr(&m, 2).into_iter().filter(|&id| id != 1).collect(),
    }];
    assert_eq!(shrinks, want);
    for s in &shrinks {
        m.apply(s).expect("shrink");
    }
    assert!(!isr(&m, 2).contains(&1) && isr(&m, 2).contains(&3));
    assert!(drop_fenced_from_isrs(&m, &[1].into()).is_empty(), "nothing left to shrink");
    // Both followers fenced: the leader stays, alone.
    let shrinks = drop_fenced_from_isrs(&m, &[2, 3].into());
    assert!(
        shrinks.iter().all(|s| matches!(s, MetadataCommand::UpdateIsr { isr, .. } if isr.len() == 1)),
        "{shrinks:?}"
    );
    assert_eq!(shrinks.len(), 1, "only t-0, led by the live node 1, with 2 and 3 in its ISR");
}

#[test]
fn a_registered_broker_leads_again_only_in_a_new_epoch() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 3, 3)).expect("create");
    m.apply(&register(1, 7, true)).expect("register");
    assert_eq!(m.incarnations[&1], 7);
    assert_eq!(partition(&m, "t", 0), (1, 1, vec![1, 2, 3]), "node 1 keeps t-0 in epoch 1");
    assert_eq!(partition(&m, "t", 1), (2, 0, vec![2, 3, 1]), "partitions it follows keep their epoch");
    m.apply(&register(1, 7, true)).expect("the same incarnation again");
    assert_eq!(partition(&m, "t", 0).1, 1, "a repeated registration changes nothing");
    m.apply(&register(1, 8, true)).expect("a new process");
    assert_eq!(partition(&m, "t", 0).1, 2);
    m.apply(&register(9, 1, false)).expect("ignored");
    assert!(!m.incarnations.contains_key(&9), "a non-member registers nothing");
}

#[test]
fn an_unclean_restart_leaves_every_isr_and_hands_leadership_to_an_in_sync_replica() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 3, 3)).expect("create");
    m.apply(&create("solo", 1, 1)).expect("create");
    let shrink = MetadataCommand::UpdateIsr { topic: "t".into(), partition: 2, leader_epoch: 0, isr: vec![3] };
    m.apply(&shrink).expect("t-2's ISR is its leader alone");
    m.apply(&register(3, 1, false)).expect("node 3 lost its disk tail");
    assert_eq!(partition(&m, "t", 0), (1, 0, vec![1, 2]), "a follower leaves the ISR, no epoch change");
    assert_eq!(partition(&m, "t", 1), (2, 0, vec![2, 1]));
    assert_eq!(partition(&m, "t", 2), (3, 1, vec![3]), "the last in-sync copy keeps leading, new epoch");
    m.apply(&register(1, 1, false)).expect("node 1 too");
    assert_eq!(partition(&m, "t", 0), (2, 1, vec![2]), "leadership moves to the in-sync replica");
    assert_eq!(partition(&m, "solo", 0), (1, 1, vec![1]), "RF 1: the only copy leads on, new epoch");
}

#[test]
fn an_offline_replica_leaves_the_isr_and_its_leadership() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 3)).expect("create");
    let offline = |node| MetadataCommand::ReplicaOffline { topic: "t".into(), partition: 0, node };
    m.apply(&offline(1)).expect("offline");
    assert_eq!(partition(&m, "t", 0), (2, 1, vec![2, 3]));
    m.apply(&offline(3)).expect("offline");
    m.apply(&offline(2)).expect("the last in-sync replica stays");
    assert_eq!(partition(&m, "t", 0), (2, 1, vec![2]));
    m.apply(&offline(9)).expect("not a replica: nothing happens");
}

#[test]
fn an_election_never_brings_back_a_replica_that_left_the_isr() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 3)).expect("create");
    let planned = elect_leaders(&m, &[1].into());
    let shrink = MetadataCommand::UpdateIsr { topic: "t".into(), partition: 0, leader_epoch: 0, isr: vec![1, 2] };
    m.apply(&shrink).expect("node 3 fell behind after the election was planned");
    m.apply(&planned[0]).expect("elect");
    assert_eq!(partition(&m, "t", 0), (2, 1, vec![2]));
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 3)).expect("create");
    let to_3 =
        MetadataCommand::ElectLeader { topic: "t".into(), partition: 0, leader: 3, leader_epoch: 1, isr: vec![1, 3] };
    m.apply(&MetadataCommand::UpdateIsr { topic: "t".into(), partition: 0, leader_epoch: 0, isr: vec![1, 2] })
        .expect("shrink");
    assert!(matches!(m.apply(&to_3), Err(MetadataError::InvalidIsr { .. })), "3 is no longer in sync");
}

#[test]
fn a_restarted_leader_leads_on_in_a_new_epoch_once() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 3)).expect("create");
    let bump = |leader, leader_epoch| MetadataCommand::BumpLeaderEpoch {
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch,
    };
    m.apply(&bump(1, 0)).expect("bump");
    assert_eq!(partition(&m, "t", 0), (1, 1, vec![1, 2, 3]));
    assert!(m.apply(&bump(1, 0)).is_err(), "a repeated bump is refused: the epoch moved");
    assert!(m.apply(&bump(2, 1)).is_err(), "only the leader's restart bumps");
}

#[test]
fn an_operator_election_moves_leadership_only_to_an_active_in_sync_preferred_replica() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 3)).expect("create");
    for node in [1, 2, 3] {
        m.apply(&register(node, 1, true)).expect("register");
    }
    let epoch = partition(&m, "t", 0).1;
    assert_eq!(operator_election(&m, "t", 0, false, &NONE_FENCED), Err(ElectionRefusal::NotNeeded), "1 leads already");
    assert_eq!(
        operator_election(&m, "t", 0, true, &NONE_FENCED),
        Err(ElectionRefusal::NotNeeded),
        "the leader is in sync"
    );
    assert_eq!(operator_election(&m, "t", 1, false, &NONE_FENCED), Err(ElectionRefusal::UnknownPartition));
    assert_eq!(operator_election(&m, "nope", 0, false, &NONE_FENCED), Err(ElectionRefusal::UnknownPartition));

    // Leadership moved away (a failover): the preferred replica may take it back while in sync.
    let to_2 = MetadataCommand::ElectLeader {
        topic: "t".into(),
        partition: 0,
        leader: 2,
        leader_epoch: epoch + 1,
        isr: vec![1, 2, 3],
    };
    m.apply(&to_2).expect("failover");
    let back = operator_election(&m, "t", 0, false, &NONE_FENCED).expect("preferred election");
    assert_eq!(
        back,
        MetadataCommand::ElectLeader {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            leader_epoch: epoch + 2,
            isr: vec![1, 2, 3],
        }
    );
    let mut drained = m.clone();
    drained.draining.insert(1);
    assert_eq!(operator_election(&drained, "t", 0, false, &NONE_FENCED), Err(ElectionRefusal::PreferredNotAvailable));
    let mut unregistered = m.clone();
    unregistered.incarnations.remove(&1);
    assert_eq!(
        operator_election(&unregistered, "t", 0, false, &NONE_FENCED),
        Err(ElectionRefusal::PreferredNotAvailable)
    );
    let shrink = MetadataCommand::UpdateIsr { topic: "t".into(), partition: 0, leader_epoch: epoch + 1, isr: vec![2] };
    m.apply(&shrink).expect("1 and 3 fell behind");
    assert_eq!(operator_election(&m, "t", 0, false, &NONE_FENCED), Err(ElectionRefusal::PreferredNotAvailable));
    m.apply(&back).expect_err("a planned election to a replica that left the ISR is refused");
}

#[test]
fn an_unclean_election_needs_the_topic_to_allow_it_and_a_live_replica() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 2)).expect("create");
    for node in [1, 2, 3] {
        m.apply(&register(node, 1, true)).expect("register");
    }
    let (replicas, epoch) = (m.partition("t", 0).expect("p").replicas.clone(), partition(&m, "t", 0).1);
    let (leader, follower) = (replicas[0], replicas[1]);
    let shrink = MetadataCommand::UpdateIsr { topic: "t".into(), partition: 0, leader_epoch: epoch, isr: vec![leader] };
    m.apply(&shrink).expect("the follower fell behind");
    let fenced: BTreeSet<NodeId> = [leader].into();
    // Off (the default): the partition waits for its leader, automatically and when asked.
    assert!(elect_leaders(&m, &fenced).is_empty());
    assert_eq!(operator_election(&m, "t", 0, true, &fenced), Err(ElectionRefusal::UncleanDisabled));
    let unclean = MetadataCommand::ElectUncleanLeader {
        topic: "t".into(),
        partition: 0,
        leader: follower,
        leader_epoch: epoch + 1,
    };
    assert_eq!(m.apply(&unclean), Err(MetadataError::UncleanElectionDisabled("t".into())), "checked when applied too");

    let allow = MetadataCommand::SetTopicConfigs {
        name: "t".into(),
        configs: [("unclean.leader.election.enable".to_string(), "true".to_string())].into(),
    };
    m.apply(&allow).expect("allow");
    assert_eq!(elect_leaders(&m, &fenced), vec![unclean.clone()]);
    assert_eq!(operator_election(&m, "t", 0, true, &fenced), Ok(unclean.clone()));
    assert_eq!(
        operator_election(&m, "t", 0, true, &NONE_FENCED),
        Err(ElectionRefusal::NotNeeded),
        "the leader answers"
    );
    let everyone: BTreeSet<NodeId> = [1, 2, 3].into();
    assert_eq!(operator_election(&m, "t", 0, true, &everyone), Err(ElectionRefusal::NoLiveReplica));
    m.apply(&unclean).expect("unclean election");
    let p = m.partition("t", 0).expect("p");
    assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (follower, epoch + 1, vec![follower]));
    assert_eq!(m.apply(&unclean), Err(MetadataError::StaleLeaderEpoch { current: epoch + 1, got: epoch + 1 }));
}

#[test]
fn a_handover_is_asked_only_towards_an_in_sync_replica_and_ends_with_any_election() {
    let mut m = cluster(&[1, 2, 3]);
    m.apply(&create("t", 1, 3)).expect("create");
    let begin = |to, leader_epoch| MetadataCommand::BeginHandover { topic: "t".into(), partition: 0, to, leader_epoch };
    assert!(matches!(m.apply(&begin(2, 1)), Err(MetadataError::StaleLeaderEpoch { .. })), "another epoch");
    assert!(matches!(m.apply(&begin(1, 0)), Err(MetadataError::InvalidIsr { .. })), "the leader itself");
    m.apply(&MetadataCommand::UpdateIsr { topic: "t".into(), partition: 0, leader_epoch: 0, isr: vec![1, 2] })
        .expect("shrink");
    assert!(matches!(m.apply(&begin(3, 0)), Err(MetadataError::InvalidIsr { .. })), "3 is out of sync");
    m.apply(&begin(2, 0)).expect("2 is in sync");
    let p = m.partition("t", 0).expect("partition");
    assert_eq!((p.leader, p.handover), (1, Some(Handover { to: 2, leader_epoch: 0 })));
    // The leader's own election (or a failover's) ends it.
    let elect =
        MetadataCommand::ElectLeader { topic: "t".into(), partition: 0, leader: 2, leader_epoch: 1, isr: vec![1, 2] };
    m.apply(&elect).expect("elect");
    let p = m.partition("t", 0).expect("partition");
    assert_eq!((p.leader, p.leader_epoch, p.handover), (2, 1, None));
}
