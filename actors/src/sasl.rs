//! SASL on the SASL listeners: PLAIN and SCRAM-SHA-256/512 (RFC 5802, no channel binding),
//! checked against the SCRAM credentials in the cluster metadata. PLAIN checks its password
//! against the same credentials, so an operator keeps one set of users.
//!
//! The cryptography is RustCrypto's (`pbkdf2`, `hmac`, `sha2`); the message flow is here
//! because it must accept what Kafka accepts: Kafka only checks that the client's final nonce
//! *ends with* the server's, and librdkafka 2.0 (Debian's kcat) relies on that by repeating
//! its own nonce. A strict RFC implementation (rsasl's) refuses every such client. The proof
//! is still checked over the exact messages exchanged, so the leniency costs no security.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chronik::cluster::{ClusterMetadata, ScramCredential};
use hmac::{Mac, SimpleHmac};
use sha2::digest::core_api::BlockSizeUser;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The smallest iteration count accepted for a stored credential (Kafka's minimum).
pub const MIN_ITERATIONS: u32 = 4096;
/// The largest, so a credential cannot make every login burn seconds (Kafka's maximum).
pub const MAX_ITERATIONS: u32 = 16384;

/// One step's outcome.
#[derive(Debug)]
pub enum Step {
    /// Send these bytes and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `reply` (possibly empty) to finish.
    Done {
        /// The authenticated user name.
        user: String,
        /// The mechanism's last message.
        reply: Vec<u8>,
    },
    /// Refused; the message is Kafka's wording for the client.
    Failed(String),
}

/// A SCRAM hash: SHA-256 or SHA-512.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Hash {
    fn of(mechanism: &str) -> Option<Hash> {
        match mechanism {
            "SCRAM-SHA-256" => Some(Hash::Sha256),
            "SCRAM-SHA-512" => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => hmac::<Sha256>(key, data),
            Hash::Sha512 => hmac::<Sha512>(key, data),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// SaltedPassword := Hi(password, salt, i), PBKDF2 with this hash's HMAC.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }

    /// StoredKey := H(HMAC(salted, "Client Key")), ServerKey := HMAC(salted, "Server Key").
    fn credential(self, salted: &[u8], salt: &[u8], iterations: u32) -> ScramCredential {
        let client_key = self.hmac(salted, b"Client Key");
        ScramCredential {
            iterations,
            salt: salt.to_vec(),
            stored_key: self.digest(&client_key),
            server_key: self.hmac(salted, b"Server Key"),
        }
    }
}

fn hmac<D: Digest + BlockSizeUser>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <SimpleHmac<D> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Where a SCRAM exchange stands.
enum Scram {
    /// Waiting for client-first.
    First,
    /// Sent server-first; waiting for client-final.
    Final {
        /// The user the client named.
        user: String,
        /// Their credential.
        credential: ScramCredential,
        /// What the final message is checked against.
        first: FirstParts,
    },
    /// Finished, one way or the other.
    Over,
}

/// One authentication exchange.
pub struct Exchange {
    /// The mechanism's name.
    mechanism: String,
    /// The SCRAM hash, `None` for PLAIN.
    hash: Option<Hash>,
    /// The credentials as they were when the exchange started.
    metadata: Arc<ClusterMetadata>,
    /// The server's part of the nonce: 24 random bytes, base64 (so no commas).
    server_nonce: String,
    /// The SCRAM state.
    scram: Scram,
}

impl Exchange {
    /// Starts an exchange with `mechanism` (already checked against `[sasl] mechanisms`).
    pub fn start(mechanism: &str, metadata: Arc<ClusterMetadata>) -> Result<Exchange, String> {
        let hash = match mechanism {
            "PLAIN" => None,
            other => Some(Hash::of(other).ok_or_else(|| format!("unsupported SASL mechanism {other}"))?),
        };
        let server_nonce = B64.encode(random_24());
        Ok(Exchange { mechanism: mechanism.to_string(), hash, metadata, server_nonce, scram: Scram::First })
    }

    /// Feeds the client's next message.
    pub fn step(&mut self, input: &[u8]) -> Step {
        let outcome = match self.hash {
            None => self.plain(input),
            Some(hash) => match std::mem::replace(&mut self.scram, Scram::Over) {
                Scram::First => self.client_first(input),
                Scram::Final { user, credential, first } => {
                    client_final(hash, input, &first, &credential).map(|reply| Step::Done { user, reply })
                }
                Scram::Over => Err("the exchange is over".into()),
            },
        };
        outcome.unwrap_or_else(|why| {
            tracing::debug!(mechanism = %self.mechanism, reason = %why, "SASL exchange refused");
            Step::Failed(format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                self.mechanism
            ))
        })
    }

    /// PLAIN: `authzid NUL authcid NUL password`; the authzid is empty or the authcid.
    fn plain(&self, input: &[u8]) -> Result<Step, String> {
        let mut parts = input.split(|b| *b == 0);
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("a PLAIN message is authzid, user and password separated by NUL".into());
        };
        let user = std::str::from_utf8(user).map_err(|_| "the user name is not UTF-8")?;
        if !authzid.is_empty() && authzid != user.as_bytes() {
            return Err("acting as another user is not supported".into());
        }
        if !password_matches(&self.metadata, user, password) {
            return Err(format!("wrong password or unknown user {user:?}"));
        }
        Ok(Step::Done { user: user.to_string(), reply: Vec::new() })
    }

    /// client-first: `gs2-header client-first-message-bare`; answers server-first.
    fn client_first(&mut self, input: &[u8]) -> Result<Step, String> {
        let text = std::str::from_utf8(input).map_err(|_| "client-first is not UTF-8")?;
        let (gs2_header, bare) = split_gs2(text)?;
        let mut user = None;
        let mut client_nonce = None;
        for (key, value) in attributes(bare) {
            match key {
                "n" => user = Some(unescape_name(value)?),
                "r" => client_nonce = Some(value),
                // Delegation tokens are not supported; other extensions are ignored, as Kafka does.
                "tokenauth" => return Err("delegation tokens are not supported".into()),
                "m" => return Err("mandatory extensions are not supported".into()),
                _ => {}
            }
        }
        let user = user.ok_or("client-first names no user")?;
        let client_nonce = client_nonce.filter(|n| !n.is_empty()).ok_or("client-first has no nonce")?;
        let credential = self
            .metadata
            .scram_credentials
            .get(&user)
            .and_then(|m| m.get(&self.mechanism))
            .cloned()
            .ok_or_else(|| format!("no {} credential for user {user:?}", self.mechanism))?;
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
        let reply = server_first.clone().into_bytes();
        let first =
            FirstParts { client_first_bare: bare.to_string(), server_first, nonce, gs2_header: gs2_header.to_string() };
        self.scram = Scram::Final { user, credential, first };
        Ok(Step::Continue(reply))
    }
}

/// What client-final is checked against.
struct FirstParts {
    /// client-first-message-bare, for the AuthMessage.
    client_first_bare: String,
    /// server-first-message, for the AuthMessage.
    server_first: String,
    /// The full nonce (client's then server's) the final message must end with.
    nonce: String,
    /// The gs2 header the channel binding must repeat.
    gs2_header: String,
}

/// client-final: `c=<binding>,r=<nonce>[,ext],p=<proof>`; answers `v=<server signature>`.
fn client_final(hash: Hash, input: &[u8], first: &FirstParts, c: &ScramCredential) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(input).map_err(|_| "client-final is not UTF-8")?;
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or("client-final carries no proof")?;
    let mut binding = None;
    let mut nonce = None;
    for (key, value) in attributes(without_proof) {
        match key {
            "c" => binding = Some(value),
            "r" => nonce = Some(value),
            _ => {}
        }
    }
    let binding = B64.decode(binding.ok_or("client-final has no channel binding")?).map_err(|_| "bad binding")?;
    if binding != first.gs2_header.as_bytes() {
        return Err("the channel binding does not repeat the gs2 header".into());
    }
    // Kafka's rule (see the module doc): the nonce must end with the one the server sent.
    if !nonce.is_some_and(|n| n.ends_with(&first.nonce)) {
        return Err("the nonce does not end with the server's".into());
    }
    let proof = B64.decode(proof).map_err(|_| "the proof is not base64")?;
    let auth_message = format!("{},{},{without_proof}", first.client_first_bare, first.server_first);
    let client_signature = hash.hmac(&c.stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Err("the proof has the wrong length".into());
    }
    let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
    if !bool::from(hash.digest(&client_key).ct_eq(&c.stored_key)) {
        return Err("wrong password".into());
    }
    let server_signature = hash.hmac(&c.server_key, auth_message.as_bytes());
    Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
}

/// Splits `gs2-header` (`n,,` / `y,,` / with `a=authzid`) from the rest; channel binding
/// (`p=`) is refused: Kafka does not offer the -PLUS mechanisms.
fn split_gs2(text: &str) -> Result<(&str, &str), String> {
    let mut cuts = text.match_indices(',').map(|(i, _)| i);
    let (Some(_), Some(second)) = (cuts.next(), cuts.next()) else { return Err("no gs2 header".into()) };
    let (header, bare) = text.split_at(second + 1);
    if !(header.starts_with("n,") || header.starts_with("y,")) {
        return Err("channel binding is not supported".into());
    }
    Ok((header, bare))
}

/// `k=v` pairs separated by commas.
fn attributes(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(',').filter_map(|part| part.split_once('='))
}

/// A SCRAM user name: `=2C` is a comma and `=3D` an equals sign; any other `=` is an error.
fn unescape_name(name: &str) -> Result<String, String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3).ok_or("a bad escape in the user name")?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return Err("a bad escape in the user name".into()),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// PLAIN: the password, salted and hashed as each stored credential of the user says, must
/// give that credential's stored key.
fn password_matches(metadata: &ClusterMetadata, user: &str, password: &[u8]) -> bool {
    let Some(mechanisms) = metadata.scram_credentials.get(user) else { return false };
    mechanisms.iter().any(|(mechanism, c)| {
        Hash::of(mechanism).is_some_and(|hash| {
            let derived =
                hash.credential(&hash.salted_password(password, &c.salt, c.iterations), &c.salt, c.iterations);
            derived.stored_key.ct_eq(&c.stored_key).into()
        })
    })
}

/// A SCRAM credential derived from a salted password (what AlterUserScramCredentials carries).
pub fn credential_from_salted(mechanism: &str, salted: &[u8], salt: &[u8], iterations: u32) -> Option<ScramCredential> {
    Some(Hash::of(mechanism)?.credential(salted, salt, iterations))
}

/// A SCRAM credential for `password` with a fresh random salt (the `cluster user` command).
pub fn credential_from_password(mechanism: &str, password: &str, iterations: u32) -> Option<ScramCredential> {
    let hash = Hash::of(mechanism)?;
    let salt = random_24();
    Some(hash.credential(&hash.salted_password(password.as_bytes(), &salt, iterations), &salt, iterations))
}

/// 24 random bytes: a salt, or (base64) the server's part of a nonce.
fn random_24() -> [u8; 24] {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests;
