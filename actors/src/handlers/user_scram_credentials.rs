//! DescribeUserScramCredentials and AlterUserScramCredentials (v0, KIP-554): the SCRAM users
//! SASL clients authenticate as, kept in the cluster metadata. A client sends the salted
//! password; the broker keeps only the keys derived from it. Kafka's per-user rules and errors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chronik::cluster::MetadataCommand;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, ResponseKind,
};

use super::{applied_outcome, apply_metadata, str_bytes};
use crate::context::NodeContext;
use crate::sasl::{MAX_ITERATIONS, MIN_ITERATIONS, credential_from_salted};

/// Kafka's numbering of the SCRAM mechanisms.
fn mechanism_name(code: i8) -> Option<&'static str> {
    match code {
        1 => Some("SCRAM-SHA-256"),
        2 => Some("SCRAM-SHA-512"),
        _ => None,
    }
}

fn mechanism_code(name: &str) -> i8 {
    match name {
        "SCRAM-SHA-256" => 1,
        "SCRAM-SHA-512" => 2,
        _ => 0,
    }
}

/// Handles one DescribeUserScramCredentials request: the named users (all when none are named),
/// each with its mechanisms and iteration counts; never a salt or key.
pub fn describe(ctx: &Arc<NodeContext>, req: DescribeUserScramCredentialsRequest) -> ResponseKind {
    let metadata = ctx.metadata();
    let names: Vec<String> = match req.users {
        Some(users) if !users.is_empty() => users.into_iter().map(|u| u.name.to_string()).collect(),
        _ => metadata.scram_credentials.keys().cloned().collect(),
    };
    let mut seen = BTreeMap::new();
    for name in &names {
        *seen.entry(name.as_str()).or_insert(0) += 1;
    }
    let mut results = Vec::new();
    for name in seen.keys() {
        let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(*name));
        let result = if seen[name] > 1 {
            let message = format!("cannot describe the same user twice in one request: {name}");
            result.with_error_code(ResponseError::DuplicateResource.code()).with_error_message(Some(str_bytes(message)))
        } else if let Some(mechanisms) = metadata.scram_credentials.get(*name) {
            let infos = mechanisms
                .iter()
                .map(|(m, c)| {
                    CredentialInfo::default().with_mechanism(mechanism_code(m)).with_iterations(c.iterations as i32)
                })
                .collect();
            result.with_credential_infos(infos)
        } else {
            let message = format!("attempt to describe a user credential that does not exist: {name}");
            result.with_error_code(ResponseError::ResourceNotFound.code()).with_error_message(Some(str_bytes(message)))
        };
        results.push(result);
    }
    ResponseKind::DescribeUserScramCredentials(DescribeUserScramCredentialsResponse::default().with_results(results))
}

/// One user's changes, or why the whole user is refused.
type UserChanges = Result<Vec<MetadataCommand>, (ResponseError, String)>;

/// Handles one AlterUserScramCredentials request. A user whose changes break a rule gets that
/// error and none of its changes; the other users' changes are applied.
pub async fn alter(ctx: &Arc<NodeContext>, req: AlterUserScramCredentialsRequest) -> ResponseKind {
    let mut users: BTreeMap<String, UserChanges> = BTreeMap::new();
    let mut touched: BTreeSet<(String, i8)> = BTreeSet::new();
    let mut add = |user: String, mechanism: i8, change: Result<MetadataCommand, (ResponseError, String)>| {
        let duplicate = !touched.insert((user.clone(), mechanism));
        let entry = users.entry(user.clone()).or_insert_with(|| Ok(Vec::new()));
        let Ok(commands) = entry else { return };
        *entry = match change {
            _ if duplicate => Err((
                ResponseError::DuplicateResource,
                format!("a user credential cannot be altered twice in the same request: {user}"),
            )),
            Ok(command) => {
                commands.push(command);
                return;
            }
            Err(refusal) => Err(refusal),
        };
    };
    for d in req.deletions {
        let user = d.name.to_string();
        let change = check(&user, d.mechanism).map(|mechanism| MetadataCommand::SetScramCredential {
            user: user.clone(),
            mechanism: mechanism.to_string(),
            credential: None,
        });
        add(user, d.mechanism, change);
    }
    for u in req.upsertions {
        let user = u.name.to_string();
        let change = check(&user, u.mechanism).and_then(|mechanism| {
            let iterations = u32::try_from(u.iterations).unwrap_or(0);
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                let message =
                    format!("iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, got {}", u.iterations);
                return Err((ResponseError::UnacceptableCredential, message));
            }
            if u.salt.is_empty() || u.salted_password.is_empty() {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "salt and salted password must not be empty".into(),
                ));
            }
            let credential = credential_from_salted(mechanism, &u.salted_password, &u.salt, iterations);
            Ok(MetadataCommand::SetScramCredential { user: user.clone(), mechanism: mechanism.to_string(), credential })
        });
        add(user, u.mechanism, change);
    }
    // Every accepted user's commands go in one batch; each user's outcome is its first failure.
    let mut batch = Vec::new();
    let mut spans = Vec::new();
    for (user, changes) in &users {
        if let Ok(commands) = changes {
            spans.push((user.clone(), batch.len()..batch.len() + commands.len()));
            batch.extend(commands.iter().cloned());
        }
    }
    let applied = apply_metadata(ctx, batch).await;
    let mut results = Vec::new();
    for (user, changes) in users {
        let (code, message) = match changes {
            Err((error, message)) => (error.code(), Some(message)),
            Ok(_) => spans
                .iter()
                .find(|(u, _)| *u == user)
                .and_then(|(_, range)| range.clone().map(|i| applied_outcome(&applied, i)).find(|(code, _)| *code != 0))
                .unwrap_or((0, None)),
        };
        results.push(
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(user))
                .with_error_code(code)
                .with_error_message(message.map(str_bytes)),
        );
    }
    ResponseKind::AlterUserScramCredentials(AlterUserScramCredentialsResponse::default().with_results(results))
}

/// The mechanism's name, if the user name and the mechanism are acceptable.
fn check(user: &str, mechanism: i8) -> Result<&'static str, (ResponseError, String)> {
    if user.is_empty() {
        return Err((ResponseError::UnacceptableCredential, "username must not be empty".into()));
    }
    mechanism_name(mechanism)
        .ok_or_else(|| (ResponseError::UnsupportedSaslMechanism, format!("unknown SCRAM mechanism type {mechanism}")))
}
