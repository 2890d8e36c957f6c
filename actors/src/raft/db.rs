//! The node's Raft database (log, vote, applied state, snapshot), and opening it again. After a
//! failed write redb refuses every later one ("Previous I/O error occurred. Please close and
//! re-open the database."): what the page cache held may not be what the disk holds. Opening
//! it again recovers it to its last durable commit, so a RaftActor restarted after a storage
//! error reopens it, once the stopped Raft has let go of it (redb opens a file once per process).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::Database;
use tracing::{info, warn};

/// How long a reopen waits for the stopped Raft's tasks to drop the database.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Opens the database.
type Opener = Box<dyn Fn() -> Result<Database, String> + Send + Sync>;

/// The node's Raft database.
pub struct RaftDb {
    /// Opens it: the file under the data directory, or a simulated disk.
    open: Opener,
    /// The open database, shared by the log store, the state machine and the formation check.
    current: Mutex<Option<Arc<Database>>>,
}

impl RaftDb {
    /// The database at `<data-dir>/raft/raft.redb` (created on first use).
    pub fn at(data_dir: &str) -> Self {
        let dir = Path::new(data_dir).join("raft");
        Self::new(move || {
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let path = dir.join("raft.redb");
            Database::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
        })
    }

    /// A database `open` opens (the simulation's disk).
    pub fn new(open: impl Fn() -> Result<Database, String> + Send + Sync + 'static) -> Self {
        Self { open: Box::new(open), current: Mutex::new(None) }
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
