//! `ConnectionActor`: one per client TCP connection. A reader task cuts the byte stream into
//! frames (refusing bad sizes, with a deadline on a started frame); the actor decodes each
//! frame and dispatches it in arrival order; a writer task sends the responses in that same
//! order. Requests are pipelined: the next one is dispatched while earlier ones wait for disk.
//! On an SSL listener the TLS handshake runs first, in the reader's task; on a SASL listener
//! the [`auth`] gate lets requests through only once the client has authenticated.

mod auth;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chronik::protocol::frame_len;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use self::auth::{ANONYMOUS, Auth, Verdict};
use crate::context::NodeContext;
use crate::directory::{Counted, MailboxGauge, Registration, TaskGuard};
use crate::handlers::{self, Client};
use crate::kafka_listener::ListenerRuntime;

/// The connection's mailbox.
pub enum ConnectionMsg {
    /// From the reader task: one whole request frame (without its size prefix) and the
    /// in-flight permit it holds until its response is written.
    Frame(Bytes, OwnedSemaphorePermit),
    /// From the reader task on a TLS listener: the handshake is done; the client showed a
    /// certificate for this principal, if any. Sent before any frame.
    Secured(Option<String>),
    /// From the reader or writer task: the connection is over.
    Closed {
        /// What happened.
        reason: String,
        /// The client broke the protocol (logged as a warning).
        misbehaved: bool,
    },
}

/// Arguments of one connection (never restarted, so not `Clone`).
pub struct ConnectionArgs {
    /// The accepted socket.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener it came in on.
    pub listener: ListenerRuntime,
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
}

/// A response being produced, in request order, with the permit to release once written.
type Pending = (JoinHandle<Result<Option<Bytes>, String>>, OwnedSemaphorePermit);

/// The connection's state.
pub struct ConnectionState {
    /// The client's address, listener and principal, as requests see them.
    client: Client,
    /// The listener's protocol asks for SASL.
    sasl: bool,
    /// Where authentication stands.
    auth: Auth,
    /// Responses to the writer task, in request order.
    responses: mpsc::UnboundedSender<Pending>,
    /// Reads frames (after the TLS handshake, on TLS listeners); aborted when the state drops.
    _reader: TaskGuard,
    /// Writes responses; aborted when the state drops (on TLS listeners the reader's task owns
    /// the writer).
    _writer: Option<TaskGuard>,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct ConnectionActor;

impl Actor for ConnectionActor {
    type Msg = ConnectionMsg;
    type State = ConnectionState;
    type Arguments = ConnectionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnectionMsg>,
        args: ConnectionArgs,
    ) -> Result<ConnectionState, ActorProcessingErr> {
        let ConnectionArgs { stream, peer, listener, ctx } = args;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            format!("connection:{peer}"),
            "ConnectionActor",
            0,
            MailboxGauge::default(),
        );
        let gauge = registration.gauge().clone();
        let me = Counted { actor: myself, gauge: gauge.clone() };
        let (tx, rx) = mpsc::unbounded_channel();
        let limits = ReadLimits {
            max_frame: ctx.config.kafka.max_request_bytes,
            deadline: Duration::from_millis(ctx.config.kafka.request_read_timeout_ms),
            inflight: Arc::new(Semaphore::new(ctx.config.kafka.max_inflight_requests)),
        };
        let (reader, writer) = match listener.tls.clone() {
            Some(acceptor) => (tokio::spawn(secure(stream, acceptor, limits, rx, me)), None),
            None => {
                let (rd, wr) = stream.into_split();
                let reader = tokio::spawn(read_frames(rd, me.clone(), limits));
                (reader, Some(TaskGuard(tokio::spawn(write_responses(wr, rx, me)))))
            }
        };
        debug!(%peer, listener = %listener.name, "client connected");
        let sasl = listener.protocol.sasl();
        let client = Client { peer, listener: listener.name, principal: ANONYMOUS.into() };
        Ok(ConnectionState {
            auth: Auth::new(sasl, client.principal.clone()),
            client,
            sasl,
            responses: tx,
            _reader: TaskGuard(reader),
            _writer: writer,
            ctx,
            registration,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnectionMsg>,
        msg: ConnectionMsg,
        state: &mut ConnectionState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        let peer = state.client.peer;
        match msg {
            ConnectionMsg::Frame(frame, permit) => match state.auth.screen(&frame, &state.ctx, state.sasl) {
                Verdict::Dispatch => match handlers::dispatch(&state.ctx, frame, &state.client) {
                    Ok(response) => {
                        let _ = state.responses.send((tokio::spawn(response), permit));
                    }
                    Err(e) => close(&myself, peer, &e.to_string(), true),
                },
                Verdict::Answer(bytes) => {
                    // Only the gate's answers change who the client is: take it on here, not
                    // on every request.
                    if let Some(principal) = state.auth.principal() {
                        state.client.principal = principal.clone();
                    }
                    let _ = state.responses.send((tokio::spawn(async move { Ok(Some(bytes)) }), permit));
                }
                Verdict::Close(reason) => close(&myself, peer, &reason, true),
            },
            ConnectionMsg::Secured(principal) => {
                if let Some(principal) = principal {
                    debug!(%peer, %principal, "client certificate accepted");
                    state.client.principal = principal.into();
                    state.auth = Auth::new(state.sasl, state.client.principal.clone());
                }
            }
            ConnectionMsg::Closed { reason, misbehaved } => close(&myself, peer, &reason, misbehaved),
        }
        Ok(())
    }
}

fn close(myself: &ActorRef<ConnectionMsg>, peer: SocketAddr, reason: &str, misbehaved: bool) {
    if misbehaved {
        warn!(%peer, reason, "closing client connection");
    } else {
        debug!(%peer, reason, "client connection closed");
    }
    myself.stop(Some(reason.to_string()));
}

/// Bounds on what one client can make the broker hold.
struct ReadLimits {
    /// Largest frame accepted (`kafka.max_request_bytes`).
    max_frame: usize,
    /// Time allowed to finish a frame once its first byte arrived.
    deadline: Duration,
    /// Requests in flight; reading pauses while all permits are taken.
    inflight: Arc<Semaphore>,
}

/// TLS listeners: the handshake (within the frame deadline), then frames and responses as on
/// any connection, both from this task.
async fn secure(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    limits: ReadLimits,
    rx: mpsc::UnboundedReceiver<Pending>,
    me: Counted<ConnectionMsg>,
) {
    let tls = match tokio::time::timeout(limits.deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let _ = me.cast(ConnectionMsg::Closed { reason: format!("TLS handshake failed: {e}"), misbehaved: true });
            return;
        }
        Err(_) => {
            let reason = format!("TLS handshake not completed within {} ms", limits.deadline.as_millis());
            let _ = me.cast(ConnectionMsg::Closed { reason, misbehaved: true });
            return;
        }
    };
    let principal =
        tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).and_then(crate::tls::certificate_principal);
    if me.cast(ConnectionMsg::Secured(principal)).is_err() {
        return;
    }
    let (rd, wr) = tokio::io::split(tls);
    tokio::join!(read_frames(rd, me.clone(), limits), write_responses(wr, rx, me));
}

async fn read_frames<R: AsyncRead + Unpin>(mut rd: R, me: Counted<ConnectionMsg>, limits: ReadLimits) {
    let closed = loop {
        let Ok(permit) = limits.inflight.clone().acquire_owned().await else { return };
        let mut first = [0u8; 1];
        // An idle client may wait as long as it likes before starting a frame...
        match rd.read(&mut first).await {
            Ok(0) => break ConnectionMsg::Closed { reason: "client closed the connection".into(), misbehaved: false },
            Ok(_) => {}
            Err(e) => break ConnectionMsg::Closed { reason: format!("read failed: {e}"), misbehaved: false },
        }
        // ...but once it has, the whole frame must arrive within the deadline.
        let frame = match tokio::time::timeout(limits.deadline, read_rest(&mut rd, first[0], limits.max_frame)).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(reason)) => break ConnectionMsg::Closed { reason, misbehaved: true },
            Err(_) => {
                let reason = format!("frame not completed within {} ms", limits.deadline.as_millis());
                break ConnectionMsg::Closed { reason, misbehaved: true };
            }
        };
        if me.cast(ConnectionMsg::Frame(frame, permit)).is_err() {
            return;
        }
    };
    let _ = me.cast(closed);
}

/// Reads the rest of the size prefix and the body. The buffer grows with the bytes that
/// actually arrive, never by the size the client claims.
async fn read_rest<R: AsyncRead + Unpin>(rd: &mut R, first: u8, max_frame: usize) -> Result<Bytes, String> {
    let io = |e: std::io::Error| format!("read failed: {e}");
    let mut prefix = [first, 0, 0, 0];
    rd.read_exact(&mut prefix[1..]).await.map_err(io)?;
    let len = frame_len(prefix, max_frame).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(len.min(64 * 1024));
    while buf.len() < len {
        if buf.capacity() == buf.len() {
            buf.reserve((len - buf.len()).min(buf.len().max(64 * 1024)));
        }
        let want = len - buf.len();
        let n = (&mut *rd).take(want as u64).read_buf(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Err(format!("connection closed after {} of {len} frame bytes", buf.len()));
        }
    }
    Ok(buf.freeze())
}

async fn write_responses<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    me: Counted<ConnectionMsg>,
) {
    while let Some((response, permit)) = rx.recv().await {
        let bytes = match response.await {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) => continue, // acks=0: Kafka sends nothing back
            Ok(Err(e)) => {
                let _ = me.cast(ConnectionMsg::Closed {
                    reason: format!("cannot encode a response: {e}"),
                    misbehaved: false,
                });
                return;
            }
            Err(e) => {
                let _ = me
                    .cast(ConnectionMsg::Closed { reason: format!("request handler failed: {e}"), misbehaved: false });
                return;
            }
        };
        if let Err(e) = wr.write_all(&bytes).await {
            let _ = me.cast(ConnectionMsg::Closed { reason: format!("write failed: {e}"), misbehaved: false });
            return;
        }
        drop(permit);
    }
}
