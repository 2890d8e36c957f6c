//! `KafkaListener`: accepts Kafka client connections on every configured listener and gives
//! each its own supervised `ConnectionActor`. A failed connection is not restarted — its client
//! reconnects — but it never takes anything else down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use chronik::config::SecurityProtocol;
use tokio_rustls::TlsAcceptor;

use crate::connection::{ConnectionActor, ConnectionArgs};
use crate::context::NodeContext;
use crate::directory::{Counted, MailboxGauge, Registration, TaskGuard};

/// The listener's mailbox.
pub enum KafkaListenerMsg {
    /// From an accept task: a client connected to listener `.2` (its index in `listeners`).
    Accepted(TcpStream, SocketAddr, usize),
}

/// What a connection needs to know of the listener it came in on.
#[derive(Clone)]
pub struct ListenerRuntime {
    /// The listener's name: Metadata answers with that listener's addresses.
    pub name: Arc<str>,
    /// How clients on it connect and authenticate.
    pub protocol: SecurityProtocol,
    /// The TLS acceptor, on SSL and SASL_SSL listeners.
    pub tls: Option<TlsAcceptor>,
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
    /// The accept loops, one per listener; aborted when the state drops, so a failed listener
    /// frees its ports.
    _accept_tasks: Vec<TaskGuard>,
    /// The listeners, by the index the accept loops report.
    listeners: Vec<ListenerRuntime>,
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
        let configured = ctx.config.listeners();
        let mut sockets = Vec::with_capacity(configured.len());
        let mut listeners = Vec::with_capacity(configured.len());
        for l in configured {
            let addr = &l.bind;
            let socket = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for Kafka clients on {addr} (listener {}): {e}", l.name))?;
            info!(addr = %socket.local_addr()?, listener = %l.name, protocol = %l.protocol, "Kafka listener started");
            sockets.push(socket);
            let tls = if l.protocol.tls() { Some(crate::tls::acceptor(&ctx.config.tls, l.client_auth)?) } else { None };
            listeners.push(ListenerRuntime { name: l.name.into(), protocol: l.protocol, tls });
        }
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "kafka-listener".into(),
            "KafkaListener",
            args.restarts,
            MailboxGauge::default(),
        );
        let gauge = registration.gauge().clone();
        let me = Counted { actor: myself, gauge: gauge.clone() };
        let accept_tasks = sockets
            .into_iter()
            .enumerate()
            .map(|(i, socket)| TaskGuard(tokio::spawn(accept_loop(socket, i, me.clone()))))
            .collect();
        Ok(KafkaListenerState { _accept_tasks: accept_tasks, listeners, ctx, registration })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        let KafkaListenerMsg::Accepted(stream, peer, i) = msg;
        let Some(listener) = state.listeners.get(i).cloned() else { return Ok(()) };
        let args = ConnectionArgs { stream, peer, listener, ctx: state.ctx.clone() };
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

async fn accept_loop(listener: TcpListener, index: usize, me: Counted<KafkaListenerMsg>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    debug!(%peer, error = %e, "could not set TCP_NODELAY");
                }
                if me.cast(KafkaListenerMsg::Accepted(stream, peer, index)).is_err() {
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
