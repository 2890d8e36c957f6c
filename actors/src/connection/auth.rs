//! The SASL gate of one connection. On a SASL listener a client may send only ApiVersions and
//! SaslHandshake until it has authenticated, as in Kafka; SaslHandshake and SaslAuthenticate
//! are answered here because they change the connection's state, not the cluster's. A
//! handshake at v0 switches to Kafka's original framing: raw SASL tokens with only a size
//! prefix. Re-authentication (KIP-368) runs the same exchange on an open connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use chronik::protocol::{Parsed, encode_response, parse_request};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use crate::context::NodeContext;
use crate::handlers::str_bytes;
use crate::sasl::{Exchange, Step};

/// Where a connection stands.
pub(super) enum Auth {
    /// Requests are served as `principal`; on a SASL listener with re-authentication on, the
    /// session ends at `expires` unless the client re-authenticates first.
    Open {
        /// Who the client is.
        principal: Arc<str>,
        /// When the SASL session ends.
        expires: Option<Instant>,
    },
    /// A SASL listener before a handshake: only ApiVersions and SaslHandshake are served.
    AwaitingHandshake,
    /// A handshake chose a mechanism; its exchange runs.
    Exchanging {
        /// The mechanism's state (boxed: it is large next to the other states).
        exchange: Box<Exchange>,
        /// Kafka's v0 framing: raw tokens instead of SaslAuthenticate requests.
        raw: bool,
        /// Re-authenticating: the principal the connection had, which must not change.
        reauth_of: Option<Arc<str>>,
    },
    /// Authentication failed: the next request closes the connection.
    Failed,
}

/// What to do with a frame.
pub(super) enum Verdict {
    /// An ordinary request: dispatch it.
    Dispatch,
    /// Answered here: send these bytes.
    Answer(Bytes),
    /// Close the connection, for this reason.
    Close(String),
}

/// The principal of a client nobody authenticated.
pub(super) const ANONYMOUS: &str = "User:ANONYMOUS";

impl Auth {
    /// The state a new connection starts in.
    pub(super) fn new(sasl: bool, principal: Arc<str>) -> Auth {
        if sasl { Auth::AwaitingHandshake } else { Auth::Open { principal, expires: None } }
    }

    /// The principal requests are served as, once there is one.
    pub(super) fn principal(&self) -> Option<&Arc<str>> {
        match self {
            Auth::Open { principal, .. } => Some(principal),
            _ => None,
        }
    }

    /// Looks at a frame before it is dispatched.
    pub(super) fn screen(&mut self, frame: &Bytes, ctx: &NodeContext, sasl_listener: bool) -> Verdict {
        if let Auth::Exchanging { raw: true, .. } = self {
            return self.raw_token(frame);
        }
        let Some(key) = frame.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]])) else { return Verdict::Dispatch };
        match ApiKey::try_from(key) {
            Ok(ApiKey::ApiVersions) => Verdict::Dispatch,
            Ok(api @ (ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)) => {
                let Ok(Parsed::Request(request)) = parse_request(frame.clone()) else { return Verdict::Dispatch };
                let (version, correlation_id) = (request.api_version, request.correlation_id);
                let (body, close) = match request.body {
                    RequestKind::SaslHandshake(r) => self.handshake(r, version, ctx, sasl_listener),
                    RequestKind::SaslAuthenticate(r) => self.authenticate(&r.auth_bytes, version, ctx),
                    _ => return Verdict::Dispatch,
                };
                match encode_response(api, version, correlation_id, &body) {
                    Ok(bytes) if close.is_none() => Verdict::Answer(bytes),
                    Ok(bytes) => {
                        *self = Auth::Failed;
                        Verdict::Answer(bytes)
                    }
                    Err(e) => Verdict::Close(format!("cannot encode a {api:?} response: {e}")),
                }
            }
            other => match self {
                Auth::Open { expires: Some(at), .. } if Instant::now() >= *at => {
                    Verdict::Close("the SASL session expired and the client did not re-authenticate".into())
                }
                Auth::Open { .. } => Verdict::Dispatch,
                _ => {
                    let api = other.map_or_else(|()| format!("api key {key}"), |api| format!("{api:?}"));
                    Verdict::Close(format!("{api} request before SASL authentication completed"))
                }
            },
        }
    }

    /// SaslHandshake: checks the mechanism and starts its exchange. The second value is set
    /// when the answer refuses (the connection then fails).
    fn handshake(
        &mut self,
        r: SaslHandshakeRequest,
        version: i16,
        ctx: &NodeContext,
        sasl_listener: bool,
    ) -> (ResponseKind, Option<()>) {
        let offered = &ctx.config.sasl.mechanisms;
        let answer = |code: i16| {
            let mechanisms = offered.iter().map(|m| str_bytes(m.clone())).collect();
            ResponseKind::SaslHandshake(
                SaslHandshakeResponse::default().with_error_code(code).with_mechanisms(mechanisms),
            )
        };
        let refuse = |error: ResponseError| (answer(error.code()), Some(()));
        let reauth_of = match self {
            _ if !sasl_listener => return refuse(ResponseError::IllegalSaslState),
            Auth::AwaitingHandshake => None,
            // Re-authentication needs SaslAuthenticate framing (KIP-368).
            Auth::Open { principal, .. } if version >= 1 => Some(principal.clone()),
            _ => return refuse(ResponseError::IllegalSaslState),
        };
        let mechanism = r.mechanism.as_str();
        if !offered.iter().any(|m| m == mechanism) {
            return refuse(ResponseError::UnsupportedSaslMechanism);
        }
        match Exchange::start(mechanism, ctx.metadata()) {
            Ok(exchange) => {
                *self = Auth::Exchanging { exchange: Box::new(exchange), raw: version == 0, reauth_of };
                (answer(0), None)
            }
            Err(_) => refuse(ResponseError::UnsupportedSaslMechanism),
        }
    }

    /// SaslAuthenticate: one step of the exchange.
    fn authenticate(&mut self, token: &[u8], version: i16, ctx: &NodeContext) -> (ResponseKind, Option<()>) {
        let refuse = |error: ResponseError, message: String| {
            let body = SaslAuthenticateResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(message)));
            (ResponseKind::SaslAuthenticate(body), Some(()))
        };
        let Auth::Exchanging { exchange, raw: false, reauth_of } = self else {
            return refuse(ResponseError::IllegalSaslState, "SaslAuthenticate without a SaslHandshake".into());
        };
        let reply = match exchange.step(token) {
            Step::Continue(reply) => reply,
            Step::Done { user, reply } => {
                let principal: Arc<str> = format!("User:{user}").into();
                if reauth_of.as_ref().is_some_and(|before| *before != principal) {
                    let message = "re-authentication must keep the connection's principal".to_string();
                    return refuse(ResponseError::SaslAuthenticationFailed, message);
                }
                if reauth_of.is_some() {
                    tracing::debug!(%principal, "client re-authenticated");
                } else {
                    tracing::debug!(%principal, "client authenticated");
                }
                let lifetime = ctx.config.sasl.max_reauth_ms;
                let expires = (lifetime > 0).then(|| Instant::now() + Duration::from_millis(lifetime));
                *self = Auth::Open { principal, expires };
                let body = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(reply));
                let body = if version >= 1 { body.with_session_lifetime_ms(lifetime as i64) } else { body };
                return (ResponseKind::SaslAuthenticate(body), None);
            }
            Step::Failed(message) => {
                tracing::info!(reason = %message, "SASL authentication failed");
                return refuse(ResponseError::SaslAuthenticationFailed, message);
            }
        };
        (ResponseKind::SaslAuthenticate(SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(reply))), None)
    }

    /// A raw token after a v0 handshake; the answer is a raw token too. Kafka closes the
    /// connection when such an exchange fails: there is no error field to carry.
    fn raw_token(&mut self, frame: &Bytes) -> Verdict {
        let Auth::Exchanging { exchange, .. } = self else { return Verdict::Dispatch };
        let reply = match exchange.step(frame) {
            Step::Continue(reply) => reply,
            Step::Done { user, reply } => {
                *self = Auth::Open { principal: format!("User:{user}").into(), expires: None };
                reply
            }
            Step::Failed(message) => {
                tracing::info!(reason = %message, "SASL authentication failed");
                return Verdict::Close(message);
            }
        };
        let mut out = BytesMut::with_capacity(4 + reply.len());
        out.put_u32(reply.len() as u32);
        out.put_slice(&reply);
        Verdict::Answer(out.freeze())
    }
}
