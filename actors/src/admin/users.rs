//! `/admin/users`: the SCRAM users SASL clients log in as, for operators (and the
//! `cluster user` command) who cannot yet reach a Kafka listener to use
//! AlterUserScramCredentials. Only salted keys are stored; the password is never kept or logged.

use std::sync::Arc;

use chronik::cluster::MetadataCommand;
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::{Json, WithStatus, json};

use super::routes::outcome;
use crate::context::NodeContext;
use crate::sasl::{MAX_ITERATIONS, MIN_ITERATIONS, credential_from_password};

/// `POST /admin/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetUser {
    /// The user name.
    name: String,
    /// The password; only keys derived from it are stored.
    password: String,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512` (the default).
    #[serde(default = "default_mechanism")]
    mechanism: String,
    /// PBKDF2 iterations, 4096 to 16384.
    #[serde(default = "default_iterations")]
    iterations: u32,
}

fn default_mechanism() -> String {
    "SCRAM-SHA-512".into()
}

fn default_iterations() -> u32 {
    MIN_ITERATIONS
}

/// `POST /admin/users/delete` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteUser {
    /// The user name.
    name: String,
    /// Only this mechanism's credential; all of them when absent.
    mechanism: Option<String>,
}

/// One entry of `GET /admin/users`.
#[derive(Debug, Serialize)]
struct UserView {
    /// The user name.
    name: String,
    /// Its credentials: mechanism and iterations, never salts or keys.
    credentials: Vec<CredentialView>,
}

/// One credential of `GET /admin/users`.
#[derive(Debug, Serialize)]
struct CredentialView {
    mechanism: String,
    iterations: u32,
}

/// `GET /admin/users`.
pub(super) fn list(ctx: Arc<NodeContext>) -> Json {
    let metadata = ctx.metadata();
    let users: Vec<UserView> = metadata
        .scram_credentials
        .iter()
        .map(|(name, mechanisms)| UserView {
            name: name.clone(),
            credentials: mechanisms
                .iter()
                .map(|(m, c)| CredentialView { mechanism: m.clone(), iterations: c.iterations })
                .collect(),
        })
        .collect();
    json(&users)
}

/// `POST /admin/users`: sets one credential of a user (creating the user).
pub(super) async fn set(ctx: Arc<NodeContext>, req: SetUser) -> WithStatus<Json> {
    if req.name.is_empty() || req.password.is_empty() {
        return outcome(StatusCode::BAD_REQUEST, false, "name and password must not be empty");
    }
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&req.iterations) {
        let message =
            format!("iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, got {}", req.iterations);
        return outcome(StatusCode::BAD_REQUEST, false, message);
    }
    // PBKDF2 is deliberately slow; keep it off the admin server's reactor thread.
    let (mechanism, password, iterations) = (req.mechanism.clone(), req.password, req.iterations);
    let derived = tokio::task::spawn_blocking(move || credential_from_password(&mechanism, &password, iterations));
    let Ok(Some(credential)) = derived.await else {
        let message = format!("unknown mechanism {:?}: SCRAM-SHA-256 or SCRAM-SHA-512", req.mechanism);
        return outcome(StatusCode::BAD_REQUEST, false, message);
    };
    let command = MetadataCommand::SetScramCredential {
        user: req.name.clone(),
        mechanism: req.mechanism.clone(),
        credential: Some(credential),
    };
    match crate::handlers::apply_metadata(&ctx, vec![command]).await.pop() {
        Some(Ok(())) => {
            tracing::info!(user = %req.name, mechanism = %req.mechanism, "SCRAM credential set by an operator");
            let message =
                format!("user {} has a {} credential ({} iterations)", req.name, req.mechanism, req.iterations);
            outcome(StatusCode::OK, true, message)
        }
        Some(Err(e)) => outcome(StatusCode::SERVICE_UNAVAILABLE, false, e.to_string()),
        None => outcome(StatusCode::INTERNAL_SERVER_ERROR, false, "the metadata gave no answer"),
    }
}

/// `POST /admin/users/delete`: removes one or all credentials of a user.
pub(super) async fn delete(ctx: Arc<NodeContext>, req: DeleteUser) -> WithStatus<Json> {
    let held: Vec<String> = ctx
        .metadata()
        .scram_credentials
        .get(&req.name)
        .map(|m| m.keys().filter(|k| req.mechanism.as_ref().is_none_or(|wanted| wanted == *k)).cloned().collect())
        .unwrap_or_default();
    if held.is_empty() {
        let what = req.mechanism.as_deref().unwrap_or("SCRAM");
        return outcome(StatusCode::NOT_FOUND, false, format!("user {} has no {what} credential", req.name));
    }
    let commands = held
        .iter()
        .map(|m| MetadataCommand::SetScramCredential { user: req.name.clone(), mechanism: m.clone(), credential: None })
        .collect();
    let applied = crate::handlers::apply_metadata(&ctx, commands).await;
    match applied.into_iter().find_map(Result::err) {
        None => {
            tracing::info!(user = %req.name, mechanisms = ?held, "SCRAM credentials deleted by an operator");
            outcome(StatusCode::OK, true, format!("user {}: deleted {}", req.name, held.join(", ")))
        }
        Some(e) => outcome(StatusCode::CONFLICT, false, e.to_string()),
    }
}
