//! Small files that must be replaced whole or not at all (checkpoints, markers).
//!
//! NOTE: interim version; the power-cut bookkeeping lands here too.

use std::io::Write;
use std::path::Path;

use super::error::{IoContext, LogError};
use super::segment::sync_dir;

/// Replaces `path` with `bytes` atomically and durably: a temporary file in the same directory
/// is written and fsynced, renamed over `path`, and the directory is fsynced. A crash at any
/// point leaves either the old content or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    file.write_all(bytes).ctx(|| format!("write {}", tmp.display()))?;
    file.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    sync_dir(dir)
}
