//! The initial rebalance delay and `next_deadline`.

use super::harness::*;
use crate::group::GroupPhase;

#[test]
fn the_initial_delay_collects_members_into_generation_one() {
    let mut h = Harness::new(3_000);
    let a_join = h.join("", "a");
    assert_eq!(h.group.next_deadline(), Some(3_000));
    h.now = 1_000;
    let b_join = h.join("", "b");
    h.tick_at(2_999);
    assert!(h.is_waiting(a_join) && h.is_waiting(b_join));
    // b arrived during the delay: it is extended once more (Kafka's InitialDelayedJoin).
    h.tick_at(3_000);
    assert!(h.is_waiting(a_join) && h.is_waiting(b_join));
    assert_eq!(h.group.next_deadline(), Some(6_000));
    h.tick_at(6_000);
    let (a, b) = (h.joined(a_join), h.joined(b_join));
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.members.len(), 2);
    assert_eq!(a.leader, a.member_id);
    h.sync_all(&[a.member_id, b.member_id]);
    h.assert_all_answered();
}

#[test]
fn an_initial_delay_without_newcomers_ends_once_and_never_early() {
    let mut h = Harness::new(3_000);
    let a_join = h.join("", "a");
    let a = h.group.describe().members[0].member_id.clone();
    // Even though every member has joined, the delay runs its course.
    let again = h.join(&a, "a");
    assert_eq!(h.joined(a_join).error_code, REBALANCE_IN_PROGRESS, "superseded by the retry");
    h.tick_at(3_000);
    assert_eq!(h.joined(again).generation_id, 1);
    h.assert_all_answered();
}

#[test]
fn the_initial_delay_is_bounded_by_the_rebalance_timeout() {
    let mut h = Harness::new(3_000);
    let mut short = h.join_request("", "a");
    short.rebalance_timeout_ms = 4_000;
    let a_join = h.send_join(short);
    let mut ticks = Vec::new();
    // A newcomer during every delay: the extensions stop when the 4 s are used up.
    for client in ["b", "c", "d"] {
        h.join("", client);
        let at = h.group.next_deadline().expect("a deadline");
        ticks.push(at);
        h.tick_at(at);
        if h.join_answer(a_join).is_some() {
            break;
        }
    }
    assert_eq!(ticks, vec![3_000, 4_000]);
    assert_eq!(h.joined(a_join).members.len(), 3);
    h.assert_all_answered();
}

#[test]
fn next_deadline_follows_every_timer() {
    let mut h = Harness::new(3_000);
    assert_eq!(h.group.next_deadline(), None);
    let mut req = h.join_request("", "a");
    req.require_known_member_id = true;
    let first = h.send_join(req.clone());
    assert_eq!(h.group.next_deadline(), Some(SESSION), "the handed-out id lapses");

    h.now = 100;
    req.member_id = h.joined(first).member_id;
    let a = req.member_id.clone();
    h.send_join(req);
    assert_eq!(h.group.next_deadline(), Some(3_100), "the initial delay; a new member may wait 5 min");
    h.tick_at(3_100);
    assert_eq!(h.group.phase(), GroupPhase::CompletingRebalance);
    assert_eq!(h.group.next_deadline(), Some(3_100 + SESSION), "a's session, before the sync deadline");

    h.now = 5_000;
    h.sync_all(std::slice::from_ref(&a));
    assert_eq!(h.group.next_deadline(), Some(5_000 + SESSION), "synced: no sync deadline");
    h.now = 9_000;
    assert_eq!(h.heartbeat(&a), NONE);
    assert_eq!(h.group.next_deadline(), Some(9_000 + SESSION));

    // The only member rejoins: generation 2 completes at once and its session restarts.
    let rejoin = h.join(&a, "a");
    assert_eq!(h.joined(rejoin).generation_id, 2);
    assert_eq!(h.group.next_deadline(), Some(9_000 + SESSION));
    h.sync_all(std::slice::from_ref(&a));
    h.group.delete().expect_err("not empty");
    h.leave(&[(&a, None)]);
    assert_eq!(h.group.next_deadline(), None);
    h.assert_all_answered();
}

#[test]
fn a_late_tick_fires_everything_that_is_due() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    // Nobody heartbeats and the actor ticks only much later: both sessions end, the group
    // empties, and nothing is left to fire.
    h.advance(10 * SESSION);
    assert_eq!((h.group.phase(), h.group.generation_id()), (GroupPhase::Empty, 2));
    assert_eq!(h.group.next_deadline(), None);
    assert_eq!(h.heartbeat(&ids[0]), UNKNOWN_MEMBER_ID);
    h.assert_all_answered();
}
