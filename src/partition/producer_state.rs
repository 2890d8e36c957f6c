//! Idempotent-producer state of one partition: per producer id, its epoch and its last few
//! batches, so a retried batch is answered instead of appended twice and a lost one is noticed.
//!
//! The table is rebuilt on recovery by replaying [`ProducerStateTable::record`] for every
//! batch in the log, in offset order.

use std::collections::{HashMap, VecDeque};

/// How many of a producer's most recent batches are kept for duplicate detection. Kafka keeps
/// 5, matching the producer's `max.in.flight.requests.per.connection` limit for idempotence.
const RETAINED_BATCHES: usize = 5;

/// The producer fields of a record batch header. Plain fields, so this module does not depend
/// on the log's batch type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIdentity {
    /// The producer id; negative means not idempotent.
    pub producer_id: i64,
    /// The producer epoch; a producer that re-initialises gets a higher one.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record.
    pub base_sequence: i32,
    /// Sequence number of the batch's last record (wraps from `i32::MAX` to 0).
    pub last_sequence: i32,
    /// How many records the batch holds.
    pub record_count: i32,
    /// Its last offset minus its base offset (kept when compaction empties the batch).
    pub last_offset_delta: i32,
    /// The batch's largest record timestamp (or its log append time), for DescribeProducers.
    pub max_timestamp: i64,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent (producer_id < 0) or next in order: append it.
    Append,
    /// Exactly one of the producer's last 5 batches: answer success with its original base
    /// offset, do not append.
    Duplicate {
        /// Offset of the first record of the batch already in the log.
        base_offset: i64,
    },
    /// A gap, or a sequence that is neither next nor a known duplicate →
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    OutOfOrder {
        /// The base sequence that would have been in order.
        expected: i32,
        /// The base sequence the batch carried.
        got: i32,
    },
    /// Epoch older than the known one → INVALID_PRODUCER_EPOCH (47).
    StaleEpoch {
        /// The producer's newest epoch seen in this partition.
        current: i16,
        /// The epoch the batch carried.
        got: i16,
    },
}

/// One retained batch: its sequence span and where it starts in the log. (Its last offset is
/// not kept: nothing reads it; a duplicate is answered with the base offset.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RetainedBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

/// One producer's state in this partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first; at most [`RETAINED_BATCHES`], all of `epoch`.
    batches: VecDeque<RetainedBatch>,
    /// The max timestamp of its latest batch (Kafka's `lastTimestamp`).
    last_timestamp: i64,
    /// The last offset of its latest batch (Kafka's `lastDataOffset`): once the log starts
    /// past it, the producer is forgotten.
    last_offset: i64,
}

impl ProducerEntry {
    /// The base sequence the next batch must carry.
    fn next_sequence(&self) -> i32 {
        self.batches.back().map_or(0, |b| next_after(b.last_seq))
    }

    /// The retained batch with exactly this sequence span, if any.
    fn find(&self, first_seq: i32, last_seq: i32) -> Option<&RetainedBatch> {
        self.batches.iter().find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
    }
}

/// The sequence after `seq`: sequences wrap from `i32::MAX` to 0, as in Kafka.
fn next_after(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

/// One producer as DescribeProducers (KIP-664) shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSummary {
    /// The producer id.
    pub producer_id: i64,
    /// Its newest epoch in this partition.
    pub producer_epoch: i16,
    /// The last sequence of its latest batch in that epoch (-1 if none).
    pub last_sequence: i32,
    /// The max timestamp of its latest batch.
    pub last_timestamp: i64,
}

/// The idempotent-producer state of one partition: producer id → epoch and recent batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    /// An empty table, for a new partition or before replaying the log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides whether `b` is appended, answered as a duplicate, or rejected. Does not change
    /// the table: call [`record`](Self::record) once the batch is appended.
    pub fn check(&self, b: &BatchIdentity) -> SequenceCheck {
        // No producer, or the broker's own write without a sequence (produced batches without
        // one are refused before they get here).
        if b.producer_id < 0 || b.base_sequence < 0 {
            return SequenceCheck::Append;
        }
        // An unknown producer may start at any sequence, as in Kafka since KIP-360: its state
        // may have gone with the log start (`remove_below`) while it kept producing.
        let Some(entry) = self.producers.get(&b.producer_id) else {
            return SequenceCheck::Append;
        };
        if b.producer_epoch < entry.epoch {
            return SequenceCheck::StaleEpoch { current: entry.epoch, got: b.producer_epoch };
        }
        if b.producer_epoch > entry.epoch {
            return first_of_epoch(b);
        }
        let expected = entry.next_sequence();
        if b.base_sequence == expected {
            return SequenceCheck::Append;
        }
        match entry.find(b.base_sequence, b.last_sequence) {
            Some(dup) => SequenceCheck::Duplicate { base_offset: dup.base_offset },
            None => SequenceCheck::OutOfOrder { expected, got: b.base_sequence },
        }
    }

    /// Record an appended batch (also used to rebuild the table from the log on recovery).
    ///
    /// A higher epoch replaces the producer's batch list; a lower one is ignored, since the
    /// epoch never goes back (and `check` rejects such batches before they are appended).
    /// A batch without a sequence (the broker's own transactional writes) is not tracked.
    pub fn record(&mut self, b: &BatchIdentity, base_offset: i64) {
        if b.producer_id < 0 || b.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(b.producer_id).or_insert_with(|| ProducerEntry {
            epoch: b.producer_epoch,
            batches: VecDeque::with_capacity(RETAINED_BATCHES),
            last_timestamp: b.max_timestamp,
            last_offset: base_offset,
        });
        if b.producer_epoch < entry.epoch {
            return;
        }
        if b.producer_epoch > entry.epoch {
            entry.epoch = b.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == RETAINED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(RetainedBatch { first_seq: b.base_sequence, last_seq: b.last_sequence, base_offset });
        entry.last_timestamp = b.max_timestamp;
        entry.last_offset = base_offset.saturating_add(i64::from(b.last_offset_delta));
    }

    /// Records a transaction marker (a control batch) of `producer_id` at `epoch`. Markers carry
    /// no sequence; a higher epoch (the coordinator fenced the producer when it aborted) becomes
    /// the producer's, so batches of the old epoch are refused from then on, and the next batch
    /// of the new one starts at sequence 0.
    pub fn record_marker(&mut self, producer_id: i64, epoch: i16, offset: i64) {
        if producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::with_capacity(RETAINED_BATCHES),
            last_timestamp: -1,
            last_offset: offset,
        });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_offset = entry.last_offset.max(offset);
    }

    /// The producer's current epoch here, if it wrote here.
    pub fn epoch_of(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    /// Forgets the producers whose latest batch ends below `log_start`, after the log start
    /// moved (DeleteRecords, retention, following the leader's), as Kafka's
    /// `ProducerStateManager.onLogStartOffsetIncremented` does: their batches are gone, so
    /// DescribeProducers no longer lists them and their next batch starts a fresh sequence
    /// check. Compaction never calls this: it keeps each producer's last batch. Returns how many
    /// were removed.
    pub fn remove_below(&mut self, log_start: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| e.last_offset >= log_start);
        before - self.producers.len()
    }

    /// Every producer tracked here, by producer id: what DescribeProducers reports.
    pub fn summaries(&self) -> Vec<ProducerSummary> {
        let mut out: Vec<ProducerSummary> = self
            .producers
            .iter()
            .map(|(&producer_id, e)| ProducerSummary {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// How many producers the table tracks.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no idempotent producer has written to this partition.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

/// The rule for a known producer's first batch in a new epoch: sequences start at 0.
fn first_of_epoch(b: &BatchIdentity) -> SequenceCheck {
    if b.base_sequence == 0 {
        SequenceCheck::Append
    } else {
        SequenceCheck::OutOfOrder { expected: 0, got: b.base_sequence }
    }
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
