//! The configuration's tables below the top level (`[storage]`, `[kafka]`, `[groups]`,
//! `[supervision]`, `[raft]`, `[replication]`, `[debug]`) with their defaults.

use serde::{Deserialize, Serialize};

use crate::log::LogConfig;

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
    /// How often the log cleaner looks for compacted partitions due for cleaning (Kafka's
    /// `log.cleaner.backoff.ms`).
    pub cleaner_interval_ms: u64,
    /// Disk bytes (read plus written) per second the log cleaner may use; 0: unlimited (Kafka's
    /// `log.cleaner.io.max.bytes.per.second`).
    pub cleaner_io_max_bytes_per_sec: u64,
    /// Memory for one cleaning's key map; a larger dirty part is cleaned over several rounds
    /// (Kafka's `log.cleaner.dedupe.buffer.size`).
    pub cleaner_dedupe_buffer_bytes: u64,
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
    /// Protocol of the main listener (`[bind] kafka`).
    pub security_protocol: super::SecurityProtocol,
    /// Name of the main listener; defaults to its protocol's name, as in Kafka.
    pub listener_name: Option<String>,
    /// Further listeners, each with its own port and protocol.
    pub listeners: Vec<super::ListenerConfig>,
}

/// Consumer-group coordinator settings (Kafka's `offsets.*` and `group.*` broker configs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupsConfig {
    /// Partitions of the internal `__consumer_offsets` topic (fixed once it exists).
    pub offsets_partitions: i32,
    /// `segment.bytes` of `__consumer_offsets` when it is created (Kafka's
    /// `offsets.topic.segment.bytes`): the cleaner compacts only sealed segments.
    pub offsets_segment_bytes: u64,
    /// How long the first member of an empty group waits for others before the first
    /// generation completes.
    pub initial_rebalance_delay_ms: u64,
    /// Smallest session timeout a member may ask for.
    pub min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for.
    pub max_session_timeout_ms: i32,
    /// Members per group (0: no limit).
    pub max_size: usize,
    /// The transaction coordinator forgets a transactional id (writes its tombstone to
    /// `__transaction_state`) that has had no transaction open for this long (Kafka's
    /// `transactional.id.expiration.ms`), so ids used once (as Flink's sinks make them) do
    /// not pile up.
    pub transactional_id_expiration_ms: i64,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        Self {
            offsets_partitions: 10,
            offsets_segment_bytes: 100 * 1024 * 1024,
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: 0,
            transactional_id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
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
    /// The metadata is snapshotted every this many Raft entries, and the log is purged up to
    /// this many entries before the snapshot: a node further behind (down meanwhile) is sent
    /// the snapshot instead of the entries.
    pub snapshot_every_entries: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 300,
            election_timeout_min_ms: 1_500,
            election_timeout_max_ms: 3_000,
            snapshot_every_entries: 1_000,
        }
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
    /// How many partition copies the rebalancer runs onto one node at once; the other moves wait
    /// their turn (the copy rate itself is bounded by `rebalance_max_bytes_per_sec`). Each move
    /// costs every node a few Raft entries and the new node a replica, whatever its size, so
    /// this also sets how much of the nodes' CPU a rebalance takes from producers: 16 moves 900
    /// small partitions in about 12 s; more finishes sooner at the cost of producer latency.
    pub rebalance_max_concurrent_moves: usize,
    /// After the replicas move, spread partition leadership evenly over the nodes, so a node that
    /// joined leads its share (Kafka's `auto.leader.rebalance.enable`).
    pub rebalance_leaders: bool,
    /// How long after a rebalance's replica moves finish the leadership spread begins (ms): a
    /// phase of its own, as Kafka's leader-imbalance check is, since every leadership move
    /// costs clients a retry and the node addition itself should cost them nothing.
    pub rebalance_leaders_delay_ms: u64,
    /// How many leadership handovers of the spread run at once, cluster-wide; the others wait
    /// their turn (a few hundred take a few seconds). Each one refuses its partition's writes while it runs (clients retry), so a
    /// bounded number keeps those retries, and the nodes' work, spread out.
    pub rebalance_max_concurrent_leader_moves: usize,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            replica_lag_max_ms: 10_000,
            fetch_max_wait_ms: 500,
            fetch_max_bytes: 1024 * 1024,
            session_timeout_ms: 6_000,
            rebalance_max_bytes_per_sec: 32 * 1024 * 1024,
            rebalance_max_concurrent_moves: 16,
            rebalance_leaders: true,
            rebalance_leaders_delay_ms: 20_000,
            rebalance_max_concurrent_leader_moves: 16,
        }
    }
}

/// Test-only switches; all off by default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    /// Enables `POST /admin/fail-points`, which can make actors panic on purpose, and the fail
    /// points below.
    pub fail_points: bool,
    /// Fail point: the Raft leader waits this long between adding a node as a learner and
    /// promoting it, so a test can kill it in between (0: off; needs `fail_points`).
    pub pause_after_add_learner_ms: u64,
    /// Fail point: the rebalancer waits this long before proposing each step of a move, so a
    /// test can fail a node while a move shows a given phase (0: off; needs `fail_points`).
    pub rebalance_step_delay_ms: u64,
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
            cleaner_interval_ms: 15_000,
            cleaner_io_max_bytes_per_sec: 50 * 1024 * 1024,
            cleaner_dedupe_buffer_bytes: 128 * 1024 * 1024,
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
            security_protocol: super::SecurityProtocol::Plaintext,
            listener_name: None,
            listeners: Vec::new(),
        }
    }
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self { max_restarts: 5, restart_window_ms: 60_000, backoff_initial_ms: 50, backoff_max_ms: 5_000 }
    }
}
