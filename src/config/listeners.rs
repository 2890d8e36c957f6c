//! Kafka listeners and their security: the main listener (`[bind] kafka`, protocol
//! `[kafka] security_protocol`) plus any `[[kafka.listeners]]`, each PLAINTEXT, SSL,
//! SASL_PLAINTEXT or SASL_SSL with Kafka's meaning; the certificate for the SSL ones (`[tls]`)
//! and the SASL mechanisms offered (`[sasl]`).

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Config, parse_host_port};

/// Kafka's `security.protocol` of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SecurityProtocol {
    /// Plain TCP, no authentication (principal `User:ANONYMOUS`).
    #[default]
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    /// TLS; the principal comes from the client certificate when `[tls] client_auth` asks for one.
    #[serde(rename = "SSL")]
    Ssl,
    /// SASL over plain TCP.
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL over TLS.
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// Connections are wrapped in TLS.
    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Clients must authenticate with SASL before anything but ApiVersions.
    pub fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `[[kafka.listeners]]` entry: a further port for Kafka clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Its name (Kafka's listener name); the same name must mean the same listener on every node.
    pub name: String,
    /// Where it listens, `host:port`.
    pub bind: String,
    /// The address Metadata gives clients that came in on it; defaults to the bind address.
    #[serde(default)]
    pub advertise: Option<String>,
    /// How clients on it connect and authenticate.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,
    /// Overrides `[tls] client_auth` on this listener (Kafka's
    /// `listener.name.<name>.ssl.client.auth`), e.g. one port that requires certificates.
    #[serde(default)]
    pub ssl_client_auth: Option<ClientAuth>,
}

/// Whether an SSL listener asks clients for a certificate (Kafka's `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for and checked if given; clients without one still connect.
    Requested,
    /// Clients without a certificate signed by `client_ca_file` are refused.
    Required,
}

/// `[tls]`: the broker's certificate for every SSL and SASL_SSL listener.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the broker's certificate chain, leaf first.
    pub cert_file: Option<String>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<String>,
    /// PEM file with the CA certificates client certificates must chain to.
    pub client_ca_file: Option<String>,
    /// Whether clients are asked for a certificate; the principal of a client that shows one is
    /// `User:` and its subject, as Kafka's default principal builder makes it.
    pub client_auth: ClientAuth,
}

/// `[sasl]`: authentication on SASL_PLAINTEXT and SASL_SSL listeners. Users are the SCRAM
/// credentials stored in the cluster metadata; PLAIN checks a password against them too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaslConfig {
    /// Mechanisms offered, out of PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.
    pub mechanisms: Vec<String>,
    /// How long an authentication holds before the client must re-authenticate (KIP-368,
    /// Kafka's `connections.max.reauth.ms`); a connection that does not is closed. 0: forever.
    pub max_reauth_ms: u64,
}

/// `[authorization]`: Kafka's ACL authorizer. Off (the default), every client may do everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationConfig {
    /// Whether requests are checked against the ACLs (Kafka's `authorizer.class.name`).
    pub enabled: bool,
    /// Principals (`User:admin`) that may do anything, whatever the ACLs say.
    pub super_users: Vec<String>,
    /// Kafka's `allow.everyone.if.no.acl.found`: a resource no ACL applies to is open to all.
    pub allow_everyone_if_no_acl_found: bool,
}

/// The mechanisms the broker implements.
pub const SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

impl Default for SaslConfig {
    fn default() -> Self {
        Self { mechanisms: SASL_MECHANISMS.iter().map(|m| m.to_string()).collect(), max_reauth_ms: 0 }
    }
}

/// A Kafka listener as the broker runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its name.
    pub name: String,
    /// Where it listens.
    pub bind: String,
    /// The address clients that came in on it are given.
    pub advertised: String,
    /// Its protocol.
    pub protocol: SecurityProtocol,
    /// Whether TLS clients are asked for a certificate.
    pub client_auth: ClientAuth,
}

impl Config {
    /// Every Kafka listener: the main one (`[bind] kafka`) first, then `[[kafka.listeners]]`.
    pub fn listeners(&self) -> Vec<Listener> {
        let main = Listener {
            name: self.main_listener_name(),
            bind: self.kafka_bind(),
            advertised: self.advertised_kafka(),
            protocol: self.kafka.security_protocol,
            client_auth: self.tls.client_auth,
        };
        let extra = self.kafka.listeners.iter().map(|l| Listener {
            name: l.name.clone(),
            bind: l.bind.clone(),
            advertised: l.advertise.clone().unwrap_or_else(|| super::advertise_from_bind(&l.bind)),
            protocol: l.security_protocol,
            client_auth: l.ssl_client_auth.unwrap_or(self.tls.client_auth),
        });
        std::iter::once(main).chain(extra).collect()
    }

    /// The main listener's name: `[kafka] listener_name`, else its protocol's name.
    pub fn main_listener_name(&self) -> String {
        self.kafka.listener_name.clone().unwrap_or_else(|| self.kafka.security_protocol.name().to_string())
    }

    /// Listener names, protocols, and what SSL and SASL need; each problem names its key.
    pub(super) fn check_authorization(&self, problems: &mut Vec<String>) {
        for user in &self.authorization.super_users {
            if !matches!(user.split_once(':'), Some((kind, name)) if !kind.is_empty() && !name.is_empty()) {
                problems.push(format!("authorization.super_users: {user:?} is not a principal like User:admin"));
            }
        }
    }

    pub(super) fn check_listeners(&self, problems: &mut Vec<String>) {
        let listeners = self.listeners();
        let mut names = HashSet::new();
        for (i, l) in listeners.iter().enumerate() {
            let key = if i == 0 { "kafka.listener_name".to_string() } else { format!("kafka.listeners[{}]", i - 1) };
            let valid = !l.name.is_empty() && l.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                problems.push(format!("{key}: a listener name is letters, digits, '_' and '-', got {:?}", l.name));
            }
            if !names.insert(l.name.as_str()) {
                problems.push(format!("{key}: listener name {:?} is used twice", l.name));
            }
        }
        for (i, l) in self.kafka.listeners.iter().enumerate() {
            if let Err(why) = parse_host_port(&l.bind) {
                problems.push(format!("kafka.listeners[{i}].bind: invalid address {:?}: {why}", l.bind));
            }
            if let Some(Err(why)) = l.advertise.as_deref().map(parse_host_port) {
                problems.push(format!("kafka.listeners[{i}].advertise: invalid address: {why}"));
            }
        }
        let tls = &self.tls;
        if let Some(l) = listeners.iter().find(|l| l.protocol.tls())
            && (tls.cert_file.is_none() || tls.key_file.is_none())
        {
            problems
                .push(format!("tls.cert_file / tls.key_file: listener {} uses {} and needs both", l.name, l.protocol));
        }
        let asks_certificates = listeners.iter().any(|l| l.protocol.tls() && l.client_auth != ClientAuth::None);
        if (asks_certificates || tls.client_auth != ClientAuth::None) && tls.client_ca_file.is_none() {
            problems.push("tls.client_ca_file: needed to check client certificates (tls.client_auth)".into());
        }
        for m in &self.sasl.mechanisms {
            if !SASL_MECHANISMS.contains(&m.as_str()) {
                problems.push(format!(
                    "sasl.mechanisms: unknown mechanism {m:?}; supported: {}",
                    SASL_MECHANISMS.join(", ")
                ));
            }
        }
        if listeners.iter().any(|l| l.protocol.sasl()) && self.sasl.mechanisms.is_empty() {
            problems.push("sasl.mechanisms: a SASL listener needs at least one mechanism".into());
        }
    }
}
