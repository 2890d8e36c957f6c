//! Disk work done from an actor or a task (fsyncs, directory creation and removal) must not
//! hold a runtime worker thread: the node has as many workers as cores, and every other actor,
//! fetch stream and client connection waits while one of them sleeps in the kernel. At a
//! thousand partitions a node's checkpoints, Raft commits and replica creations were enough to
//! stall producers for seconds.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs blocking `f` in place, after handing this worker's other tasks to another thread
/// ([`tokio::task::block_in_place`]). On a single-threaded runtime (unit tests) there is no other
/// thread to hand them to, and `f` just runs.
pub fn disk<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
