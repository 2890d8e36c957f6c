//! JoinGroup and SyncGroup: forming generations, protocol choice, admission errors.

use bytes::Bytes;

use super::harness::*;
use crate::group::{GroupConfig, GroupPhase, SyncRequest};

#[test]
fn two_members_join_with_member_id_required_then_sync_to_stable() {
    let mut h = Harness::new(0);
    let (a, a_join) = h.join_v4("a");
    // No initial delay: the only member completes generation 1 at once.
    let first = h.joined(a_join);
    assert_eq!((first.error_code, first.generation_id, first.leader.as_str()), (NONE, 1, a.as_str()));
    assert_eq!(h.group.phase(), GroupPhase::CompletingRebalance);

    let (b, b_join) = h.join_v4("b");
    assert!(h.is_waiting(b_join));
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    assert_eq!(h.heartbeat(&a), REBALANCE_IN_PROGRESS);
    let a_rejoin = h.join(&a, "a");

    let (leader, follower) = (h.joined(a_rejoin), h.joined(b_join));
    assert_eq!((leader.generation_id, follower.generation_id), (2, 2));
    assert_eq!((leader.leader.as_str(), follower.leader.as_str()), (a.as_str(), a.as_str()));
    assert_eq!(leader.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(leader.protocol_name.as_deref(), Some("range"));
    let listed: Vec<_> = leader.members.iter().map(|m| (m.member_id.as_str(), m.metadata.clone())).collect();
    assert_eq!(listed, vec![(a.as_str(), Bytes::from("range:a")), (b.as_str(), Bytes::from("range:b"))]);
    assert!(follower.members.is_empty());

    let b_sync = h.sync(&b, 2, Vec::new());
    assert!(h.is_waiting(b_sync), "a follower waits for the leader");
    let a_sync = h.sync(&a, 2, vec![(a.clone(), Bytes::from("x")), (b.clone(), Bytes::from("y"))]);
    assert_eq!(h.synced(a_sync).assignment, Bytes::from("x"));
    assert_eq!(h.synced(b_sync).assignment, Bytes::from("y"));
    assert_eq!(h.synced(b_sync).protocol_name.as_deref(), Some("range"));
    assert_eq!(h.group.phase(), GroupPhase::Stable);

    let described = h.group.describe();
    assert_eq!((described.state.to_string().as_str(), described.protocol.as_str()), ("Stable", "range"));
    assert_eq!(described.members[1].assignment, Bytes::from("y"));
    assert_eq!(described.members[1].metadata, Bytes::from("range:b"));
    assert_eq!(described.members[1].client_id, "b");
    h.assert_all_answered();
}

#[test]
fn a_third_member_makes_everyone_rejoin_into_generation_two() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    assert_eq!(h.group.generation_id(), 1);

    let (c, c_join) = h.join_v4("c");
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    assert_eq!(h.heartbeat(&ids[0]), REBALANCE_IN_PROGRESS);
    assert_eq!(h.heartbeat(&ids[1]), REBALANCE_IN_PROGRESS);
    let a_join = h.join(&ids[0], "a");
    assert!(h.is_waiting(a_join) && h.is_waiting(c_join));
    let b_join = h.join(&ids[1], "b");

    for token in [a_join, b_join, c_join] {
        assert_eq!(h.joined(token).generation_id, 2);
        assert_eq!(h.joined(token).leader, ids[0], "the leader stays the leader");
    }
    assert_eq!(h.joined(a_join).members.len(), 3);
    h.sync_all(&[ids[0].clone(), ids[1].clone(), c]);
    assert_eq!(h.group.describe().members.len(), 3);
    h.assert_all_answered();
}

#[test]
fn the_protocol_with_most_first_choice_votes_wins() {
    let mut h = Harness::new(3_000);
    let offers: [(&str, &[&str]); 3] =
        [("a", &["range", "roundrobin"]), ("b", &["roundrobin", "range"]), ("c", &["roundrobin", "sticky", "range"])];
    let mut tokens = Vec::new();
    for (client, names) in offers {
        let mut req = h.join_request("", client);
        req.protocols = protocols(client, names);
        tokens.push(h.send_join(req));
    }
    h.finish_join_phase();
    let leader = h.joined(tokens[0]);
    assert_eq!(leader.protocol_name.as_deref(), Some("roundrobin"));
    assert!(leader.members.iter().all(|m| m.metadata.starts_with(b"roundrobin:")));
    h.assert_all_answered();
}

#[test]
fn protocols_not_supported_by_everyone_are_not_candidates_and_ties_go_to_the_earliest_vote() {
    let mut h = Harness::new(3_000);
    let offers: [(&str, &[&str]); 3] =
        [("a", &["x", "range", "roundrobin"]), ("b", &["roundrobin", "range"]), ("c", &["range", "roundrobin"])];
    let mut tokens = Vec::new();
    for (client, names) in offers {
        let mut req = h.join_request("", client);
        req.protocols = protocols(client, names);
        tokens.push(h.send_join(req));
    }
    h.finish_join_phase();
    // `x` is a's favourite but only a supports it; a and c vote range, b roundrobin.
    assert_eq!(h.joined(tokens[1]).protocol_name.as_deref(), Some("range"));

    let mut tie = Harness::new(3_000);
    let mut first = None;
    for (client, names) in [("a", &["roundrobin", "range"]), ("b", &["range", "roundrobin"])] {
        let mut req = tie.join_request("", client);
        req.protocols = protocols(client, names);
        first = first.or(Some(tie.send_join(req)));
    }
    tie.finish_join_phase();
    assert_eq!(tie.joined(first.unwrap()).protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn inconsistent_protocols_are_refused() {
    let mut h = Harness::new(3_000);
    let mut nothing = h.join_request("", "a");
    nothing.protocols.clear();
    let t = h.send_join(nothing);
    assert_eq!(h.joined(t).error_code, INCONSISTENT_GROUP_PROTOCOL);
    let mut untyped = h.join_request("", "a");
    untyped.protocol_type.clear();
    let t = h.send_join(untyped);
    assert_eq!(h.joined(t).error_code, INCONSISTENT_GROUP_PROTOCOL);

    let a_join = h.join("", "a");
    let mut connect = h.join_request("", "b");
    connect.protocol_type = "connect".into();
    let t = h.send_join(connect);
    assert_eq!((h.joined(t).error_code, h.joined(t).member_id.as_str()), (INCONSISTENT_GROUP_PROTOCOL, ""));
    let mut sticky = h.join_request("", "b");
    sticky.protocols = protocols("b", &["sticky"]);
    let t = h.send_join(sticky);
    assert_eq!(h.joined(t).error_code, INCONSISTENT_GROUP_PROTOCOL);
    assert!(h.is_waiting(a_join));
    h.finish_join_phase();
    h.assert_all_answered();
}

#[test]
fn admission_errors() {
    let mut h = Harness::with_config(GroupConfig { max_size: 2, ..config(3_000) });
    for timeout in [5_999, 1_800_001] {
        let mut req = h.join_request("", "a");
        req.session_timeout_ms = timeout;
        let t = h.send_join(req);
        assert_eq!(h.joined(t).error_code, INVALID_SESSION_TIMEOUT);
    }
    let t = h.join("ghost", "a");
    assert_eq!((h.joined(t).error_code, h.joined(t).member_id.as_str()), (UNKNOWN_MEMBER_ID, "ghost"));

    let ids = h.stable_group(&["a", "b"]);
    let t = h.join("", "c");
    assert_eq!((h.joined(t).error_code, h.joined(t).member_id.as_str()), (GROUP_MAX_SIZE_REACHED, ""));
    // Known members still get in.
    let t = h.join(&ids[1], "b");
    assert_eq!(h.joined(t).error_code, NONE);
    assert_eq!(h.group.describe().members.len(), 2);
    h.assert_all_answered();
}

#[test]
fn a_retried_join_supersedes_the_parked_one() {
    let mut h = Harness::new(3_000);
    let (a, first) = h.join_v4("a");
    let retry = h.join(&a, "a");
    assert_eq!(h.joined(first).error_code, REBALANCE_IN_PROGRESS);
    assert!(h.is_waiting(retry));
    h.finish_join_phase();
    assert_eq!(h.joined(retry).generation_id, 1);
    h.assert_all_answered();
}

#[test]
fn stable_rejoins_follower_gets_the_generation_leader_forces_a_rebalance() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    let follower = h.join(&ids[1], "b");
    let answer = h.joined(follower);
    assert_eq!((answer.generation_id, answer.leader.as_str(), answer.members.len()), (1, ids[0].as_str(), 0));
    assert_eq!(h.group.phase(), GroupPhase::Stable);

    let mut changed = h.join_request(&ids[1], "b");
    changed.protocols = protocols("b2", &["range"]);
    let changed = h.send_join(changed);
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    let leader = h.join(&ids[0], "a");
    assert_eq!(h.joined(leader).generation_id, 2);
    assert_eq!(h.joined(changed).generation_id, 2);

    h.sync_all(&ids);
    let leader_again = h.join(&ids[0], "a");
    assert!(h.is_waiting(leader_again), "a leader's rejoin starts a rebalance");
    assert_eq!(h.heartbeat(&ids[1]), REBALANCE_IN_PROGRESS);
    h.join(&ids[1], "b");
    assert_eq!(h.joined(leader_again).generation_id, 3);
    h.assert_all_answered();
}

#[test]
fn a_rejoin_while_completing_gets_the_current_generation_again() {
    let mut h = Harness::new(3_000);
    let (a, _) = h.join_v4("a");
    let (b, _) = h.join_v4("b");
    h.finish_join_phase();
    let again = h.join(&a, "a");
    let answer = h.joined(again);
    assert_eq!((answer.generation_id, answer.members.len()), (1, 2), "the leader gets the member list again");
    let again = h.join(&b, "b");
    assert!(h.joined(again).members.is_empty());
    assert_eq!(h.group.phase(), GroupPhase::CompletingRebalance);
    h.sync_all(&[a, b]);
    h.assert_all_answered();
}

#[test]
fn sync_rules() {
    let mut h = Harness::new(3_000);
    let (a, _) = h.join_v4("a");
    let (b, _) = h.join_v4("b");
    let t = h.sync(&a, 0, Vec::new());
    assert_eq!(h.synced(t).error_code, REBALANCE_IN_PROGRESS);
    h.finish_join_phase();

    let t = h.sync("ghost", 1, Vec::new());
    assert_eq!(h.synced(t).error_code, UNKNOWN_MEMBER_ID);
    let token = h.fresh_token();
    let wrong = SyncRequest {
        token,
        member_id: b.clone(),
        generation_id: 1,
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("roundrobin".into()),
        assignments: Vec::new(),
    };
    h.send_sync(wrong);
    assert_eq!(h.synced(token).error_code, INCONSISTENT_GROUP_PROTOCOL);

    let b_first = h.sync(&b, 1, Vec::new());
    let b_retry = h.sync(&b, 1, Vec::new());
    assert_eq!(h.synced(b_first).error_code, REBALANCE_IN_PROGRESS, "superseded");
    // The leader leaves b out and names a stranger: b gets an empty assignment.
    let a_sync = h.sync(&a, 1, vec![(a.clone(), Bytes::from("x")), ("stranger".into(), Bytes::from("z"))]);
    assert_eq!(h.synced(b_retry).assignment, Bytes::new());
    assert_eq!(h.synced(a_sync).assignment, Bytes::from("x"));
    // Stable: answered at once with the stored assignment.
    let late = h.sync(&a, 1, Vec::new());
    assert_eq!(h.synced(late).assignment, Bytes::from("x"));
    h.assert_all_answered();
}
