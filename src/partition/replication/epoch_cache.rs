//! The leader-epoch history of one partition log (Kafka's `LeaderEpochFileCache`): for each
//! leader epoch that wrote to the log, the offset of its first record.
//!
//! A follower compares this history with the leader's to find where the two logs diverge
//! (KIP-101), instead of truncating to its high watermark, which can lose committed records or
//! keep records the new leader never had.

/// One leader epoch and where it starts in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// Offset of the first record written in `epoch`.
    pub start_offset: i64,
}

/// An OffsetForLeaderEpoch answer: the end of the newest epoch not newer than the one asked
/// for. `None` in its place means Kafka's UNDEFINED answer, (-1, -1) on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest epoch in the log that is ≤ the requested epoch.
    pub epoch: i32,
    /// One past the last offset of `epoch`: the start of the next epoch, or the log end offset
    /// when `epoch` is the latest.
    pub end_offset: i64,
}

impl EpochEndOffset {
    /// Kafka's UNDEFINED_EPOCH.
    pub const UNDEFINED_EPOCH: i32 = -1;
    /// Kafka's UNDEFINED_EPOCH_OFFSET.
    pub const UNDEFINED_OFFSET: i64 = -1;

    /// From the wire: a negative epoch or offset (UNDEFINED, or an answer carrying an error
    /// code) is no answer.
    pub fn from_wire(epoch: i32, end_offset: i64) -> Option<Self> {
        (epoch >= 0 && end_offset >= 0).then_some(Self { epoch, end_offset })
    }

    /// To the wire: no answer is (UNDEFINED_EPOCH, UNDEFINED_OFFSET).
    pub fn to_wire(answer: Option<Self>) -> (i32, i64) {
        answer.map_or((Self::UNDEFINED_EPOCH, Self::UNDEFINED_OFFSET), |a| (a.epoch, a.end_offset))
    }
}

/// The leader-epoch history of one partition log, oldest first.
///
/// Invariant: epochs and start offsets both strictly increase, and neither is negative. An
/// epoch that wrote no record before the next one started is not kept (the next one replaces
/// it at the same start offset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    /// Oldest first; see the invariant above.
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// An empty history, for a new log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The history, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// How many epochs are recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no epoch is recorded (a new log, or one from before epochs were tracked).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The oldest recorded epoch.
    pub fn earliest(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// The newest recorded epoch: on a leader, the epoch it writes in.
    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The newest recorded epoch number.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`: called by a new leader with its log end
    /// offset, and on every append with the batch's epoch. Returns whether the history changed,
    /// i.e. whether the checkpoint must be rewritten.
    ///
    /// - Ignored when an epoch ≥ `epoch` already starts at or before `start_offset`: the common
    ///   case (another batch of the current epoch), or a stale epoch, which must not rewrite the
    ///   history of a newer leader. Negative values are ignored too.
    /// - Otherwise every entry with an epoch ≥ `epoch` or a start ≥ `start_offset` is dropped
    ///   before `epoch` is appended: those offsets were truncated and are being rewritten.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if self.entries.iter().any(|e| e.epoch >= epoch && e.start_offset <= start_offset) {
            return false;
        }
        // Both fields increase, so what survives is a prefix and the new entry extends it.
        self.entries.retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// The OffsetForLeaderEpoch answer for `requested_epoch` given the log end offset: the
    /// largest epoch ≤ `requested_epoch` and the start of the epoch after it, or
    /// `log_end_offset` when it is the latest.
    ///
    /// `None` (UNDEFINED) when the history is empty, `requested_epoch` is negative, older than
    /// the earliest epoch recorded (retention removed it; current Kafka answers the earliest
    /// start offset instead, we let the follower fall back to its high watermark), or newer than
    /// the latest epoch (the asker saw a leader this log never heard of, so this log must not
    /// make it truncate; Kafka answers UNDEFINED too).
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> Option<EpochEndOffset> {
        if requested_epoch < 0 {
            return None;
        }
        let after = self.entries.partition_point(|e| e.epoch <= requested_epoch);
        let floor = self.entries.get(after.checked_sub(1)?)?;
        match self.entries.get(after) {
            Some(next) => Some(EpochEndOffset { epoch: floor.epoch, end_offset: next.start_offset }),
            None if floor.epoch == requested_epoch => {
                Some(EpochEndOffset { epoch: requested_epoch, end_offset: log_end_offset })
            }
            None => None,
        }
    }

    /// The epoch that wrote `offset`: the newest one starting at or before it. `None` for an
    /// offset before the earliest recorded epoch. Offsets past the log end are not detected.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let after = self.entries.partition_point(|e| e.start_offset <= offset);
        self.entries.get(after.checked_sub(1)?).map(|e| e.epoch)
    }

    /// The log was truncated to end at `end_offset`: drops every epoch starting at or after it.
    /// Returns whether the history changed. A negative offset changes nothing.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        if end_offset < 0 {
            return false;
        }
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// Retention moved the log start to `start_offset`: drops the epochs that ended before it
    /// and moves the start of the epoch covering it up to `start_offset`, so the history never
    /// names offsets the log no longer holds. Returns whether the history changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let after = self.entries.partition_point(|e| e.start_offset <= start_offset);
        let Some(covering) = after.checked_sub(1) else {
            // Every recorded epoch starts after the new log start: nothing to drop.
            return false;
        };
        self.entries.drain(..covering);
        match self.entries.first_mut() {
            Some(first) if first.start_offset != start_offset => {
                first.start_offset = start_offset;
                true
            }
            _ => covering > 0,
        }
    }

    /// A history from entries already known to satisfy the invariant (the checkpoint decoder
    /// checks them).
    pub(super) fn from_valid_entries(entries: Vec<EpochEntry>) -> Self {
        Self { entries }
    }
}

#[cfg(test)]
#[path = "epoch_cache_tests.rs"]
mod tests;
