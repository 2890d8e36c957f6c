//! The clean-shutdown marker (Kafka's `.kafka_cleanshutdown`): written once a node stopped with
//! every partition flushed and checkpointed, removed at the next start. Its absence at start
//! means the previous process was killed or lost power, so its logs may have lost a tail they
//! had acknowledged: the node then registers as unclean and leaves every ISR until caught up.

use std::path::Path;

/// The marker's file name in the data directory.
const MARKER: &str = "clean-shutdown";

/// Whether the previous process stopped cleanly; removes the marker (durably) so that a crash
/// of this process is not mistaken for a clean stop.
pub fn take_marker(data_dir: &str) -> anyhow::Result<bool> {
    let dir = Path::new(data_dir);
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create data dir {data_dir}: {e}"))?;
    let path = dir.join(MARKER);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| anyhow::anyhow!("cannot fsync data dir {data_dir}: {e}"))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(anyhow::anyhow!("cannot remove {}: {e}", path.display())),
    }
}

/// Records that this process stopped cleanly.
pub fn write_marker(data_dir: &str) -> anyhow::Result<()> {
    let path = Path::new(data_dir).join(MARKER);
    chronik::log::write_atomic(&path, b"clean\n").map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_seen_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let data = data.to_str().expect("utf-8");
        assert!(!take_marker(data).expect("fresh"), "a fresh data dir did not stop cleanly");
        write_marker(data).expect("write");
        assert!(take_marker(data).expect("take"));
        assert!(!take_marker(data).expect("again"), "taken once: a crash afterwards is unclean");
    }
}
