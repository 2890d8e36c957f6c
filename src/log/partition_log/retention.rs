//! Removing data: retention by time and size, truncation for replication, and the segment
//! deletion both rely on. Retention only ever deletes whole segments, so it can move the log
//! start forward (past the first segment) but never back below its checkpoint.

use std::sync::Arc;

use tracing::{info, warn};

use super::PartitionLog;
use crate::log::error::LogError;
use crate::log::segment::Segment;

impl PartitionLog {
    /// Deletes the oldest whole segments while they are older than `retention_ms` (by their
    /// largest timestamp, or the file's mtime if they have none) and while the log, without
    /// the oldest one, would still hold at least `retention_bytes` (Kafka's rule). An expired
    /// active segment is rolled first and then deleted as a sealed one, so the log keeps its
    /// end offset in a new empty segment. Returns the base offsets deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<Vec<i64>, LogError> {
        let mut deleted = Vec::new();
        if self.config.retention_ms >= 0 {
            while self.oldest_expired(now_ms)?
                && let Some(base) = self.delete_oldest()?
            {
                deleted.push(base);
            }
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = i128::from(self.size_bytes()) - i128::from(self.config.retention_bytes);
            while let Some(size) = self.oldest().map(Segment::size)
                && i128::from(size) <= excess
            {
                excess -= i128::from(size);
                deleted.extend(self.delete_oldest()?);
            }
        }
        if !deleted.is_empty() {
            info!(
                dir = %self.dir.display(),
                segments = deleted.len(),
                log_start = self.log_start_offset(),
                "retention deleted segments"
            );
        }
        Ok(deleted)
    }

    /// The oldest segment holding data (the active one only when no sealed segment is left).
    fn oldest(&self) -> Option<&Segment> {
        match self.sealed.first_key_value() {
            Some((_, segment)) => Some(segment),
            None => (self.active.size() > 0).then_some(&self.active),
        }
    }

    fn oldest_expired(&self, now_ms: i64) -> Result<bool, LogError> {
        let Some(segment) = self.oldest() else {
            return Ok(false);
        };
        let newest = match segment.max_timestamp() {
            ts if ts >= 0 => ts,
            _ => segment.modified_ms()?,
        };
        Ok(now_ms.saturating_sub(newest) > self.config.retention_ms)
    }

    /// Deletes the oldest segment (rolling first if it is the active one); returns its base,
    /// or `None` if the log holds no data.
    fn delete_oldest(&mut self) -> Result<Option<i64>, LogError> {
        if self.sealed.is_empty() && self.active.size() > 0 {
            self.roll()?;
        }
        let Some((base, segment)) = self.sealed.pop_first() else {
            return Ok(None);
        };
        segment.remove_files()?;
        Ok(Some(base))
    }

    /// Removes everything at and after `offset` (for replication): whole segments starting at
    /// or after it, then the batch holding it and all later ones. If `offset` falls inside a
    /// batch the log end becomes that batch's base offset. `offset` must be `>=` the log start;
    /// at or past the log end nothing happens.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start {
            return Err(LogError::OffsetOutOfRange { offset, log_start, log_end });
        }
        if offset >= log_end {
            return Ok(());
        }
        let size_before = self.size_bytes();
        let mut active_changed = false;
        while self.active.base_offset() >= offset
            && let Some((_, previous)) = self.sealed.pop_last()
        {
            std::mem::replace(&mut self.active, previous).remove_files()?;
            active_changed = true;
        }
        self.active.truncate_to(offset)?;
        if active_changed {
            self.active.restart_roll_clock()?;
            self.sync.replace(Arc::clone(self.active.log_file()), self.active.log_path().to_path_buf());
        }
        if self.log_end_offset() < log_start {
            // The cut fell inside the batch holding a log start that DeleteRecords put mid-batch:
            // the records below the log start stay deleted, the log starts empty there.
            return self.reset_to(log_start);
        }
        self.truncate_cleaner_checkpoint(self.log_end_offset())?;
        info!(
            dir = %self.dir.display(),
            offset,
            log_end = self.log_end_offset(),
            removed_bytes = size_before - self.size_bytes(),
            "truncated log"
        );
        Ok(())
    }

    /// Deletes every record and starts an empty log at `offset` (Kafka's
    /// `truncateFullyAndStartAt`): for a follower whose whole log lies outside its leader's,
    /// below the leader's log start.
    pub fn reset_to(&mut self, offset: i64) -> Result<(), LogError> {
        let offset = offset.max(0);
        // The checkpoint always says what the log in memory says, before the files change.
        super::log_start::store(&self.dir, offset)?;
        self.log_start = offset;
        for (_, segment) in std::mem::take(&mut self.sealed) {
            segment.remove_files()?;
        }
        let base = self.active.base_offset();
        self.active.truncate_to(base)?;
        if base != offset {
            let mut fresh = Segment::create(&self.dir, offset, self.config.index_interval_bytes)?;
            fresh.set_allow_gaps(self.gaps_allowed);
            std::mem::replace(&mut self.active, fresh).remove_files()?;
        }
        self.sync.replace(Arc::clone(self.active.log_file()), self.active.log_path().to_path_buf());
        self.truncate_cleaner_checkpoint(offset)?;
        warn!(dir = %self.dir.display(), offset, "log emptied: it now starts at the leader's log start");
        Ok(())
    }
}
