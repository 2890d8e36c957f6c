//! Heartbeat and OffsetCommit validation in each phase, deletion and unloading.

use bytes::Bytes;

use super::harness::*;
use crate::group::GroupPhase;

#[test]
fn heartbeat_answers_in_each_phase() {
    let mut h = Harness::new(3_000);
    assert_eq!(h.group.heartbeat("nobody", 0, None, 0), UNKNOWN_MEMBER_ID);
    let a_join = h.join("", "a");
    let a = h.group.describe().members[0].member_id.clone();
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    assert_eq!(h.group.heartbeat(&a, 0, None, 0), REBALANCE_IN_PROGRESS);

    h.finish_join_phase();
    assert_eq!(h.joined(a_join).member_id, a);
    assert_eq!(h.group.phase(), GroupPhase::CompletingRebalance);
    assert_eq!(h.group.heartbeat(&a, 1, None, h.now), NONE, "Kafka answers 0 while completing");
    assert_eq!(h.group.heartbeat(&a, 0, None, h.now), ILLEGAL_GENERATION);
    assert_eq!(h.group.heartbeat("zzz", 1, None, h.now), UNKNOWN_MEMBER_ID);
    assert_eq!(h.group.heartbeat(&a, 1, Some("not-static"), h.now), UNKNOWN_MEMBER_ID);

    h.sync_all(std::slice::from_ref(&a));
    assert_eq!(h.group.heartbeat(&a, 1, None, h.now), NONE);
    assert_eq!(h.leave(&[(&a, None)]), vec![NONE]);
    assert_eq!(h.group.heartbeat(&a, 2, None, h.now), UNKNOWN_MEMBER_ID);
    h.group.delete().expect("empty");
    assert_eq!(h.group.heartbeat(&a, 2, None, h.now), COORDINATOR_NOT_AVAILABLE);
    h.assert_all_answered();
}

#[test]
fn illegal_generation_on_sync_heartbeat_and_commit() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    let t = h.sync(&ids[1], 0, Vec::new());
    assert_eq!(h.synced(t).error_code, ILLEGAL_GENERATION);
    assert_eq!(h.group.heartbeat(&ids[0], 5, None, h.now), ILLEGAL_GENERATION);
    assert_eq!(h.group.validate_commit(&ids[0], 7, None, h.now), ILLEGAL_GENERATION);
    assert_eq!(h.group.validate_commit(&ids[0], -1, None, h.now), ILLEGAL_GENERATION, "a member with gen -1");
    h.assert_all_answered();
}

#[test]
fn simple_commits_only_while_the_group_is_empty_and_member_commits_by_phase() {
    let mut h = Harness::new(3_000);
    assert_eq!(h.group.validate_commit("", -1, None, 0), NONE);
    h.join("", "a");
    let a = h.group.describe().members[0].member_id.clone();
    assert_eq!(h.group.validate_commit("", -1, None, 0), UNKNOWN_MEMBER_ID);
    assert_eq!(h.group.validate_commit("ghost", 0, None, 0), UNKNOWN_MEMBER_ID);
    assert_eq!(h.group.validate_commit(&a, 0, None, 0), NONE, "allowed while preparing");
    h.finish_join_phase();
    assert_eq!(h.group.validate_commit(&a, 1, None, h.now), REBALANCE_IN_PROGRESS);
    h.sync_all(std::slice::from_ref(&a));
    assert_eq!(h.group.validate_commit(&a, 1, None, h.now), NONE);
    h.leave(&[(&a, None)]);
    assert_eq!(h.group.validate_commit("", -1, None, h.now), NONE);
    h.group.delete().expect("empty");
    assert_eq!(h.group.validate_commit("", -1, None, h.now), COORDINATOR_NOT_AVAILABLE);
    h.assert_all_answered();
}

#[test]
fn a_commit_keeps_the_session_alive() {
    let mut h = Harness::new(0);
    let a_join = h.join("", "a");
    let a = h.joined(a_join).member_id;
    h.sync_all(std::slice::from_ref(&a));
    for _ in 0..5 {
        h.advance(SESSION - 1);
        assert_eq!(h.group.validate_commit(&a, 1, None, h.now), NONE);
    }
    assert_eq!(h.group.phase(), GroupPhase::Stable);
    assert_eq!(h.group.next_deadline(), Some(h.now + SESSION));
}

#[test]
fn only_an_empty_group_can_be_deleted() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a"]);
    assert_eq!(h.group.delete(), Err(NON_EMPTY_GROUP));
    assert_eq!(h.group.phase(), GroupPhase::Stable);
    h.leave(&[(&ids[0], None)]);
    assert_eq!(h.group.delete(), Ok(Vec::new()));
    assert_eq!(h.group.phase(), GroupPhase::Dead);
    assert_eq!(h.group.phase().to_string(), "Dead");
    assert_eq!(h.group.delete(), Err(GROUP_ID_NOT_FOUND));
    assert_eq!(h.group.next_deadline(), None);

    let t = h.join("", "b");
    assert_eq!(h.joined(t).error_code, COORDINATOR_NOT_AVAILABLE);
    assert_eq!(h.leave(&[(&ids[0], None), ("x", None)]), vec![COORDINATOR_NOT_AVAILABLE; 2]);
    let t = h.sync(&ids[0], 1, Vec::new());
    assert_eq!(h.synced(t).error_code, COORDINATOR_NOT_AVAILABLE);
    h.assert_all_answered();
}

#[test]
fn unloading_answers_every_parked_request() {
    let mut h = Harness::new(3_000);
    let (_, a_join) = h.join_v4("a");
    let (b, b_join) = h.join_v4("b");
    let replies = h.group.unload();
    h.record(replies);
    assert_eq!(h.joined(a_join).error_code, NOT_COORDINATOR);
    assert_eq!(h.joined(b_join).member_id, b);
    assert_eq!((h.group.phase(), h.group.is_empty()), (GroupPhase::Dead, true));

    let mut h2 = Harness::new(3_000);
    h2.join_v4("a");
    let (b2, _) = h2.join_v4("b");
    h2.finish_join_phase();
    let waiting = h2.sync(&b2, 1, vec![(b2.clone(), Bytes::from("ignored"))]);
    let replies = h2.group.unload();
    h2.record(replies);
    assert_eq!(h2.synced(waiting).error_code, NOT_COORDINATOR);
    h.assert_all_answered();
    h2.assert_all_answered();
}
