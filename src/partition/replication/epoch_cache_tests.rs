//! History rules of [`LeaderEpochCache`]: assign, the OffsetForLeaderEpoch answer, truncation.

use super::*;

/// A cache built by assigning `(epoch, start_offset)` pairs in order, each of which must be
/// accepted.
fn cache(pairs: &[(i32, i64)]) -> LeaderEpochCache {
    let mut c = LeaderEpochCache::new();
    for &(epoch, start) in pairs {
        assert!(c.assign(epoch, start), "assign({epoch}, {start}) was ignored");
    }
    c
}

/// The history as pairs, for compact assertions.
fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
    c.entries().iter().map(|e| (e.epoch, e.start_offset)).collect()
}

/// An answer, for compact assertions.
fn answer(epoch: i32, end_offset: i64) -> Option<EpochEndOffset> {
    Some(EpochEndOffset { epoch, end_offset })
}

#[test]
fn empty_cache_knows_nothing() {
    let c = LeaderEpochCache::new();
    assert!(c.is_empty());
    assert_eq!((c.earliest(), c.latest(), c.latest_epoch()), (None, None, None));
    assert_eq!(c.end_offset_for(0, 10), None);
    assert_eq!(c.epoch_for_offset(0), None);
}

#[test]
fn assign_appends_newer_epochs() {
    let c = cache(&[(0, 0), (2, 50), (5, 120)]);
    assert_eq!(pairs(&c), [(0, 0), (2, 50), (5, 120)]);
    assert_eq!(c.len(), 3);
    assert_eq!(c.earliest(), Some(EpochEntry { epoch: 0, start_offset: 0 }));
    assert_eq!(c.latest(), Some(EpochEntry { epoch: 5, start_offset: 120 }));
    assert_eq!(c.latest_epoch(), Some(5));
}

#[test]
fn assign_of_the_current_epoch_at_a_later_offset_is_ignored() {
    let mut c = cache(&[(1, 0), (3, 100)]);
    assert!(!c.assign(3, 100));
    assert!(!c.assign(3, 150));
    assert_eq!(pairs(&c), [(1, 0), (3, 100)]);
}

#[test]
fn assign_of_a_stale_epoch_is_ignored() {
    let mut c = cache(&[(1, 0), (3, 100)]);
    assert!(!c.assign(2, 150));
    assert!(!c.assign(0, 0));
    assert!(!c.assign(1, 100));
    assert_eq!(pairs(&c), [(1, 0), (3, 100)]);
}

#[test]
fn assign_of_negative_values_is_ignored() {
    let mut c = LeaderEpochCache::new();
    assert!(!c.assign(-1, 0));
    assert!(!c.assign(0, -1));
    assert!(c.is_empty());
}

#[test]
fn newer_epoch_below_existing_starts_drops_them() {
    // The log was truncated to 80 and a new leader writes there.
    let mut c = cache(&[(1, 0), (3, 100), (4, 150)]);
    assert!(c.assign(6, 80));
    assert_eq!(pairs(&c), [(1, 0), (6, 80)]);
    // Down to the very start.
    assert!(c.assign(7, 0));
    assert_eq!(pairs(&c), [(7, 0)]);
}

#[test]
fn epoch_that_wrote_nothing_is_replaced_at_the_same_offset() {
    let mut c = cache(&[(1, 0), (2, 100)]);
    assert!(c.assign(3, 100));
    assert_eq!(pairs(&c), [(1, 0), (3, 100)]);
}

#[test]
fn same_epoch_at_an_earlier_offset_moves_its_start_back() {
    // As Kafka: the same epoch re-assigned lower replaces the entry.
    let mut c = cache(&[(1, 0), (3, 100)]);
    assert!(c.assign(3, 80));
    assert_eq!(pairs(&c), [(1, 0), (3, 80)]);
}

#[test]
fn older_epoch_below_newer_entries_replaces_them() {
    // Only reachable after a truncation the caller did not report; the history stays ordered.
    let mut c = cache(&[(1, 0), (5, 100)]);
    assert!(c.assign(3, 50));
    assert_eq!(pairs(&c), [(1, 0), (3, 50)]);
}

#[test]
fn end_offset_of_the_latest_epoch_is_the_log_end() {
    let c = cache(&[(0, 0), (2, 50)]);
    assert_eq!(c.end_offset_for(2, 75), answer(2, 75));
}

#[test]
fn end_offset_of_an_older_epoch_is_the_next_start() {
    let c = cache(&[(0, 0), (2, 50), (5, 120)]);
    assert_eq!(c.end_offset_for(0, 200), answer(0, 50));
    assert_eq!(c.end_offset_for(2, 200), answer(2, 120));
}

#[test]
fn end_offset_of_an_epoch_in_a_gap_is_answered_with_the_epoch_below() {
    let c = cache(&[(0, 0), (2, 50), (5, 120)]);
    assert_eq!(c.end_offset_for(1, 200), answer(0, 50));
    assert_eq!(c.end_offset_for(3, 200), answer(2, 120));
    assert_eq!(c.end_offset_for(4, 200), answer(2, 120));
}

#[test]
fn end_offset_of_an_epoch_older_than_the_history_is_undefined() {
    let c = cache(&[(3, 100), (5, 120)]);
    assert_eq!(c.end_offset_for(2, 200), None);
    assert_eq!(c.end_offset_for(0, 200), None);
}

#[test]
fn end_offset_of_an_epoch_newer_than_the_latest_is_undefined() {
    let c = cache(&[(3, 100), (5, 120)]);
    assert_eq!(c.end_offset_for(6, 200), None);
    assert_eq!(c.end_offset_for(i32::MAX, 200), None);
}

#[test]
fn end_offset_of_a_negative_epoch_is_undefined() {
    let c = cache(&[(0, 0)]);
    assert_eq!(c.end_offset_for(-1, 10), None);
    assert_eq!(c.end_offset_for(i32::MIN, 10), None);
}

#[test]
fn wire_form_of_answers() {
    assert_eq!(EpochEndOffset::to_wire(None), (-1, -1));
    assert_eq!(EpochEndOffset::to_wire(answer(3, 40)), (3, 40));
    assert_eq!(EpochEndOffset::from_wire(-1, -1), None);
    assert_eq!(EpochEndOffset::from_wire(3, -1), None);
    assert_eq!(EpochEndOffset::from_wire(-1, 40), None);
    assert_eq!(EpochEndOffset::from_wire(3, 40), answer(3, 40));
}

#[test]
fn epoch_for_offset_is_the_epoch_covering_it() {
    let c = cache(&[(1, 10), (4, 50)]);
    assert_eq!(c.epoch_for_offset(9), None);
    assert_eq!(c.epoch_for_offset(10), Some(1));
    assert_eq!(c.epoch_for_offset(49), Some(1));
    assert_eq!(c.epoch_for_offset(50), Some(4));
    assert_eq!(c.epoch_for_offset(i64::MAX), Some(4));
}

#[test]
fn truncate_from_end_drops_epochs_starting_at_or_after_it() {
    let mut c = cache(&[(0, 0), (2, 50), (5, 120)]);
    assert!(!c.truncate_from_end(121));
    assert!(c.truncate_from_end(120));
    assert_eq!(pairs(&c), [(0, 0), (2, 50)]);
    assert!(c.truncate_from_end(10));
    assert_eq!(pairs(&c), [(0, 0)]);
    assert!(c.truncate_from_end(0));
    assert!(c.is_empty());
}

#[test]
fn truncate_from_end_with_a_negative_offset_changes_nothing() {
    let mut c = cache(&[(0, 0)]);
    assert!(!c.truncate_from_end(-1));
    assert_eq!(pairs(&c), [(0, 0)]);
}

#[test]
fn truncate_from_start_keeps_the_covering_epoch_and_clamps_its_start() {
    let mut c = cache(&[(0, 0), (2, 50), (5, 120)]);
    assert!(c.truncate_from_start(70));
    assert_eq!(pairs(&c), [(2, 70), (5, 120)]);
    // Exactly at an epoch start: earlier ones go, nothing is clamped.
    assert!(c.truncate_from_start(120));
    assert_eq!(pairs(&c), [(5, 120)]);
    // The same start again changes nothing.
    assert!(!c.truncate_from_start(120));
}

#[test]
fn truncate_from_start_before_every_epoch_changes_nothing() {
    let mut c = cache(&[(2, 50), (5, 120)]);
    assert!(!c.truncate_from_start(10));
    assert!(!c.truncate_from_start(-5));
    assert!(!LeaderEpochCache::new().truncate_from_start(10));
    assert_eq!(pairs(&c), [(2, 50), (5, 120)]);
}

#[test]
fn truncate_from_start_past_the_latest_epoch_keeps_it() {
    let mut c = cache(&[(2, 50), (5, 120)]);
    assert!(c.truncate_from_start(500));
    assert_eq!(pairs(&c), [(5, 500)]);
    assert_eq!(c.end_offset_for(5, 600), answer(5, 600));
}

#[test]
fn truncation_keeps_the_history_ordered_for_later_assigns() {
    let mut c = cache(&[(0, 0), (2, 50), (5, 120)]);
    c.truncate_from_end(60);
    assert!(c.assign(6, 60));
    assert_eq!(pairs(&c), [(0, 0), (2, 50), (6, 60)]);
    assert_eq!(c.end_offset_for(5, 90), answer(2, 60));
}
