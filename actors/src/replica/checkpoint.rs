//! The replica's checkpoints: the high watermark, written on a timer when it moved and at
//! shutdown, and the leader-epoch history, written whenever it changes. On start the high
//! watermark is `min(checkpoint, log end)`: without the checkpoint it would start at the log
//! end, and after a lost disk tail elsewhere a consumer could read records no other replica has.

use std::time::Duration;

use chronik::log::PartitionLog;
use chronik::partition::checkpoints::{load_epochs, load_high_watermark, store_epochs, store_high_watermark};
use chronik::partition::replication::LeaderEpochCache;
use ractor::ActorProcessingErr;
use tracing::warn;

use super::ReplicaState;
use crate::context::TopicPartition;

/// How often the high watermark is checkpointed (Kafka's
/// `replica.high.watermark.checkpoint.interval.ms`).
pub(super) const INTERVAL: Duration = Duration::from_secs(5);

/// The high watermark to start with, clamped to the log; completes `epochs` (rebuilt from the
/// batch headers, which are exact for every epoch that wrote) with a newer epoch the checkpoint
/// holds at the log end: a leader elected but not yet written to, which a follower's
/// truncation must still see. A checkpoint that cannot be read is reported and not trusted.
pub(super) fn recover(tp: &TopicPartition, log: &PartitionLog, epochs: &mut LeaderEpochCache) -> i64 {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    match load_epochs(log.dir()) {
        Ok(Some(saved)) => {
            let latest = epochs.latest_epoch().unwrap_or(-1);
            for e in saved.entries().iter().filter(|e| e.start_offset == end && e.epoch > latest) {
                epochs.assign(e.epoch, e.start_offset);
            }
        }
        Ok(None) => {}
        Err(e) => warn!(%tp, error = %e, "ignoring the leader-epoch checkpoint"),
    }
    let checkpointed = match load_high_watermark(log.dir()) {
        Ok(hw) => hw,
        Err(e) => {
            warn!(%tp, error = %e, "ignoring the high-watermark checkpoint");
            None
        }
    };
    checkpointed.unwrap_or(start).clamp(start, end)
}

impl ReplicaState {
    /// Writes the high watermark if it moved since the last checkpoint.
    pub(super) fn checkpoint_high_watermark(&mut self) -> Result<(), ActorProcessingErr> {
        if self.high_watermark != self.checkpointed_hw {
            store_high_watermark(self.log.dir(), self.high_watermark)?;
            self.checkpointed_hw = self.high_watermark;
        }
        Ok(())
    }

    /// Writes the leader-epoch history (after it changed).
    pub(super) fn checkpoint_epochs(&self) -> Result<(), chronik::log::LogError> {
        store_epochs(self.log.dir(), &self.epochs)
    }

    /// Both checkpoints, at shutdown.
    pub(super) fn write_checkpoints(&mut self) -> Result<(), ActorProcessingErr> {
        self.checkpoint_high_watermark()?;
        Ok(self.checkpoint_epochs()?)
    }
}

#[cfg(test)]
mod tests {
    use chronik::log::LogConfig;
    use chronik::records::encode_batch;
    use kafka_protocol::records::Compression;

    use super::*;

    /// A log of three 10-record batches written in epoch 0.
    fn log(dir: &std::path::Path) -> PartitionLog {
        let (mut log, _) = PartitionLog::open(dir, LogConfig::default(), 0).expect("open");
        for _ in 0..3 {
            let entries: Vec<_> = (0..10).map(|i| (None, Some(bytes::Bytes::from(format!("v{i}"))))).collect();
            let mut batch = encode_batch(&entries, 1_000, Compression::None).expect("encode").to_vec();
            log.append(&mut batch, 0, 1_000).expect("append");
        }
        log
    }

    #[test]
    fn the_high_watermark_starts_at_the_checkpoint_clamped_to_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let tp = TopicPartition::new("t", 0);
        let mut epochs = LeaderEpochCache::new();
        assert_eq!(recover(&tp, &log, &mut epochs), 0, "no checkpoint: nothing is known committed");
        store_high_watermark(dir.path(), 12).expect("store");
        assert_eq!(recover(&tp, &log, &mut epochs), 12);
        store_high_watermark(dir.path(), 100).expect("store");
        assert_eq!(recover(&tp, &log, &mut epochs), 30, "a lost tail cannot be above the log end");
        std::fs::write(dir.path().join("high-watermark-checkpoint"), "garbage").expect("write");
        assert_eq!(recover(&tp, &log, &mut epochs), 0, "a damaged checkpoint is not trusted");
    }

    #[test]
    fn an_epoch_started_at_the_log_end_survives_a_restart_and_stale_entries_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let tp = TopicPartition::new("t", 0);
        let from_headers = || {
            let mut e = LeaderEpochCache::new();
            e.assign(0, 0);
            e
        };
        let mut saved = from_headers();
        saved.assign(5, 30);
        store_epochs(dir.path(), &saved).expect("store");
        let mut epochs = from_headers();
        recover(&tp, &log, &mut epochs);
        assert_eq!(epochs, saved, "the leader elected at 30 that wrote nothing yet is remembered");
        let mut stale = from_headers();
        stale.assign(5, 10);
        store_epochs(dir.path(), &stale).expect("store");
        let mut epochs = from_headers();
        recover(&tp, &log, &mut epochs);
        assert_eq!(epochs, from_headers(), "the headers are the truth for offsets the log holds");
    }
}
