//! `KafkaListener`: accepts Kafka client connections and gives each its own supervised
//! `ConnectionActor`. A failed connection is not restarted — its client reconnects — but it
//! never takes anything else down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::connection::{ConnectionActor, ConnectionArgs};
use crate::context::NodeContext;
use crate::directory::{Counted, MailboxGauge, Registration, TaskGuard};

/// The listener's mailbox.
pub enum KafkaListenerMsg {
    /// From the accept task: a client connected.
    Accepted(TcpStream, SocketAddr),
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct KafkaListenerArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The listener's state.
pub struct KafkaListenerState {
    /// The accept loop; aborted when the state drops, so a failed listener frees its port.
    _accept_task: TaskGuard,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct KafkaListener;

impl Actor for KafkaListener {
    type Msg = KafkaListenerMsg;
    type State = KafkaListenerState;
    type Arguments = KafkaListenerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: KafkaListenerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ctx = args.ctx;
        let addr = &ctx.config.kafka_bind();
        let listener =
            TcpListener::bind(addr).await.map_err(|e| format!("cannot listen for Kafka clients on {addr}: {e}"))?;
        info!(addr = %listener.local_addr()?, "Kafka listener started");
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "kafka-listener".into(),
            "KafkaListener",
            args.restarts,
            MailboxGauge::default(),
        );
        let gauge = registration.gauge().clone();
        let me = Counted { actor: myself, gauge: gauge.clone() };
        let accept_task = tokio::spawn(accept_loop(listener, me));
        Ok(KafkaListenerState { _accept_task: TaskGuard(accept_task), ctx, registration })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        let KafkaListenerMsg::Accepted(stream, peer) = msg;
        let args = ConnectionArgs { stream, peer, ctx: state.ctx.clone() };
        if let Err(e) = Actor::spawn_linked(None, ConnectionActor, args, myself.get_cell()).await {
            warn!(%peer, error = %e, "could not start a connection actor");
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        _: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                warn!(actor = %cell.get_id(), error = %err, "connection actor failed")
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                debug!(actor = %cell.get_id(), ?reason, "connection closed")
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(&self, myself: ActorRef<Self::Msg>, _: &mut Self::State) -> Result<(), ActorProcessingErr> {
        myself.stop_children_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5))).await;
        Ok(())
    }
}

async fn accept_loop(listener: TcpListener, me: Counted<KafkaListenerMsg>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    debug!(%peer, error = %e, "could not set TCP_NODELAY");
                }
                if me.cast(KafkaListenerMsg::Accepted(stream, peer)).is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
