//! The transactions of one partition, as its log records them: which producers have a
//! transaction open here (from their first transactional batch to their commit or abort
//! marker), which transactions were aborted (so a `read_committed` fetch can tell the consumer
//! what to drop), and the last stable offset (LSO) below which every transaction is decided.
//!
//! Like the producer state, it is rebuilt on recovery and after a truncation by replaying the
//! log in offset order ([`TxnIndex::record`]), so it survives restarts and leader changes:
//! followers replay the same batches as the leader.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// The transaction fields of one batch in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnBatch {
    /// The producer id (negative: no producer).
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// For a control batch: `Some(true)` a commit marker, `Some(false)` an abort marker.
    pub marker: Option<bool>,
    /// For a control batch: the epoch of the coordinator that wrote it (else -1).
    pub coordinator_epoch: i32,
}

/// An aborted transaction, as a `read_committed` Fetch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer whose records to drop.
    pub producer_id: i64,
    /// Its first record in this partition.
    pub first_offset: i64,
    /// The offset of its abort marker.
    pub last_offset: i64,
}

/// A transaction open in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OngoingTxn {
    /// The producer's epoch when it began here.
    pub producer_epoch: i16,
    /// Its first record in this partition.
    pub first_offset: i64,
}

/// The transactions of a partition (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnIndex {
    /// Open transactions by producer id.
    ongoing: HashMap<i64, OngoingTxn>,
    /// Decided transactions whose marker may still be above the high watermark, as
    /// (marker offset → first offset): they stay unstable until the marker is committed.
    deciding: BTreeMap<i64, i64>,
    /// Aborted transactions, in marker order.
    aborted: VecDeque<AbortedTxn>,
    /// By producer, the newest coordinator epoch of its markers here: a marker of an older
    /// coordinator (one that was replaced while it was frozen or cut off) is refused, or it
    /// could end the producer's next transaction here with the previous one's decision.
    coordinator_epochs: HashMap<i64, i32>,
}

impl TxnIndex {
    /// An empty index, for a new partition or before replaying the log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one appended batch (also how the index is rebuilt from the log).
    pub fn record(&mut self, b: &TxnBatch) {
        if b.producer_id < 0 {
            return;
        }
        if b.marker.is_some() {
            let epoch = self.coordinator_epochs.entry(b.producer_id).or_insert(b.coordinator_epoch);
            *epoch = (*epoch).max(b.coordinator_epoch);
        }
        match b.marker {
            Some(commit) => {
                // A marker for a producer with nothing open here (a retried marker) changes
                // nothing: there is nothing to decide.
                let Some(open) = self.ongoing.remove(&b.producer_id) else { return };
                self.deciding.insert(b.base_offset, open.first_offset);
                if !commit {
                    let aborted = AbortedTxn {
                        producer_id: b.producer_id,
                        first_offset: open.first_offset,
                        last_offset: b.base_offset,
                    };
                    self.aborted.push_back(aborted);
                }
            }
            None if b.transactional => {
                let entry = self
                    .ongoing
                    .entry(b.producer_id)
                    .or_insert(OngoingTxn { producer_epoch: b.producer_epoch, first_offset: b.base_offset });
                entry.producer_epoch = entry.producer_epoch.max(b.producer_epoch);
            }
            None => {}
        }
    }

    /// The newest coordinator epoch of `producer_id`'s markers here, if it has any.
    pub fn coordinator_epoch(&self, producer_id: i64) -> Option<i32> {
        self.coordinator_epochs.get(&producer_id).copied()
    }

    /// The transaction `producer_id` has open here, if any.
    pub fn is_ongoing(&self, producer_id: i64) -> Option<OngoingTxn> {
        self.ongoing.get(&producer_id).copied()
    }

    /// The last stable offset: below it every transaction is decided and its marker committed.
    /// Never above the high watermark.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        let open = self.ongoing.values().map(|t| t.first_offset);
        // A marker below the high watermark is committed: its transaction is stable.
        let deciding = self.deciding.range(high_watermark..).map(|(_, first)| *first);
        open.chain(deciding).fold(high_watermark, i64::min)
    }

    /// Forgets the decided transactions whose markers are below the high watermark now.
    pub fn forget_decided_below(&mut self, high_watermark: i64) {
        self.deciding = self.deciding.split_off(&high_watermark);
    }

    /// The aborted transactions a consumer reading `[from, to)` must know about: those whose
    /// records overlap the range.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted.iter().filter(|a| a.last_offset >= from && a.first_offset < to).copied().collect()
    }

    /// Keeps only the aborted transactions `keep` accepts (the cleaner removed the others'
    /// markers).
    pub fn retain_aborted(&mut self, keep: impl FnMut(&AbortedTxn) -> bool) {
        self.aborted.retain(keep);
    }

    /// Forgets aborted transactions wholly below the new log start (retention, DeleteRecords).
    pub fn remove_below(&mut self, log_start: i64) {
        while self.aborted.front().is_some_and(|a| a.last_offset < log_start) {
            self.aborted.pop_front();
        }
    }

    /// Open transactions, oldest first: `(producer id, epoch, first offset)`.
    pub fn ongoing(&self) -> Vec<(i64, OngoingTxn)> {
        let mut out: Vec<_> = self.ongoing.iter().map(|(&p, &t)| (p, t)).collect();
        out.sort_by_key(|(p, t)| (t.first_offset, *p));
        out
    }

    /// How many aborted transactions are remembered.
    pub fn aborted_count(&self) -> usize {
        self.aborted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pid: i64, base: i64, last: i64) -> TxnBatch {
        TxnBatch {
            producer_id: pid,
            producer_epoch: 0,
            base_offset: base,
            last_offset: last,
            transactional: true,
            marker: None,
            coordinator_epoch: -1,
        }
    }

    fn marker(pid: i64, at: i64, commit: bool) -> TxnBatch {
        TxnBatch {
            producer_id: pid,
            producer_epoch: 0,
            base_offset: at,
            last_offset: at,
            transactional: true,
            marker: Some(commit),
            coordinator_epoch: 1,
        }
    }

    #[test]
    fn an_open_transaction_holds_the_lso_until_its_marker_is_committed() {
        let mut t = TxnIndex::new();
        t.record(&data(7, 10, 19));
        t.record(&data(7, 20, 29));
        assert_eq!(t.is_ongoing(7).map(|o| o.first_offset), Some(10));
        assert_eq!(t.last_stable_offset(30), 10);
        t.record(&marker(7, 30, true));
        assert_eq!(t.is_ongoing(7), None);
        // The marker is appended but not yet committed.
        assert_eq!(t.last_stable_offset(30), 10);
        assert_eq!(t.last_stable_offset(31), 31);
        assert!(t.aborted_between(0, 100).is_empty());
    }

    #[test]
    fn the_newest_coordinator_epoch_of_each_producers_markers_is_kept() {
        let mut t = TxnIndex::new();
        assert_eq!(t.coordinator_epoch(7), None);
        t.record(&data(7, 0, 0));
        t.record(&TxnBatch { coordinator_epoch: 4, ..marker(7, 1, true) });
        // A retried marker (nothing open) still counts, and an older epoch never lowers it.
        t.record(&TxnBatch { coordinator_epoch: 6, ..marker(7, 2, true) });
        t.record(&TxnBatch { coordinator_epoch: 5, ..marker(7, 3, true) });
        assert_eq!(t.coordinator_epoch(7), Some(6));
        assert_eq!(t.coordinator_epoch(8), None);
    }

    #[test]
    fn non_transactional_batches_never_hold_the_lso() {
        let mut t = TxnIndex::new();
        let plain = TxnBatch { transactional: false, ..data(3, 0, 9) };
        t.record(&plain);
        t.record(&TxnBatch { producer_id: -1, ..data(-1, 10, 10) });
        assert_eq!(t.last_stable_offset(11), 11);
    }

    #[test]
    fn the_lso_is_the_oldest_open_transaction() {
        let mut t = TxnIndex::new();
        t.record(&data(1, 5, 5));
        t.record(&data(2, 6, 6));
        t.record(&marker(1, 7, false));
        assert_eq!(t.last_stable_offset(100), 6);
        assert_eq!(t.ongoing().iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn aborted_transactions_are_reported_where_they_overlap_a_fetch() {
        let mut t = TxnIndex::new();
        t.record(&data(1, 0, 4));
        t.record(&marker(1, 5, false));
        t.record(&data(2, 6, 9));
        t.record(&marker(2, 10, true));
        t.record(&data(1, 11, 12));
        t.record(&marker(1, 13, false));
        let abort = |first, last| AbortedTxn { producer_id: 1, first_offset: first, last_offset: last };
        assert_eq!(t.aborted_between(0, 14), vec![abort(0, 5), abort(11, 13)]);
        assert_eq!(t.aborted_between(6, 11), vec![]);
        assert_eq!(t.aborted_between(5, 6), vec![abort(0, 5)]);
        assert_eq!(t.aborted_between(12, 20), vec![abort(11, 13)]);
        t.remove_below(6);
        assert_eq!(t.aborted_count(), 1);
    }

    #[test]
    fn a_marker_without_an_open_transaction_changes_nothing() {
        let mut t = TxnIndex::new();
        t.record(&marker(4, 0, false));
        assert_eq!(t.aborted_count(), 0);
        assert_eq!(t.last_stable_offset(1), 1);
    }
}
