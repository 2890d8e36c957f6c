//! Bearer tokens for the admin API (`[security] admin_tokens`). Once a token is configured,
//! every mutating request needs `Authorization: Bearer <token>`, and so does every read when
//! `admin_token_for_reads` is on (the console's page and script excepted: they hold no data).
//! Tokens are compared in constant time, and a refusal is logged with the caller and the path,
//! never with what it sent.

use std::sync::Arc;

use chronik::config::{Secret, SecurityConfig};
use subtle::ConstantTimeEq;
use tracing::warn;
use warp::http::Method;
use warp::path::FullPath;
use warp::{Filter, Rejection};

use super::serve::Peer;

/// The console's own files, public even when reads need a token.
const PUBLIC: &[&str] = &["/", "/console/app.js", "/console/app.css"];

/// Who may do what on this admin port.
#[derive(Debug, Clone)]
pub(super) struct AdminAuth {
    /// Tokens any one of which is accepted; none: the admin API takes no credential.
    tokens: Vec<Secret>,
    /// Reads need a token too.
    reads: bool,
}

/// A request refused for its credential (401).
#[derive(Debug)]
pub(super) struct Unauthorized(pub(super) &'static str);

impl warp::reject::Reject for Unauthorized {}

impl AdminAuth {
    pub(super) fn new(security: &SecurityConfig) -> Self {
        Self { tokens: security.admin_tokens.clone(), reads: security.admin_token_for_reads }
    }

    /// Whether a request with this method, path and `Authorization` header may go on.
    fn check(&self, method: &Method, path: &str, authorization: Option<&str>) -> Result<(), Unauthorized> {
        let read = method == Method::GET || method == Method::HEAD;
        if self.tokens.is_empty() || (read && (!self.reads || PUBLIC.contains(&path))) {
            return Ok(());
        }
        let Some(header) = authorization else {
            return Err(Unauthorized("this admin API needs a bearer token: send 'Authorization: Bearer <token>'"));
        };
        let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
            return Err(Unauthorized("the Authorization header must be 'Bearer <token>'"));
        };
        // Every token is compared, so the time taken does not tell which one nearly matched.
        let matched =
            self.tokens.iter().fold(0u8, |any, t| any | t.expose().as_bytes().ct_eq(token.as_bytes()).unwrap_u8());
        if matched == 1 { Ok(()) } else { Err(Unauthorized("the bearer token is not valid on this admin API")) }
    }
}

/// Passes a request the tokens allow; rejects any other with [`Unauthorized`].
pub(super) fn authorized(auth: Arc<AdminAuth>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::ext::optional::<Peer>())
        .and_then(move |method: Method, path: FullPath, header: Option<String>, peer: Option<Peer>| {
            let auth = auth.clone();
            async move {
                auth.check(&method, path.as_str(), header.as_deref()).map_err(|refused| {
                    let peer = peer.map_or_else(|| "unknown".to_string(), |Peer(p)| p.to_string());
                    warn!(%peer, %method, path = path.as_str(), reason = refused.0, "admin request refused");
                    warp::reject::custom(refused)
                })
            }
        })
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(tokens: &[&str], reads: bool) -> AdminAuth {
        AdminAuth { tokens: tokens.iter().map(|t| Secret::from(*t)).collect(), reads }
    }

    #[test]
    fn without_tokens_everything_passes() {
        assert!(auth(&[], false).check(&Method::POST, "/admin/add-node", None).is_ok());
    }

    #[test]
    fn mutations_need_one_of_the_tokens_and_reads_only_when_asked() {
        let a = auth(&["one", "two"], false);
        let post = |header| a.check(&Method::POST, "/admin/rebalance/pause", header);
        assert!(post(Some("Bearer two")).is_ok());
        assert!(post(None).unwrap_err().0.contains("needs a bearer token"));
        assert!(post(Some("Basic dXNlcjpwdw==")).unwrap_err().0.contains("must be 'Bearer <token>'"));
        assert!(post(Some("Bearer three")).unwrap_err().0.contains("not valid"));
        assert!(post(Some("Bearer tw")).is_err(), "a prefix is not the token");
        assert!(a.check(&Method::GET, "/admin/partitions", None).is_ok());

        let strict = auth(&["one"], true);
        assert!(strict.check(&Method::GET, "/admin/partitions", None).is_err());
        assert!(strict.check(&Method::GET, "/admin/partitions", Some("Bearer one")).is_ok());
        assert!(strict.check(&Method::GET, "/console/app.js", None).is_ok(), "the console's files stay public");
    }
}
