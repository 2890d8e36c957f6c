//! The cluster secret on the node ports (`[security] cluster_secret`): every request a node sends
//! a peer's Raft or replication port carries it (`authorization: Bearer <secret>` in the gRPC
//! metadata), and both ports refuse, before anything is decoded, a request that does not. So a
//! process that can reach the ports but does not hold the secret can neither propose metadata,
//! vote, nor fetch (and so move a high watermark). Without a secret configured nothing is sent
//! or checked, as before.
//!
//! Node TLS (`[security] node_cert_file`, `node_key_file`, `node_ca_file`) goes further: both
//! ports speak TLS only and take only peers with a certificate of the cluster's CA, and each
//! certificate names its node (`CN=node-<id>`), so a follower can fetch only as itself.

use std::net::SocketAddr;

use chronik::config::{NodeId, Secret, SecurityConfig};
use subtle::ConstantTimeEq;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::{Request, Status};
use tracing::warn;

/// The metadata key the secret travels in.
const KEY: &str = "authorization";

/// A channel to a peer that sends the cluster secret with every request.
pub type PeerChannel = InterceptedService<Channel, SendSecret>;

/// Adds the cluster secret to each outgoing request.
#[derive(Clone, Default)]
pub struct SendSecret(Option<MetadataValue<Ascii>>);

impl SendSecret {
    /// Sends `secret`, or nothing. Config loading checked that it is printable ASCII; one that
    /// is not is not sent, and the peer refuses the requests.
    pub fn new(secret: Option<&Secret>) -> Self {
        Self(secret.and_then(|s| MetadataValue::try_from(format!("Bearer {}", s.expose())).ok()))
    }
}

impl Interceptor for SendSecret {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(KEY, value.clone());
        }
        Ok(request)
    }
}

/// Refuses incoming requests that do not carry the cluster secret.
#[derive(Clone)]
pub struct RequireSecret {
    /// The secret; `None` lets everything through.
    expected: Option<Secret>,
    /// Which port, for the log line.
    port: &'static str,
}

impl RequireSecret {
    /// Checks requests on `port` (`raft` or `wal`) against `secret`, if one is configured.
    pub fn new(secret: Option<&Secret>, port: &'static str) -> Self {
        Self { expected: secret.cloned(), port }
    }
}

impl Interceptor for RequireSecret {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else { return Ok(request) };
        let sent = request.metadata().get(KEY).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if sent.is_some_and(|s| bool::from(s.as_bytes().ct_eq(expected.expose().as_bytes()))) {
            return Ok(request);
        }
        let peer = request.remote_addr().map_or_else(|| "unknown".to_string(), |a: SocketAddr| a.to_string());
        let what = if sent.is_some() { "a wrong cluster secret" } else { "no cluster secret" };
        warn!(port = self.port, %peer, "refused a request with {what}");
        Err(Status::unauthenticated(format!(
            "the {} port of this node needs the cluster secret ([security] cluster_secret)",
            self.port
        )))
    }
}

/// The TLS settings of the node ports, client and server side, from one node's files.
#[derive(Clone)]
pub struct NodeTls {
    /// For the Raft and replication servers: this node's certificate; peers must show one.
    pub server: ServerTlsConfig,
    /// For connections to peers: this node's certificate; the peer's must come from the CA.
    pub client: ClientTlsConfig,
}

impl NodeTls {
    /// Reads the files, if node TLS is configured; every problem names its key. The certificate
    /// must name this node, so a misplaced file stops the start rather than every fetch.
    pub fn load(security: &SecurityConfig, me: NodeId) -> Result<Option<Self>, String> {
        let (Some(cert), Some(key), Some(ca)) =
            (&security.node_cert_file, &security.node_key_file, &security.node_ca_file)
        else {
            return Ok(None);
        };
        let read = |key: &str, path: &str| std::fs::read(path).map_err(|e| format!("{key}: cannot read {path:?}: {e}"));
        let (cert_pem, key_pem, ca_pem) = (
            read("security.node_cert_file", cert)?,
            read("security.node_key_file", key)?,
            read("security.node_ca_file", ca)?,
        );
        let first = tokio_rustls::rustls::pki_types::CertificateDer::pem_slice_iter(&cert_pem)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| format!("security.node_cert_file: {cert:?} holds no PEM certificate"))?;
        match node_of_certificate(&first) {
            Some(id) if id == me => {}
            Some(id) => {
                return Err(format!("security.node_cert_file: the certificate names node {id}, this is node {me}"));
            }
            None => return Err(format!("security.node_cert_file: the certificate's common name is not node-{me}")),
        }
        let identity = Identity::from_pem(&cert_pem, &key_pem);
        let ca = Certificate::from_pem(&ca_pem);
        let server = ServerTlsConfig::new().identity(identity.clone()).client_ca_root(ca.clone());
        let client = ClientTlsConfig::new().identity(identity).ca_certificate(ca);
        // tonic reads the files only when it first uses them: try both now.
        tonic::transport::Server::builder()
            .tls_config(server.clone())
            .map_err(|e| format!("security.node_key_file: cannot use the key and certificate: {e}"))?;
        tonic::transport::Endpoint::from_static("https://localhost")
            .tls_config(client.clone())
            .map_err(|e| format!("security.node_ca_file: cannot use the CA: {e}"))?;
        Ok(Some(Self { server, client }))
    }
}

/// A gRPC server builder for a node port: with node TLS, TLS only, peers' certificates required.
pub fn server_builder(tls: &Option<NodeTls>) -> Result<tonic::transport::Server, tonic::transport::Error> {
    let builder = tonic::transport::Server::builder();
    match tls {
        Some(tls) => builder.tls_config(tls.server.clone()),
        None => Ok(builder),
    }
}

/// The node a certificate names: its subject's common name `node-<id>`.
pub fn node_of_certificate(cert: &[u8]) -> Option<NodeId> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    cn.strip_prefix("node-")?.parse().ok()
}

/// The node whose certificate the caller showed, when the port speaks node TLS.
pub fn caller_node<T>(request: &Request<T>) -> Option<NodeId> {
    let certs = request.peer_certs()?;
    node_of_certificate(certs.first()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(secret: Option<&str>) -> Request<()> {
        let secret = secret.map(Secret::from);
        SendSecret::new(secret.as_ref()).call(Request::new(())).expect("sending never fails")
    }

    #[test]
    fn only_a_request_with_the_same_secret_passes() {
        let secret = Secret::from("s3cret");
        let mut check = RequireSecret::new(Some(&secret), "raft");
        assert!(check.call(sent(Some("s3cret"))).is_ok());
        for other in [None, Some("wrong"), Some("s3cre"), Some("s3cret2")] {
            let refused = check.call(sent(other)).expect_err("refused");
            assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{other:?}");
        }
    }

    #[test]
    fn without_a_secret_nothing_is_sent_or_checked() {
        assert!(sent(None).metadata().get(KEY).is_none());
        assert!(RequireSecret::new(None, "wal").call(sent(None)).is_ok());
    }
}
