//! The replica's checkpoints: the high watermark, reported on a timer to the node's
//! [`HighWatermarkBook`] (one file for every partition, written on its own timer and at
//! shutdown), and the leader-epoch history, written beside the log when the log alone would not
//! tell it (a new leader's epoch before its first batch, a truncation) and at shutdown: an epoch
//! that wrote batches is in their headers, which a restart reads anyway. Writing it on every new
//! epoch a follower copied cost two fsyncs each, a thousand a second while leadership spreads
//! over a new node.
//!
//! On start the high watermark is `min(checkpoint, log end)`: without the checkpoint it would
//! start at the log end, and after a lost disk tail elsewhere a consumer could read records no
//! other replica has.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chronik::log::PartitionLog;
use chronik::partition::checkpoints::{
    HighWatermarks, PartitionKey, load_epochs, load_high_watermark, load_high_watermarks, store_epochs,
    store_high_watermarks,
};
use chronik::partition::replication::LeaderEpochCache;
use tracing::warn;

use super::ReplicaState;
use crate::context::TopicPartition;
use crate::directory::TaskGuard;

/// How often the high watermarks are checkpointed (Kafka's
/// `replica.high.watermark.checkpoint.interval.ms`).
pub(super) const INTERVAL: Duration = Duration::from_secs(5);

/// The node's high watermarks: what each replica last reported, and the file they are written
/// to. Replicas report without touching the disk; one task writes the file when something
/// changed, off the runtime's worker threads.
pub struct HighWatermarkBook {
    /// The data directory holding the file.
    dir: PathBuf,
    /// Each hosted partition's latest reported high watermark.
    marks: Mutex<HighWatermarks>,
    /// A report changed `marks` since the last write.
    dirty: AtomicBool,
    /// Held while writing: the timer's write and the one at shutdown share a temporary file.
    writing: Mutex<()>,
}

impl std::fmt::Debug for HighWatermarkBook {
    /// The file and its size, not thousands of entries (replica arguments are logged).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HighWatermarkBook").field("dir", &self.dir).field("partitions", &self.marks().len()).finish()
    }
}

impl HighWatermarkBook {
    /// The book of data directory `dir`, as its file left it; a damaged file is reported and
    /// ignored (each replica then falls back to older checkpoints or its log start).
    pub fn load(dir: &Path) -> Self {
        let marks = load_high_watermarks(dir).unwrap_or_else(|e| {
            warn!(error = %e, "ignoring the high-watermark checkpoint");
            None
        });
        Self {
            dir: dir.to_path_buf(),
            marks: Mutex::new(marks.unwrap_or_default()),
            dirty: AtomicBool::new(false),
            writing: Mutex::new(()),
        }
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, HighWatermarks> {
        // Every change is a single insert or remove: a panic elsewhere cannot leave it half done.
        self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The checkpointed high watermark of `key`.
    pub fn get(&self, key: &PartitionKey) -> Option<i64> {
        self.marks().get(key).copied()
    }

    /// Records `key`'s current high watermark.
    pub fn report(&self, key: PartitionKey, high_watermark: i64) {
        if self.marks().insert(key, high_watermark) != Some(high_watermark) {
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Drops `key` (its replica left this node).
    pub fn forget(&self, key: &PartitionKey) {
        if self.marks().remove(key).is_some() {
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Keeps only the partitions `hosted` says this node still has.
    pub fn retain(&self, hosted: impl Fn(&PartitionKey) -> bool) {
        let mut marks = self.marks();
        let before = marks.len();
        marks.retain(|k, _| hosted(k));
        if marks.len() != before {
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Writes the file if a report changed anything since the last write (blocking: fsyncs).
    pub fn write(&self) -> Result<(), chronik::log::LogError> {
        // Nothing is held across a panic here but the file, which `write_atomic` keeps whole.
        let _writing = self.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let snapshot = self.marks().clone();
        store_high_watermarks(&self.dir, &snapshot).inspect_err(|_| self.dirty.store(true, Ordering::Release))
    }

    /// A task writing the book every [`INTERVAL`] on the blocking pool, until its guard drops.
    pub fn spawn_writer(book: std::sync::Arc<Self>) -> TaskGuard {
        TaskGuard(tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let book = book.clone();
                match tokio::task::spawn_blocking(move || book.write()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "could not write the high-watermark checkpoint; retrying"),
                    Err(e) => warn!(error = %e, "the high-watermark checkpoint write failed"),
                }
            }
        }))
    }
}

/// The high watermark to start with, clamped to the log: the node's checkpoint (`book`), else
/// an older release's file beside the log. Completes `epochs` (rebuilt from the batch headers,
/// which are exact for every epoch that wrote) with a newer epoch the checkpoint holds at the
/// log end: a leader elected but not yet written to, which a follower's truncation must still
/// see. A checkpoint that cannot be read is reported and not trusted.
pub(super) fn recover(
    tp: &TopicPartition,
    log: &PartitionLog,
    epochs: &mut LeaderEpochCache,
    book: Option<i64>,
) -> i64 {
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
    let checkpointed = book.or_else(|| match load_high_watermark(log.dir()) {
        Ok(hw) => hw,
        Err(e) => {
            warn!(%tp, error = %e, "ignoring the high-watermark checkpoint");
            None
        }
    });
    checkpointed.unwrap_or(start).clamp(start, end)
}

impl ReplicaState {
    /// Reports the high watermark to the node's book (written by its own task).
    pub(super) fn checkpoint_high_watermark(&self) {
        self.hw_book.report(self.hw_key, self.high_watermark);
    }

    /// Writes the leader-epoch history (after a change the batch headers do not record).
    pub(super) fn checkpoint_epochs(&self) -> Result<(), chronik::log::LogError> {
        crate::blocking::disk(|| store_epochs(self.log.dir(), &self.epochs))
    }

    /// Both checkpoints, at shutdown (the book is written once every replica stopped).
    pub(super) fn write_checkpoints(&self) -> Result<(), chronik::log::LogError> {
        self.checkpoint_high_watermark();
        self.checkpoint_epochs()
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
        assert_eq!(recover(&tp, &log, &mut epochs, None), 0, "no checkpoint: nothing is known committed");
        assert_eq!(recover(&tp, &log, &mut epochs, Some(12)), 12);
        assert_eq!(recover(&tp, &log, &mut epochs, Some(100)), 30, "a lost tail cannot be above the log end");
        let legacy = dir.path().join(chronik::partition::checkpoints::HW_FILE);
        std::fs::write(&legacy, "0\n17\n").expect("write");
        assert_eq!(recover(&tp, &log, &mut epochs, None), 17, "an older release's file, when the book has none");
        assert_eq!(recover(&tp, &log, &mut epochs, Some(12)), 12, "the book comes first");
        std::fs::write(&legacy, "garbage").expect("write");
        assert_eq!(recover(&tp, &log, &mut epochs, None), 0, "a damaged checkpoint is not trusted");
    }

    #[test]
    fn the_book_writes_what_changed_and_a_restart_reads_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(chronik::partition::checkpoints::NODE_HW_FILE);
        let (a, b) = ((uuid::Uuid::new_v4(), 0), (uuid::Uuid::new_v4(), 3));
        let book = HighWatermarkBook::load(dir.path());
        book.write().expect("write");
        assert!(!file.exists(), "nothing reported, nothing written");
        book.report(a, 10);
        book.report(b, 20);
        book.write().expect("write");
        let written = std::fs::metadata(&file).expect("written").modified().expect("mtime");
        book.report(a, 10);
        std::fs::remove_file(&file).expect("remove");
        book.write().expect("write");
        assert!(!file.exists(), "an unchanged report writes nothing, got {written:?} again");
        book.report(a, 11);
        book.forget(&b);
        book.write().expect("write");
        let again = HighWatermarkBook::load(dir.path());
        assert_eq!((again.get(&a), again.get(&b)), (Some(11), None), "the newest report, and only what is hosted");
        again.retain(|k| *k != a);
        again.write().expect("write");
        assert_eq!(HighWatermarkBook::load(dir.path()).get(&a), None, "pruned at a start");
        std::fs::write(&file, "garbage").expect("write");
        assert_eq!(HighWatermarkBook::load(dir.path()).get(&a), None, "a damaged file is not trusted");
    }

    #[test]
    fn epochs_that_wrote_batches_come_back_from_the_log_without_any_checkpoint() {
        // A follower writes no checkpoint for the epochs it copies: a kill -9 leaves none.
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), 0).expect("open");
        for epoch in [0, 0, 2, 5, 5] {
            let entries = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
            let mut batch = encode_batch(&entries, 1_000, Compression::None).expect("encode").to_vec();
            log.append(&mut batch, epoch, 1_000).expect("append");
        }
        let mut epochs = crate::replica::read::rebuild_from_headers(&log).expect("rebuild").epochs;
        assert_eq!(recover(&TopicPartition::new("t", 0), &log, &mut epochs, None), 0);
        let expected: Vec<_> = [(0, 0), (2, 2), (5, 3)]
            .into_iter()
            .map(|(epoch, start_offset)| chronik::partition::replication::EpochEntry { epoch, start_offset })
            .collect();
        assert_eq!(epochs.entries(), expected.as_slice());
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
        recover(&tp, &log, &mut epochs, None);
        assert_eq!(epochs, saved, "the leader elected at 30 that wrote nothing yet is remembered");
        let mut stale = from_headers();
        stale.assign(5, 10);
        store_epochs(dir.path(), &stale).expect("store");
        let mut epochs = from_headers();
        recover(&tp, &log, &mut epochs, None);
        assert_eq!(epochs, from_headers(), "the headers are the truth for offsets the log holds");
    }
}
