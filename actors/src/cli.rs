//! `chronik-server cluster …`: operator commands that talk to a running cluster through the nodes'
//! admin APIs. Leader discovery is shared by every subcommand; rendering is a pure function so it
//! is tested without sockets.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chronik::config::{CliOverrides, Config, ConfigError, NodeId, PeerConfig};
use clap::Subcommand;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// How long each node gets to answer; a dead node must not stall the whole command.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `chronik-server cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show every configured node's role, the Raft leader and term, and partitions per node.
    Status {
        /// TOML configuration file listing the cluster's `[[peers]]`.
        #[arg(long)]
        config: PathBuf,
    },
    /// Add a running node to the cluster as a voter (through the Raft leader).
    AddNode {
        /// The new node's id (never used before in this cluster).
        id: NodeId,
        /// Its advertised Kafka address, host:port.
        #[arg(long)]
        kafka: String,
        /// Its replication address, host:port.
        #[arg(long)]
        wal: String,
        /// Its Raft address, host:port.
        #[arg(long)]
        raft: String,
        /// TOML configuration file listing the cluster's `[[peers]]` (used to find the leader).
        #[arg(long)]
        config: PathBuf,
    },
    /// Remove a node: move its replicas to the other nodes, then take it out of the voters.
    RemoveNode {
        /// The node to remove.
        id: NodeId,
        /// TOML configuration file listing the cluster's `[[peers]]` (used to find the leader).
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage the SCRAM users SASL clients log in as.
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check that every replica of every partition holds the same batches up to the high
    /// watermark; names the first differing offset. Exit 0 all agree, 1 divergence, 2 a node
    /// could not be asked.
    Verify {
        /// TOML configuration file listing the cluster's `[[peers]]`.
        #[arg(long)]
        config: PathBuf,
    },
}

/// `GET /admin/health` as a node answers it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Health {
    /// The answering node's id.
    pub node_id: NodeId,
    /// Whether it is the Raft leader right now.
    pub is_leader: bool,
    /// The leader it knows of, if any.
    pub leader_id: Option<NodeId>,
    /// Its current Raft term.
    pub term: u64,
    /// The voters, sorted.
    pub cluster_nodes: Vec<NodeId>,
    /// Members that do not vote yet (still catching up).
    #[serde(default)]
    pub learners: Vec<NodeId>,
    /// `healthy`, `no_leader` or `not_member`.
    pub status: String,
}

/// One entry of `GET /admin/partitions`, reduced to what the status table counts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PartitionSummary {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Nodes hosting a replica.
    pub replicas: Vec<NodeId>,
    /// The leader's node id; signed because "no leader" may come as -1.
    pub leader: i64,
}

/// The contract says a bare array; a `{"partitions": [..]}` wrapper is accepted too, so status works
/// against nodes built before and after the contract was settled.
#[derive(Deserialize)]
#[serde(untagged)]
enum PartitionsReply {
    /// The contract's shape.
    Bare(Vec<PartitionSummary>),
    /// The same list inside an object.
    Wrapped {
        /// The list.
        partitions: Vec<PartitionSummary>,
    },
}

/// What one configured peer said when asked for its health.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The peer as the config file lists it.
    pub peer: PeerConfig,
    /// Its health, or why it could not be had.
    pub health: Result<Health, String>,
}

/// The leader found: its id, its admin address and its health.
pub type Leader = (NodeId, String, Health);

/// A node's part in the cluster, as the status table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Answers health with `is_leader`.
    Leader,
    /// A voter that is not the leader.
    Follower,
    /// A non-voter still catching up.
    Learner,
    /// Running, but in no membership (e.g. started before `cluster add-node`).
    NotMember,
    /// Did not answer within the timeout.
    Unreachable,
}

impl Role {
    /// The role a probe shows; membership lists win over `status` because they are the Raft state.
    pub fn of(probe: &Probe) -> Role {
        let Ok(h) = &probe.health else { return Role::Unreachable };
        if h.is_leader {
            Role::Leader
        } else if h.learners.contains(&h.node_id) {
            Role::Learner
        } else if h.status != "not_member" && h.cluster_nodes.contains(&h.node_id) {
            Role::Follower
        } else {
            Role::NotMember
        }
    }

    fn label(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Learner => "learner",
            Role::NotMember => "not member",
            Role::Unreachable => "unreachable",
        }
    }
}

/// Runs one `cluster` subcommand; `Err` only for a configuration that does not load.
pub async fn run(command: ClusterCommand, env: HashMap<String, String>) -> Result<ExitCode, ConfigError> {
    match command {
        ClusterCommand::Status { config } => {
            let config = Config::load(Some(&config), env, &CliOverrides::default())?;
            Ok(status(&config).await)
        }
        ClusterCommand::AddNode { id, kafka, wal, raft, config } => {
            let config = Config::load(Some(&config), env, &CliOverrides::default())?;
            Ok(exit(membership::add_node(&config, id, &kafka, &wal, &raft).await, "add node"))
        }
        ClusterCommand::RemoveNode { id, config } => {
            let config = Config::load(Some(&config), env, &CliOverrides::default())?;
            Ok(exit(membership::remove_node(&config, id).await, "remove node"))
        }
        ClusterCommand::User { command } => {
            // Not a configuration key: taken out before the configuration is loaded.
            let mut env = env;
            let password = env.remove("CHRONIK_USER_PASSWORD");
            let config = Config::load(Some(command.config()), env, &CliOverrides::default())?;
            Ok(exit(users::run(command, &config, password).await, "manage users"))
        }
        ClusterCommand::Verify { config } => match Config::load(Some(&config), env, &CliOverrides::default()) {
            Ok(config) => Ok(verify::verify(&config).await),
            Err(e) => {
                println!("✗ Cannot verify: {e}");
                Ok(ExitCode::from(verify::EXIT_UNREACHABLE))
            }
        },
    }
}

/// Every failure of a membership command prints `✗ Failed to <action>: <reason>` and exits non-zero.
fn exit(result: Result<(), String>, action: &str) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            println!("✗ Failed to {action}: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the status table; exit 0 only when a leader answered.
async fn status(config: &Config) -> ExitCode {
    let client = match client(config) {
        Ok(c) => c,
        Err(e) => {
            println!("✗ No leader found: {e}");
            return ExitCode::FAILURE;
        }
    };
    let probes = probe_all(&client, config).await;
    let leader = pick_leader(&probes);
    let partitions = fetch_partitions(&client, &probes, &leader).await;
    print!("{}", render_status(&probes, &partitions, &leader));
    if leader.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Asks every configured peer and returns the Raft leader, or why none could be found.
pub async fn discover_leader(config: &Config) -> Result<Leader, String> {
    pick_leader(&probe_all(&client(config)?, config).await)
}

fn client(config: &Config) -> Result<AdminHttp, String> {
    client_with_timeout(config, PROBE_TIMEOUT)
}

/// An HTTP client for the admin ports and the scheme they speak (`https` with admin TLS).
#[derive(Clone)]
pub struct AdminHttp {
    /// Sends the admin token, if one is configured.
    client: reqwest::Client,
    /// `http` or `https`.
    scheme: &'static str,
}

impl AdminHttp {
    /// The URL of `path` on the admin port at `admin` (`host:port`).
    fn url(&self, admin: &str, path: &str) -> String {
        format!("{}://{admin}{path}", self.scheme)
    }
}

/// An HTTP client for the admin APIs that sends the configured admin token (the first one) with
/// every request, marked sensitive so it never shows in debug output.
fn client_with_timeout(config: &Config, timeout: Duration) -> Result<AdminHttp, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = config.security.admin_tokens.first() {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| "security.admin_tokens: a token must be printable ASCII".to_string())?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = crate::tls::admin_client(&config.security)?
        .timeout(timeout)
        .default_headers(headers)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(AdminHttp { client, scheme: config.security.admin_scheme() })
}

/// The peers to ask; a standalone broker (no `[[peers]]`) is its own one-node cluster.
fn peers(config: &Config) -> Vec<PeerConfig> {
    if !config.peers.is_empty() {
        return config.peers.clone();
    }
    let bind = config.admin_bind();
    let admin = match bind.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "::" | "", port)) => format!("localhost:{port}"),
        _ => bind,
    };
    let none = "-".to_string();
    vec![PeerConfig {
        id: config.node_id,
        kafka: config.advertised_kafka(),
        wal: none.clone(),
        raft: none,
        admin: Some(admin),
    }]
}

/// Asks all peers at once so the command takes one timeout, not one per dead node.
async fn probe_all(client: &AdminHttp, config: &Config) -> Vec<Probe> {
    let asks = peers(config).into_iter().map(|peer| async move {
        let health = get_json::<Health>(client, &peer.admin_addr(), "/admin/health").await;
        Probe { peer, health }
    });
    futures::future::join_all(asks).await
}

async fn get_json<T: DeserializeOwned>(client: &AdminHttp, admin: &str, path: &str) -> Result<T, String> {
    let url = client.url(admin, path);
    let reply = client.client.get(&url).send().await.and_then(|r| r.error_for_status()).map_err(|e| {
        // reqwest's own message only names the URL; the root cause says what actually failed.
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        if e.is_timeout() { format!("{url}: no answer within {PROBE_TIMEOUT:?}") } else { format!("{url}: {cause}") }
    })?;
    reply.json().await.map_err(|e| format!("{url}: unexpected reply: {e}"))
}

/// The node that says it leads; with two (a deposed leader not yet told), the higher term wins.
pub fn pick_leader(probes: &[Probe]) -> Result<Leader, String> {
    let answered: Vec<(&Probe, &Health)> =
        probes.iter().filter_map(|p| p.health.as_ref().ok().map(|h| (p, h))).collect();
    if answered.is_empty() {
        return Err(format!("none of the {} configured nodes answered", probes.len()));
    }
    if let Some((p, h)) = answered.iter().filter(|(_, h)| h.is_leader).max_by_key(|(_, h)| h.term) {
        return Ok((h.node_id, p.peer.admin_addr(), (*h).clone()));
    }
    match answered.iter().find_map(|(_, h)| h.leader_id) {
        Some(id) => Err(format!("node {id} is reported leader but did not answer")),
        None => Err("no node reports a leader (election in progress, or the cluster never formed)".into()),
    }
}

/// Metadata is replicated, so any member's copy will do when the leader cannot answer.
async fn fetch_partitions(
    client: &AdminHttp,
    probes: &[Probe],
    leader: &Result<Leader, String>,
) -> Result<Vec<PartitionSummary>, String> {
    let mut addrs: Vec<String> = leader.iter().map(|(_, admin, _)| admin.clone()).collect();
    for p in probes.iter().filter(|p| p.health.is_ok()) {
        let admin = p.peer.admin_addr();
        if !addrs.contains(&admin) {
            addrs.push(admin);
        }
    }
    let mut last = "no node answered".to_string();
    for admin in addrs {
        match get_json::<PartitionsReply>(client, &admin, "/admin/partitions").await {
            Ok(PartitionsReply::Bare(list) | PartitionsReply::Wrapped { partitions: list }) => return Ok(list),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The whole status report as text: the table, unreachable nodes' errors, leader, voters, learners.
pub fn render_status(
    probes: &[Probe],
    partitions: &Result<Vec<PartitionSummary>, String>,
    leader: &Result<Leader, String>,
) -> String {
    let header = ["ID", "KAFKA", "RAFT", "ADMIN", "ROLE", "LEADS", "REPLICAS"].map(String::from);
    let mut rows = vec![header];
    for p in probes {
        let id = p.peer.id;
        let count = |f: &dyn Fn(&PartitionSummary) -> bool| {
            partitions.as_ref().map_or("?".to_string(), |ps| ps.iter().filter(|x| f(x)).count().to_string())
        };
        let leads = count(&|x| x.leader == id as i64);
        let hosts = count(&|x| x.replicas.contains(&id));
        let role = Role::of(p).label().to_string();
        rows.push([id.to_string(), p.peer.kafka.clone(), p.peer.raft.clone(), p.peer.admin_addr(), role, leads, hosts]);
    }
    let widths: Vec<usize> = (0..7).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    for p in probes {
        if let Err(e) = &p.health {
            out += &format!("node {} unreachable: {e}\n", p.peer.id);
        }
    }
    // Without a leader, the voters any node still reports are the best view there is.
    let view = leader.as_ref().map(|(_, _, h)| h).ok().or_else(|| probes.iter().find_map(|p| p.health.as_ref().ok()));
    match leader {
        Ok((id, _, h)) => out += &format!("Leader: node {id} (term {})\n", h.term),
        Err(reason) => out += &format!("✗ No leader found: {reason}\n"),
    }
    match view {
        Some(h) => out += &format!("Voters: {:?}\n", h.cluster_nodes),
        None => out += "Voters: unknown\n",
    }
    if let Some(h) = view.filter(|h| !h.learners.is_empty()) {
        out += &format!("Learners: {:?}\n", h.learners);
    }
    match partitions {
        Ok(ps) => out += &format!("Partitions: {}\n", ps.len()),
        Err(e) => out += &format!("Partitions: unavailable ({e})\n"),
    }
    out
}

mod membership;
mod users;
mod verify;

pub use users::UserCommand;

#[cfg(test)]
mod tests;
