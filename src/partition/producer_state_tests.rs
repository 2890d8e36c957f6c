//! Sequence rules of [`ProducerStateTable`], one test per rule.

use super::*;

const PID: i64 = 1000;

/// A batch of `count` records from producer `PID` at `epoch`, starting at sequence `base`.
fn batch(epoch: i16, base: i32, count: i32) -> BatchIdentity {
    let last = if count <= 0 {
        base
    } else {
        // Sequences wrap from i32::MAX to 0, so the span is computed modulo 2^31.
        let wrapped = (i64::from(base) + i64::from(count) - 1) % (i64::from(i32::MAX) + 1);
        i32::try_from(wrapped).expect("below 2^31")
    };
    BatchIdentity {
        producer_id: PID,
        producer_epoch: epoch,
        base_sequence: base,
        last_sequence: last,
        record_count: count,
        last_offset_delta: (count - 1).max(0),
        max_timestamp: 1_000 + i64::from(base),
    }
}

/// A table where producer `PID` at epoch 0 appended batches of `sizes` records each,
/// contiguously, starting at offset 100 and sequence 0.
fn table_with(sizes: &[i32]) -> ProducerStateTable {
    let mut table = ProducerStateTable::new();
    let (mut seq, mut offset) = (0, 100);
    for &size in sizes {
        let b = batch(0, seq, size);
        assert_eq!(table.check(&b), SequenceCheck::Append);
        table.record(&b, offset);
        seq += size;
        offset += i64::from(size);
    }
    table
}

#[test]
fn non_idempotent_batches_always_append_and_are_not_tracked() {
    let mut table = ProducerStateTable::new();
    let b = BatchIdentity {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        last_sequence: -1,
        record_count: 3,
        last_offset_delta: 2,
        max_timestamp: 5,
    };
    for offset in 0..3 {
        assert_eq!(table.check(&b), SequenceCheck::Append);
        table.record(&b, offset);
    }
    assert!(table.is_empty());
    assert_eq!(table.len(), 0);
}

#[test]
fn an_unknown_producer_may_start_at_any_sequence() {
    // Kafka's rule since KIP-360: the producer's state may have been removed with the log start.
    let table = ProducerStateTable::new();
    assert_eq!(table.check(&batch(0, 0, 5)), SequenceCheck::Append);
    assert_eq!(table.check(&batch(0, 5, 5)), SequenceCheck::Append);
}

#[test]
fn next_in_order_appends() {
    let table = table_with(&[5, 3]);
    assert_eq!(table.len(), 1);
    assert_eq!(table.check(&batch(0, 8, 2)), SequenceCheck::Append);
}

#[test]
fn gap_is_out_of_order() {
    let table = table_with(&[5]);
    assert_eq!(table.check(&batch(0, 7, 1)), SequenceCheck::OutOfOrder { expected: 5, got: 7 });
}

#[test]
fn retried_batch_is_a_duplicate_with_its_original_offset() {
    let table = table_with(&[5, 3, 2]);
    assert_eq!(table.check(&batch(0, 8, 2)), SequenceCheck::Duplicate { base_offset: 108 });
    assert_eq!(table.check(&batch(0, 0, 5)), SequenceCheck::Duplicate { base_offset: 100 });
    assert_eq!(table.check(&batch(0, 5, 3)), SequenceCheck::Duplicate { base_offset: 105 });
}

#[test]
fn partial_overlap_with_a_known_batch_is_out_of_order() {
    let table = table_with(&[5, 3]);
    assert_eq!(table.check(&batch(0, 5, 2)), SequenceCheck::OutOfOrder { expected: 8, got: 5 });
    assert_eq!(table.check(&batch(0, 3, 5)), SequenceCheck::OutOfOrder { expected: 8, got: 3 });
}

#[test]
fn lower_epoch_is_stale() {
    let mut table = ProducerStateTable::new();
    table.record(&batch(3, 0, 1), 0);
    assert_eq!(table.check(&batch(2, 1, 1)), SequenceCheck::StaleEpoch { current: 3, got: 2 });
    // Even a batch that would otherwise be a duplicate.
    assert_eq!(table.check(&batch(2, 0, 1)), SequenceCheck::StaleEpoch { current: 3, got: 2 });
}

#[test]
fn higher_epoch_must_restart_at_zero() {
    let table = table_with(&[5]);
    assert_eq!(table.check(&batch(1, 0, 2)), SequenceCheck::Append);
    assert_eq!(table.check(&batch(1, 5, 2)), SequenceCheck::OutOfOrder { expected: 0, got: 5 });
}

#[test]
fn recording_a_higher_epoch_forgets_the_old_batches() {
    let mut table = table_with(&[5, 5]);
    table.record(&batch(1, 0, 3), 200);
    assert_eq!(table.check(&batch(1, 3, 1)), SequenceCheck::Append);
    assert_eq!(table.check(&batch(1, 0, 3)), SequenceCheck::Duplicate { base_offset: 200 });
    // Epoch 0's (0..=4) at offset 100 is gone, not a duplicate any more.
    assert_eq!(table.check(&batch(1, 0, 5)), SequenceCheck::OutOfOrder { expected: 3, got: 0 });
    assert_eq!(table.check(&batch(0, 5, 5)), SequenceCheck::StaleEpoch { current: 1, got: 0 });
}

#[test]
fn recording_a_lower_epoch_changes_nothing() {
    let mut table = ProducerStateTable::new();
    table.record(&batch(2, 0, 1), 0);
    let before = table.clone();
    table.record(&batch(1, 0, 1), 1);
    assert_eq!(table, before);
}

#[test]
fn sequence_wraps_from_max_to_zero() {
    let mut table = ProducerStateTable::new();
    // A new epoch starts at 0, so reach the top by a batch recorded from the log.
    table.record(&batch(0, i32::MAX - 4, 5), 50);
    assert_eq!(table.check(&batch(0, 0, 3)), SequenceCheck::Append);
    table.record(&batch(0, 0, 3), 55);
    assert_eq!(table.check(&batch(0, 3, 1)), SequenceCheck::Append);
    assert_eq!(table.check(&batch(0, i32::MAX - 4, 5)), SequenceCheck::Duplicate { base_offset: 50 });
}

#[test]
fn batch_spanning_the_wrap_is_followed_by_its_last_plus_one() {
    let mut table = ProducerStateTable::new();
    let spanning = batch(0, i32::MAX - 1, 4);
    assert_eq!(spanning.last_sequence, 1);
    table.record(&spanning, 10);
    assert_eq!(table.check(&batch(0, 2, 1)), SequenceCheck::Append);
    assert_eq!(table.check(&spanning), SequenceCheck::Duplicate { base_offset: 10 });
}

#[test]
fn only_the_last_five_batches_are_duplicates() {
    let table = table_with(&[1, 1, 1, 1, 1, 1]);
    // Sequence 0 was the 6th-most-recent batch: out of the window.
    assert_eq!(table.check(&batch(0, 0, 1)), SequenceCheck::OutOfOrder { expected: 6, got: 0 });
    for seq in 1..6 {
        let offset = 100 + i64::from(seq);
        assert_eq!(table.check(&batch(0, seq, 1)), SequenceCheck::Duplicate { base_offset: offset });
    }
}

#[test]
fn producers_are_independent() {
    let mut table = table_with(&[5]);
    let other = BatchIdentity { producer_id: 7, ..batch(4, 0, 2) };
    assert_eq!(table.check(&other), SequenceCheck::Append);
    table.record(&other, 105);
    assert_eq!(table.len(), 2);
    assert_eq!(table.check(&batch(0, 5, 1)), SequenceCheck::Append);
    assert_eq!(table.check(&BatchIdentity { producer_id: 7, ..batch(4, 2, 1) }), SequenceCheck::Append);
}

#[test]
fn replaying_the_log_rebuilds_the_same_table() {
    // (batch, base offset) in log order, as recovery would read them.
    let log = [
        (batch(0, 0, 5), 0),
        (BatchIdentity { producer_id: -1, ..batch(-1, -1, 2) }, 5),
        (batch(0, 5, 5), 7),
        (BatchIdentity { producer_id: 9, ..batch(0, 0, 1) }, 12),
        (batch(1, 0, 2), 13),
        (batch(1, 2, 2), 15),
    ];
    let mut live = ProducerStateTable::new();
    for (b, offset) in &log {
        assert_eq!(live.check(b), SequenceCheck::Append, "{b:?}");
        live.record(b, *offset);
    }
    let mut rebuilt = ProducerStateTable::new();
    for (b, offset) in &log {
        rebuilt.record(b, *offset);
    }
    assert_eq!(rebuilt, live);
    assert_eq!(rebuilt.len(), 2);
    assert_eq!(rebuilt.check(&batch(1, 2, 2)), SequenceCheck::Duplicate { base_offset: 15 });
    assert_eq!(rebuilt.check(&batch(1, 4, 1)), SequenceCheck::Append);
    assert_eq!(rebuilt.check(&batch(0, 10, 1)), SequenceCheck::StaleEpoch { current: 1, got: 0 });
}

#[test]
fn summaries_show_each_producer_s_epoch_last_sequence_and_timestamp() {
    let mut table = table_with(&[3, 2]);
    let other = BatchIdentity { producer_id: 7, ..batch(4, 0, 4) };
    table.record(&other, 200);
    let newer_epoch = BatchIdentity { producer_id: 7, ..batch(5, 0, 1) };
    table.record(&newer_epoch, 204);
    let want = vec![
        ProducerSummary { producer_id: 7, producer_epoch: 5, last_sequence: 0, last_timestamp: 1_000 },
        ProducerSummary { producer_id: PID, producer_epoch: 0, last_sequence: 4, last_timestamp: 1_003 },
    ];
    assert_eq!(table.summaries(), want);
}

#[test]
fn producers_whose_last_batch_ends_below_the_log_start_are_forgotten() {
    // PID: batches at offsets 100..=102 and 103..=104; producer 7: one batch at 200..=203, then
    // an empty one (compacted: no records, offsets 204..=206 still spanned).
    let mut table = table_with(&[3, 2]);
    table.record(&BatchIdentity { producer_id: 7, ..batch(0, 0, 4) }, 200);
    let emptied = BatchIdentity { producer_id: 7, record_count: 0, last_offset_delta: 2, ..batch(0, 4, 3) };
    table.record(&emptied, 204);
    assert_eq!(table.remove_below(104), 0, "PID's last batch ends at 104");
    assert_eq!(table.remove_below(105), 1, "now it is wholly below");
    assert_eq!(table.summaries().iter().map(|p| p.producer_id).collect::<Vec<_>>(), vec![7]);
    assert_eq!(table.remove_below(206), 0, "an emptied batch still counts up to its last offset");
    assert_eq!(table.remove_below(207), 1);
    assert!(table.is_empty());
    table.record(&batch(0, 5, 1), 300);
    assert_eq!(table.check(&batch(0, 6, 1)), SequenceCheck::Append, "tracked again from where it goes on");
    assert_eq!(table.check(&batch(0, 7, 1)), SequenceCheck::OutOfOrder { expected: 6, got: 7 });
}

#[test]
fn a_marker_with_a_higher_epoch_fences_the_old_one() {
    let mut table = table_with(&[5]);
    table.record_marker(PID, 1, 200);
    assert_eq!(table.epoch_of(PID), Some(1));
    assert_eq!(table.check(&batch(0, 5, 1)), SequenceCheck::StaleEpoch { current: 1, got: 0 });
    assert_eq!(table.check(&batch(1, 0, 1)), SequenceCheck::Append);
}

#[test]
fn a_marker_of_the_same_epoch_keeps_the_sequence() {
    let mut table = table_with(&[5]);
    table.record_marker(PID, 0, 200);
    assert_eq!(table.check(&batch(0, 5, 1)), SequenceCheck::Append);
}
