//! Applying a power cut to the files: each one back to what is durable, plus garbage where a
//! torn write could have left some.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::PowerCut;
use super::registry::Durable;

/// What the cut did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutFile {
    /// The file.
    pub path: PathBuf,
    /// Its length before the cut; `None` if it did not exist.
    pub before: Option<u64>,
    /// Its length after the cut; `None` if it does not exist.
    pub after: Option<u64>,
    /// Random bytes appended after the durable end. Only files a torn write could hit get any:
    /// the newest `.log` file of each directory (the active segment) and every other appended
    /// file with bytes beyond its durable length. Files written whole never get garbage.
    pub garbage: usize,
    /// Why the file could not be cut, if it could not.
    pub error: Option<String>,
}

impl CutFile {
    /// Whether the cut changed the file.
    pub fn changed(&self) -> bool {
        self.before != self.after || self.garbage > 0 || self.error.is_some()
    }
}

/// Cuts every file of `snapshot` to what is durable, with garbage per `options`. Files are
/// handled in the snapshot's order (sorted by path), so the same seed gives the same bytes.
pub(crate) fn apply(snapshot: &[(PathBuf, Durable)], options: PowerCut) -> Vec<CutFile> {
    let active = newest_logs(snapshot);
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let mut out = Vec::with_capacity(snapshot.len());
    for (path, durable) in snapshot {
        let before = std::fs::metadata(path).ok().map(|m| m.len());
        let mut file = CutFile { path: path.clone(), before, after: before, garbage: 0, error: None };
        let result = match durable {
            Durable::Prefix(len) => {
                let torn = active.contains(path) || before.is_some_and(|b| b > *len);
                let garbage = match torn && before.is_some() {
                    true => options.garbage_bytes,
                    false => 0,
                };
                cut_prefix(&mut file, *len, garbage, &mut rng)
            }
            Durable::Whole(bytes) => restore_whole(&mut file, bytes.as_deref()),
        };
        if let Err(e) = result {
            file.error = Some(e.to_string());
        }
        out.push(file);
    }
    out
}

/// Per directory, its newest segment log: names are zero-padded base offsets, so the largest
/// name is the active segment.
fn newest_logs(snapshot: &[(PathBuf, Durable)]) -> HashSet<PathBuf> {
    let mut newest: HashMap<&Path, &PathBuf> = HashMap::new();
    for (path, durable) in snapshot {
        let is_log = path.extension().is_some_and(|e| e == "log") && matches!(durable, Durable::Prefix(_));
        if let (true, Some(dir)) = (is_log, path.parent()) {
            let entry = newest.entry(dir).or_insert(path);
            if path > *entry {
                *entry = path;
            }
        }
    }
    newest.into_values().cloned().collect()
}

/// Sets the file's length to `len` (extending with zeros if a truncation had not been made
/// durable) and appends `garbage` random bytes. A file that no longer exists is left alone.
fn cut_prefix(file: &mut CutFile, len: u64, garbage: usize, rng: &mut fastrand::Rng) -> std::io::Result<()> {
    if file.before.is_none() {
        return Ok(());
    }
    let handle = OpenOptions::new().write(true).open(&file.path)?;
    handle.set_len(len)?;
    file.after = Some(len);
    if garbage > 0 {
        let bytes: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(garbage).collect();
        handle.write_all_at(&bytes, len)?;
        file.garbage = garbage;
        file.after = Some(len + garbage as u64);
    }
    Ok(())
}

/// Puts back the durable content of a file written whole, or removes it if none was durable.
fn restore_whole(file: &mut CutFile, bytes: Option<&[u8]>) -> std::io::Result<()> {
    match bytes {
        Some(bytes) => {
            std::fs::write(&file.path, bytes)?;
            file.after = Some(bytes.len() as u64);
        }
        None => {
            if file.before.is_some() {
                std::fs::remove_file(&file.path)?;
            }
            file.after = None;
        }
    }
    Ok(())
}
