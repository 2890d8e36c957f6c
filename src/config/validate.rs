//! Checks that need more than a type: addresses, ranges, and how the peers fit together.

use std::collections::HashSet;

use super::{Config, ConfigError, FsyncPolicy};

impl Config {
    /// Collects every problem, each naming its key, so an operator fixes the file in one pass.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.replication_factor < 1 {
            problems.push(format!("replication_factor: must be at least 1, got {}", self.replication_factor));
        }
        if self.min_insync_replicas < 1 || self.min_insync_replicas > self.replication_factor {
            problems.push(format!(
                "min_insync_replicas: must be between 1 and replication_factor ({}), got {}",
                self.replication_factor, self.min_insync_replicas
            ));
        }
        if self.data_dir.trim().is_empty() {
            problems.push("data_dir: must not be empty".to_string());
        }
        let fail_points = [
            ("debug.pause_after_add_learner_ms", self.debug.pause_after_add_learner_ms),
            ("debug.rebalance_step_delay_ms", self.debug.rebalance_step_delay_ms),
        ];
        for (key, value) in fail_points {
            if value > 0 && !self.debug.fail_points {
                problems.push(format!("{key}: a fail point; needs debug.fail_points = true"));
            }
        }
        self.check_addresses(&mut problems);
        self.check_peers(&mut problems);
        self.check_listeners(&mut problems);
        self.check_authorization(&mut problems);
        self.check_limits(&mut problems);
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems)) }
    }

    fn check_addresses(&self, problems: &mut Vec<String>) {
        let mut check = |key: &str, value: Option<&String>| {
            // Listening on port 0 (any free port) is fine; telling others to connect to it is not.
            let result = value.map(|v| (v, parse_host_port(v)));
            match result {
                Some((_, Ok((_, 0)))) if key.starts_with("bind.") => {}
                Some((v, Ok((_, 0)))) => {
                    problems.push(format!("{key}: invalid address {v:?}: port 0 cannot be connected to"))
                }
                Some((v, Err(why))) => problems.push(format!("{key}: invalid address {v:?}: {why}")),
                _ => {}
            }
        };
        check("bind.kafka", self.bind.kafka.as_ref());
        check("bind.admin", self.bind.admin.as_ref());
        check("bind.wal", self.bind.wal.as_ref());
        check("bind.raft", self.bind.raft.as_ref());
        check("advertise.kafka", self.advertise.kafka.as_ref());
        check("advertise.wal", self.advertise.wal.as_ref());
        check("advertise.raft", self.advertise.raft.as_ref());
        for (i, peer) in self.peers.iter().enumerate() {
            check(&format!("peers[{i}].kafka"), Some(&peer.kafka));
            check(&format!("peers[{i}].wal"), Some(&peer.wal));
            check(&format!("peers[{i}].raft"), Some(&peer.raft));
            check(&format!("peers[{i}].admin"), peer.admin.as_ref());
        }
    }

    fn check_peers(&self, problems: &mut Vec<String>) {
        if self.peers.is_empty() {
            return;
        }
        let mut seen = HashSet::new();
        for (i, peer) in self.peers.iter().enumerate() {
            if !seen.insert(peer.id) {
                problems.push(format!("peers[{i}].id: node {} is listed twice", peer.id));
            }
        }
        if !seen.contains(&self.node_id) {
            problems.push(format!("peers: no entry for this node (node_id = {})", self.node_id));
        }
    }

    fn check_limits(&self, problems: &mut Vec<String>) {
        let s = &self.storage;
        if s.fsync == FsyncPolicy::Interval && s.fsync_interval_ms == 0 {
            problems.push("storage.fsync_interval_ms: must be positive when storage.fsync = \"interval\"".into());
        }
        if s.segment_bytes < 1024 || s.segment_bytes > u32::MAX as u64 {
            problems.push(format!("storage.segment_bytes: must be between 1 KiB and 4 GiB, got {}", s.segment_bytes));
        }
        if s.segment_ms == 0 {
            problems.push("storage.segment_ms: must be positive".into());
        }
        if s.retention_bytes < -1 || s.retention_ms < -1 {
            problems.push("storage.retention_bytes / storage.retention_ms: -1 (unlimited) or a positive value".into());
        }
        if s.retention_check_interval_ms == 0 {
            problems.push("storage.retention_check_interval_ms: must be positive".into());
        }
        if s.cleaner_interval_ms == 0 {
            problems.push("storage.cleaner_interval_ms: must be positive".into());
        }
        if s.cleaner_dedupe_buffer_bytes < 1024 * 1024 {
            let got = s.cleaner_dedupe_buffer_bytes;
            problems.push(format!("storage.cleaner_dedupe_buffer_bytes: must be at least 1 MiB, got {got}"));
        }
        let k = &self.kafka;
        if k.num_partitions < 1 {
            problems.push(format!("kafka.num_partitions: must be at least 1, got {}", k.num_partitions));
        }
        if k.max_request_bytes < 1024 || k.max_request_bytes > i32::MAX as usize {
            problems
                .push(format!("kafka.max_request_bytes: must be between 1 KiB and 2 GiB, got {}", k.max_request_bytes));
        }
        if k.request_read_timeout_ms == 0 {
            problems.push("kafka.request_read_timeout_ms: must be positive".into());
        }
        if k.max_inflight_requests == 0 {
            problems.push("kafka.max_inflight_requests: must be at least 1".into());
        }
        let g = &self.groups;
        if g.offsets_segment_bytes < 1024 || g.offsets_segment_bytes > u64::from(u32::MAX) {
            let got = g.offsets_segment_bytes;
            problems.push(format!("groups.offsets_segment_bytes: must be between 1 KiB and 4 GiB, got {got}"));
        }
        if !(1..=1000).contains(&g.offsets_partitions) {
            problems
                .push(format!("groups.offsets_partitions: must be between 1 and 1000, got {}", g.offsets_partitions));
        }
        if g.transactional_id_expiration_ms < 1 {
            let got = g.transactional_id_expiration_ms;
            problems.push(format!("groups.transactional_id_expiration_ms: must be positive, got {got}"));
        }
        if g.min_session_timeout_ms < 1 || g.max_session_timeout_ms < g.min_session_timeout_ms {
            problems.push("groups.min_session_timeout_ms / max_session_timeout_ms: need 0 < min <= max".into());
        }
        let r = &self.raft;
        if r.heartbeat_interval_ms == 0 || r.election_timeout_min_ms <= r.heartbeat_interval_ms {
            problems.push("raft.heartbeat_interval_ms: must be positive and below raft.election_timeout_min_ms".into());
        }
        if r.election_timeout_max_ms <= r.election_timeout_min_ms {
            problems.push("raft.election_timeout_max_ms: must be above raft.election_timeout_min_ms".into());
        }
        if r.snapshot_every_entries == 0 {
            problems.push("raft.snapshot_every_entries: must be positive".into());
        }
        let rep = &self.replication;
        if rep.replica_lag_max_ms == 0 || rep.fetch_max_wait_ms == 0 || rep.fetch_max_wait_ms >= rep.replica_lag_max_ms
        {
            problems.push(
                "replication.fetch_max_wait_ms: must be positive and below replication.replica_lag_max_ms".into(),
            );
        }
        if rep.session_timeout_ms <= self.raft.heartbeat_interval_ms {
            problems.push("replication.session_timeout_ms: must be above raft.heartbeat_interval_ms".into());
        }
        if rep.fetch_max_bytes < 1024 {
            problems.push(format!("replication.fetch_max_bytes: must be at least 1024, got {}", rep.fetch_max_bytes));
        }
        let sup = &self.supervision;
        if sup.backoff_initial_ms == 0 || sup.backoff_max_ms < sup.backoff_initial_ms {
            problems.push("supervision.backoff_initial_ms / backoff_max_ms: need 0 < initial <= max".into());
        }
    }
}

/// Accepts `host:port` with a non-empty host and a numeric port (`[v6]:port` too).
pub fn parse_host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr.rsplit_once(':').ok_or("expected host:port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.contains(char::is_whitespace) {
        return Err("the host contains whitespace".into());
    }
    port.parse::<u16>()
        .map(|p| (host.to_string(), p))
        .map_err(|_| format!("port {port:?} is not a number in 0..=65535"))
}
