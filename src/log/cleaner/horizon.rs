//! When each part of a compacted log was first cleaned: what a tombstone's delete horizon is
//! measured from.
//!
//! Kafka (KIP-534, since 3.1) stamps a batch holding tombstones with a delete horizon, `now +
//! delete.retention.ms`, the first time the cleaner cleans it, and drops the tombstones on a
//! later cleaning once the horizon has passed. The record's own timestamp plays no part, so a
//! tombstone without one (-1) or with a producer's old clock is still kept for
//! `delete.retention.ms` after the cleaner first saw it. Chronik applies the same rule without
//! rewriting batch headers: every batch is first cleaned by exactly one cleaning, the one whose
//! dirty range held it, so the checkpoint keeps `(end offset, time)` per cleaning: offsets below
//! `end` and at or above the previous entry's end were first cleaned at `time`.

/// At most this many cleanings are remembered; past it the two closest in time are merged,
/// keeping the later time, which only keeps some tombstones a little longer.
pub(super) const MAX_RANGES: usize = 32;

/// The cleanings of a log, oldest first: `(end offset, first cleaned at, ms since the epoch)`;
/// the ends increase and the last one is the checkpoint's first dirty offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanedRanges(pub(super) Vec<(i64, i64)>);

impl CleanedRanges {
    /// The ranges of a log whose cleanings before `first_dirty` are not known (a checkpoint from
    /// before they were recorded): as if all were cleaned at `now_ms`, so no tombstone goes
    /// before `delete.retention.ms` from now.
    pub(super) fn unknown_before(first_dirty: i64, now_ms: i64) -> CleanedRanges {
        CleanedRanges(if first_dirty > 0 { vec![(first_dirty, now_ms)] } else { Vec::new() })
    }

    /// When the cleaner first cleaned `offset`; `None` when it has not (it is dirty).
    pub fn first_cleaned_ms(&self, offset: i64) -> Option<i64> {
        self.0.iter().find(|(end, _)| offset < *end).map(|(_, at)| *at)
    }

    /// These ranges plus a cleaning at `now_ms` that ended at `end` (nothing if it did not get
    /// past the last range), merged down to [`MAX_RANGES`].
    pub(super) fn with_cleaning(&self, end: i64, now_ms: i64) -> CleanedRanges {
        let mut ranges = self.0.clone();
        if ranges.last().is_none_or(|(last, _)| end > *last) {
            ranges.push((end, now_ms));
        }
        while ranges.len() > MAX_RANGES {
            let closest = (0..ranges.len() - 1).min_by_key(|&i| ranges[i + 1].1.saturating_sub(ranges[i].1));
            if let Some(i) = closest {
                ranges.remove(i);
            }
        }
        CleanedRanges(ranges)
    }

    /// The ranges with everything at and after `offset` forgotten (the log was truncated there:
    /// records written there later are dirty).
    pub(super) fn truncated_to(&self, offset: i64) -> CleanedRanges {
        let mut ranges: Vec<(i64, i64)> = self.0.iter().copied().filter(|(end, _)| *end < offset).collect();
        if let Some(&(_, at)) = self.0.iter().find(|(end, _)| *end >= offset)
            && offset > 0
        {
            ranges.push((offset, at));
        }
        CleanedRanges(ranges)
    }

    /// One `<end> <time>` line per range.
    pub(super) fn encode(&self) -> String {
        self.0.iter().map(|(end, at)| format!("{end} {at}\n")).collect()
    }

    /// The lines [`CleanedRanges::encode`] wrote, strictly: `None` if any does not parse or the
    /// ends do not increase.
    pub(super) fn decode<'a>(lines: impl Iterator<Item = &'a str>) -> Option<CleanedRanges> {
        let mut ranges: Vec<(i64, i64)> = Vec::new();
        for line in lines {
            let (end, at) = line.split_once(' ')?;
            let (end, at): (i64, i64) = (end.parse().ok()?, at.parse().ok()?);
            if ranges.last().is_some_and(|(last, _)| end <= *last) || end <= 0 {
                return None;
            }
            ranges.push((end, at));
        }
        Some(CleanedRanges(ranges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_was_first_cleaned_by_the_cleaning_whose_range_held_it() {
        let ranges = CleanedRanges::default().with_cleaning(10, 1_000).with_cleaning(25, 2_000);
        assert_eq!(ranges.first_cleaned_ms(0), Some(1_000));
        assert_eq!(ranges.first_cleaned_ms(9), Some(1_000));
        assert_eq!(ranges.first_cleaned_ms(10), Some(2_000));
        assert_eq!(ranges.first_cleaned_ms(24), Some(2_000));
        assert_eq!(ranges.first_cleaned_ms(25), None, "dirty: never cleaned");
        assert_eq!(ranges.with_cleaning(25, 3_000), ranges, "a cleaning that did not get further adds nothing");
    }

    #[test]
    fn past_the_cap_the_closest_cleanings_merge_to_the_later_time() {
        let mut ranges = CleanedRanges::default();
        for i in 1..=MAX_RANGES as i64 {
            ranges = ranges.with_cleaning(i * 10, i * 1_000);
        }
        let ranges = ranges.with_cleaning(1_000, 32_500);
        assert_eq!(ranges.0.len(), MAX_RANGES);
        assert_eq!(ranges.first_cleaned_ms(315), Some(32_500), "merged into the later one: kept longer");
        assert_eq!(ranges.first_cleaned_ms(305), Some(31_000), "the others stay as they were");
        assert_eq!(ranges.first_cleaned_ms(5), Some(1_000));
    }

    #[test]
    fn truncation_forgets_the_cleanings_past_the_cut() {
        let ranges = CleanedRanges::default().with_cleaning(10, 1_000).with_cleaning(25, 2_000);
        assert_eq!(ranges.truncated_to(15).0, vec![(10, 1_000), (15, 2_000)]);
        assert_eq!(ranges.truncated_to(10).0, vec![(10, 1_000)]);
        assert_eq!(ranges.truncated_to(0).0, vec![]);
        assert_eq!(ranges.truncated_to(40), ranges);
    }

    #[test]
    fn the_ranges_round_trip_and_decode_strictly() {
        let ranges = CleanedRanges::default().with_cleaning(10, -1).with_cleaning(25, 2_000);
        assert_eq!(CleanedRanges::decode(ranges.encode().lines()), Some(ranges));
        for bad in ["10", "10 x", "0 5", "10 1\n10 2", "10 1\n5 2", "-3 1"] {
            assert_eq!(CleanedRanges::decode(bad.lines()), None, "{bad:?}");
        }
        assert_eq!(CleanedRanges::unknown_before(0, 7).0, vec![]);
        assert_eq!(CleanedRanges::unknown_before(42, 7).first_cleaned_ms(41), Some(7));
    }
}
