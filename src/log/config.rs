//! Per-partition log settings (Kafka's `segment.bytes`, `segment.ms`, `retention.*`,
//! `index.interval.bytes`, and for compacted topics `delete.retention.ms`,
//! `min.compaction.lag.ms` and `min.cleanable.dirty.ratio`).

use serde::{Deserialize, Serialize};

/// How a partition's log rolls segments, indexes them and expires them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Roll when the active segment would grow past this many bytes (a lone larger batch still
    /// gets a segment of its own). At most 4 GiB because index positions are 32-bit.
    pub segment_bytes: u64,
    /// Roll when the active segment's first append is older than this many milliseconds.
    pub segment_ms: u64,
    /// Delete the oldest segments while the log stays at least this large without them; -1 means
    /// no size limit.
    pub retention_bytes: i64,
    /// Delete segments whose newest record is older than this many milliseconds; -1 keeps
    /// them forever.
    pub retention_ms: i64,
    /// Bytes of log between two entries of the sparse offset and time indexes.
    pub index_interval_bytes: u32,
    /// How the cleaner compacts the log (`cleanup.policy` holds `compact`); `None` for a log
    /// that is never compacted.
    pub compaction: Option<Compaction>,
}

/// Settings of a compacted log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Compaction {
    /// A tombstone (null value) is removed once its timestamp is older than this, so a consumer
    /// reading the log within that time still sees the delete (`delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// Records younger than this are not compacted yet (`min.compaction.lag.ms`): a segment is
    /// cleaned only when its newest record is older.
    pub min_lag_ms: i64,
    /// A dirty segment whose first record is older than this is cleaned whatever the dirty
    /// ratio (`max.compaction.lag.ms`).
    pub max_lag_ms: i64,
    /// The log is cleaned once the share of its cleanable bytes not yet cleaned reaches this
    /// (`min.cleanable.dirty.ratio`).
    pub min_dirty_ratio: f64,
}

impl Default for Compaction {
    /// Kafka's defaults: one day, no minimum lag, no maximum lag, half dirty.
    fn default() -> Self {
        Self { delete_retention_ms: 24 * 60 * 60 * 1000, min_lag_ms: 0, max_lag_ms: i64::MAX, min_dirty_ratio: 0.5 }
    }
}

/// 1 GiB, Kafka's default `segment.bytes`.
const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// 7 days, Kafka's default `segment.ms` and `retention.ms`.
const SEVEN_DAYS_MS: u64 = 7 * 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: SEVEN_DAYS_MS,
            retention_bytes: -1,
            retention_ms: SEVEN_DAYS_MS as i64,
            index_interval_bytes: 4096,
            compaction: None,
        }
    }
}

impl LogConfig {
    /// How old the active segment may get before it is rolled (Kafka's `LogConfig.maxSegmentMs`):
    /// `segment.ms`, or in a compacted log `max.compaction.lag.ms` when that is shorter, since
    /// the cleaner never touches the active segment and a record must not wait there past the
    /// lag.
    pub fn max_segment_ms(&self) -> i64 {
        let segment_ms = i64::try_from(self.segment_ms).unwrap_or(i64::MAX);
        match &self.compaction {
            Some(c) if c.max_lag_ms > 0 => segment_ms.min(c.max_lag_ms),
            _ => segment_ms,
        }
    }

    /// Every problem with these settings, each naming its key; empty when they are usable.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.segment_bytes == 0 || self.segment_bytes > u64::from(u32::MAX) {
            problems.push(format!("segment_bytes: must be between 1 and {}, got {}", u32::MAX, self.segment_bytes));
        }
        if self.segment_ms == 0 {
            problems.push("segment_ms: must be positive".to_string());
        }
        if self.retention_bytes < -1 {
            problems.push(format!("retention_bytes: must be -1 (unlimited) or >= 0, got {}", self.retention_bytes));
        }
        if self.retention_ms < -1 {
            problems.push(format!("retention_ms: must be -1 (unlimited) or >= 0, got {}", self.retention_ms));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kafka_and_are_valid() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.segment_ms, 604_800_000);
        assert!(c.problems().is_empty());
    }

    #[test]
    fn a_compacted_log_rolls_by_the_shorter_of_segment_ms_and_max_compaction_lag() {
        let mut c = LogConfig { segment_ms: 10_000, ..LogConfig::default() };
        assert_eq!(c.max_segment_ms(), 10_000, "not compacted: segment.ms");
        c.compaction = Some(Compaction::default());
        assert_eq!(c.max_segment_ms(), 10_000, "no max lag (Kafka's default Long.MAX_VALUE)");
        c.compaction = Some(Compaction { max_lag_ms: 2_000, ..Compaction::default() });
        assert_eq!(c.max_segment_ms(), 2_000, "the lag is shorter");
        c.segment_ms = 500;
        assert_eq!(c.max_segment_ms(), 500, "segment.ms is shorter");
        c.segment_ms = u64::MAX;
        c.compaction = None;
        assert_eq!(c.max_segment_ms(), i64::MAX, "saturates, never wraps negative");
    }

    #[test]
    fn every_problem_names_its_key() {
        let c = LogConfig {
            segment_bytes: 0,
            segment_ms: 0,
            retention_bytes: -2,
            retention_ms: -5,
            index_interval_bytes: 0,
            compaction: None,
        };
        let p = c.problems();
        assert_eq!(p.len(), 4, "{p:?}");
        for key in ["segment_bytes", "segment_ms", "retention_bytes", "retention_ms"] {
            assert!(p.iter().any(|m| m.starts_with(key)), "{key} missing in {p:?}");
        }
    }
}
