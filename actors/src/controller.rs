//! `Controller`: on the Raft leader only, watches which brokers still answer and moves the
//! leadership of partitions led by a fenced broker to a live in-sync replica (a Raft command
//! that bumps the leader epoch), or to a live out-of-sync one where the topic allows unclean
//! elections. A Raft leader change alone moves no partition: the new Raft
//! leader gives every broker a full session timeout before fencing it. Its elections carry the
//! term it leads in (`AsLeader`), so a deposed leader's elections are refused.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronik::cluster::{MetadataCommand, elect_leaders};
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
    /// From the election task: the proposal finished.
    ElectionsDone,
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
        Ok(ControllerState { leading_since: None, fenced: BTreeSet::new(), electing: false, ctx, registration })
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
            ControllerMsg::ElectionsDone => state.electing = false,
        }
        Ok(())
    }
}

impl ControllerState {
    /// Records the fenced brokers and publishes them (ElectLeaders' unclean elections read them).
    fn set_fenced(&mut self, fenced: BTreeSet<NodeId>) {
        if fenced != self.fenced {
            self.ctx.fenced.send_replace(fenced.clone());
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
        let elections = elect_leaders(&self.ctx.metadata(), &self.fenced);
        if elections.is_empty() {
            return;
        }
        let elections: Vec<MetadataCommand> =
            elections.into_iter().map(|e| MetadataCommand::AsLeader { term, command: Box::new(e) }).collect();
        info!(count = elections.len(), fenced = ?self.fenced, "electing new partition leaders");
        self.electing = true;
        let (ctx, me) = (self.ctx.clone(), myself.clone());
        tokio::spawn(async move {
            for result in apply_metadata(&ctx, elections).await {
                if let Err(e) = result {
                    warn!(error = %e, "partition leader election not applied");
                }
            }
            let _ = me.cast(ControllerMsg::ElectionsDone);
        });
    }
}
