//! The node's Raft database (log, vote, applied state, snapshot), and opening it again. After a
//! failed write redb refuses every later one ("Previous I/O error occurred. Please close and
//! re-open the database."): what the page cache held may not be what the disk holds. Opening
//! it again recovers it to its last durable commit, so a RaftActor restarted after a storage
//! error reopens it, once the stopped Raft has let go of it (redb opens a file once per process).
//! The `raft_disk_error` fail point makes its writes fail for a while, as a failing disk would.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redb::backends::FileBackend;
use redb::{Database, StorageBackend};
use tracing::{info, warn};

/// How long a reopen waits for the stopped Raft's tasks to drop the database.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Opens the database.
type Opener = Box<dyn Fn() -> Result<Database, String> + Send + Sync>;

/// Until when the `raft_disk_error` fail point makes writes fail.
type FailUntil = Arc<Mutex<Option<Instant>>>;

/// The node's Raft database.
pub struct RaftDb {
    /// Opens it: the file under the data directory, or a simulated disk.
    open: Opener,
    /// The open database, shared by the log store, the state machine and the formation check.
    current: Mutex<Option<Arc<Database>>>,
    /// The fail point's deadline, read by the file backend [`RaftDb::at`] opens.
    fail_until: FailUntil,
}

impl RaftDb {
    /// The database at `<data-dir>/raft/raft.redb` (created on first use).
    pub fn at(data_dir: &str) -> Self {
        let dir = Path::new(data_dir).join("raft");
        let fail_until = FailUntil::default();
        let failing = fail_until.clone();
        let mut db = Self::new(move || {
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let path = dir.join("raft.redb");
            let opened = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
            let file = opened.map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let backend = FileBackend::new(file).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let backend = FailPointBackend { inner: backend, fail_until: failing.clone() };
            Database::builder().create_with_backend(backend).map_err(|e| format!("cannot open {}: {e}", path.display()))
        });
        db.fail_until = fail_until;
        db
    }

    /// A database `open` opens (the simulation's disk).
    pub fn new(open: impl Fn() -> Result<Database, String> + Send + Sync + 'static) -> Self {
        Self { open: Box::new(open), current: Mutex::new(None), fail_until: FailUntil::default() }
    }

    /// The `raft_disk_error` fail point: every write and fsync of the database fails for `how_long`.
    pub fn fail_writes_for(&self, how_long: Duration) {
        *self.fail_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now() + how_long);
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Database>>> {
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The open database, opened on first use.
    ///
    /// # Errors
    /// It cannot be opened (the message names the file).
    pub fn get(&self) -> Result<Arc<Database>, String> {
        let mut slot = self.slot();
        if let Some(db) = &*slot {
            return Ok(db.clone());
        }
        let db = Arc::new((self.open)()?);
        *slot = Some(db.clone());
        Ok(db)
    }

    /// Closes the database once nothing else holds it and opens it again. If the stopped Raft's
    /// tasks still hold it after [`RELEASE_WAIT`], keeps using it as it is.
    ///
    /// # Errors
    /// It cannot be opened again.
    pub async fn reopen(&self) -> Result<Arc<Database>, String> {
        let Some(old) = self.slot().take() else { return self.get() };
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        while Arc::strong_count(&old) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if Arc::strong_count(&old) > 1 {
            warn!("the Raft database is still in use; not reopening it");
            *self.slot() = Some(old.clone());
            return Ok(old);
        }
        drop(old);
        info!("reopening the Raft database");
        self.get()
    }
}

/// The file backend, failing writes and fsyncs while the fail point says so.
#[derive(Debug)]
struct FailPointBackend {
    /// The file.
    inner: FileBackend,
    /// Until when writes fail.
    fail_until: FailUntil,
}

impl FailPointBackend {
    fn check(&self) -> io::Result<()> {
        let until = *self.fail_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match until {
            Some(until) if Instant::now() < until => Err(io::Error::other("fail point: raft disk error")),
            _ => Ok(()),
        }
    }
}

impl StorageBackend for FailPointBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read(offset, len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self, eventual: bool) -> io::Result<()> {
        self.check()?;
        self.inner.sync_data(eventual)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_is_reopened_once_released_and_kept_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let db = RaftDb::at(dir.path().to_str().unwrap());
        let first = db.get().unwrap();
        assert!(Arc::ptr_eq(&first, &db.get().unwrap()), "opened once");
        drop(first);
        let second = db.reopen().await.unwrap();
        assert!(Arc::ptr_eq(&second, &db.get().unwrap()), "the reopened database is the shared one");

        tokio::time::pause();
        let held = second.clone();
        let kept = db.reopen().await.unwrap();
        assert!(Arc::ptr_eq(&kept, &held), "a database still in use is kept");
    }
}
