//! The durable Raft log and vote, in a redb file under `<data-dir>/raft/`. Every write is one
//! redb transaction committed with fsync before openraft hears it is done.

// openraft's storage traits return `StorageError` by value; helpers here share that shape.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use redb::{Database, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::TypeConfig;
use chronik::config::NodeId;

/// Log entries by index, each serde-JSON.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Small named values: the vote, the committed and the last purged log id.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

/// A storage failure as openraft wants it; `make` picks what was being read or written.
pub(super) fn storage_err(
    make: impl FnOnce(AnyError) -> StorageIOError<NodeId>,
    e: impl std::error::Error + 'static,
) -> StorageError<NodeId> {
    make(AnyError::new(&e)).into()
}

/// Reads one serde value from a `&str`-keyed table.
pub(super) fn read_value<T: DeserializeOwned>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = match txn.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let Some(bytes) = table.get(key).map_err(|e| e.to_string())? else { return Ok(None) };
    serde_json::from_slice(bytes.value()).map(Some).map_err(|e| format!("{key} is corrupt: {e}"))
}

/// Writes already serialized values into a `&str`-keyed table in one durable transaction.
pub(super) fn write_values(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    values: &[(&str, &[u8])],
) -> Result<(), String> {
    crate::blocking::disk(|| {
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut t = txn.open_table(table).map_err(|e| e.to_string())?;
            for (key, value) in values {
                t.insert(*key, *value).map_err(|e| e.to_string())?;
            }
        }
        txn.commit().map_err(|e| e.to_string())
    })
}

/// An error message as an `std::error::Error`, for openraft's `AnyError`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct StoreError(pub String);

pub(super) fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError(e.to_string()))
}

/// The log store. Cheap to clone: clones share the database.
#[derive(Clone)]
pub struct LogStore {
    /// The node's Raft database.
    db: Arc<Database>,
}

impl LogStore {
    /// A log store over `db` (tables are created on first write).
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }

    fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError<NodeId>> {
        read_value(&self.db, META, key).map_err(|e| storage_err(StorageIOError::read, StoreError(e)))
    }

    fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError<NodeId>> {
        let bytes = json(value).map_err(|e| storage_err(StorageIOError::write, e))?;
        write_values(&self.db, META, &[(key, &bytes)]).map_err(|e| storage_err(StorageIOError::write, StoreError(e)))
    }

    /// Runs `f` on the log table in a durable write transaction.
    fn write_log(
        &self,
        f: impl FnOnce(&mut redb::Table<u64, &[u8]>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        crate::blocking::disk(|| {
            let txn = self.db.begin_write().map_err(|e| StoreError(e.to_string()))?;
            {
                let mut table = txn.open_table(LOG).map_err(|e| StoreError(e.to_string()))?;
                f(&mut table)?;
            }
            txn.commit().map_err(|e| StoreError(e.to_string()))
        })
    }

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| StoreError(e.to_string()))?;
        let table = match txn.open_table(LOG) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(StoreError(e.to_string())),
        };
        let Some((_, value)) = table.last().map_err(|e| StoreError(e.to_string()))? else { return Ok(None) };
        let entry: Entry<TypeConfig> = serde_json::from_slice(value.value()).map_err(|e| StoreError(e.to_string()))?;
        Ok(Some(entry.log_id))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let read = || -> Result<Vec<Entry<TypeConfig>>, StoreError> {
            let txn = self.db.begin_read().map_err(|e| StoreError(e.to_string()))?;
            let table = match txn.open_table(LOG) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(StoreError(e.to_string())),
            };
            let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
            let mut entries = Vec::new();
            for item in table.range::<u64>(bounds).map_err(|e| StoreError(e.to_string()))? {
                let (_, value) = item.map_err(|e| StoreError(e.to_string()))?;
                entries.push(serde_json::from_slice(value.value()).map_err(|e| StoreError(e.to_string()))?);
            }
            Ok(entries)
        };
        read().map_err(|e| storage_err(StorageIOError::read_logs, e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.meta(PURGED)?;
        let last = self.last_entry_id().map_err(|e| storage_err(StorageIOError::read_logs, e))?;
        Ok(LogState { last_purged_log_id, last_log_id: last.or(last_purged_log_id) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.put_meta(VOTE, vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.meta::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = self.write_log(|table| {
            for entry in entries {
                table.insert(entry.log_id.index, json(&entry)?.as_slice()).map_err(|e| StoreError(e.to_string()))?;
            }
            Ok(())
        });
        // The commit above fsynced (redb's default durability), so the entries are on disk.
        let io = result.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.0.clone()));
        callback.log_io_completed(io);
        result.map_err(|e| storage_err(StorageIOError::write_logs, e))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write_log(|table| {
            table.retain_in::<u64, _>(log_id.index.., |_, _| false).map_err(|e| StoreError(e.to_string()))
        })
        .map_err(|e| storage_err(StorageIOError::write_logs, e))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Record the purge point first: a crash in between leaves entries openraft no longer
        // reads, never a gap it would trust.
        self.put_meta(PURGED, &log_id)?;
        self.write_log(|table| {
            let upto = (Bound::Unbounded, Bound::Included(log_id.index));
            table.retain_in::<u64, _>(upto, |_, _| false).map_err(|e| StoreError(e.to_string()))
        })
        .map_err(|e| storage_err(StorageIOError::write_logs, e))
    }
}
