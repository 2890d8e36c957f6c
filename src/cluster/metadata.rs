//! The metadata model and its apply function.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cluster::acl::AclBinding;
use crate::config::NodeId;

mod assignment;
mod command;
mod partitions;
pub use command::{Applied, MetadataCommand, MetadataError};
pub use partitions::{ElectionRefusal, drop_fenced_from_isrs, elect_leaders, operator_election};

/// A broker as other brokers and clients see it. Also the Raft membership's node type, so a
/// node's addresses travel with the membership change that adds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The broker's id.
    pub id: NodeId,
    /// Its advertised Kafka address, `host:port`.
    pub kafka: String,
    /// Its replication address.
    #[serde(default)]
    pub wal: String,
    /// Its Raft address.
    #[serde(default)]
    pub raft: String,
    /// Its admin API address.
    #[serde(default)]
    pub admin: String,
    /// Its further Kafka listeners' advertised addresses, by listener name (`kafka` is the main
    /// listener's). Clients are given the address of the listener they came in on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub listeners: BTreeMap<String, String>,
}

impl NodeInfo {
    /// Where clients of listener `listener` reach this broker: that listener's address, else
    /// the main one (the listener is the main one, or this broker registered before it had it).
    pub fn kafka_address(&self, listener: &str) -> &str {
        self.listeners.get(listener).unwrap_or(&self.kafka)
    }
}

/// A SCRAM credential as Kafka keeps it (RFC 5802): never the password, only what the server
/// needs to check a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// PBKDF2 iterations the client must run.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Partition index within the topic.
    pub partition: i32,
    /// Nodes holding a replica, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// The node currently leading the partition.
    pub leader: NodeId,
    /// Bumped on every leader change; stamped into the batches the leader appends.
    pub leader_epoch: i32,
    /// Replicas currently in sync with the leader.
    pub isr: Vec<NodeId>,
    /// A graceful leadership handover asked for (absent in metadata written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
    /// Where an operator placed the partition (absent: the rebalancer places it, and in metadata
    /// written before operators could).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// An operator's placement of a partition (AlterPartitionReassignments, or a manual assignment
/// at creation): the rebalancer moves the partition there by its usual safe steps and then
/// leaves it there, as Kafka, which has no rebalancer, does. A node leaving the cluster releases
/// the placements that name it, so its replicas can move like any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The replicas asked for, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// While the partition is not there yet: the replicas the reassignment started from (Kafka's
    /// original replicas), which cancelling it returns to. `None` once it is in place.
    pub reassigning_from: Option<Vec<NodeId>>,
}

/// A graceful leadership handover: the leader of `leader_epoch` stops taking writes, waits until
/// every in-sync replica holds its whole log, then elects `to` one epoch up. Meaningless in any
/// other epoch, so a leader change makes it stale by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The in-sync replica that takes over.
    pub to: NodeId,
    /// The leader epoch it was asked in.
    pub leader_epoch: i32,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Stable id, reported in Metadata v10+.
    pub id: Uuid,
    /// Replication factor asked for at creation.
    pub replication_factor: i16,
    /// Partitions in index order.
    pub partitions: Vec<PartitionMeta>,
    /// Per-topic overrides of the broker's defaults (Kafka config names).
    pub configs: BTreeMap<String, String>,
}

/// The whole metadata state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMetadata {
    /// Brokers by id: the Raft members (voters and learners) with their addresses.
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// The Raft voters; replicas are placed over these.
    #[serde(default)]
    pub voters: BTreeSet<NodeId>,
    /// Ids of nodes that left the membership; never given to a new node.
    #[serde(default)]
    pub removed: BTreeSet<NodeId>,
    /// Voters being removed: they keep their replicas until the rebalancer has moved them, but
    /// take no new ones.
    #[serde(default)]
    pub draining: BTreeSet<NodeId>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMeta>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// The cluster's identity, set once by `InitCluster`; `None` until then.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// `min.insync.replicas` for topics that do not override it (set by `InitCluster`).
    #[serde(default = "default_min_insync")]
    pub min_insync_replicas: i16,
    /// Each broker's registered incarnation (`RegisterBroker`): a broker leads nothing until its
    /// current process is registered here.
    #[serde(default)]
    pub incarnations: BTreeMap<NodeId, u64>,
    /// Set by an operator (`SetRebalancePaused`): the rebalancer proposes no step meanwhile.
    #[serde(default)]
    pub rebalance_paused: bool,
    /// Broker configs changed at run time (`SetBrokerConfigs`, Kafka's names), by entity: `""`
    /// for the cluster-wide default, a node id for one broker.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// SCRAM credentials by user, then mechanism (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram_credentials: BTreeMap<String, BTreeMap<String, ScramCredential>>,
    /// The ACLs in force (CreateAcls, DeleteAcls).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub acls: BTreeSet<AclBinding>,
}

/// A cluster formed before `InitCluster` existed gets Kafka's default until it is initialized.
fn default_min_insync() -> i16 {
    1
}

/// Partitions above this are refused: each one is an actor and a directory.
const MAX_PARTITIONS: i32 = 10_000;

impl Default for ClusterMetadata {
    fn default() -> Self {
        Self {
            nodes: BTreeMap::new(),
            voters: BTreeSet::new(),
            removed: BTreeSet::new(),
            draining: BTreeSet::new(),
            topics: BTreeMap::new(),
            next_producer_id: 0,
            cluster_id: None,
            min_insync_replicas: default_min_insync(),
            incarnations: BTreeMap::new(),
            rebalance_paused: false,
            broker_configs: BTreeMap::new(),
            scram_credentials: BTreeMap::new(),
            acls: BTreeSet::new(),
        }
    }
}

/// The leadership that appended a Raft entry: its term and leader (openraft's `LeaderId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLeader {
    /// The term.
    pub term: u64,
    /// The leader.
    pub node: NodeId,
}

impl ClusterMetadata {
    /// Applies one command outside the Raft log (dry runs, tests): leader-only commands are
    /// applied without their term check. On error nothing changed.
    pub fn apply(&mut self, cmd: &MetadataCommand) -> Result<Applied, MetadataError> {
        self.apply_in_term(cmd, None)
    }

    /// Applies one command of a Raft entry appended in `term` by the leader `node`
    /// (`None`: no log position). On error nothing changed.
    pub fn apply_in_term(
        &mut self,
        cmd: &MetadataCommand,
        entry: Option<EntryLeader>,
    ) -> Result<Applied, MetadataError> {
        match cmd {
            MetadataCommand::AllocateProducerIds { count } => {
                let first = self.next_producer_id;
                self.next_producer_id = self.next_producer_id.saturating_add(*count);
                Ok(Applied::ProducerIds { first })
            }
            MetadataCommand::AsLeader { term: planned, leader: planner, command } => match (entry, *planner) {
                (Some(entry), _) if entry.term != *planned => {
                    Err(MetadataError::StaleTerm { planned: *planned, current: entry.term })
                }
                (Some(entry), Some(planner)) if entry.node != planner => {
                    Err(MetadataError::StaleLeader { term: entry.term, planner, appender: entry.node })
                }
                _ => self.apply_in_term(command, entry),
            },
            other => self.apply_change(other).map(|()| Applied::Done),
        }
    }

    fn apply_change(&mut self, cmd: &MetadataCommand) -> Result<(), MetadataError> {
        match cmd {
            MetadataCommand::RegisterNode(node) => {
                // Only members have a place in the cluster; a late registration of a removed node
                // must not bring it back.
                if let Some(current) = self.nodes.get_mut(&node.id) {
                    *current = node.clone();
                }
                Ok(())
            }
            MetadataCommand::CreateTopic { name, id, partitions, replication_factor, configs, assignments } => {
                if assignments.is_empty() {
                    self.create_topic(name, *id, *partitions, *replication_factor, configs)
                } else {
                    self.create_assigned_topic(name, *id, assignments, configs)
                }
            }
            MetadataCommand::DeleteTopic { name } => {
                self.topics.remove(name).map(|_| ()).ok_or_else(|| MetadataError::UnknownTopic(name.clone()))
            }
            MetadataCommand::CreatePartitions { name, count, assignments } => {
                self.create_partitions(name, *count, assignments)
            }
            MetadataCommand::SetTopicConfigs { name, configs } => {
                let topic = self.topics.get_mut(name).ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
                topic.configs = configs.clone();
                Ok(())
            }
            MetadataCommand::UpdateIsr { topic, partition, leader_epoch, isr } => {
                self.update_isr(topic, *partition, *leader_epoch, isr)
            }
            MetadataCommand::ElectLeader { topic, partition, leader, leader_epoch, isr } => {
                self.elect_leader(topic, *partition, *leader, *leader_epoch, isr)
            }
            MetadataCommand::ElectUncleanLeader { topic, partition, leader, leader_epoch } => {
                self.elect_unclean_leader(topic, *partition, *leader, *leader_epoch)
            }
            MetadataCommand::BeginHandover { topic, partition, to, leader_epoch } => {
                self.begin_handover(topic, *partition, *to, *leader_epoch)
            }
            MetadataCommand::DrainNode { node } => self.drain(*node),
            MetadataCommand::ReassignPartition { topic, partition, replicas } => {
                self.reassign(topic, *partition, replicas)
            }
            MetadataCommand::AlterReassignment { topic, partition, replicas, keep_replication_factor } => {
                self.alter_reassignment(topic, *partition, replicas.as_deref(), *keep_replication_factor)
            }
            MetadataCommand::InitCluster { cluster_id, min_insync_replicas } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                    self.min_insync_replicas = *min_insync_replicas;
                }
                Ok(())
            }
            MetadataCommand::RegisterBroker { node, incarnation, clean_shutdown } => {
                self.register_broker(*node, *incarnation, *clean_shutdown);
                Ok(())
            }
            MetadataCommand::ReplicaOffline { topic, partition, node } => {
                self.replica_offline(topic, *partition, *node)
            }
            MetadataCommand::BumpLeaderEpoch { topic, partition, leader, leader_epoch } => {
                let p = self.partition_mut(topic, *partition)?;
                if (p.leader, p.leader_epoch) != (*leader, *leader_epoch) {
                    return Err(MetadataError::StaleLeaderEpoch { current: p.leader_epoch, got: *leader_epoch });
                }
                p.leader_epoch += 1;
                Ok(())
            }
            MetadataCommand::SetRebalancePaused { paused } => {
                self.rebalance_paused = *paused;
                Ok(())
            }
            MetadataCommand::SetBrokerConfigs { entity, configs } => {
                if configs.is_empty() {
                    self.broker_configs.remove(entity);
                } else {
                    self.broker_configs.insert(entity.clone(), configs.clone());
                }
                Ok(())
            }
            MetadataCommand::SetScramCredential { user, mechanism, credential } => {
                self.set_scram_credential(user, mechanism, credential.as_ref())
            }
            MetadataCommand::CreateAcl(binding) => {
                self.acls.insert(binding.clone());
                Ok(())
            }
            MetadataCommand::DeleteAcl(binding) => {
                self.acls.remove(binding);
                Ok(())
            }
            // Handled by `apply_in_term`.
            MetadataCommand::AllocateProducerIds { .. } | MetadataCommand::AsLeader { .. } => Ok(()),
        }
    }

    /// Follows a Raft membership change: `nodes` becomes exactly the members (a member already
    /// known keeps the addresses it registered), `voters` the voting ones.
    pub fn set_membership(&mut self, voters: BTreeSet<NodeId>, members: impl IntoIterator<Item = NodeInfo>) {
        let mut nodes = BTreeMap::new();
        for info in members {
            let known = self.nodes.remove(&info.id).unwrap_or(info);
            nodes.insert(known.id, known);
        }
        self.removed.extend(self.nodes.keys().copied());
        self.nodes = nodes;
        self.draining.retain(|id| voters.contains(id));
        self.voters = voters;
    }

    fn set_scram_credential(
        &mut self,
        user: &str,
        mechanism: &str,
        credential: Option<&ScramCredential>,
    ) -> Result<(), MetadataError> {
        match credential {
            Some(c) => {
                self.scram_credentials.entry(user.to_string()).or_default().insert(mechanism.to_string(), c.clone());
            }
            None => {
                let missing =
                    || MetadataError::NoScramCredential { user: user.to_string(), mechanism: mechanism.to_string() };
                let mechanisms = self.scram_credentials.get_mut(user).ok_or_else(missing)?;
                mechanisms.remove(mechanism).ok_or_else(missing)?;
                if mechanisms.is_empty() {
                    self.scram_credentials.remove(user);
                }
            }
        }
        Ok(())
    }

    /// The voters new replicas go to: every voter but the draining ones, sorted.
    pub fn placement_nodes(&self) -> Vec<NodeId> {
        self.voters.iter().copied().filter(|id| !self.draining.contains(id)).collect()
    }

    /// Checks that `node` can be drained: a voter, not the last one, and every topic still fits
    /// on the voters that remain.
    pub fn check_drain(&self, node: NodeId) -> Result<(), MetadataError> {
        let refuse = |reason: String| Err(MetadataError::CannotDrain { node, reason });
        if !self.voters.contains(&node) {
            return refuse("it is not a voting member of the cluster".into());
        }
        let remaining = self.placement_nodes().into_iter().filter(|&id| id != node).count();
        if remaining == 0 {
            return refuse("it is the last node".into());
        }
        if let Some(t) = self.topics.values().find(|t| t.replication_factor as usize > remaining) {
            return refuse(format!(
                "topic '{}' has replication factor {} and only {remaining} node(s) would remain",
                t.name, t.replication_factor
            ));
        }
        Ok(())
    }

    fn drain(&mut self, node: NodeId) -> Result<(), MetadataError> {
        if self.draining.contains(&node) {
            return Ok(());
        }
        self.check_drain(node)?;
        self.draining.insert(node);
        // The node's replicas must all move, wherever an operator put them.
        let placed = self.topics.values_mut().flat_map(|t| t.partitions.iter_mut());
        for p in placed.filter(|p| p.placement.as_ref().is_some_and(|pl| pl.replicas.contains(&node))) {
            p.placement = None;
        }
        Ok(())
    }

    /// Whether any partition still lists `node` among its replicas.
    pub fn holds_replicas(&self, node: NodeId) -> bool {
        self.topics.values().flat_map(|t| &t.partitions).any(|p| p.replicas.contains(&node))
    }

    /// Checks a CreateTopic without applying it (CreateTopics `validate_only`, and before proposing).
    pub fn check_create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), MetadataError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_string()));
        }
        check_partition_count(name, partitions)?;
        let available = self.placement_nodes().len();
        if replication_factor < 1 || replication_factor as usize > available {
            return Err(MetadataError::InvalidReplicationFactor { requested: replication_factor, available });
        }
        Ok(())
    }

    fn create_topic(
        &mut self,
        name: &str,
        id: uuid::Uuid,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        self.check_create_topic(name, partitions, replication_factor)?;
        let nodes = self.placement_nodes();
        let partitions = (0..partitions).map(|p| new_partition(p, &nodes, replication_factor)).collect();
        let topic = TopicMeta { name: name.to_string(), id, replication_factor, partitions, configs: configs.clone() };
        self.topics.insert(name.to_string(), topic);
        Ok(())
    }

    fn create_partitions(&mut self, name: &str, count: i32, assignments: &[Vec<NodeId>]) -> Result<(), MetadataError> {
        let nodes = self.placement_nodes();
        let topic = self.topics.get(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(MetadataError::InvalidPartitions {
                topic: name.to_string(),
                count,
                reason: format!("the topic already has {current} partition(s)"),
            });
        }
        check_partition_count(name, count)?;
        if !assignments.is_empty() {
            return self.create_assigned_partitions(name, count, assignments);
        }
        if let Some(topic) = self.topics.get_mut(name) {
            let rf = topic.replication_factor;
            topic.partitions.extend((current..count).map(|p| new_partition(p, &nodes, rf)));
        }
        Ok(())
    }

    /// The partition's metadata, if the topic and partition exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMeta> {
        self.topics.get(topic)?.partitions.get(usize::try_from(partition).ok()?)
    }
}

fn check_partition_count(topic: &str, count: i32) -> Result<(), MetadataError> {
    if (1..=MAX_PARTITIONS).contains(&count) {
        return Ok(());
    }
    Err(MetadataError::InvalidPartitions {
        topic: topic.to_string(),
        count,
        reason: format!("must be between 1 and {MAX_PARTITIONS}"),
    })
}

fn new_partition(partition: i32, nodes: &[NodeId], replication_factor: i16) -> PartitionMeta {
    let replicas = assign_replicas(partition, nodes, replication_factor);
    // Every replica starts empty, so all of them are in sync.
    PartitionMeta {
        partition,
        leader: replicas[0],
        leader_epoch: 0,
        isr: replicas.clone(),
        replicas,
        handover: None,
        placement: None,
    }
}

/// Whether `a` and `b` hold the same replicas, order aside.
pub fn same_replicas(a: &[NodeId], b: &[NodeId]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Round-robin placement over sorted node ids: partition p → nodes[(p + k) mod n], k < RF.
/// `nodes` must be sorted and non-empty and RF ≤ its length (checked by the caller).
pub fn assign_replicas(partition: i32, nodes: &[NodeId], replication_factor: i16) -> Vec<NodeId> {
    let n = nodes.len();
    (0..replication_factor as usize).map(|k| nodes[(partition as usize + k) % n]).collect()
}

/// Kafka's topic naming rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let invalid = |reason: &str| MetadataError::InvalidTopicName { name: name.to_string(), reason: reason.to_string() };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are reserved"));
    }
    if name.len() > 249 {
        return Err(invalid("it is longer than 249 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(invalid("only ASCII letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
