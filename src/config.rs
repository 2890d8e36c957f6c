//! Node configuration: built-in defaults, then the TOML file, then `CHRONIK_*` environment
//! variables, then CLI flags (the `config` crate does the layering). Unknown keys are rejected and
//! every validation problem is reported at once, each naming its key.

mod listeners;
mod sections;
mod security;
mod validate;

pub use listeners::{
    AuthorizationConfig, ClientAuth, Listener, ListenerConfig, SASL_MECHANISMS, SaslConfig, SecurityProtocol, TlsConfig,
};
pub use sections::{
    DebugConfig, FsyncPolicy, GroupsConfig, KafkaConfig, RaftConfig, ReplicationConfig, StorageConfig,
    SupervisionConfig,
};
pub use security::{Secret, SecurityConfig};
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
    /// This node's id (0 and up, as in Kafka); must appear in `peers` when peers are given.
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
    /// Credentials of the admin API and between nodes.
    pub security: SecurityConfig,
    /// The certificate of the SSL listeners.
    pub tls: TlsConfig,
    /// SASL on the SASL listeners.
    pub sasl: SaslConfig,
    /// ACL checks on Kafka requests.
    pub authorization: AuthorizationConfig,
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
            security: SecurityConfig::default(),
            tls: TlsConfig::default(),
            sasl: SaslConfig::default(),
            authorization: AuthorizationConfig::default(),
            debug: DebugConfig::default(),
        }
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
                .list_separator(",")
                .with_list_parse_key("security.admin_tokens")
                .with_list_parse_key("authorization.super_users")
                .source(Some(env)),
        );
        if let Some(dir) = &cli.data_dir {
            builder = builder.set_override("data_dir", dir.as_str()).map_err(load_err)?;
        }
        if let Some(id) = cli.node_id {
            builder = builder.set_override("node_id", id).map_err(load_err)?;
        }
        let mut config: Config = builder.build().map_err(load_err)?.try_deserialize().map_err(load_err)?;
        config.validate()?;
        let mut problems = Vec::new();
        config.security.load_files(&mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
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
            compaction: None,
        }
    }
}

/// `0.0.0.0:9092` is not an address anyone can connect to; advertise `localhost` instead.
pub(crate) fn advertise_from_bind(bind: &str) -> String {
    match bind.rsplit_once(':') {
        Some((host, port)) if host == "0.0.0.0" || host == "[::]" || host == "::" || host.is_empty() => {
            format!("localhost:{port}")
        }
        _ => bind.to_string(),
    }
}

#[cfg(test)]
mod tests;
