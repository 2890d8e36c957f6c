//! Sparse per-segment indexes: `<base>.index` maps relative offsets to file positions and
//! `<base>.timeindex` maps the largest timestamp seen so far to the offset where it was
//! reached. The in-memory `Vec` serves every lookup; the file is only appended to (through a
//! small buffer) and read back when a sealed segment is opened.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::durability;
use super::error::{IoContext, LogError};

/// A fixed-size index entry with a big-endian file encoding.
pub(crate) trait IndexEntry: Copy {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Writes the entry into `out` (exactly `SIZE` bytes).
    fn encode(&self, out: &mut [u8]);
    /// Reads an entry from `b` (exactly `SIZE` bytes).
    fn decode(b: &[u8]) -> Self;
}

/// Offset index entry: the batch whose base offset is `base + relative_offset` starts at byte
/// `position` of the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Batch base offset minus the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment file.
    pub position: u32,
}

/// Time index entry: up to `base + relative_offset`, no record is newer than `timestamp`, and
/// the batch ending at that offset reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// Largest timestamp seen so far in the segment.
    pub timestamp: i64,
    /// Last offset of the batch that reached it, relative to the segment's base offset.
    pub relative_offset: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        Self { relative_offset: u32_at(b, 0), position: u32_at(b, 4) }
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        Self { timestamp: i64::from_be_bytes(ts), relative_offset: u32_at(b, 8) }
    }
}

/// An index file and its in-memory copy.
pub(crate) struct IndexFile<E> {
    /// Where the index lives, for error messages and deletion.
    path: PathBuf,
    /// Every entry, in file order; the source of all lookups.
    entries: Vec<E>,
    /// Appends entries to the file; flushed on `flush`, roll and truncation. `None` while
    /// closed (sealed segments), reopened on the next write.
    writer: Option<BufWriter<File>>,
}

/// Opens `path` for appending, emptying it first when `truncate`. Append mode (rather than
/// `truncate(true)`, which std refuses to combine with it) keeps writes at the end of the file
/// after `set_len`, so a truncated index never grows a hole.
fn open_append(path: &Path, truncate: bool) -> Result<File, LogError> {
    let file =
        OpenOptions::new().create(true).append(true).open(path).ctx(|| format!("open index {}", path.display()))?;
    if truncate {
        file.set_len(0).ctx(|| format!("empty index {}", path.display()))?;
        durability::created(path);
    }
    Ok(file)
}

impl<E: IndexEntry> IndexFile<E> {
    /// An empty index, replacing whatever file was at `path`. The file is created with the
    /// first entry, which comes only after `index_interval_bytes` of batches: a new replica (a
    /// node joining takes hundreds at once) then creates one file, not three, and an idle
    /// partition holds one descriptor. A sealed segment without index files is simply walked on
    /// open, as one whose indexes are lost.
    pub fn create(path: PathBuf) -> Result<Self, LogError> {
        durability::remove(&path).ctx(|| format!("delete stale index {}", path.display()))?;
        Ok(Self { path, entries: Vec::new(), writer: None })
    }

    /// Reads the index at `path`. `None` when the file is missing, holds more than `max_entries`
    /// entries, has a partial entry, or fails `valid` — the caller then rebuilds it.
    pub fn load(path: PathBuf, max_entries: u64, valid: impl Fn(&[E]) -> bool) -> Result<Option<Self>, LogError> {
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("stat index {}", path.display())),
        };
        // Check the size before reading so a damaged file cannot demand a huge buffer.
        if !len.is_multiple_of(E::SIZE as u64) || len / E::SIZE as u64 > max_entries {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).ctx(|| format!("read index {}", path.display()))?;
        durability::opened(&path, len);
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        if entries.len() as u64 * E::SIZE as u64 != len || !valid(&entries) {
            return Ok(None);
        }
        Ok(Some(Self { path, entries, writer: None }))
    }

    /// The writer, reopening the file if it was closed. An index with no entries (a new one
    /// has no file yet) creates or empties its file, so the file holds what memory holds.
    fn writer(&mut self) -> Result<&mut BufWriter<File>, LogError> {
        let writer = match self.writer.take() {
            Some(w) => w,
            None => BufWriter::new(open_append(&self.path, self.entries.is_empty())?),
        };
        Ok(self.writer.insert(writer))
    }

    /// Appends an entry to memory and (buffered) to the file.
    pub fn push(&mut self, entry: E) -> Result<(), LogError> {
        let mut buf = [0u8; 16];
        entry.encode(&mut buf[..E::SIZE]);
        let result = self.writer()?.write_all(&buf[..E::SIZE]);
        result.ctx(|| format!("append to index {}", self.path.display()))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Every entry, in order.
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    /// The newest entry.
    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    /// Keeps the first `keep` entries, in memory and in the file.
    pub fn truncate(&mut self, keep: usize) -> Result<(), LogError> {
        if keep >= self.entries.len() {
            return Ok(());
        }
        self.flush()?;
        self.entries.truncate(keep);
        let len = (keep * E::SIZE) as u64;
        let writer = self.writer()?;
        let result = writer.get_ref().set_len(len);
        result.ctx(|| format!("truncate index {}", self.path.display()))?;
        durability::truncated(&self.path, len);
        Ok(())
    }

    /// Pushes buffered entries to the file.
    pub fn flush(&mut self) -> Result<(), LogError> {
        match &mut self.writer {
            Some(w) => w.flush().ctx(|| format!("flush index {}", self.path.display())),
            None => Ok(()),
        }
    }

    /// Flushes and fsyncs the file (if it was written since it was opened). The flush comes
    /// first so the length the durability registry records covers every entry pushed.
    /// Closes it after: the next entry reopens it, so a partition that stops writing gives its
    /// descriptors back.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.flush()?;
        match self.writer.take() {
            Some(w) => {
                durability::sync_data(w.get_ref(), &self.path).ctx(|| format!("fsync index {}", self.path.display()))
            }
            None => Ok(()),
        }
    }

    /// Flushes and closes the file; a later write reopens it. Sealed segments hold no index
    /// file descriptors, so a partition with many segments costs one descriptor per segment.
    pub fn close(&mut self) -> Result<(), LogError> {
        self.flush()?;
        self.writer = None;
        Ok(())
    }

    /// The index file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl IndexFile<OffsetEntry> {
    /// The entry of the last indexed batch whose base offset is `<= relative_offset`.
    pub fn lookup(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let n = self.entries.partition_point(|e| e.relative_offset <= relative_offset);
        n.checked_sub(1).map(|i| self.entries[i])
    }
}

impl IndexFile<TimeEntry> {
    /// The last entry whose timestamp is `<= timestamp`.
    pub fn lookup(&self, timestamp: i64) -> Option<TimeEntry> {
        let n = self.entries.partition_point(|e| e.timestamp <= timestamp);
        n.checked_sub(1).map(|i| self.entries[i])
    }
}

/// Offset index entries must grow strictly in both fields and point inside the segment file.
pub(crate) fn offset_entries_valid(entries: &[OffsetEntry], file_len: u64) -> bool {
    let ordered =
        entries.windows(2).all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
    ordered && entries.last().is_none_or(|e| u64::from(e.position) < file_len)
}

/// Time index entries must grow strictly in timestamp and never go back in offset.
pub(crate) fn time_entries_valid(entries: &[TimeEntry]) -> bool {
    entries.windows(2).all(|w| w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_holds_its_file_open_only_between_an_entry_and_the_next_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        std::fs::write(&path, [7u8; 24]).expect("an older segment's index");
        let mut index = IndexFile::<OffsetEntry>::create(path.clone()).expect("create");
        assert!(index.writer.is_none() && !path.exists(), "the stale file is gone, the new one not made yet");
        index.push(OffsetEntry { relative_offset: 1, position: 10 }).expect("push");
        assert!(index.writer.is_some());
        index.sync().expect("sync");
        assert!(index.writer.is_none(), "synced entries need no descriptor");
        index.push(OffsetEntry { relative_offset: 2, position: 20 }).expect("reopened by the next entry");
        index.sync().expect("sync");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 2 * OffsetEntry::SIZE as u64);
    }

    #[test]
    fn entries_round_trip_through_the_file_and_lookups_pick_the_floor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        let mut index = IndexFile::<OffsetEntry>::create(path.clone()).expect("create");
        for i in 1..=3u32 {
            index.push(OffsetEntry { relative_offset: i * 10, position: i * 100 }).expect("push");
        }
        index.flush().expect("flush");
        let loaded = IndexFile::<OffsetEntry>::load(path, 100, |e| offset_entries_valid(e, 1_000)).expect("load");
        let loaded = loaded.expect("valid index");
        assert_eq!(loaded.entries(), index.entries());
        assert_eq!(loaded.lookup(5), None);
        assert_eq!(loaded.lookup(10).map(|e| e.position), Some(100));
        assert_eq!(loaded.lookup(29).map(|e| e.position), Some(200));
        assert_eq!(loaded.lookup(1_000).map(|e| e.position), Some(300));
    }

    #[test]
    fn partial_oversized_or_out_of_file_indexes_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        std::fs::write(&path, [0u8; 12]).expect("write");
        let load = |max, len| IndexFile::<OffsetEntry>::load(path.clone(), max, |e| offset_entries_valid(e, len));
        assert!(load(100, 1_000).expect("load").is_none(), "partial entry");
        std::fs::write(&path, [0u8; 16]).expect("write");
        assert!(load(1, 1_000).expect("load").is_none(), "more entries than the segment can hold");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0x10, 0]);
        std::fs::write(&path, bytes).expect("write");
        assert!(load(100, 100).expect("load").is_none(), "points past the end of the segment");
        assert!(load(100, 10_000).expect("load").is_some());
        let missing = IndexFile::<TimeEntry>::load(dir.path().join("none"), 10, time_entries_valid);
        assert!(missing.expect("load").is_none());
    }

    #[test]
    fn truncate_keeps_the_prefix_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.timeindex");
        let mut index = IndexFile::<TimeEntry>::create(path.clone()).expect("create");
        for i in 0..5u32 {
            index.push(TimeEntry { timestamp: i64::from(i) * 7, relative_offset: i }).expect("push");
        }
        index.truncate(2).expect("truncate");
        index.push(TimeEntry { timestamp: 100, relative_offset: 9 }).expect("push");
        index.flush().expect("flush");
        let loaded = IndexFile::<TimeEntry>::load(path, 10, time_entries_valid).expect("load").expect("valid");
        let stamps: Vec<i64> = loaded.entries().iter().map(|e| e.timestamp).collect();
        assert_eq!(stamps, vec![0, 7, 100]);
        assert_eq!(loaded.lookup(8).map(|e| e.relative_offset), Some(1));
    }
}
