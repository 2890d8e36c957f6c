//! Node configuration: built-in defaults, then the TOML file, then `CHRONIK_*` environment
//! variables, then CLI flags (the `config` crate does the layering). Unknown keys are rejected and
//! every validation problem is reported at once, each naming its key.

mod validate;

pub use validate::parse_host_port;

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::log::LogConfig;

/// The identifier of a broker in the cluster (Kafka's broker id, Raft's node id).
pub type NodeId = u64;

/// Everything that can go wrong while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, an environment variable or an override could not be read or parsed.
    #[error("configuration could not be loaded: {0}")]
    Load(String),
    /// The configuration parsed but some values are invalid; one line per problem, naming the key.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The whole configuration of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node's id; must appear in `peers` when peers are given.
    pub node_id: NodeId,
    /// Default replication factor for topics created without one.
    pub replication_factor: i16,
    /// Replicas that must be in sync for an acks=all produce to succeed.
    pub min_insync_replicas: i16,
    /// Where this node's data lives: partition logs and metadata.
    pub data_dir: String,
    /// Addresses this node listens on.
    pub bind: BindConfig,
    /// Addresses other nodes and clients use to reach this node.
    pub advertise: AdvertiseConfig,
    /// Every member of the cluster, this node included; empty for a standalone broker.
    pub peers: Vec<PeerConfig>,
    /// Partition log storage and durability.
    pub storage: StorageConfig,
    /// Kafka protocol front end.
    pub kafka: KafkaConfig,
    /// Consumer-group coordination.
    pub groups: GroupsConfig,
    /// Restart budget and back-off of the supervisors.
    pub supervision: SupervisionConfig,
    /// Raft timing for the metadata quorum.
    pub raft: RaftConfig,
    /// Partition replication between brokers.
    pub replication: ReplicationConfig,
    /// Switches meant for tests only.
    pub debug: DebugConfig,
}

/// Listen addresses (`host:port`). Unset ones follow this node's `[[peers]]` entry, so one file
/// serves every node of a cluster with only `--node-id` changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BindConfig {
    /// Kafka clients connect here; defaults to this node's peer entry's port on all interfaces,
    /// else `0.0.0.0:9092`.
    pub kafka: Option<String>,
    /// Admin REST API; defaults to `0.0.0.0:(10000 + node_id)`.
    pub admin: Option<String>,
    /// Replication traffic between brokers (clustered mode).
    pub wal: Option<String>,
    /// Raft traffic between brokers (clustered mode).
    pub raft: Option<String>,
}

/// Advertised addresses (`host:port`); each defaults to the bind address, with `localhost`
/// standing in for an unspecified host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdvertiseConfig {
    /// The address put in Metadata responses for this broker.
    pub kafka: Option<String>,
    /// The replication address other brokers use.
    pub wal: Option<String>,
    /// The Raft address other brokers use.
    pub raft: Option<String>,
}

/// One member of the cluster as listed in every node's file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's node id.
    pub id: NodeId,
    /// Its advertised Kafka address.
    pub kafka: String,
    /// Its replication address.
    pub wal: String,
    /// Its Raft address.
    pub raft: String,
    /// Its admin address; defaults to `(host of raft):(10000 + id)`.
    #[serde(default)]
    pub admin: Option<String>,
}

impl PeerConfig {
    /// Where this peer's admin API answers: `admin` if given, else `(host of raft):(10000 + id)`,
    /// because a peer's admin port follows its id the same way a node's own default bind does.
    pub fn admin_addr(&self) -> String {
        self.admin.clone().unwrap_or_else(|| {
            let host = self.raft.rsplit_once(':').map_or(self.raft.as_str(), |(host, _)| host);
            format!("{host}:{}", 10000 + self.id)
        })
    }
}

/// When appended data is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Every produce is fsynced (group commit) before it is acknowledged.
    Always,
    /// Produces are acknowledged after the write; a timer fsyncs every `fsync_interval_ms`.
    Interval,
}

/// Storage settings; the `segment_*`/`retention_*` values are the defaults for topics that do
/// not override them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Durability policy for acknowledged writes.
    pub fsync: FsyncPolicy,
    /// Period of the background fsync under `fsync = "interval"`.
    pub fsync_interval_ms: u64,
    /// Roll a segment when it would grow past this size.
    pub segment_bytes: u64,
    /// Roll a segment when its first append is older than this.
    pub segment_ms: u64,
    /// Delete old segments while a partition is larger than this (-1: no limit).
    pub retention_bytes: i64,
    /// Delete segments whose newest record is older than this (-1: keep forever).
    pub retention_ms: i64,
    /// Bytes of log between two sparse index entries.
    pub index_interval_bytes: u32,
    /// How often each partition checks retention.
    pub retention_check_interval_ms: u64,
}

/// Kafka protocol settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Create an unknown topic when a client asks for it in Metadata or produces to it.
    pub auto_create_topics: bool,
    /// Partition count of auto-created topics and of CreateTopics asking for the default (-1).
    pub num_partitions: i32,
    /// Largest request frame accepted; a larger size prefix closes the connection.
    pub max_request_bytes: usize,
    /// A frame that has started must be fully received within this time.
    pub request_read_timeout_ms: u64,
    /// Requests one connection may have in flight before the broker stops reading from it.
    pub max_inflight_requests: usize,
}

/// Consumer-group coordinator settings (Kafka's `offsets.*` and `group.*` broker configs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupsConfig {
    /// Partitions of the internal `__consumer_offsets` topic (fixed once it exists).
    pub offsets_partitions: i32,
    /// How long the first member of an empty group waits for others before the first
    /// generation completes.
    pub initial_rebalance_delay_ms: u64,
    /// Smallest session timeout a member may ask for.
    pub min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for.
    pub max_session_timeout_ms: i32,
    /// Members per group (0: no limit).
    pub max_size: usize,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        Self {
            offsets_partitions: 10,
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: 0,
        }
    }
}

/// Supervisor restart policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    /// Restarts allowed within `restart_window_ms` before the failure is escalated.
    pub max_restarts: u32,
    /// The window over which restarts are counted.
    pub restart_window_ms: u64,
    /// Delay before the first restart; doubles with each restart inside the window.
    pub backoff_initial_ms: u64,
    /// Upper bound of the restart delay.
    pub backoff_max_ms: u64,
}

/// Raft timing. Elections must stay rare under load (a node addition must not cause one), so
/// the timeouts are generous next to the heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    /// How often the leader heartbeats its followers.
    pub heartbeat_interval_ms: u64,
    /// A follower waits at least this long without a heartbeat before it campaigns.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self { heartbeat_interval_ms: 300, election_timeout_min_ms: 1_500, election_timeout_max_ms: 3_000 }
    }
}

/// How followers copy their leaders and when they count as in sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// A follower that has not caught up with the leader's log end for this long leaves the
    /// ISR (Kafka's `replica.lag.time.max.ms`).
    pub replica_lag_max_ms: u64,
    /// Longest a follower's fetch waits on the leader for new data.
    pub fetch_max_wait_ms: u64,
    /// Bytes a follower asks for per fetch.
    pub fetch_max_bytes: u32,
    /// A broker that has not answered the Raft leader for this long is fenced: every partition
    /// it leads gets a new leader from its ISR (Kafka's `broker.session.timeout.ms`).
    pub session_timeout_ms: u64,
    /// Bytes per second a node copies for replicas that are catching up (partitions moved onto
    /// it by the rebalancer, followers far behind), shared by all of them; 0 = unlimited.
    /// Keeps producer latency flat while partitions move; it must exceed the write rate of the
    /// partitions being moved, or they never catch up.
    pub rebalance_max_bytes_per_sec: u64,
    /// How many partitions the rebalancer moves at once; the rest wait their turn.
    pub rebalance_max_concurrent_moves: usize,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            replica_lag_max_ms: 10_000,
            fetch_max_wait_ms: 500,
            fetch_max_bytes: 1024 * 1024,
            session_timeout_ms: 6_000,
            rebalance_max_bytes_per_sec: 32 * 1024 * 1024,
            rebalance_max_concurrent_moves: 2,
        }
    }
}

/// Test-only switches; all off by default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    /// Enables `POST /admin/fail-points`, which can make actors panic on purpose.
    pub fail_points: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: 1,
            replication_factor: 1,
            min_insync_replicas: 1,
            data_dir: "./data".into(),
            bind: BindConfig::default(),
            advertise: AdvertiseConfig::default(),
            peers: Vec::new(),
            storage: StorageConfig::default(),
            kafka: KafkaConfig::default(),
            groups: GroupsConfig::default(),
            supervision: SupervisionConfig::default(),
            raft: RaftConfig::default(),
            replication: ReplicationConfig::default(),
            debug: DebugConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        let log = LogConfig::default();
        Self {
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 100,
            segment_bytes: log.segment_bytes,
            segment_ms: log.segment_ms,
            retention_bytes: log.retention_bytes,
            retention_ms: log.retention_ms,
            index_interval_bytes: log.index_interval_bytes,
            retention_check_interval_ms: 300_000,
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            auto_create_topics: true,
            num_partitions: 1,
            max_request_bytes: 100 * 1024 * 1024,
            request_read_timeout_ms: 30_000,
            max_inflight_requests: 64,
        }
    }
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self { max_restarts: 5, restart_window_ms: 60_000, backoff_initial_ms: 50, backoff_max_ms: 5_000 }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--data-dir`.
    pub data_dir: Option<String>,
    /// `--node-id`.
    pub node_id: Option<NodeId>,
}

impl Config {
    /// Loads defaults, then `file` (if any), then `env` (variables starting with `CHRONIK_`,
    /// `__` between nested keys), then the CLI overrides, and validates the result.
    pub fn load(file: Option<&Path>, env: HashMap<String, String>, cli: &CliOverrides) -> Result<Config, ConfigError> {
        let load_err = |e: config::ConfigError| ConfigError::Load(e.to_string());
        // Missing keys take the serde defaults, so the defaults need no source of their own.
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("CHRONIK")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        if let Some(dir) = &cli.data_dir {
            builder = builder.set_override("data_dir", dir.as_str()).map_err(load_err)?;
        }
        if let Some(id) = cli.node_id {
            builder = builder.set_override("node_id", id).map_err(load_err)?;
        }
        let config: Config = builder.build().map_err(load_err)?.try_deserialize().map_err(load_err)?;
        config.validate()?;
        Ok(config)
    }

    /// The admin API's listen address.
    pub fn admin_bind(&self) -> String {
        self.bind.admin.clone().unwrap_or_else(|| format!("0.0.0.0:{}", 10000 + self.node_id))
    }

    /// The Kafka address this broker advertises in Metadata: `[advertise] kafka`, else its peer
    /// entry's, else derived from the bind address.
    pub fn advertised_kafka(&self) -> String {
        self.advertised(&self.advertise.kafka, |p| &p.kafka, self.kafka_bind())
    }

    /// `[advertise] X`, else this node's peer entry's, else derived from the bind address.
    fn advertised(&self, advertised: &Option<String>, peer: fn(&PeerConfig) -> &String, bind: String) -> String {
        let from_peer = self.this_peer().map(|p| peer(p).clone());
        advertised.clone().or(from_peer).unwrap_or_else(|| advertise_from_bind(&bind))
    }

    /// The Kafka listen address.
    pub fn kafka_bind(&self) -> String {
        self.bind_or_peer(&self.bind.kafka, |p| &p.kafka, 9092)
    }

    /// The Raft listen address.
    pub fn raft_bind(&self) -> String {
        self.bind_or_peer(&self.bind.raft, |p| &p.raft, 5000 + self.node_id)
    }

    /// The replication listen address.
    pub fn wal_bind(&self) -> String {
        self.bind_or_peer(&self.bind.wal, |p| &p.wal, 9290 + self.node_id)
    }

    /// `[bind] X`, else the port of this node's peer entry on all interfaces, else the default port.
    fn bind_or_peer(&self, bind: &Option<String>, peer: fn(&PeerConfig) -> &String, default_port: u64) -> String {
        let from_peer = self.this_peer().and_then(|p| peer(p).rsplit_once(':').map(|(_, port)| port.to_string()));
        bind.clone().unwrap_or_else(|| format!("0.0.0.0:{}", from_peer.unwrap_or_else(|| default_port.to_string())))
    }

    /// This node's entry in `peers`, if the file lists peers.
    pub fn this_peer(&self) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.id == self.node_id)
    }

    /// The configured members: `peers`, or this node alone when none are listed. This node's
    /// addresses come from `[advertise]` (falling back to its peer entry and the bind addresses).
    pub fn members(&self) -> Vec<PeerConfig> {
        let me = self.this_peer();
        let this = PeerConfig {
            id: self.node_id,
            kafka: self.advertised_kafka(),
            wal: self.advertised(&self.advertise.wal, |p| &p.wal, self.wal_bind()),
            raft: self.advertised(&self.advertise.raft, |p| &p.raft, self.raft_bind()),
            admin: me.and_then(|p| p.admin.clone()).or_else(|| Some(advertise_from_bind(&self.admin_bind()))),
        };
        let mut members: Vec<PeerConfig> = self.peers.iter().filter(|p| p.id != self.node_id).cloned().collect();
        members.push(this);
        members.sort_by_key(|p| p.id);
        members
    }

    /// The log settings for a topic without overrides.
    pub fn default_log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.storage.segment_bytes,
            segment_ms: self.storage.segment_ms,
            retention_bytes: self.storage.retention_bytes,
            retention_ms: self.storage.retention_ms,
            index_interval_bytes: self.storage.index_interval_bytes,
        }
    }
}

/// `0.0.0.0:9092` is not an address anyone can connect to; advertise `localhost` instead.
fn advertise_from_bind(bind: &str) -> String {
    match bind.rsplit_once(':') {
        Some((host, port)) if host == "0.0.0.0" || host == "[::]" || host == "::" || host.is_empty() => {
            format!("localhost:{port}")
        }
        _ => bind.to_string(),
    }
}

#[cfg(test)]
mod tests;
