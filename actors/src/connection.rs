//! `ConnectionActor`: one per client TCP connection. A reader task cuts the byte stream into
//! frames (refusing bad sizes, with a deadline on a started frame); the actor decodes each
//! frame and dispatches it in arrival order; a writer task sends the responses in that same
//! order. Requests are pipelined: the next one is dispatched while earlier ones wait for disk.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chronik::protocol::frame_len;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::context::NodeContext;
use crate::directory::{Counted, MailboxGauge, Registration, TaskGuard};
use crate::handlers;

/// The connection's mailbox.
pub enum ConnectionMsg {
    /// From the reader task: one whole request frame (without its size prefix) and the
    /// in-flight permit it holds until its response is written.
    Frame(Bytes, OwnedSemaphorePermit),
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
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
}

/// A response being produced, in request order, with the permit to release once written.
type Pending = (JoinHandle<Result<Option<Bytes>, String>>, OwnedSemaphorePermit);

/// The connection's state.
pub struct ConnectionState {
    /// The client's address.
    peer: SocketAddr,
    /// Responses to the writer task, in request order.
    responses: mpsc::UnboundedSender<Pending>,
    /// Reads frames; aborted when the state drops.
    _reader: TaskGuard,
    /// Writes responses; aborted when the state drops.
    _writer: TaskGuard,
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
        let ConnectionArgs { stream, peer, ctx } = args;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            format!("connection:{peer}"),
            "ConnectionActor",
            0,
            MailboxGauge::default(),
        );
        let gauge = registration.gauge().clone();
        let me = Counted { actor: myself, gauge: gauge.clone() };
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let limits = ReadLimits {
            max_frame: ctx.config.kafka.max_request_bytes,
            deadline: Duration::from_millis(ctx.config.kafka.request_read_timeout_ms),
            inflight: Arc::new(Semaphore::new(ctx.config.kafka.max_inflight_requests)),
        };
        let reader = tokio::spawn(read_frames(rd, me.clone(), limits));
        let writer = tokio::spawn(write_responses(wr, rx, me));
        debug!(%peer, "client connected");
        Ok(ConnectionState {
            peer,
            responses: tx,
            _reader: TaskGuard(reader),
            _writer: TaskGuard(writer),
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
        match msg {
            ConnectionMsg::Frame(frame, permit) => match handlers::dispatch(&state.ctx, frame, state.peer) {
                Ok(response) => {
                    let _ = state.responses.send((tokio::spawn(response), permit));
                }
                Err(e) => close(&myself, state.peer, &e.to_string(), true),
            },
            ConnectionMsg::Closed { reason, misbehaved } => close(&myself, state.peer, &reason, misbehaved),
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

async fn read_frames(mut rd: OwnedReadHalf, me: Counted<ConnectionMsg>, limits: ReadLimits) {
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
async fn read_rest(rd: &mut OwnedReadHalf, first: u8, max_frame: usize) -> Result<Bytes, String> {
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

async fn write_responses(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Pending>, me: Counted<ConnectionMsg>) {
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
