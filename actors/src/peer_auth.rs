//! The cluster secret on the node ports (`[security] cluster_secret`): every request a node sends
//! a peer's Raft or replication port carries it (`authorization: Bearer <secret>` in the gRPC
//! metadata), and both ports refuse, before anything is decoded, a request that does not. So a
//! process that can reach the ports but does not hold the secret can neither propose metadata,
//! vote, nor fetch (and so move a high watermark). Without a secret configured nothing is sent
//! or checked, as before.

use std::net::SocketAddr;

use chronik::config::Secret;
use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
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
