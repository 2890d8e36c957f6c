//! Follower progress, the high watermark and ISR changes, one test per rule.

use super::*;

const LEADER: NodeId = 1;
const B: NodeId = 2;
const C: NodeId = 3;
const REPLICAS: [NodeId; 3] = [LEADER, B, C];
const LAG_MS: i64 = 10_000;

/// Node 1 elected at t=1000 with high watermark 100, log end 120 and the full ISR.
fn tracker() -> IsrTracker {
    IsrTracker::new(LEADER, 100, 120, &REPLICAS, 1_000)
}

#[test]
fn isr_followers_start_caught_up_at_election_without_an_offset() {
    let t = tracker();
    assert_eq!(t.leader(), LEADER);
    assert_eq!(t.high_watermark(), 100);
    let b = t.follower(B).expect("ISR member is tracked");
    assert_eq!((b.log_end_offset(), b.last_caught_up_ms()), (None, Some(1_000)));
    assert!(t.follower(LEADER).is_none());
}

#[test]
fn fetch_at_the_leader_end_is_caught_up_now() {
    let mut f = FollowerState::new(None);
    f.record_fetch(120, 120, 120, 5_000);
    assert_eq!((f.log_end_offset(), f.last_caught_up_ms()), (Some(120), Some(5_000)));
}

#[test]
fn fetch_reaching_the_previous_leader_end_is_caught_up_as_of_that_fetch() {
    let mut f = FollowerState::new(None);
    f.record_fetch(100, 100, 120, 5_000);
    assert_eq!(f.last_caught_up_ms(), None);
    // The leader has moved on to 130, but the follower has what it had at 5000.
    f.record_fetch(120, 120, 130, 5_100);
    assert_eq!((f.log_end_offset(), f.last_caught_up_ms()), (Some(120), Some(5_000)));
}

#[test]
fn fetch_short_of_both_ends_changes_only_the_offset() {
    let mut f = FollowerState::new(Some(1_000));
    f.record_fetch(100, 100, 120, 5_000);
    f.record_fetch(110, 110, 130, 5_100);
    assert_eq!((f.log_end_offset(), f.last_caught_up_ms()), (Some(110), Some(1_000)));
}

#[test]
fn caught_up_time_never_moves_back() {
    let mut f = FollowerState::new(None);
    f.record_fetch(120, 120, 120, 5_000);
    // A reordered, older fetch.
    f.record_fetch(120, 120, 120, 4_000);
    assert_eq!(f.last_caught_up_ms(), Some(5_000));
}

#[test]
fn previous_leader_end_remembered_is_the_largest_seen() {
    let mut f = FollowerState::new(None);
    f.record_fetch(100, 100, 150, 5_000);
    // A stale, lower leader end must not make 140 look caught up as of 5100.
    f.record_fetch(100, 100, 140, 5_100);
    f.record_fetch(140, 140, 160, 5_200);
    assert_eq!(f.last_caught_up_ms(), None);
    f.record_fetch(160, 160, 170, 5_300);
    assert_eq!(f.last_caught_up_ms(), Some(5_200));
}

#[test]
fn fetches_out_of_range_or_from_the_leader_are_ignored() {
    let mut t = tracker();
    t.record_fetch(LEADER, 120, 120, 120, 2_000);
    t.record_fetch(B, -1, -1, 120, 2_000);
    t.record_fetch(B, 121, 121, 120, 2_000);
    assert!(t.follower(LEADER).is_none());
    assert_eq!(t.follower(B).and_then(|f| f.log_end_offset()), None);
}

#[test]
fn high_watermark_is_the_smallest_isr_log_end() {
    let mut t = tracker();
    t.record_fetch(B, 115, 115, 120, 2_000);
    t.record_fetch(C, 110, 110, 120, 2_000);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 110);
    t.record_fetch(C, 120, 120, 120, 2_100);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 115);
    t.record_fetch(B, 120, 120, 120, 2_100);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 120);
    assert_eq!(t.high_watermark(), 120);
}

#[test]
fn the_leader_alone_commits_its_log_end() {
    let mut t = IsrTracker::new(LEADER, 0, 0, &[LEADER], 0);
    assert_eq!(t.update_high_watermark(42, &[LEADER]), 42);
    // Listed or not, the leader counts; an empty ISR is the leader alone.
    assert_eq!(t.update_high_watermark(50, &[]), 50);
}

#[test]
fn isr_member_without_a_fetch_holds_the_high_watermark_where_it_was() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 100);
    t.record_fetch(C, 118, 118, 120, 2_000);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 118);
}

#[test]
fn isr_member_unknown_to_the_tracker_holds_it_too() {
    let mut t = IsrTracker::new(LEADER, 100, 120, &[LEADER], 1_000);
    assert_eq!(t.update_high_watermark(120, &[LEADER, B]), 100);
}

#[test]
fn followers_outside_the_isr_do_not_hold_the_high_watermark() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.record_fetch(C, 50, 50, 120, 2_000);
    assert_eq!(t.update_high_watermark(120, &[LEADER, B]), 120);
}

#[test]
fn high_watermark_never_moves_back() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.record_fetch(C, 120, 120, 120, 2_000);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 120);
    // C truncated and refetches from lower; a stale smaller leader end; C re-added behind.
    t.record_fetch(C, 90, 90, 120, 2_100);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 120);
    assert_eq!(t.update_high_watermark(80, &[LEADER]), 120);
    assert_eq!(t.high_watermark(), 120);
}

#[test]
fn lagging_follower_leaves_exactly_after_the_lag_limit() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.record_fetch(C, 120, 120, 120, 2_000);
    // The leader appends; B keeps fetching at the end, C goes silent.
    t.record_fetch(B, 130, 130, 130, 12_000);
    assert_eq!(t.isr_change(&REPLICAS, &REPLICAS, 130, 2_000 + LAG_MS, LAG_MS), None);
    assert_eq!(t.isr_change(&REPLICAS, &REPLICAS, 130, 2_001 + LAG_MS, LAG_MS), Some(vec![LEADER, B]));
}

#[test]
fn isr_follower_that_never_fetches_leaves_after_the_lag_from_election() {
    let t = tracker();
    assert_eq!(t.isr_change(&REPLICAS, &REPLICAS, 120, 1_000 + LAG_MS, LAG_MS), None);
    assert_eq!(t.isr_change(&REPLICAS, &REPLICAS, 120, 1_001 + LAG_MS, LAG_MS), Some(vec![LEADER]));
}

#[test]
fn idle_follower_at_the_leader_end_stays_however_long_ago() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.record_fetch(C, 120, 120, 120, 2_000);
    assert_eq!(t.isr_change(&REPLICAS, &REPLICAS, 120, 1_000_000, LAG_MS), None);
}

#[test]
fn follower_under_steady_load_stays_in_sync() {
    let mut t = tracker();
    // Each fetch reaches the leader end of the previous fetch, never the current one.
    let mut leo = 120;
    for i in 0..100 {
        t.record_fetch(B, leo, leo, leo + 5, 2_000 + i * 1_000);
        t.record_fetch(C, leo, leo, leo + 5, 2_000 + i * 1_000);
        leo += 5;
    }
    assert_eq!(t.isr_change(&REPLICAS, &REPLICAS, leo, 102_000, LAG_MS), None);
}

#[test]
fn leader_is_never_removed() {
    let t = IsrTracker::new(LEADER, 100, 120, &REPLICAS, 0);
    // Far past every lag limit: the followers go, the leader stays, even when not listed.
    assert_eq!(t.isr_change(&REPLICAS, &REPLICAS, 500, i64::MAX, LAG_MS), Some(vec![LEADER]));
    assert_eq!(t.isr_change(&[B, C], &[B, C], 500, i64::MAX, 0), Some(vec![LEADER]));
    assert_eq!(t.isr_change(&[LEADER], &REPLICAS, 500, i64::MIN, -1), None);
}

#[test]
fn caught_up_follower_rejoins_in_replica_order() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.update_high_watermark(120, &[LEADER, B]);
    // C fetched long ago and was dropped; it catches up in two fetches while B keeps up.
    t.record_fetch(B, 130, 130, 130, 20_000);
    t.record_fetch(C, 60, 60, 130, 20_000);
    assert_eq!(t.isr_change(&[LEADER, B], &REPLICAS, 130, 20_000, LAG_MS), None);
    t.record_fetch(B, 140, 140, 140, 20_500);
    t.record_fetch(C, 130, 130, 140, 20_500);
    assert_eq!(t.isr_change(&[B, LEADER], &REPLICAS, 140, 20_500, LAG_MS), Some(vec![LEADER, B, C]));
}

#[test]
fn follower_below_the_high_watermark_does_not_join() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.update_high_watermark(125, &[LEADER, B]);
    // C is caught up as of its previous fetch, but lacks committed records 118..120.
    t.record_fetch(C, 110, 110, 118, 2_000);
    t.record_fetch(C, 118, 118, 125, 2_100);
    assert_eq!(t.follower(C).and_then(|f| f.last_caught_up_ms()), Some(2_000));
    assert_eq!(t.isr_change(&[LEADER, B], &REPLICAS, 125, 2_100, LAG_MS), None);
}

#[test]
fn follower_below_the_leader_epoch_start_does_not_join() {
    // Elected with HW 100 but log end 120: records 100..120 of older epochs may be committed.
    let mut t = IsrTracker::new(LEADER, 100, 120, &[LEADER], 1_000);
    t.record_fetch(C, 110, 110, 110, 2_000);
    assert_eq!(t.isr_change(&[LEADER], &REPLICAS, 110, 2_000, LAG_MS), None);
    t.record_fetch(C, 120, 120, 120, 2_100);
    assert_eq!(t.isr_change(&[LEADER], &REPLICAS, 120, 2_100, LAG_MS), Some(vec![LEADER, C]));
}

#[test]
fn follower_that_is_not_caught_up_does_not_join() {
    let mut t = IsrTracker::new(LEADER, 100, 100, &[LEADER], 1_000);
    // At the HW and past the epoch start, but always short of the leader end.
    t.record_fetch(C, 100, 100, 150, 2_000);
    t.record_fetch(C, 120, 120, 170, 2_100);
    assert_eq!(t.isr_change(&[LEADER], &REPLICAS, 170, 2_100, LAG_MS), None);
}

#[test]
fn shrink_and_expand_in_one_proposal() {
    let mut t = tracker();
    t.record_fetch(C, 120, 120, 120, 1_500);
    // B (in the ISR at election) never fetches; C is outside the ISR but caught up.
    t.record_fetch(C, 130, 130, 130, 11_500);
    assert_eq!(t.isr_change(&[LEADER, B], &REPLICAS, 130, 11_500, LAG_MS), Some(vec![LEADER, C]));
}

#[test]
fn members_that_are_not_replicas_are_dropped() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.record_fetch(C, 120, 120, 120, 2_000);
    t.remove_follower(C);
    assert!(t.follower(C).is_none());
    assert_eq!(t.isr_change(&REPLICAS, &[LEADER, B], 120, 2_000, LAG_MS), Some(vec![LEADER, B]));
}

#[test]
fn a_follower_dropped_from_the_isr_rejoins_only_after_it_fetches_again() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.record_fetch(C, 120, 120, 120, 2_000);
    // C, at the log end when it froze, is dropped by the controller; nothing is written.
    t.dropped_from_isr(C);
    assert_eq!(t.isr_change(&[LEADER, B], &REPLICAS, 120, 60_000, LAG_MS), None, "not taken back");
    assert_eq!(t.follower(C).and_then(|f| f.log_end_offset()), Some(120), "still known, for its lag");
    t.record_fetch(C, 120, 120, 120, 61_000);
    assert_eq!(t.isr_change(&[LEADER, B], &REPLICAS, 120, 61_000, LAG_MS), Some(REPLICAS.to_vec()));
}

#[test]
fn order_and_repeats_alone_are_no_change() {
    let mut t = tracker();
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.record_fetch(C, 120, 120, 120, 2_000);
    assert_eq!(t.isr_change(&[C, LEADER, B, B], &REPLICAS, 120, 2_000, LAG_MS), None);
    assert_eq!(t.isr_change(&REPLICAS, &[LEADER, B, C, B], 120, 2_000, LAG_MS), None);
}

#[test]
fn only_durable_data_counts_towards_the_high_watermark() {
    let mut t = IsrTracker::new(LEADER, 100, 100, &REPLICAS, 1_000);
    // Both followers appended up to 120 but fsynced less.
    t.record_fetch(B, 120, 110, 120, 2_000);
    t.record_fetch(C, 120, 105, 120, 2_000);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 105);
    // Their progress reports move it without another fetch.
    t.record_durable(C, 120);
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 110);
    t.record_durable(B, 120);
    assert_eq!(t.update_high_watermark(118, &REPLICAS), 118, "the leader's own durable end counts too");
    assert_eq!(t.update_high_watermark(120, &REPLICAS), 120);
}

#[test]
fn a_durable_offset_never_exceeds_what_the_follower_appended() {
    let mut t = IsrTracker::new(LEADER, 100, 100, &REPLICAS, 1_000);
    t.record_durable(B, 500);
    let durable = |t: &IsrTracker| t.follower(B).and_then(|f| f.durable_offset());
    assert_eq!(durable(&t), None, "no report counts before the follower's first fetch");
    t.record_fetch(B, 110, 200, 120, 2_000);
    assert_eq!(durable(&t), Some(110));
    t.record_durable(B, 130);
    assert_eq!(durable(&t), Some(110));
}

#[test]
fn a_follower_joins_the_isr_only_once_the_committed_records_are_on_its_disk() {
    let mut t = IsrTracker::new(LEADER, 100, 100, &[LEADER, B], 1_000);
    t.record_fetch(B, 100, 100, 100, 2_000);
    t.update_high_watermark(100, &[LEADER, B]);
    t.record_fetch(C, 100, 90, 100, 2_000);
    assert_eq!(t.isr_change(&[LEADER, B], &REPLICAS, 100, 2_000, 10_000), None, "C's tail is not fsynced");
    t.record_durable(C, 100);
    assert_eq!(t.isr_change(&[LEADER, B], &REPLICAS, 100, 2_000, 10_000), Some(vec![LEADER, B, C]));
}

#[test]
fn a_durable_offset_only_moves_forward_until_the_follower_truncates() {
    let mut f = FollowerState::new(None);
    f.record_fetch(120, 100, 120, 1_000);
    f.record_durable(120);
    // The same fetch, answered after a long poll, still carries the offset it was sent with.
    f.record_fetch(120, 100, 120, 1_500);
    assert_eq!(f.durable_offset(), Some(120), "a stale report never lowers it");
    // Fetching from below its previous offset: the follower truncated and lost what was above.
    f.record_fetch(90, 90, 120, 2_000);
    assert_eq!(f.durable_offset(), Some(90));
}

#[test]
fn low_watermark_waits_for_every_named_follower_log_start() {
    const SESSION: i64 = 6_000;
    let mut t = tracker();
    assert_eq!(t.low_watermark(REPLICAS, 50, 2_000, SESSION), -1, "no follower reported its log start yet");
    assert_eq!(t.low_watermark([LEADER], 50, 2_000, SESSION), 50, "alone, the leader's own");
    t.record_fetch(B, 120, 120, 120, 2_000);
    t.record_log_start(B, 40);
    t.record_fetch(C, 120, 120, 120, 2_000);
    t.record_log_start(C, 50);
    assert_eq!(t.low_watermark(REPLICAS, 50, 2_500, SESSION), 40);
    t.record_log_start(B, 30);
    assert_eq!(t.follower(B).and_then(|f| f.log_start_offset), Some(40), "a reordered fetch never moves it back");
    t.record_log_start(B, 55);
    assert_eq!(t.low_watermark(REPLICAS, 50, 2_500, SESSION), 50);
    assert_eq!(t.low_watermark([LEADER, C], 60, 2_500, SESSION), 50);
    // C falls silent (frozen): after a session it no longer holds the low watermark back.
    t.record_fetch(B, 120, 120, 120, 8_500);
    assert_eq!(t.low_watermark(REPLICAS, 60, 8_000, SESSION), 50);
    assert_eq!(t.low_watermark(REPLICAS, 60, 8_001, SESSION), 55);
    // A follower never heard from in this leadership counts from the election.
    let fresh = tracker();
    assert_eq!(fresh.low_watermark(REPLICAS, 60, 7_000, SESSION), -1);
    assert_eq!(fresh.low_watermark(REPLICAS, 60, 7_001, SESSION), 60);
}
