//! Members going away — by session expiry, rebalance timeout, missing sync, LeaveGroup — and
//! the rebalances that follow.

use super::harness::*;
use bytes::Bytes;

use crate::group::{GroupConfig, GroupPhase};

#[test]
fn a_silent_member_expires_and_the_rest_rejoin_without_it() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    let synced_at = h.now;
    for _ in 0..3 {
        h.advance(3_000);
        assert_eq!(h.heartbeat(a), NONE);
    }
    assert_eq!(h.group.next_deadline(), Some(synced_at + SESSION), "b's session");
    h.tick_at(synced_at + SESSION);
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    assert_eq!(h.heartbeat(b), UNKNOWN_MEMBER_ID);
    assert_eq!(h.heartbeat(a), REBALANCE_IN_PROGRESS);

    let rejoin = h.join(a, "a");
    let answer = h.joined(rejoin);
    assert_eq!((answer.generation_id, answer.leader.as_str()), (2, a.as_str()));
    assert_eq!(answer.members.iter().map(|m| m.member_id.as_str()).collect::<Vec<_>>(), vec![a.as_str()]);
    h.sync_all(std::slice::from_ref(a));
    h.assert_all_answered();
}

#[test]
fn the_join_phase_ends_at_the_rebalance_timeout_without_members_that_did_not_rejoin() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    let started = h.now;
    let (c, c_join) = h.join_v4("c");
    let a_join = h.join(&ids[0], "a");
    // b stays alive but never rejoins.
    while h.now + 3_000 < started + REBALANCE {
        h.advance(3_000);
        assert_eq!(h.heartbeat(&ids[1]), REBALANCE_IN_PROGRESS);
    }
    assert!(h.is_waiting(a_join) && h.is_waiting(c_join));
    assert_eq!(h.group.next_deadline(), Some(started + REBALANCE));
    h.tick_at(started + REBALANCE);

    let members: Vec<_> = h.joined(a_join).members.into_iter().map(|m| m.member_id).collect();
    assert_eq!(members, vec![ids[0].clone(), c.clone()]);
    assert_eq!(h.joined(c_join).generation_id, 2);
    assert_eq!(h.heartbeat(&ids[1]), UNKNOWN_MEMBER_ID);
    h.sync_all(&[ids[0].clone(), c]);
    h.assert_all_answered();
}

#[test]
fn leaving_members_trigger_a_rebalance_and_the_last_one_empties_the_group() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    assert_eq!(h.leave(&[(&ids[1], None)]), vec![NONE]);
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    assert_eq!(h.heartbeat(&ids[0]), REBALANCE_IN_PROGRESS);
    let rejoin = h.join(&ids[0], "a");
    assert_eq!(h.joined(rejoin).generation_id, 2);
    h.sync_all(&ids[..1]);

    assert_eq!(h.leave(&[(&ids[0], None)]), vec![NONE]);
    assert_eq!((h.group.phase(), h.group.generation_id()), (GroupPhase::Empty, 3));
    assert!(h.group.is_empty() && h.group.describe().members.is_empty());
    assert_eq!(h.group.next_deadline(), None);
    assert_eq!(h.leave(&[(&ids[0], None)]), vec![UNKNOWN_MEMBER_ID]);
    h.assert_all_answered();
}

#[test]
fn a_member_leaving_while_its_join_is_parked_gets_an_answer() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    let (c, c_join) = h.join_v4("c");
    assert_eq!(h.leave(&[(&c, None)]), vec![NONE]);
    assert_eq!(h.joined(c_join).error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    h.join(&ids[0], "a");
    let b_join = h.join(&ids[1], "b");
    assert_eq!(h.joined(b_join).generation_id, 2);
    h.assert_all_answered();
}

#[test]
fn a_member_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let mut h = Harness::new(3_000);
    let (a, _) = h.join_v4("a");
    let (b, _) = h.join_v4("b");
    h.finish_join_phase();
    let completed = h.now;
    h.sync(&a, 1, vec![(a.clone(), assignment(&a)), (b.clone(), assignment(&b))]);
    assert_eq!(h.group.phase(), GroupPhase::Stable);
    while h.now + 3_000 < completed + REBALANCE {
        h.advance(3_000);
        assert_eq!(h.heartbeat(&a), NONE);
        assert_eq!(h.heartbeat(&b), NONE, "heartbeats do not replace the sync");
    }
    assert_eq!(h.group.next_deadline(), Some(completed + REBALANCE));
    h.tick_at(completed + REBALANCE);
    assert_eq!(h.heartbeat(&b), UNKNOWN_MEMBER_ID);
    assert_eq!(h.heartbeat(&a), REBALANCE_IN_PROGRESS);
    let rejoin = h.join(&a, "a");
    assert_eq!(h.joined(rejoin).members.len(), 1);
    h.assert_all_answered();
}

#[test]
fn a_new_member_parked_too_long_is_removed_and_answered() {
    let mut h = Harness::new(0);
    let mut slow = h.join_request("", "a");
    slow.rebalance_timeout_ms = 600_000;
    let a_join = h.send_join(slow);
    let a = h.joined(a_join).member_id;
    h.sync_all(std::slice::from_ref(&a));
    let b_join = h.join("", "b");
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    // a keeps its session but never rejoins; the phase would wait 600 s for it.
    while h.now < 300_000 {
        h.advance(5_000);
        assert_eq!(h.heartbeat(&a), REBALANCE_IN_PROGRESS);
    }
    let answer = h.joined(b_join);
    assert_eq!((answer.error_code, answer.member_id.as_str()), (UNKNOWN_MEMBER_ID, ""));
    assert_eq!(h.group.describe().members.len(), 1);
    let rejoin = h.join(&a, "a");
    assert_eq!(h.joined(rejoin).generation_id, 2);
    h.assert_all_answered();
}

#[test]
fn an_id_handed_out_with_member_id_required_holds_the_join_phase_until_it_lapses() {
    let mut h = Harness::new(0);
    let (a, _) = h.join_v4("a");
    h.sync_all(std::slice::from_ref(&a));
    h.now = 1_000;
    let mut b = h.join_request("", "b");
    b.require_known_member_id = true;
    let b_first = h.send_join(b.clone());
    let b_id = h.joined(b_first).member_id;
    let a_join = h.join(&a, "a");
    assert!(h.is_waiting(a_join), "b's id is expected back");
    assert_eq!(h.group.next_deadline(), Some(1_000 + SESSION));
    h.tick_at(1_000 + SESSION);
    assert_eq!(h.joined(a_join).generation_id, 2);

    b.member_id = b_id;
    let late = h.send_join(b);
    assert_eq!(h.joined(late).error_code, UNKNOWN_MEMBER_ID);
    h.assert_all_answered();
}

#[test]
fn members_over_a_full_group_are_turned_away_while_preparing() {
    let mut h = Harness::with_config(GroupConfig { max_size: 2, ..config(3_000) });
    let ids = h.stable_group(&["a", "b"]);
    let a_join = h.join(&ids[0], "a");
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    let c_join = h.join("", "c");
    assert!(h.is_waiting(c_join), "one member has rejoined so far: room for c");
    // Two have joined now: b, not rejoined yet, no longer fits and is dropped.
    let b_join = h.join(&ids[1], "b");
    assert_eq!(h.joined(b_join).error_code, GROUP_MAX_SIZE_REACHED);
    assert_eq!(h.joined(a_join).members.len(), 2);
    assert_eq!(h.joined(c_join).generation_id, 2);
    h.assert_all_answered();
}

#[test]
fn a_rebalance_timeout_of_zero_means_the_session_timeout() {
    let mut h = Harness::new(3_000);
    let mut unset = h.join_request("", "a");
    unset.rebalance_timeout_ms = 0;
    let join = h.send_join(unset);
    h.finish_join_phase();
    let answer = h.joined(join);
    let completed = h.now;
    // The SyncGroup is still expected until the session timeout, not dropped at once.
    assert_eq!(h.group.next_deadline(), Some(completed + SESSION));
    h.advance(100);
    let sync = h.sync(&answer.member_id, answer.generation_id, vec![(answer.member_id.clone(), Bytes::from("x"))]);
    assert_eq!(h.synced(sync).error_code, NONE);
    assert_eq!(h.group.phase(), GroupPhase::Stable);
    h.assert_all_answered();
}
