//! The bookkeeping behind the durability model: per file, what survives a power cut. Pure state
//! (only `atomic_before_rename` reads a file), so it is tested without the process-wide lock.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::PowerCut;

/// What of a file survives a power cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Durable {
    /// The first `n` bytes (a partition file, appended to and fsynced).
    Prefix(u64),
    /// Exactly these bytes, or no file at all (a file replaced whole by `write_atomic`).
    Whole(Option<Arc<[u8]>>),
}

/// Whether a completed operation may be reported to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reported {
    /// Yes: it is recorded.
    Yes,
    /// No: a power cut has begun; the caller must never return.
    Frozen,
}

/// One tracked file.
#[derive(Debug, Clone)]
struct Tracked {
    /// What survives a power cut now.
    durable: Durable,
    /// Fsyncs running on this file: their ticket, and the lowest length the file was cut to
    /// since each began (`u64::MAX` when none).
    inflight: Vec<(u64, u64)>,
}

impl Tracked {
    fn prefix(len: u64) -> Self {
        Self { durable: Durable::Prefix(len), inflight: Vec::new() }
    }
}

/// Every tracked file and whether a power cut has begun.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Set by `freeze`: nothing completing afterwards is reported.
    frozen: bool,
    /// The next fsync ticket.
    next_ticket: u64,
    /// By path.
    files: HashMap<PathBuf, Tracked>,
    /// A power cut waiting for the next `write_atomic` of a file with this name.
    armed: Option<(OsString, PowerCut)>,
}

impl Registry {
    /// A file was created empty: nothing of it is durable but its (fsynced) name.
    pub fn created(&mut self, path: &Path) {
        self.files.insert(path.to_path_buf(), Tracked::prefix(0));
    }

    /// An existing file was opened at length `len`: if unknown, it is taken as durable as found.
    pub fn opened(&mut self, path: &Path, len: u64) {
        self.files.entry(path.to_path_buf()).or_insert_with(|| Tracked::prefix(len));
    }

    /// An fsync of `path` is about to start while the file is `len` bytes long; returns its
    /// ticket for `sync_ended`.
    pub fn sync_began(&mut self, path: &Path, len: u64) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let file = self.files.entry(path.to_path_buf()).or_insert_with(|| Tracked::prefix(len));
        file.inflight.push((ticket, u64::MAX));
        ticket
    }

    /// The fsync with `ticket`, begun at length `len`, completed. A truncation while it ran may
    /// or may not be covered, so it counts only up to the lowest truncation point, and never
    /// lowers what was durable before. A ticket the file no longer knows (it was deleted or
    /// re-created meanwhile) changes nothing.
    pub fn sync_ended(&mut self, path: &Path, ticket: u64, len: u64) -> Reported {
        if self.frozen {
            return Reported::Frozen;
        }
        let Some(file) = self.files.get_mut(path) else { return Reported::Yes };
        let Some(at) = file.inflight.iter().position(|(t, _)| *t == ticket) else { return Reported::Yes };
        let (_, lowest_cut) = file.inflight.swap_remove(at);
        let before = match file.durable {
            Durable::Prefix(n) => n,
            Durable::Whole(_) => 0,
        };
        let covered = match lowest_cut {
            u64::MAX => len,
            cut => before.max(len.min(cut)),
        };
        file.durable = Durable::Prefix(covered);
        Reported::Yes
    }

    /// `path` was cut to `len` bytes. The durable length stays (see the module's model); fsyncs
    /// running now may have missed the cut.
    pub fn truncated(&mut self, path: &Path, len: u64) {
        if let Some(file) = self.files.get_mut(path) {
            for (_, lowest) in &mut file.inflight {
                *lowest = (*lowest).min(len);
            }
        }
    }

    /// `path` was deleted.
    pub fn forget(&mut self, path: &Path) {
        self.files.remove(path);
    }

    /// The directory `dir` was deleted with everything in it.
    pub fn forget_dir(&mut self, dir: &Path) {
        self.files.retain(|path, _| !path.starts_with(dir));
    }

    /// Before `write_atomic` renames over `path`: learns the old content if the file is new to
    /// the registry (it is what survives until the rename is durable).
    pub fn atomic_before_rename(&mut self, path: &Path) -> std::io::Result<Reported> {
        if self.frozen {
            return Ok(Reported::Frozen);
        }
        if !self.files.contains_key(path) {
            let old = match std::fs::read(path) {
                Ok(bytes) => Some(Arc::from(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            let tracked = Tracked { durable: Durable::Whole(old), inflight: Vec::new() };
            self.files.insert(path.to_path_buf(), tracked);
        }
        Ok(Reported::Yes)
    }

    /// `write_atomic` made `bytes` the durable content of `path`.
    pub fn atomic_written(&mut self, path: &Path, bytes: &[u8]) -> Reported {
        if self.frozen {
            return Reported::Frozen;
        }
        let tracked = Tracked { durable: Durable::Whole(Some(Arc::from(bytes))), inflight: Vec::new() };
        self.files.insert(path.to_path_buf(), tracked);
        Reported::Yes
    }

    /// Arms a power cut for the next `write_atomic` of a file named `name` (replacing any
    /// armed before).
    pub fn arm(&mut self, name: OsString, cut: PowerCut) {
        self.armed = Some((name, cut));
    }

    /// The armed cut, disarmed, if `path` is the file it waits for.
    pub fn take_armed(&mut self, path: &Path) -> Option<PowerCut> {
        let waits_for = |(name, _): &(OsString, PowerCut)| path.file_name() == Some(name.as_os_str());
        if self.armed.as_ref().is_some_and(waits_for) { self.armed.take().map(|(_, cut)| cut) } else { None }
    }

    /// What survives for `path`, as a length.
    pub fn durable_len(&self, path: &Path) -> Option<u64> {
        self.files.get(path).map(|f| match &f.durable {
            Durable::Prefix(n) => *n,
            Durable::Whole(bytes) => bytes.as_ref().map_or(0, |b| b.len() as u64),
        })
    }

    /// Begins a power cut: from now on nothing completing is reported. Returns every tracked
    /// file with what survives, sorted by path (so a seeded cut is reproducible).
    pub fn freeze(&mut self) -> Vec<(PathBuf, Durable)> {
        self.frozen = true;
        let mut files: Vec<(PathBuf, Durable)> =
            self.files.iter().map(|(p, f)| (p.clone(), f.durable.clone())).collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files
    }
}
