//! Opening a partition's segments after a restart, Kafka-like: the log ends at the first bad
//! point. A segment whose tail was cut (torn, corrupt, out of offset order) or that does not
//! start where the previous one ends marks that point, and every later segment is deleted, so
//! the log never has a hole: a lost disk tail can cut the newest several segments, and what
//! follows the first cut is not trustworthy (nor reachable without a gap).

use std::collections::BTreeMap;
use std::path::Path;

use tracing::warn;

use crate::log::error::{IoContext, LogError};
use crate::log::segment::{Layout, Segment, Truncation, file_name, sync_dir};

/// A segment opened from disk, and the tail cut from it, if any.
type OpenedSegment = (Segment, Option<Truncation>);

/// Segments removed because they came after the first bad point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Deleted {
    /// Their base offsets, ascending.
    pub bases: Vec<i64>,
    /// Bytes of batches they held.
    pub bytes: u64,
}

/// What `open_segments` found: the sealed segments, the active one, the tails cut from the
/// segments kept (by base offset), and the segments deleted.
pub(super) struct Opened {
    /// Sealed segments by base offset.
    pub sealed: BTreeMap<i64, Segment>,
    /// The last segment, fully checked.
    pub active: Segment,
    /// Tails cut from kept segments.
    pub cuts: Vec<(i64, Truncation)>,
    /// Segments deleted after the first bad point.
    pub deleted: Deleted,
}

/// Opens every segment in `dir` (a new empty one at offset 0 if there is none): the last one
/// with full recovery, the others as sealed; then ends the log at the first bad point. A
/// cleaner's swap that was committed but not finished is finished first.
pub(super) fn open_segments(dir: &Path, layout: Layout, now_ms: i64) -> Result<Opened, LogError> {
    crate::log::cleaner::finish_swaps(dir)?;
    let bases = list_segments(dir)?;
    let Some(&last) = bases.last() else {
        let mut active = Segment::create(dir, 0, layout.index_interval_bytes)?;
        active.set_allow_gaps(layout.allow_gaps);
        return Ok(Opened { sealed: BTreeMap::new(), active, cuts: Vec::new(), deleted: Deleted::default() });
    };
    let mut segments = Vec::with_capacity(bases.len());
    for &base in &bases {
        segments.push(match base == last {
            true => Segment::recover(dir, base, layout, now_ms)?,
            false => Segment::open_sealed(dir, base, layout)?,
        });
    }
    let deleted = match first_bad_point(&segments, layout.allow_gaps) {
        Some(keep) => delete_after(dir, &mut segments, keep)?,
        None => Deleted::default(),
    };
    let (mut active, mut active_cut) = segments.pop().ok_or_else(|| no_segment_left(dir))?;
    if !deleted.bases.is_empty() {
        // The new last segment was opened as a sealed one (CRCs unchecked): check it fully.
        let base = active.base_offset();
        drop(active);
        let (reopened, cut) = Segment::recover(dir, base, layout, now_ms)?;
        active_cut = merge_cuts(active_cut, cut);
        active = reopened;
    }
    let mut cuts: Vec<(i64, Truncation)> =
        segments.iter().filter_map(|(s, cut)| cut.clone().map(|c| (s.base_offset(), c))).collect();
    cuts.extend(active_cut.map(|c| (active.base_offset(), c)));
    let sealed = segments.into_iter().map(|(s, _)| (s.base_offset(), s)).collect();
    Ok(Opened { sealed, active, cuts, deleted })
}

/// How many segments to keep: all but those after the first cut segment, or from the first one
/// that does not start exactly where its predecessor ends (a gap or an overlap; a compacted
/// log, `allow_gaps`, may have gaps). `None` when the log is whole.
fn first_bad_point(segments: &[OpenedSegment], allow_gaps: bool) -> Option<usize> {
    for (i, (segment, cut)) in segments.iter().enumerate() {
        if i > 0 {
            let (end, base) = (segments[i - 1].0.next_offset(), segment.base_offset());
            if end > base || (end < base && !allow_gaps) {
                return Some(i);
            }
        }
        if cut.is_some() && i + 1 < segments.len() {
            return Some(i + 1);
        }
    }
    None
}

/// Deletes the segments from index `keep` on, loudly, and makes the deletion durable: files
/// coming back after a second crash would sit after appends made in the meantime.
fn delete_after(dir: &Path, segments: &mut Vec<OpenedSegment>, keep: usize) -> Result<Deleted, LogError> {
    let doomed = segments.split_off(keep);
    let new_end = segments.last().map_or(0, |(s, _)| s.next_offset());
    let old_end = doomed.last().map_or(new_end, |(s, _)| s.next_offset()).max(new_end);
    let mut deleted = Deleted::default();
    let mut names = Vec::new();
    for (segment, cut) in doomed {
        deleted.bases.push(segment.base_offset());
        deleted.bytes += segment.size() + cut.map_or(0, |c| c.bytes);
        names.push(file_name(segment.base_offset(), "log"));
        segment.remove_files()?;
    }
    sync_dir(dir)?;
    warn!(
        dir = %dir.display(),
        segments = ?names,
        lost_from = new_end,
        lost_to = old_end,
        bytes = deleted.bytes,
        "deleted the segments after the first torn or missing point: offsets [lost_from, lost_to) are gone"
    );
    Ok(deleted)
}

/// Two cuts of one segment (opened as sealed, then checked fully): one cut at the lower position
/// that counts the bytes of both.
fn merge_cuts(first: Option<Truncation>, second: Option<Truncation>) -> Option<Truncation> {
    match (first, second) {
        (Some(a), Some(b)) => Some(Truncation { position: b.position, bytes: a.bytes + b.bytes, reason: a.reason }),
        (a, b) => a.or(b),
    }
}

fn no_segment_left(dir: &Path) -> LogError {
    let reason = "recovery deleted every segment".to_string();
    LogError::Corrupt { segment: dir.to_path_buf(), position: 0, reason }
}

/// Base offsets of the `<base:020>.log` files in `dir`, ascending; other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let context = || format!("list partition directory {}", dir.display());
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).ctx(context)? {
        let name = entry.ctx(context)?.file_name();
        let base = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .filter(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()));
        match base.map(str::parse::<i64>) {
            Some(Ok(base)) => bases.push(base),
            Some(Err(_)) => {
                let file = name.to_string_lossy();
                warn!(dir = %dir.display(), %file, "ignoring segment file: base offset too large");
            }
            None => {}
        }
    }
    bases.sort_unstable();
    Ok(bases)
}
