//! A handle that lets another thread (the WAL flusher) fsync a partition's active segment.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::durability;

/// The active segment's log file and its path (the path keys the durability registry).
type Active = (Arc<File>, Arc<PathBuf>);

/// Fewest files a round fsyncs together. Below it the `fdatasync`s are cheap enough, and a
/// `syncfs` would also write back whatever else the filesystem holds dirty.
pub const SYNC_TOGETHER_MIN: usize = 4;

/// Fsyncs whichever segment is active at the time of the call. The log swaps the file inside
/// on every roll (after fsyncing the old one itself), so a flusher holding one handle for the
/// partition's lifetime never syncs a stale file.
#[derive(Debug, Clone)]
pub struct SyncHandle {
    // SHARED: written by the log's owner on roll, read by the flusher thread; the lock is held
    // only to clone the `Arc`, never across the fsync.
    /// The active segment's log file and path.
    active: Arc<Mutex<Active>>,
}

impl SyncHandle {
    /// A handle on `file`, found at `path`.
    pub(crate) fn new(file: Arc<File>, path: PathBuf) -> Self {
        Self { active: Arc::new(Mutex::new((file, Arc::new(path)))) }
    }

    /// Points the handle at a new active segment.
    pub(crate) fn replace(&self, file: Arc<File>, path: PathBuf) {
        // A poisoned lock only means another holder panicked while cloning; the value is fine.
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = (file, Arc::new(path));
    }

    /// Fsyncs the active segment's data (`fdatasync`), telling the durability registry.
    pub fn sync(&self) -> std::io::Result<()> {
        let (file, path) = self.current();
        durability::sync_data(&file, &path)
    }

    /// Fsyncs the active segments of all `handles`: together (one `syncfs` per filesystem)
    /// from [`SYNC_TOGETHER_MIN`] files on, since each `fdatasync` is a journal commit.
    pub fn sync_all(handles: &[SyncHandle]) -> std::io::Result<()> {
        if handles.len() < SYNC_TOGETHER_MIN {
            return handles.iter().try_for_each(SyncHandle::sync);
        }
        let files: Vec<Active> = handles.iter().map(SyncHandle::current).collect();
        durability::sync_data_all(&files)
    }

    /// The active segment now (the lock is held only for the clone).
    fn current(&self) -> Active {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether both handles follow the same partition log (they were cloned from one another).
    pub fn same_log(&self, other: &SyncHandle) -> bool {
        Arc::ptr_eq(&self.active, &other.active)
    }
}
