//! `Controller`: on the Raft leader only, watches which brokers still answer and moves the
//! leadership of partitions led by a fenced broker to a live in-sync replica (a Raft command
//! that bumps the leader epoch), or to a live out-of-sync one where the topic allows unclean
//! elections. A fenced broker also leaves the ISR of every partition it follows, once per
//! fencing (KIP-841): acks=all writes stop waiting for a frozen follower at the session timeout,
//! and if it still fetches (cut off from the Raft leader only) its leaders take it back. A Raft
//! leader change alone moves no partition: the new Raft leader gives every broker a full session
//! timeout before fencing it. Its elections carry the term it leads in and its id (`AsLeader`),
//! so a deposed leader's elections are refused.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronik::cluster::{MetadataCommand, drop_fenced_from_isrs, elect_leaders};
use chronik::config::NodeId;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{info, warn};

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration};
use crate::handlers::apply_metadata;

/// How often liveness is checked.
const TICK: Duration = Duration::from_millis(500);

/// The controller's mailbox.
pub enum ControllerMsg {
    /// Timer: check the brokers' liveness and elect where needed.
    Tick,
    /// From the election task: the proposal finished; the fenced brokers whose ISR shrinks
    /// were all applied.
    ElectionsDone {
        /// Fenced brokers now out of every ISR a live broker leads.
        shrunk: BTreeSet<NodeId>,
    },
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct ControllerArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The controller's state.
pub struct ControllerState {
    /// Since when this node has been the Raft leader, and in which term (`None` while it is not).
    leading_since: Option<(Instant, u64)>,
    /// Brokers currently fenced, for logging changes once.
    fenced: BTreeSet<NodeId>,
    /// Elections are being proposed; no second batch until they are done.
    electing: bool,
    /// Fenced brokers already dropped from the ISRs they were in, so a broker fenced but still
    /// fetching, which its leaders take back, is dropped once, not on every tick.
    shrunk: BTreeSet<NodeId>,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct Controller;

impl Actor for Controller {
    type Msg = ControllerMsg;
    type State = ControllerState;
    type Arguments = ControllerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ControllerMsg>,
        args: ControllerArgs,
    ) -> Result<ControllerState, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "controller".into(),
            "Controller",
            args.restarts,
            MailboxGauge::default(),
        );
        myself.send_interval(TICK, || ControllerMsg::Tick);
        let (fenced, shrunk) = (BTreeSet::new(), BTreeSet::new());
        Ok(ControllerState { leading_since: None, fenced, electing: false, shrunk, ctx, registration })
    }

    async fn handle(
        &self,
        myself: ActorRef<ControllerMsg>,
        msg: ControllerMsg,
        state: &mut ControllerState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            ControllerMsg::Tick => state.tick(&myself),
            ControllerMsg::ElectionsDone { shrunk } => {
                state.electing = false;
                state.shrunk.extend(shrunk.intersection(&state.fenced));
            }
        }
        Ok(())
    }
}

impl ControllerState {
    /// Records the fenced brokers and publishes them (ElectLeaders' unclean elections read them).
    fn set_fenced(&mut self, fenced: BTreeSet<NodeId>) {
        if fenced != self.fenced {
            self.ctx.fenced.send_replace(fenced.clone());
            self.shrunk.retain(|id| fenced.contains(id));
            self.fenced = fenced;
        }
    }

    fn tick(&mut self, myself: &ActorRef<ControllerMsg>) {
        let me = self.ctx.config.node_id;
        let view = self.ctx.cluster.borrow().clone();
        if view.leader != Some(me) {
            self.leading_since = None;
            self.set_fenced(BTreeSet::new());
            return;
        }
        if self.leading_since.is_some_and(|(_, term)| term != view.term) {
            // Leading again in a new term: nobody has been heard from in it yet.
            self.leading_since = None;
            self.set_fenced(BTreeSet::new());
        }
        let (since, term) = *self.leading_since.get_or_insert_with(|| (Instant::now(), view.term));
        let session = Duration::from_millis(self.ctx.config.replication.session_timeout_ms);
        // A broker counts as alive while it answers the Raft leader's heartbeats; a new Raft
        // leader has not heard from anyone yet and waits one session before judging.
        let alive = |id: NodeId| id == me || since.elapsed() < session || self.ctx.peers.answered_within(id, session);
        let fenced: BTreeSet<NodeId> = view.voters.iter().copied().filter(|&id| !alive(id)).collect();
        for id in fenced.difference(&self.fenced) {
            warn!(broker = id, "broker {id} fenced: no answer to the Raft leader for over {}ms", session.as_millis());
        }
        for id in self.fenced.difference(&fenced) {
            info!(broker = id, "broker {id} answers again");
        }
        self.set_fenced(fenced);
        if self.fenced.is_empty() || self.electing {
            return;
        }
        let metadata = self.ctx.metadata();
        let elections = elect_leaders(&metadata, &self.fenced);
        let to_shrink: BTreeSet<NodeId> = self.fenced.difference(&self.shrunk).copied().collect();
        let shrinks = drop_fenced_from_isrs(&metadata, &to_shrink);
        if !elections.is_empty() {
            info!(count = elections.len(), fenced = ?self.fenced, "electing new partition leaders");
        }
        if !shrinks.is_empty() {
            info!(count = shrinks.len(), fenced = ?to_shrink, "dropping fenced brokers from the ISRs they follow in");
        }
        let commands: Vec<MetadataCommand> = elections
            .into_iter()
            .chain(shrinks)
            .map(|c| MetadataCommand::AsLeader { term, leader: Some(me), command: Box::new(c) })
            .collect();
        if commands.is_empty() {
            self.shrunk.extend(to_shrink);
            return;
        }
        self.electing = true;
        let (ctx, me) = (self.ctx.clone(), myself.clone());
        tokio::spawn(async move {
            let mut failed = false;
            for result in apply_metadata(&ctx, commands).await {
                if let Err(e) = result {
                    warn!(error = %e, "partition leader election or ISR change not applied");
                    failed = true;
                }
            }
            // A failure (a shrink that lost a race with the leader's own ISR change) is retried
            // from the metadata on the next tick.
            let shrunk = if failed { BTreeSet::new() } else { to_shrink };
            let _ = me.cast(ControllerMsg::ElectionsDone { shrunk });
        });
    }
}
