//! The `leader-epoch-checkpoint` text format, as Kafka writes it: a version line (`0`), a
//! count line, then one `<epoch> <start_offset>` line per entry, oldest first.
//!
//! ```text
//! 0
//! 2
//! 0 0
//! 3 120
//! ```

use std::fmt::Write as _;

use super::epoch_cache::{EpochEntry, LeaderEpochCache};

/// The only format version Kafka has defined for this file.
const VERSION: &str = "0";

/// How much of an offending line an error quotes: enough to recognise it, never the whole file
/// when the file is garbage without newlines.
const QUOTE_CHARS: usize = 40;

/// Why a checkpoint could not be decoded. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochCheckpointError {
    /// The text ends before the version or the count line.
    #[error("leader-epoch checkpoint: missing the {what} line")]
    Missing {
        /// `"version"` or `"count"`.
        what: &'static str,
    },
    /// The first line is not version 0.
    #[error("leader-epoch checkpoint line 1: unsupported version {found:?}, expected \"0\"")]
    UnsupportedVersion {
        /// The line found (shortened).
        found: String,
    },
    /// The second line is not a non-negative integer.
    #[error("leader-epoch checkpoint line 2: bad entry count {found:?}")]
    BadCount {
        /// The line found (shortened).
        found: String,
    },
    /// An entry line is not two integers separated by whitespace.
    #[error("leader-epoch checkpoint line {line}: expected `<epoch> <start_offset>`, got {found:?}")]
    BadEntry {
        /// The line number.
        line: usize,
        /// The line found (shortened).
        found: String,
    },
    /// An entry is negative, or does not come strictly after the previous one in both epoch
    /// and start offset.
    #[error("leader-epoch checkpoint line {line}: entry ({epoch}, {start_offset}) is invalid: {reason}")]
    InvalidEntry {
        /// The line number.
        line: usize,
        /// The entry's epoch.
        epoch: i32,
        /// The entry's start offset.
        start_offset: i64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The number of entry lines differs from the count line.
    #[error("leader-epoch checkpoint: the count line says {expected} entries, found {found}")]
    CountMismatch {
        /// The count line's value.
        expected: u64,
        /// The number of entry lines.
        found: u64,
    },
}

impl LeaderEpochCache {
    /// The checkpoint text of this history, newline-terminated.
    pub fn encode(&self) -> String {
        let mut out = format!("{VERSION}\n{}\n", self.len());
        for e in self.entries() {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{} {}", e.epoch, e.start_offset);
        }
        out
    }

    /// Parses checkpoint text written by [`encode`](Self::encode) (or by Kafka). Strict: every
    /// line after the count must be an entry, and entries must increase in epoch and offset,
    /// because a checkpoint that is not exactly what was written is a corrupt file.
    pub fn decode(text: &str) -> Result<Self, EpochCheckpointError> {
        let mut lines = text.lines();
        let version = lines.next().ok_or(EpochCheckpointError::Missing { what: "version" })?;
        if version.trim() != VERSION {
            return Err(EpochCheckpointError::UnsupportedVersion { found: quote(version) });
        }
        let count = lines.next().ok_or(EpochCheckpointError::Missing { what: "count" })?;
        let expected: u64 = count.trim().parse().map_err(|_| EpochCheckpointError::BadCount { found: quote(count) })?;
        // Not preallocated from `expected`: the file, not this code, chose that number.
        let mut entries: Vec<EpochEntry> = Vec::new();
        for (index, raw) in lines.enumerate() {
            let line = index + 3;
            let entry = parse_entry(raw).ok_or_else(|| EpochCheckpointError::BadEntry { line, found: quote(raw) })?;
            check_entry(line, entries.last(), entry)?;
            entries.push(entry);
        }
        let found = entries.len() as u64;
        if found != expected {
            return Err(EpochCheckpointError::CountMismatch { expected, found });
        }
        Ok(Self::from_valid_entries(entries))
    }
}

/// `<epoch> <start_offset>`, separated by any whitespace, nothing else.
fn parse_entry(text: &str) -> Option<EpochEntry> {
    let mut fields = text.split_whitespace();
    let epoch = fields.next()?.parse().ok()?;
    let start_offset = fields.next()?.parse().ok()?;
    fields.next().is_none().then_some(EpochEntry { epoch, start_offset })
}

/// The cache's invariant, checked for one entry against the one before it.
fn check_entry(line: usize, prev: Option<&EpochEntry>, e: EpochEntry) -> Result<(), EpochCheckpointError> {
    let invalid =
        |reason| EpochCheckpointError::InvalidEntry { line, epoch: e.epoch, start_offset: e.start_offset, reason };
    if e.epoch < 0 || e.start_offset < 0 {
        return Err(invalid("negative"));
    }
    match prev {
        Some(p) if e.epoch <= p.epoch => Err(invalid("epoch not greater than the previous entry's")),
        Some(p) if e.start_offset <= p.start_offset => {
            Err(invalid("start offset not greater than the previous entry's"))
        }
        _ => Ok(()),
    }
}

/// The start of `text`, for an error message.
fn quote(text: &str) -> String {
    text.chars().take(QUOTE_CHARS).collect()
}

#[cfg(test)]
#[path = "epoch_checkpoint_tests.rs"]
mod tests;
