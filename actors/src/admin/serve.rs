//! The admin port's accept loop: HTTP/1 over plain TCP, or over TLS once admin TLS is configured.
//! warp 0.4 serves TLS only through a private trait, so the loop is ours and warp's filter runs
//! as a service on each connection; the caller's address travels as [`Peer`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;
use tracing::{debug, warn};
use warp::{Filter, Reply};

/// A client that opens a connection and then says nothing holds it no longer than this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Nor does one that starts a request and never finishes its headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The address of the connection a request came on (warp's own is private to its server).
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer(pub SocketAddr);

/// Serves `routes` on every connection `listener` accepts, through `tls` when given, until the
/// task is aborted. A connection that fails (a bad handshake, a malformed request) ends alone.
pub(super) async fn serve<F, R>(listener: TcpListener, routes: F, tls: Option<TlsAcceptor>)
where
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, usually: give the open connections time to close.
                warn!(error = %e, "admin port cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let routes = routes.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(tcp, peer, routes).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => connection(stream, peer, routes).await,
                    Ok(Err(e)) => debug!(%peer, error = %e, "admin TLS handshake failed"),
                    Err(_) => debug!(%peer, "admin TLS handshake timed out"),
                },
            }
        });
    }
}

/// Serves one connection's requests, each tagged with the caller's address.
async fn connection<S, F, R>(io: S, peer: SocketAddr, routes: F)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let service = warp::service(routes);
    let handler = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        service.clone().call(request)
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), handler)
        .await;
    if let Err(e) = served {
        debug!(%peer, error = %e, "admin connection ended with an error");
    }
}
