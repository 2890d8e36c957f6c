//! A simulated disk under a node's Raft database: redb's storage backend, with what was fsynced
//! kept apart from what was only written, so a power cut can lose (or tear) exactly the bytes
//! a real disk may lose.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use rand::rngs::StdRng;

/// One write since the last fsync, replayed onto the durable image when it is fsynced.
#[derive(Debug, Clone)]
enum Pending {
    /// Bytes at an offset.
    Write(u64, Vec<u8>),
    /// A new file length.
    SetLen(u64),
}

/// Everything the disk holds.
#[derive(Debug, Default)]
struct DiskState {
    /// What reads see: the page cache, every write applied.
    cached: Vec<u8>,
    /// What survives a power cut: the image as of the last fsync.
    durable: Vec<u8>,
    /// Writes since the last fsync, in order.
    pending: Vec<Pending>,
    /// Bumped when the process that has the file open dies: its handle is fenced off, as a
    /// dead process writes nothing more (redb writes on drop; a killed process does not).
    generation: u64,
    /// While set, every write and fsync fails (an injected disk error).
    failing: bool,
}

/// One node's disk; it outlives the node's crashes and restarts.
#[derive(Debug, Clone, Default)]
pub struct SimDisk(Arc<Mutex<DiskState>>);

fn apply(image: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write(offset, data) => {
            let start = *offset as usize;
            let end = start + data.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(data);
        }
        Pending::SetLen(len) => image.resize(*len as usize, 0),
    }
}

impl SimDisk {
    fn state(&self) -> MutexGuard<'_, DiskState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The backend for one process's open of the file.
    pub fn open(&self) -> DiskHandle {
        DiskHandle { disk: self.clone(), generation: self.state().generation }
    }

    /// The process died (kill -9): its writes so far stay in the page cache.
    pub fn crash(&self) {
        self.state().generation += 1;
    }

    /// The power went: the process dies and each write since the last fsync survives whole,
    /// torn (a prefix of it) or not at all, as the seed decides.
    pub fn power_cut(&self, rng: &mut StdRng) -> usize {
        let mut state = self.state();
        state.generation += 1;
        let pending = std::mem::take(&mut state.pending);
        let mut image = std::mem::take(&mut state.durable);
        for op in &pending {
            match (rng.random_range(0..4u8), op) {
                (0, _) => {}
                (1, Pending::Write(offset, data)) if !data.is_empty() => {
                    let torn = rng.random_range(0..data.len());
                    apply(&mut image, &Pending::Write(*offset, data[..torn].to_vec()));
                }
                _ => apply(&mut image, op),
            }
        }
        state.cached = image.clone();
        state.durable = image;
        pending.len()
    }

    /// Writes node `id`'s Raft log to `sim-log-n<id>.txt` in the temp directory (debugging a
    /// failing seed).
    pub fn dump_raft_log(&self, id: chronik::config::NodeId) {
        const LOG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("raft_log");
        use redb::ReadableTable;
        let Ok(db) = redb::Database::builder().create_with_backend(self.open()) else { return };
        let Ok(txn) = db.begin_read() else { return };
        let Ok(table) = txn.open_table(LOG) else { return };
        let mut out = String::new();
        for (index, value) in table.iter().into_iter().flatten().flatten() {
            let text = String::from_utf8_lossy(value.value()).chars().take(300).collect::<String>();
            out.push_str(&format!("{} {text}\n", index.value()));
        }
        let _ = std::fs::write(std::env::temp_dir().join(format!("sim-log-n{id}.txt")), out);
    }

    /// Starts or stops failing every write and fsync.
    pub fn set_failing(&self, failing: bool) {
        self.state().failing = failing;
    }
}

/// redb's view of the disk for one process; fenced off once that process is gone.
#[derive(Debug)]
pub struct DiskHandle {
    /// The disk.
    disk: SimDisk,
    /// The generation this handle was opened in.
    generation: u64,
}

impl DiskHandle {
    /// The state, if this handle's process is still the one running.
    fn live(&self) -> io::Result<MutexGuard<'_, DiskState>> {
        let state = self.disk.state();
        if state.generation != self.generation {
            return Err(io::Error::other("the process that opened this file is gone"));
        }
        Ok(state)
    }

    /// The state for a write or fsync, failing while a disk error is injected.
    fn writable(&self) -> io::Result<MutexGuard<'_, DiskState>> {
        let state = self.live()?;
        if state.failing {
            return Err(io::Error::other("injected disk error"));
        }
        Ok(state)
    }
}

impl redb::StorageBackend for DiskHandle {
    fn len(&self) -> io::Result<u64> {
        Ok(self.live()?.cached.len() as u64)
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let state = self.live()?;
        let start = offset as usize;
        state
            .cached
            .get(start..start + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file"))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.writable()?;
        let op = Pending::SetLen(len);
        apply(&mut state.cached, &op);
        state.pending.push(op);
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        let mut state = self.writable()?;
        let state = &mut *state;
        for op in state.pending.drain(..) {
            apply(&mut state.durable, &op);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.writable()?;
        let op = Pending::Write(offset, data.to_vec());
        apply(&mut state.cached, &op);
        state.pending.push(op);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use redb::StorageBackend;

    #[test]
    fn a_power_cut_keeps_what_was_fsynced_and_fences_the_dead_process() {
        let disk = SimDisk::default();
        let handle = disk.open();
        handle.write(0, b"durable").unwrap();
        handle.sync_data(false).unwrap();
        disk.power_cut(&mut StdRng::seed_from_u64(1));
        assert!(handle.write(0, b"x").is_err(), "the dead process's handle is fenced");
        assert_eq!(disk.open().read(0, 7).unwrap(), b"durable");
    }

    #[test]
    fn an_unsynced_write_is_kept_torn_or_lost_as_the_seed_decides() {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let disk = SimDisk::default();
            let handle = disk.open();
            handle.write(0, b"aaaaaaaa").unwrap();
            handle.sync_data(false).unwrap();
            handle.write(0, b"bbbbbbbb").unwrap();
            assert_eq!(handle.read(0, 8).unwrap(), b"bbbbbbbb", "reads see the page cache");
            disk.power_cut(&mut StdRng::seed_from_u64(seed));
            let bytes = disk.open().read(0, 8).unwrap();
            let kept = bytes.iter().take_while(|b| **b == b'b').count();
            assert!(bytes[kept..].iter().all(|b| *b == b'a'), "a prefix of the write, then the old bytes");
            outcomes.insert(match kept {
                0 => "lost",
                8 => "kept",
                _ => "torn",
            });
        }
        assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    }
}
