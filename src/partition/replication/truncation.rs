//! Where a follower (or a former leader coming back) truncates its log before fetching from
//! the leader, from the leader's OffsetForLeaderEpoch answer (KIP-101, refined by KIP-279).
//!
//! The follower asks with its latest epoch `E`. The leader answers `(L, end)`: `L` is the
//! largest epoch ≤ `E` in the leader's log and `end` is where `L` ends there. Below `end` the
//! leader's records are of epochs ≤ `L`; from `end` on, of epochs > `L`. The follower finds
//! `F`, its own largest epoch ≤ `L`, ending at `f_end` in its log:
//!
//! - `F == L`: both logs hold epoch `L` up to their own end of it, and a record's epoch and
//!   offset identify it (one leader per epoch). The logs agree below `min(end, f_end)` and
//!   differ at it (different epochs or a missing record): truncate to `min(end, f_end, LEO)`.
//!   Done.
//! - `F < L`: the follower never saw epoch `L`. Its records from `f_end` on are of epochs > `L`,
//!   which the leader does not have there, so truncate to `min(f_end, LEO)`; but where epoch
//!   `L` starts in the leader's log is unknown, so ask again with the truncated log's latest
//!   epoch (now `F`). Each round asks an older epoch, so this ends.
//! - The follower has no epoch ≤ `L` but has later ones: all its records, from its earliest
//!   epoch's start on, are of epochs > `L`: truncate to `min(end, earliest start, LEO)`. Done.
//! - The follower records no epochs at all: it cannot compare, so it trusts the leader's end:
//!   `min(end, LEO)`. Done.
//! - No answer (UNDEFINED: the leader no longer has the epoch, or never had it): fall back to the
//!   follower's high watermark, below which every record is committed and so on the leader.
//!   Done.
//!
//! KIP-101 alone truncated to `min(end, LEO)` whenever the leader answered; that keeps a
//! divergent suffix when both logs have records of epoch `L` but the leader's epoch `L` ended
//! earlier (the KIP-279 case), hence `f_end` above.

use super::epoch_cache::LeaderEpochCache;
use super::epoch_cache::{EpochEndOffset, EpochEntry};

/// Where to truncate, and whether the follower may start fetching afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Truncate the log and its epoch cache to `offset` (nothing to do if it is the log end
    /// offset), then fetch from `offset`: the logs agree below it.
    Complete {
        /// The new log end offset.
        offset: i64,
    },
    /// Truncate the log and its epoch cache to `offset`, then send OffsetForLeaderEpoch again
    /// with the truncated cache's latest epoch: agreement below `offset` is not proven yet.
    Partial {
        /// The new log end offset.
        offset: i64,
    },
}

impl Truncation {
    /// The offset to truncate to, whichever the variant.
    pub fn offset(self) -> i64 {
        match self {
            Self::Complete { offset } | Self::Partial { offset } => offset,
        }
    }
}

/// Applies the rules in this module's documentation to the follower's epoch history, log end
/// offset and high watermark, and the leader's answer (`None` for UNDEFINED). The offset is
/// never above `follower_leo` (a follower behind the leader keeps everything) nor below 0.
pub fn truncation_point(
    follower_epochs: &LeaderEpochCache,
    follower_leo: i64,
    follower_hw: i64,
    leader_answer: Option<EpochEndOffset>,
) -> Truncation {
    let leo = follower_leo.max(0);
    let clamp = |offset: i64| offset.clamp(0, leo);
    let Some(leader) = leader_answer else {
        return Truncation::Complete { offset: clamp(follower_hw) };
    };
    let entries = follower_epochs.entries();
    let after = entries.partition_point(|e| e.epoch <= leader.epoch);
    let Some(floor) = after.checked_sub(1).and_then(|i| entries.get(i)) else {
        let first_diverging = entries.first().map_or(leader.end_offset, |e: &EpochEntry| e.start_offset);
        return Truncation::Complete { offset: clamp(leader.end_offset.min(first_diverging)) };
    };
    let follower_end = entries.get(after).map_or(leo, |next| next.start_offset);
    if floor.epoch == leader.epoch {
        Truncation::Complete { offset: clamp(leader.end_offset.min(follower_end)) }
    } else {
        Truncation::Partial { offset: clamp(follower_end) }
    }
}

#[cfg(test)]
#[path = "truncation_tests.rs"]
mod tests;
