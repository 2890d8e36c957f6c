//! Static membership (`group.instance.id`): replacement and fencing, leave by instance id,
//! staying through a rebalance without rejoining.

use super::harness::*;
use crate::group::{GroupPhase, JoinRequest};

/// A join of a static member `instance` with no member id yet.
fn static_join(h: &Harness, instance: &str, client: &str) -> JoinRequest {
    let mut req = h.join_request("", client);
    req.group_instance_id = Some(instance.into());
    // Static members never get MEMBER_ID_REQUIRED, even from v4+ clients.
    req.require_known_member_id = true;
    req
}

#[test]
fn a_restarted_static_member_replaces_and_fences_its_old_member_id() {
    let mut h = Harness::new(3_000);
    let a_join = h.send_join(static_join(&h, "ia", "a"));
    let (b, _) = h.join_v4("b");
    h.finish_join_phase();
    let a = h.joined(a_join).member_id;
    assert!(a.starts_with("ia-"));
    h.sync_all(&[a.clone(), b.clone()]);

    let restart = h.send_join(static_join(&h, "ia", "a"));
    let answer = h.joined(restart);
    let a2 = answer.member_id.clone();
    assert_ne!(a2, a);
    // Same protocols in a Stable group: no rebalance, and the old leader id so the member does
    // not compute an assignment nobody would receive.
    assert_eq!((answer.error_code, answer.generation_id, answer.leader.as_str()), (NONE, 1, a.as_str()));
    assert!(answer.members.is_empty());
    assert_eq!(h.group.phase(), GroupPhase::Stable);

    assert_eq!(h.group.heartbeat(&a, 1, Some("ia"), h.now), FENCED_INSTANCE_ID);
    assert_eq!(h.group.heartbeat(&a, 1, None, h.now), UNKNOWN_MEMBER_ID);
    assert_eq!(h.group.validate_commit(&a, 1, Some("ia"), h.now), FENCED_INSTANCE_ID);
    assert_eq!(h.group.heartbeat(&a2, 1, Some("ia"), h.now), NONE);
    let token = h.sync_static(&a2, "ia", 1);
    assert_eq!(h.synced(token).assignment, assignment(&a), "it keeps its assignment");

    assert_eq!(h.leave(&[("", Some("ia"))]), vec![NONE]);
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    let b_join = h.join(&b, "b");
    let answer = h.joined(b_join);
    assert_eq!((answer.generation_id, answer.leader.as_str(), answer.members.len()), (2, b.as_str(), 1));
    h.assert_all_answered();
}

#[test]
fn a_v9_static_leader_restart_learns_it_leads_but_skips_the_assignment() {
    let mut h = Harness::new(3_000);
    let a_join = h.send_join(static_join(&h, "ia", "a"));
    let b_join = h.send_join(static_join(&h, "ib", "b"));
    h.finish_join_phase();
    let (a, b) = (h.joined(a_join).member_id, h.joined(b_join).member_id);
    h.sync_all(&[a.clone(), b.clone()]);

    let v9 = |h: &Harness, instance: &str, client: &str| {
        let mut req = static_join(h, instance, client);
        req.supports_skip_assignment = true;
        req
    };
    let restart = h.send_join(v9(&h, "ia", "a"));
    let answer = h.joined(restart);
    let a2 = answer.member_id.clone();
    // KIP-814: the new id is named leader, sees every member, and is told not to assign.
    assert_eq!((answer.error_code, answer.generation_id, answer.leader.as_str()), (NONE, 1, a2.as_str()));
    assert!(answer.skip_assignment);
    let listed: Vec<_> = answer.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, vec![a2.as_str(), b.as_str()]);
    assert_eq!(h.group.phase(), GroupPhase::Stable);
    let token = h.sync_static(&a2, "ia", 1);
    assert_eq!(h.synced(token).assignment, assignment(&a), "it keeps its assignment");

    // A follower's v9 restart is not the leader: no members, nothing to skip.
    let restart = h.send_join(v9(&h, "ib", "b"));
    let answer = h.joined(restart);
    assert_eq!((answer.leader.as_str(), answer.members.len(), answer.skip_assignment), (a2.as_str(), 0, false));
    assert_eq!(h.group.phase(), GroupPhase::Stable);
    h.assert_all_answered();
}

#[test]
fn a_static_restart_while_completing_fences_the_parked_sync_and_rebalances() {
    let mut h = Harness::new(3_000);
    let (b, _) = h.join_v4("b");
    let a_join = h.send_join(static_join(&h, "ia", "a"));
    h.finish_join_phase();
    let a = h.joined(a_join).member_id;
    let a_sync = h.sync(&a, 1, Vec::new());
    assert!(h.is_waiting(a_sync));

    let restart = h.send_join(static_join(&h, "ia", "a"));
    assert_eq!(h.synced(a_sync).error_code, FENCED_INSTANCE_ID);
    assert_eq!(h.group.phase(), GroupPhase::PreparingRebalance);
    assert!(h.is_waiting(restart));
    let b_join = h.join(&b, "b");
    let a2 = h.joined(restart).member_id;
    let listed: Vec<_> = h.joined(b_join).members.into_iter().map(|m| (m.member_id, m.group_instance_id)).collect();
    assert_eq!(listed, vec![(b.clone(), None), (a2, Some("ia".to_string()))]);
    h.assert_all_answered();
}

#[test]
fn a_static_member_that_does_not_rejoin_stays_in_the_next_generation() {
    let mut h = Harness::new(3_000);
    let a_join = h.send_join(static_join(&h, "ia", "a"));
    let (b, _) = h.join_v4("b");
    h.finish_join_phase();
    let a = h.joined(a_join).member_id;
    h.sync_all(&[a.clone(), b.clone()]);

    let started = h.now;
    let (c, c_join) = h.join_v4("c");
    let b_join = h.join(&b, "b");
    while h.now + 3_000 < started + REBALANCE {
        h.advance(3_000);
        assert_eq!(h.group.heartbeat(&a, 1, Some("ia"), h.now), REBALANCE_IN_PROGRESS);
    }
    h.tick_at(started + REBALANCE);
    // The leader did not rejoin: the first member that did leads generation 2.
    let lead = h.joined(b_join);
    assert_eq!((lead.generation_id, lead.leader.as_str()), (2, b.as_str()));
    let listed: Vec<_> = lead.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, vec![a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(h.joined(c_join).generation_id, 2);

    assert_eq!(h.group.heartbeat(&a, 1, Some("ia"), h.now), ILLEGAL_GENERATION);
    let mut rejoin = static_join(&h, "ia", "a");
    rejoin.member_id = a.clone();
    let rejoin = h.send_join(rejoin);
    assert_eq!(h.joined(rejoin).generation_id, 2);
    h.sync_all(&[a, b, c]);
    h.assert_all_answered();
}

#[test]
fn a_leave_batch_answers_each_entry() {
    let mut h = Harness::new(3_000);
    let (a, _) = h.join_v4("a");
    let (b, _) = h.join_v4("b");
    let c_join = h.send_join(static_join(&h, "ic", "c"));
    h.finish_join_phase();
    let c = h.joined(c_join).member_id;
    h.sync_all(&[a.clone(), b.clone(), c]);

    let codes = h.leave(&[(&a, None), ("ghost", None), ("", Some("ic")), ("", Some("nope")), (&b, Some("ic"))]);
    assert_eq!(codes, vec![NONE, UNKNOWN_MEMBER_ID, NONE, UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID]);
    assert_eq!(h.group.describe().members.len(), 1);
    let b_join = h.join(&b, "b");
    assert_eq!(h.joined(b_join).generation_id, 2);
    h.assert_all_answered();
}
