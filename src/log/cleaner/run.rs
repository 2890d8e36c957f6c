//! Running a cleaning: the key map of the dirty part, then the rewrite of the cleanable
//! segments into `.cleaned` files, on a blocking thread and throttled.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::CleanStats;
use super::horizon::CleanedRanges;
use super::plan::{CleanJob, SourceSegment};
use super::rewrite::{Filtered, empty_batch, filter_batch, with_records};
use crate::log::batch::BatchHeader;
use crate::log::error::{IoContext, LogError};
use crate::log::reader::{Step, WINDOW_BYTES, WindowReader};
use crate::log::segment::file_name;
use crate::records::StoredRecord;

/// What a key costs in the map besides its bytes (hash table slot, offset, allocation).
const MAP_ENTRY_OVERHEAD: usize = 48;

/// Keeps a cleaning's disk traffic (bytes read plus written) under a rate, by sleeping.
#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second allowed; 0 means unlimited.
    rate: u64,
    /// When the cleaning started.
    start: Instant,
    /// Bytes read and written so far.
    bytes: u64,
}

impl Throttle {
    /// A throttle at `bytes_per_sec` (0: unlimited), starting now.
    pub fn new(bytes_per_sec: u64) -> Throttle {
        Throttle { rate: bytes_per_sec, start: Instant::now(), bytes: 0 }
    }

    /// Counts `bytes` of disk traffic and sleeps until the rate allows it.
    fn account(&mut self, bytes: u64) {
        self.bytes += bytes;
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// A group of consecutive segments rewritten into one `.cleaned` file named after the first.
#[derive(Debug, Clone)]
pub(crate) struct CleanedGroup {
    /// The first member's base offset: the cleaned segment's name.
    pub base_offset: i64,
    /// The last member's next offset.
    pub end_offset: i64,
    /// The segments replaced, as `(base offset, size, next offset)` when the cleaning read them.
    pub members: Vec<(i64, u64, i64)>,
    /// The `.cleaned` file.
    pub path: PathBuf,
    /// Whether it becomes a segment: an empty result replaces nothing, except at the start of the
    /// log, whose first segment's base offset is the log start and stays.
    pub install: bool,
}

/// What a cleaning produced, to hand to [`crate::log::PartitionLog::apply_clean`].
#[derive(Debug, Clone)]
pub struct CleanedLog {
    /// The rewritten groups, oldest first.
    pub(crate) groups: Vec<CleanedGroup>,
    /// The next cleaning's first dirty offset.
    pub(crate) first_dirty: i64,
    /// When the oldest tombstone kept may go; -1 if none was kept.
    pub(crate) tombstones_due_ms: i64,
    /// When each part below `first_dirty` was first cleaned, this cleaning included.
    pub(crate) ranges: CleanedRanges,
    /// What the cleaning did.
    pub stats: CleanStats,
}

impl CleanedLog {
    /// Deletes the `.cleaned` files (the swap was refused, or the log is gone).
    pub fn discard(&self) {
        for group in &self.groups {
            let _ = std::fs::remove_file(&group.path);
        }
    }
}

impl CleanJob {
    /// Runs the cleaning: builds the key map from the dirty part (at most `map_limit_bytes`;
    /// a larger dirty part is cleaned up to the segment where the map filled, the rest next
    /// time), then writes the cleaned groups. Reads only sealed segments, writes only new files.
    pub fn run(&self, throttle: &mut Throttle, map_limit_bytes: usize) -> Result<CleanedLog, LogError> {
        let mut stats = CleanStats::default();
        let last_batches = self.last_batch_per_producer()?;
        let (map, covered) = self.key_map(throttle, map_limit_bytes, &mut stats)?;
        let segments = &self.cleanable[..covered];
        let mut pass =
            Pass { map: &map, last_batches: &last_batches, tombstones_due: i64::MAX, txn_kept: HashMap::new() };
        let mut groups = Vec::new();
        for (i, members) in group_by_size(segments, self.segment_bytes).into_iter().enumerate() {
            groups.push(self.write_group(members, i == 0, throttle, &mut stats, &mut pass)?);
        }
        let first_dirty = segments.last().map_or(self.first_dirty, |s| s.next_offset);
        let tombstones_due = pass.tombstones_due;
        Ok(CleanedLog {
            groups,
            first_dirty,
            tombstones_due_ms: if tombstones_due == i64::MAX { -1 } else { tombstones_due },
            ranges: self.ranges.with_cleaning(first_dirty, self.now_ms),
            stats,
        })
    }

    /// Whether `record` of the batch `header` survives: keyless records and the latest record
    /// of a key do; a tombstone until its delete horizon, `delete.retention.ms` after the
    /// cleaning that first cleaned it (Kafka's KIP-534 rule, see `horizon`; never its own
    /// timestamp, which may be -1 or a producer's skewed clock), so a tombstone is always kept
    /// by its first cleaning.
    fn keep(&self, header: &BatchHeader, r: &StoredRecord<'_>, pass: &mut Pass<'_>) -> bool {
        let Some(key) = r.key else { return true };
        let offset = header.base_offset + i64::from(r.offset_delta);
        if pass.map.get(key).is_some_and(|latest| *latest > offset) {
            return false;
        }
        !r.null_value || !self.past_horizon(offset, &mut pass.tombstones_due)
    }

    /// Whether a tombstone or transaction marker at `offset` may go: its delete horizon
    /// (`delete.retention.ms` after the cleaning that first cleaned it) has passed. If not, when
    /// it will is noted in `due` (the earliest of the kept ones).
    fn past_horizon(&self, offset: i64, due: &mut i64) -> bool {
        let first_cleaned = match offset < self.first_dirty {
            true => self.ranges.first_cleaned_ms(offset).unwrap_or(self.now_ms),
            false => self.now_ms,
        };
        let horizon = first_cleaned.saturating_add(self.compaction.delete_retention_ms);
        if offset < self.first_dirty && horizon <= self.now_ms {
            return true;
        }
        *due = (*due).min(horizon);
        false
    }

    /// Each idempotent producer's last batch in the whole log, by base offset.
    fn last_batch_per_producer(&self) -> Result<HashMap<i64, i64>, LogError> {
        let mut last = HashMap::new();
        for segment in &self.whole_log {
            let mut reader = WindowReader::new(&segment.file, &segment.path, WINDOW_BYTES);
            let mut pos = 0;
            while let Some(header) = next_header(segment, &mut reader, pos)? {
                if header.has_producer_id() {
                    last.insert(header.producer_id, header.base_offset);
                }
                pos += header.total_len() as u64;
            }
        }
        Ok(last)
    }

    /// Every key of the dirty records mapped to its last offset, and how many cleanable
    /// segments the cleaning covers (all, unless the map filled up first).
    fn key_map(
        &self,
        throttle: &mut Throttle,
        limit: usize,
        stats: &mut CleanStats,
    ) -> Result<(KeyMap, usize), LogError> {
        let mut map = KeyMap::new();
        let mut map_bytes = 0usize;
        for (i, segment) in self.cleanable.iter().enumerate() {
            if segment.next_offset <= self.first_dirty {
                continue;
            }
            for_each_batch(segment, |header, batch| {
                stats.read(throttle, batch.len());
                // An aborted record never happened: it must not supersede a committed one.
                if header.is_control() || header.last_offset() < self.first_dirty || self.is_aborted(header) {
                    return Ok(());
                }
                with_records(batch, header, |records| {
                    for r in records {
                        let offset = header.base_offset + i64::from(r.offset_delta);
                        if let Some(key) = r.key.filter(|_| offset >= self.first_dirty) {
                            if !map.contains_key(key) {
                                map_bytes += key.len() + MAP_ENTRY_OVERHEAD;
                            }
                            map.insert(key.to_vec(), offset);
                        }
                    }
                })
                .map_err(|reason| corrupt(segment, header, reason))
            })?;
            if map_bytes > limit {
                return Ok((map, i + 1));
            }
        }
        Ok((map, self.cleanable.len()))
    }

    /// Rewrites `members` into `<base>.cleaned` (fsynced). Records go as `keep` says; an aborted
    /// transaction's batches go whole; a transaction marker goes once no record of its
    /// transaction is left and it is past its delete horizon, as in Kafka (so a consumer still
    /// reading the transaction's records meets it). A producer's last batch always stays, empty
    /// if need be, so its sequence and epoch survive a restart.
    fn write_group(
        &self,
        members: &[SourceSegment],
        first: bool,
        throttle: &mut Throttle,
        stats: &mut CleanStats,
        pass: &mut Pass<'_>,
    ) -> Result<CleanedGroup, LogError> {
        let base = members[0].base_offset;
        let path = self.dir.join(file_name(base, "cleaned"));
        let file = create(&path)?;
        let mut out = BufWriter::new(&file);
        let mut size = 0u64;
        for segment in members {
            for_each_batch(segment, |header, batch| {
                stats.read(throttle, batch.len());
                let write = |out: &mut BufWriter<&File>, bytes: &[u8]| {
                    out.write_all(bytes).ctx(|| format!("write {}", path.display()))
                };
                let last_of_producer =
                    header.has_producer_id() && pass.last_batches.get(&header.producer_id) == Some(&header.base_offset);
                if header.is_control() {
                    let kept_data = pass.txn_kept.remove(&header.producer_id).unwrap_or(false);
                    if !kept_data
                        && !last_of_producer
                        && self.past_horizon(header.base_offset, &mut pass.tombstones_due)
                    {
                        stats.records_removed += 1;
                        return Ok(());
                    }
                    return write(&mut out, batch).map(|()| size += batch.len() as u64);
                }
                let (mut kept, mut removed) = (0u64, 0u64);
                let filtered = match self.is_aborted(header) {
                    true => {
                        removed = u64::try_from(header.record_count).unwrap_or(0);
                        Filtered::Empty
                    }
                    false => filter_batch(batch, header, |r| {
                        let keep = self.keep(header, r, pass);
                        *(if keep { &mut kept } else { &mut removed }) += 1;
                        keep
                    })
                    .map_err(|reason| corrupt(segment, header, reason))?,
                };
                stats.records_kept += kept;
                stats.records_removed += removed;
                if header.is_transactional() {
                    *pass.txn_kept.entry(header.producer_id).or_default() |= kept > 0;
                }
                let bytes = match filtered {
                    Filtered::Unchanged => batch.to_vec(),
                    Filtered::Rewritten(bytes) => bytes,
                    Filtered::Empty if last_of_producer => empty_batch(batch),
                    Filtered::Empty => return Ok(()),
                };
                throttle.account(bytes.len() as u64);
                size += bytes.len() as u64;
                write(&mut out, &bytes)
            })?;
        }
        out.flush().ctx(|| format!("write {}", path.display()))?;
        drop(out);
        file.sync_all().ctx(|| format!("fsync {}", path.display()))?;
        stats.bytes_written += size;
        stats.segments += members.len() as u64;
        let members_info = members.iter().map(|s| (s.base_offset, s.size, s.next_offset)).collect();
        let end_offset = members.last().map_or(base, |s| s.next_offset);
        Ok(CleanedGroup { base_offset: base, end_offset, members: members_info, path, install: first || size > 0 })
    }
}

impl CleanStats {
    /// Counts a batch read, against the throttle too.
    fn read(&mut self, throttle: &mut Throttle, bytes: usize) {
        self.bytes_read += bytes as u64;
        throttle.account(bytes as u64);
    }
}

/// Key bytes → the last offset the dirty part gives that key.
type KeyMap = HashMap<Vec<u8>, i64>;

/// What a cleaning carries from batch to batch while it rewrites the log in offset order.
struct Pass<'a> {
    /// The dirty part's keys and their last offsets.
    map: &'a KeyMap,
    /// Each producer's last batch in the whole log, by base offset.
    last_batches: &'a HashMap<i64, i64>,
    /// The earliest delete horizon of a kept tombstone or marker (`i64::MAX`: none).
    tombstones_due: i64,
    /// Per producer with a transaction under way in the walk: whether any of its records stay.
    txn_kept: HashMap<i64, bool>,
}

/// Consecutive segments, each group at most `max_bytes` of input (one segment at least) and
/// spanning offsets a 32-bit index entry can still address.
fn group_by_size(segments: &[SourceSegment], max_bytes: u64) -> Vec<&[SourceSegment]> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, segment) in segments.iter().enumerate() {
        let span = segment.next_offset - segments[start].base_offset;
        if i > start && (bytes + segment.size > max_bytes || span > i64::from(i32::MAX)) {
            groups.push(&segments[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += segment.size;
    }
    if start < segments.len() {
        groups.push(&segments[start..]);
    }
    groups
}

/// Calls `f` with every batch of `segment` (header and bytes).
fn for_each_batch(
    segment: &SourceSegment,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut reader = WindowReader::new(&segment.file, &segment.path, WINDOW_BYTES);
    let mut big = Vec::new();
    let mut pos = 0;
    while let Some(header) = next_header(segment, &mut reader, pos)? {
        let len = header.total_len();
        let batch = match len <= WINDOW_BYTES {
            true => reader.get(pos, len, segment.size)?,
            false => {
                big.resize(len, 0);
                let context = || format!("read {len} bytes at byte {pos} of {}", segment.path.display());
                segment.file.read_exact_at(&mut big, pos).ctx(context)?;
                &big[..]
            }
        };
        f(&header, batch)?;
        pos += len as u64;
    }
    Ok(())
}

/// The header of the batch at `pos`, `None` at the end; a torn batch is an error (sealed
/// segments were checked when opened, so this is damage since).
fn next_header(
    segment: &SourceSegment,
    reader: &mut WindowReader<'_>,
    pos: u64,
) -> Result<Option<BatchHeader>, LogError> {
    match reader.header_at(pos, segment.size)? {
        Step::End => Ok(None),
        Step::Batch(header) => Ok(Some(header)),
        Step::Torn(reason) => Err(LogError::Corrupt { segment: segment.path.clone(), position: pos, reason }),
    }
}

fn corrupt(segment: &SourceSegment, header: &BatchHeader, reason: String) -> LogError {
    let reason = format!("batch at offset {}: {reason}", header.base_offset);
    LogError::Corrupt { segment: segment.path.clone(), position: 0, reason }
}

/// Creates (or empties) a `.cleaned` file.
fn create(path: &std::path::Path) -> Result<File, LogError> {
    OpenOptions::new().write(true).create(true).truncate(true).open(path).ctx(|| format!("create {}", path.display()))
}
