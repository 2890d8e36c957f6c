//! Swapping cleaned segments in, crash-safe: `<base>.cleaned` (complete, fsynced) is renamed to
//! `<base>.<end>.swap`, which commits the swap; then the old segments in `[base, end)` are
//! deleted and the swap file becomes `<base>.log`. Opening a log finishes a committed swap the
//! same way ([`finish_swaps`]) and deletes `.cleaned` files, which were never committed.

use std::path::Path;

use tracing::{info, warn};

use super::run::{CleanedGroup, CleanedLog};
use super::{CleanStats, CleanerCheckpoint};
use crate::log::PartitionLog;
use crate::log::durability;
use crate::log::error::{IoContext, LogError};
use crate::log::segment::{Layout, Segment, file_name, sync_dir};

/// How applying a cleaning ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanOutcome {
    /// Whether the cleaned segments replaced the old ones (false: the log changed meanwhile,
    /// by retention, DeleteRecords or truncation, and the cleaning was thrown away).
    pub applied: bool,
    /// What the cleaning did.
    pub stats: CleanStats,
    /// The log's size before and after.
    pub size_before: u64,
    /// The log's size after.
    pub size_after: u64,
}

impl PartitionLog {
    /// Swaps a finished cleaning in, if the segments it read are still there unchanged;
    /// otherwise deletes its files. Then records where the next cleaning starts.
    pub fn apply_clean(&mut self, cleaned: CleanedLog) -> Result<CleanOutcome, LogError> {
        let size_before = self.size_bytes();
        let unchanged = cleaned.groups.iter().flat_map(|g| &g.members).all(|(base, size, next)| {
            self.sealed.get(base).is_some_and(|s| s.size() == *size && s.next_offset() == *next)
        });
        if !unchanged {
            cleaned.discard();
            info!(dir = %self.dir.display(), "the log changed while it was cleaned; cleaning thrown away");
            return Ok(CleanOutcome { applied: false, stats: cleaned.stats, size_before, size_after: size_before });
        }
        self.swap_groups(&cleaned.groups)?;
        let checkpoint = CleanerCheckpoint {
            first_dirty: cleaned.first_dirty,
            tombstones_due_ms: cleaned.tombstones_due_ms,
            ranges: cleaned.ranges,
        };
        self.store_cleaner_checkpoint(checkpoint)?;
        Ok(CleanOutcome { applied: true, stats: cleaned.stats, size_before, size_after: self.size_bytes() })
    }

    /// Swaps every group in with two directory fsyncs in all (the replica's mailbox waits on
    /// them): first every group is committed (renamed to `.swap`), then the old segments go and
    /// the swap files become segments.
    fn swap_groups(&mut self, groups: &[CleanedGroup]) -> Result<(), LogError> {
        let dir = self.dir.clone();
        let swap = |g: &CleanedGroup| dir.join(swap_name(g.base_offset, g.end_offset));
        for group in groups {
            match group.install {
                true => rename(&group.path, &swap(group))?,
                false => remove(&group.path)?,
            }
        }
        sync_dir(&dir)?;
        for group in groups {
            for (base, _, _) in &group.members {
                if let Some(segment) = self.sealed.remove(base) {
                    segment.remove_files()?;
                }
            }
            if group.install {
                rename(&swap(group), &dir.join(file_name(group.base_offset, "log")))?;
            }
        }
        sync_dir(&dir)?;
        let layout = Layout { index_interval_bytes: self.config.index_interval_bytes, allow_gaps: true };
        for group in groups.iter().filter(|g| g.install) {
            let (segment, cut) = Segment::open_sealed(&dir, group.base_offset, layout)?;
            if let Some(cut) = cut {
                let reason = format!("a cleaned segment does not read back: {}", cut.reason);
                return Err(LogError::Corrupt { segment: swap(group), position: cut.position, reason });
            }
            self.sealed.insert(group.base_offset, segment);
        }
        Ok(())
    }
}

/// The name of a committed swap of the segments in `[base, end)`.
fn swap_name(base: i64, end: i64) -> String {
    format!("{base:020}.{end:020}.swap")
}

/// Finishes the swaps a crash interrupted in `dir` and deletes uncommitted `.cleaned` files.
pub(crate) fn finish_swaps(dir: &Path) -> Result<(), LogError> {
    let context = || format!("list partition directory {}", dir.display());
    let mut swaps = Vec::new();
    for entry in std::fs::read_dir(dir).ctx(context)? {
        let name = entry.ctx(context)?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".cleaned") {
            warn!(dir = %dir.display(), file = %name, "deleting an unfinished cleaning");
            remove(&dir.join(&name))?;
        } else if let Some(range) = parse_swap(&name) {
            swaps.push((range, name));
        }
    }
    swaps.sort();
    for ((base, end), name) in swaps {
        for old in crate::log::partition_log::list_segments(dir)?.into_iter().filter(|b| (base..end).contains(b)) {
            for ext in ["log", "index", "timeindex"] {
                remove(&dir.join(file_name(old, ext)))?;
            }
        }
        rename(&dir.join(&name), &dir.join(file_name(base, "log")))?;
        sync_dir(dir)?;
        warn!(dir = %dir.display(), base, end, "finished a cleaning's swap that a crash interrupted");
    }
    Ok(())
}

/// `(base, end)` of a `<base:020>.<end:020>.swap` file name.
fn parse_swap(name: &str) -> Option<(i64, i64)> {
    let (base, end) = name.strip_suffix(".swap")?.split_once('.')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(base) && digits(end)).then(|| Some((base.parse().ok()?, end.parse().ok()?))).flatten()
}

fn rename(from: &Path, to: &Path) -> Result<(), LogError> {
    std::fs::rename(from, to).ctx(|| format!("rename {} to {}", from.display(), to.display()))
}

fn remove(path: &Path) -> Result<(), LogError> {
    durability::remove(path).ctx(|| format!("delete {}", path.display()))
}
