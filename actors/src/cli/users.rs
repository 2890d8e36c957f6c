//! `cluster user set|delete|list`: the SCRAM users SASL clients log in as, through the Raft
//! leader's `/admin/users`. The password comes from a file or the environment, never from the
//! command line (where `ps` would show it).

use std::path::PathBuf;

use chronik::config::Config;
use clap::Subcommand;

use super::membership::send_to_leader;
use super::{client, discover_leader, get_json};

/// `chronik-server cluster user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user or change its password for one SCRAM mechanism.
    Set {
        /// The user name.
        name: String,
        /// A file whose first line is the password; else `CHRONIK_USER_PASSWORD` is used.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// PBKDF2 iterations (4096 to 16384).
        #[arg(long, default_value_t = 4096)]
        iterations: u32,
        /// TOML configuration file listing the cluster's `[[peers]]`.
        #[arg(long)]
        config: PathBuf,
    },
    /// Delete a user's credentials (one mechanism's, or all).
    Delete {
        /// The user name.
        name: String,
        /// Only this mechanism's credential.
        #[arg(long)]
        mechanism: Option<String>,
        /// TOML configuration file listing the cluster's `[[peers]]`.
        #[arg(long)]
        config: PathBuf,
    },
    /// List the users and their mechanisms.
    List {
        /// TOML configuration file listing the cluster's `[[peers]]`.
        #[arg(long)]
        config: PathBuf,
    },
}

impl UserCommand {
    /// The configuration file the command names.
    pub fn config(&self) -> &PathBuf {
        match self {
            UserCommand::Set { config, .. } | UserCommand::Delete { config, .. } | UserCommand::List { config } => {
                config
            }
        }
    }
}

/// Runs one `cluster user` command.
pub async fn run(command: UserCommand, config: &Config, password_env: Option<String>) -> Result<(), String> {
    match command {
        UserCommand::Set { name, password_file, mechanism, iterations, .. } => {
            let password = match password_file {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                None => password_env.ok_or("give --password-file or set CHRONIK_USER_PASSWORD")?,
            };
            let body = serde_json::json!({"name": name, "password": password, "mechanism": mechanism, "iterations": iterations});
            send_to_leader(config, "users", &body).await?;
            println!("✓ User {name} has a {mechanism} credential");
            Ok(())
        }
        UserCommand::Delete { name, mechanism, .. } => {
            send_to_leader(config, "users/delete", &serde_json::json!({"name": name, "mechanism": mechanism})).await?;
            println!("✓ Deleted the credentials of user {name}");
            Ok(())
        }
        UserCommand::List { .. } => {
            let (_, admin, _) = discover_leader(config).await?;
            let users: Vec<serde_json::Value> = get_json(&client(config)?, &admin, "/admin/users").await?;
            for user in users {
                let mechanisms: Vec<String> = user["credentials"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("{} ({} iterations)", c["mechanism"].as_str().unwrap_or("?"), c["iterations"]))
                    .collect();
                println!("{}  {}", user["name"].as_str().unwrap_or("?"), mechanisms.join(", "));
            }
            Ok(())
        }
    }
}
