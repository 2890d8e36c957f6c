//! What the disk is guaranteed to hold, per file, so a test can simulate a power cut.
//!
//! # Why
//! A SIGKILL keeps the page cache: everything written survives, fsynced or not. Losing power
//! does not. To test that an acknowledged write survives power loss, a broker started with
//! `[debug] fail_points = true` tracks, for every partition file (segment `.log`, `.index`,
//! `.timeindex`) and every checkpoint written with [`write_atomic`], what the last completed
//! fsync made durable; [`power_cut`] cuts every file back to that and kills the process.
//!
//! # Cost when off
//! Every hook starts with one relaxed atomic load and returns when [`enable`] was never
//! called; [`sync_data`] is then exactly `File::sync_data` and [`write_atomic`] the plain
//! write-temp / fsync / rename / fsync-directory sequence.
//!
//! # The model
//! - After an fsync the durable length is the file's length when the fsync *began*: a write
//!   racing with the fsync may or may not be covered, so it is not counted.
//! - A file created through the log layer is durable at length 0 (its name is made durable by
//!   the directory fsync in `Segment::create`); a file first seen when opened is durable at the
//!   length it had then (it survived whatever came before).
//! - A truncation is not durable until an fsync that began after it completes: the durable
//!   length does not drop, so a cut puts the file back to its last fsynced length. The bytes
//!   between the truncation point and that length are whatever the file holds by then (newer
//!   unsynced writes, or zeros where nothing was written), as a disk that lost the truncation
//!   can show; a cut never goes below a length an fsync acknowledged. An fsync racing with a
//!   truncation counts only up to the lowest truncation point seen while it ran.
//! - A deleted file is forgotten: the cut does not bring it back.
//! - A [`write_atomic`] file is durable as a whole: the cut puts back exactly the bytes of the
//!   last write whose directory fsync completed (or removes the file if there was none).
//!
//! # Contract for checkpoint files
//! Small files whose content must survive a crash as a whole (high watermark checkpoint,
//! leader-epoch checkpoint, clean-shutdown marker) are written only with [`write_atomic`]: it
//! returns once the new content is durable, and until it returns a crash (or a simulated power
//! cut) leaves the old content. One writer per path at a time (the temporary file is
//! `<name>.tmp` beside it, overwritten by the next write); readers ignore `*.tmp` files.
//! Deleting such a file: [`remove`].

mod cut;
mod registry;

#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use tracing::warn;

pub use cut::CutFile;
use registry::{Registry, Reported};

/// Whether the registry tracks files; set once at start-up, never cleared.
static ENABLED: AtomicBool = AtomicBool::new(false);

// SHARED: every thread that writes, fsyncs, truncates or deletes a partition file reports here
// (replica actors, the WAL flusher's blocking tasks, checkpoint writers); the lock is held only
// for bookkeeping, never across an fsync.
/// The process-wide registry.
static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

/// Starts tracking; call once at start-up, before any partition log is opened, and only when
/// fail points are enabled. Files opened before are learnt at their next fsync.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether [`enable`] was called.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The registry, tolerating a poisoned lock: the bookkeeping is updated in single steps, so a
/// panic elsewhere never leaves it half-changed.
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// A thread whose fsync completed after a power cut began: its caller must never hear of it
/// (an ack could go out for data the cut removes), and the process is about to be killed.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// `fdatasync` of `file` (found at `path`), recording the length it covers. The way every
/// partition file is fsynced.
pub fn sync_data(file: &File, path: &Path) -> std::io::Result<()> {
    if !is_enabled() {
        return file.sync_data();
    }
    let len = file.metadata()?.len();
    let ticket = registry().sync_began(path, len);
    file.sync_data()?;
    match registry().sync_ended(path, ticket, len) {
        Reported::Yes => Ok(()),
        Reported::Frozen => park_forever(),
    }
}

/// Makes every file of `files` durable, recording for each the length it had when the call
/// began: one `syncfs` per filesystem they are on when the kernel reports writeback errors
/// through it, else one `fdatasync` each.
///
/// Why: each `fdatasync` of an appended file costs a journal commit and a disk cache flush;
/// with hundreds of partitions written per round that was most of a broker's system time (and
/// of the block layer's), while one `syncfs` commits them all at once. It also writes back what
/// other files on the filesystem hold dirty, which is why callers keep `sync_data` for rounds
/// of a few files.
pub fn sync_data_all(files: &[(Arc<File>, Arc<PathBuf>)]) -> std::io::Result<()> {
    if !syncfs_reports_errors() {
        return files.iter().try_for_each(|(f, p)| sync_data(f, p));
    }
    let mut by_fs: Vec<(u64, &File)> = Vec::new();
    let mut began = Vec::with_capacity(files.len());
    for (file, path) in files {
        let meta = file.metadata()?;
        if !by_fs.iter().any(|(dev, _)| *dev == meta.dev()) {
            by_fs.push((meta.dev(), file));
        }
        began.push((path, meta.len()));
    }
    let tickets: Vec<u64> = if is_enabled() {
        let mut reg = registry();
        began.iter().map(|(path, len)| reg.sync_began(path, *len)).collect()
    } else {
        Vec::new()
    };
    for (_, file) in by_fs {
        // SAFETY: `syncfs` only uses the descriptor, which `file` keeps open for the call.
        if unsafe { libc::syncfs(file.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let mut reg = registry();
    for ((path, len), ticket) in began.into_iter().zip(tickets) {
        if reg.sync_ended(path, ticket, len) == Reported::Frozen {
            drop(reg);
            park_forever();
        }
    }
    Ok(())
}

/// Whether `syncfs` returns the writeback errors of the files it flushed: Linux 5.8 and later.
/// Before that it could return success for data the disk never took, so it is not used.
fn syncfs_reports_errors() -> bool {
    static REPORTS: LazyLock<bool> = LazyLock::new(|| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release.trim().split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (5, 8)
    });
    *REPORTS
}

/// A file was created empty (or emptied to be reused as new) at `path`.
pub(crate) fn created(path: &Path) {
    if is_enabled() {
        registry().created(path);
    }
}

/// An existing file was opened; `len` is its length. Known files keep what is recorded.
pub(crate) fn opened(path: &Path, len: u64) {
    if is_enabled() {
        registry().opened(path, len);
    }
}

/// The file at `path` was cut to `len` bytes (not durable until a later fsync).
pub(crate) fn truncated(path: &Path, len: u64) {
    if is_enabled() {
        registry().truncated(path, len);
    }
}

/// Deletes the file at `path` (missing is fine) and forgets it.
pub fn remove(path: &Path) -> std::io::Result<()> {
    let result = match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    if is_enabled() {
        registry().forget(path);
    }
    result
}

/// Forgets every file under `dir`, after the directory was deleted.
pub fn forget_dir(dir: &Path) {
    if is_enabled() {
        registry().forget_dir(dir);
    }
}

/// The durable length recorded for `path` (for `write_atomic` files: their durable content's
/// length); `None` when untracked or tracking is off.
pub fn durable_len(path: &Path) -> Option<u64> {
    if !is_enabled() {
        return None;
    }
    registry().durable_len(path)
}

/// Replaces the file at `path` with `bytes`, durably: writes `<name>.tmp` in the same
/// directory, fsyncs it, renames it over `path` and fsyncs the directory. Returns once the new
/// content survives a crash; before that, a crash leaves the old content (or no file). See the
/// module's contract.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path)?;
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    if is_enabled() {
        // Renaming under the lock: a power cut either comes first (and this write never
        // happens) or restores the old content after it.
        let mut registry = registry();
        if registry.atomic_before_rename(path)? == Reported::Frozen {
            drop(registry);
            park_forever();
        }
        std::fs::rename(&tmp, path)?;
        let armed = registry.take_armed(path);
        drop(registry);
        if let Some(cut) = armed {
            warn!(file = %path.display(), "power cut armed for this file's write: renamed, directory not yet fsynced");
            power_cut(cut);
        }
    } else {
        std::fs::rename(&tmp, path)?;
    }
    sync_parent(path)?;
    if is_enabled() && registry().atomic_written(path, bytes) == Reported::Frozen {
        park_forever();
    }
    Ok(())
}

/// `<dir>/<name>.tmp` for `path`.
fn temp_path(path: &Path) -> std::io::Result<PathBuf> {
    let Some(name) = path.file_name() else {
        let reason = format!("{} names no file", path.display());
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, reason));
    };
    let mut tmp = name.to_os_string();
    tmp.push(".tmp");
    Ok(path.with_file_name(tmp))
}

/// Fsyncs the directory holding `path`, so a rename or creation in it survives a crash.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Arms a power cut for the middle of the next [`write_atomic`] of a file named `name`: after
/// its new content is renamed into place and before the directory fsync makes that durable, so
/// the cut must bring the old content back. Returns false (and arms nothing) when tracking is off.
pub fn power_cut_during_write(name: &std::ffi::OsStr, cut: PowerCut) -> bool {
    if !is_enabled() {
        return false;
    }
    registry().arm(name.to_os_string(), cut);
    true
}

/// How to simulate the power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut {
    /// Random bytes appended after the durable end of each file a torn write could hit (see
    /// [`CutFile::garbage`]); 0 for a clean cut.
    pub garbage_bytes: usize,
    /// Seed of the garbage bytes, logged so a failure can be replayed.
    pub seed: u64,
}

/// Simulates losing power: freezes the registry (an fsync completing from now on never returns
/// to its caller), cuts every tracked file back to what is durable, adds garbage if asked, logs
/// one line per file changed, then SIGKILLs the process — no destructor runs, nothing is
/// flushed. Returns only if tracking is off (then it does nothing).
///
/// The remaining window: plain writes (appends to a segment, buffered index writes) do not go
/// through the registry, so a write landing between the cut of its file and the kill (a few
/// microseconds) stays on disk after the durable prefix. It was never fsynced, so nothing it
/// holds was acknowledged; it looks like a disk that happened to persist part of an unsynced
/// write, which recovery must handle anyway. Every other file operation of the log layer (create,
/// truncate, delete, fsync, atomic rename) goes through the lock this function holds until the
/// process dies, so none of them can interleave with the cut.
pub fn power_cut(options: PowerCut) {
    if !is_enabled() {
        return;
    }
    let mut registry = registry();
    let snapshot = registry.freeze();
    let report = cut::apply(&snapshot, options);
    for f in report.iter().filter(|f| f.changed()) {
        warn!(file = %f.path.display(), before = ?f.before, after = ?f.after, garbage = f.garbage,
            "power cut: file cut to its durable length");
    }
    let garbled = report.iter().filter(|f| f.garbage > 0).count();
    warn!(
        files = report.len(),
        garbled,
        garbage_bytes = options.garbage_bytes,
        seed = options.seed,
        "power cut: killing the process (SIGKILL)"
    );
    kill_self();
}

/// SIGKILL to this process: no destructor, no flush, no exit handler.
fn kill_self() -> ! {
    // SAFETY: kill(2) and getpid(2) take plain integers and touch no memory of ours.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // The signal is delivered asynchronously; nothing may run on meanwhile.
    park_forever()
}
