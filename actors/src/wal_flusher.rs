//! `WalFlusher`: makes appended data durable. Replicas write to their segment files and send a
//! `Sync`; the flusher fsyncs in rounds on the blocking pool, so every append that arrived while
//! the previous round ran shares the next fsync (group commit).
//!
//! Under `fsync = "interval"` it answers at once and fsyncs every file it was told about on a
//! timer instead.

use std::sync::Arc;
use std::time::Duration;

use chronik::config::FsyncPolicy;
use chronik::log::SyncHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{debug, error};

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration};

/// The flusher's mailbox.
pub enum WalFlusherMsg {
    /// From a replica: make this segment durable, then reply (`Err` carries the fsync error).
    Sync {
        /// The segment file to fsync.
        handle: SyncHandle,
        /// Answered after the fsync.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// From the round's blocking task: it finished; start the next round if work is waiting.
    RoundDone,
    /// Timer under the interval policy: fsync everything written since the last tick.
    Tick,
}

/// Arguments, kept by the supervisor for restarts.
#[derive(Debug, Clone)]
pub struct WalFlusherArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The flusher's state.
pub struct WalFlusherState {
    /// Durability policy.
    policy: FsyncPolicy,
    /// Requests waiting for the next round.
    pending: Vec<(SyncHandle, RpcReplyPort<Result<(), String>>)>,
    /// Partition logs written since the last tick, each once (interval policy).
    dirty: Vec<SyncHandle>,
    /// A round is running on the blocking pool.
    round_running: bool,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct WalFlusher;

impl Actor for WalFlusher {
    type Msg = WalFlusherMsg;
    type State = WalFlusherState;
    type Arguments = WalFlusherArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<WalFlusherMsg>,
        args: WalFlusherArgs,
    ) -> Result<WalFlusherState, ActorProcessingErr> {
        let registration = args.ctx.directory.register(
            &myself.get_cell(),
            "wal-flusher".into(),
            "WalFlusher",
            args.restarts,
            MailboxGauge::default(),
        );
        let gauge = registration.gauge().clone();
        args.ctx.flusher.set(myself.clone(), gauge.clone());
        let storage = &args.ctx.config.storage;
        if storage.fsync == FsyncPolicy::Interval {
            myself.send_interval(Duration::from_millis(storage.fsync_interval_ms), || WalFlusherMsg::Tick);
        }
        Ok(WalFlusherState {
            policy: storage.fsync,
            pending: Vec::new(),
            dirty: Vec::new(),
            round_running: false,
            registration,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<WalFlusherMsg>,
        msg: WalFlusherMsg,
        state: &mut WalFlusherState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            WalFlusherMsg::Sync { handle, reply } => match state.policy {
                FsyncPolicy::Always => {
                    state.pending.push((handle, reply));
                    state.start_round(&myself);
                }
                FsyncPolicy::Interval => {
                    if !state.dirty.iter().any(|d| d.same_log(&handle)) {
                        state.dirty.push(handle);
                    }
                    let _ = reply.send(Ok(()));
                }
            },
            WalFlusherMsg::RoundDone => {
                state.round_running = false;
                state.start_round(&myself);
            }
            WalFlusherMsg::Tick => state.tick(),
        }
        Ok(())
    }
}

impl WalFlusherState {
    fn start_round(&mut self, myself: &ActorRef<WalFlusherMsg>) {
        if self.round_running || self.pending.is_empty() {
            return;
        }
        self.round_running = true;
        let round = std::mem::take(&mut self.pending);
        let me = myself.clone();
        tokio::task::spawn_blocking(move || {
            debug!(files = round.len(), "fsync round");
            // Each replica has at most one request out, so every entry is a different file.
            let (handles, replies): (Vec<_>, Vec<_>) = round.into_iter().unzip();
            let result = SyncHandle::sync_all(&handles).map_err(|e| {
                error!(error = %e, "fsync failed");
                e.to_string()
            });
            for reply in replies {
                let _ = reply.send(result.clone());
            }
            let _ = me.cast(WalFlusherMsg::RoundDone);
        });
    }

    fn tick(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let files = std::mem::take(&mut self.dirty);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = SyncHandle::sync_all(&files) {
                error!(error = %e, "periodic fsync failed");
            }
        });
    }
}
