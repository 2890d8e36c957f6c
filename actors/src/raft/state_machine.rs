//! The metadata state machine: applies committed entries to [`ClusterMetadata`] in log order on
//! every node, persists the result, publishes it to the node's actors, and serves it as the Raft
//! snapshot.
//!
//! The applied state is persisted at most once per [`PERSIST_EVERY`], and at once when the
//! membership or the cluster id changes, not after every entry: it is the whole metadata, about
//! 100 KB for 1,200 partitions, and a rebalance applies hundreds of entries a second, which made
//! every node write tens of MB/s and slowed every produce's fsync on the same disk. The Raft log
//! holds every committed entry until a snapshot covers it, so a restart re-applies the few
//! entries applied since the last persist; applying is deterministic, so they come out the same.
//! openraft does that inside `Raft::new`, up to the commit index it saved (fsynced) before it
//! applied anything, so the replica supervisor, started after the RaftActor, first sees
//! everything this node applied before it stopped: it deletes partition data that metadata does
//! not list, and must never see a state older than the data on disk. A restart of the RaftActor
//! alone publishes nothing until it has caught up again (`behind_published`).

// openraft's storage traits return `StorageError` by value; helpers here share that shape.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use chronik::cluster::{ClusterMetadata, MetadataCommand};
use chronik::config::NodeId;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError, StoredMembership,
};
use redb::{Database, TableDefinition};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::store::{StoreError, json, read_value, storage_err, write_values};
use super::{CommandResult, TypeConfig};
use crate::context::NodeContext;
use crate::replica_supervisor::ReplicaSupervisorMsg;

/// The applied state and the last snapshot, each one JSON value.
const SM: TableDefinition<&str, &[u8]> = TableDefinition::new("state_machine");
const STATE: &str = "state";
const SNAPSHOT: &str = "snapshot";

/// The longest the applied state goes unpersisted while entries are being applied.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Everything the state machine holds; also the snapshot's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppliedState {
    /// The last entry applied.
    pub last_applied: Option<LogId<NodeId>>,
    /// The membership as of `last_applied`.
    pub membership: StoredMembership<NodeId, chronik::cluster::NodeInfo>,
    /// The metadata as of `last_applied`.
    pub metadata: ClusterMetadata,
}

/// A built snapshot as stored: its meta and its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    /// Which log id and membership it covers.
    meta: SnapshotMeta<NodeId, chronik::cluster::NodeInfo>,
    /// The serialized [`AppliedState`].
    data: Vec<u8>,
}

/// The state machine handed to openraft.
pub struct StateMachine {
    /// The node's Raft database.
    db: Arc<Database>,
    /// The applied state.
    state: AppliedState,
    /// Where applied changes are published; `None` in storage tests.
    ctx: Option<Arc<NodeContext>>,
    /// When the applied state was last written; `None` before the first write of this process.
    persisted_at: Option<Instant>,
}

impl StateMachine {
    /// Loads the applied state from `db` and publishes it: the persisted state, or the last
    /// snapshot if that is newer (the log it covers may be purged, so it must not be re-applied).
    pub fn open(db: Arc<Database>, ctx: Option<Arc<NodeContext>>) -> Result<Self, String> {
        let mut state = read_value::<AppliedState>(&db, SM, STATE)?.unwrap_or_default();
        if let Some(snapshot) = read_value::<StoredSnapshot>(&db, SM, SNAPSHOT)?
            && snapshot.meta.last_log_id > state.last_applied
        {
            state = serde_json::from_slice(&snapshot.data).map_err(|e| format!("{SNAPSHOT} is corrupt: {e}"))?;
        }
        let sm = Self { db, state, ctx, persisted_at: None };
        sm.publish();
        Ok(sm)
    }

    /// The cluster id the applied state in `db` holds: the cluster this data directory belongs to.
    pub fn stored_cluster_id(db: &Database) -> Result<Option<String>, String> {
        Ok(read_value::<AppliedState>(db, SM, STATE)?.and_then(|s| s.metadata.cluster_id))
    }

    /// The applied metadata.
    pub fn metadata(&self) -> &ClusterMetadata {
        &self.state.metadata
    }

    fn persist(&mut self) -> Result<(), StorageError<NodeId>> {
        let bytes = json(&self.state).map_err(|e| storage_err(StorageIOError::write_state_machine, e))?;
        write_values(&self.db, SM, &[(STATE, &bytes)])
            .map_err(|e| storage_err(StorageIOError::write_state_machine, StoreError(e)))?;
        self.persisted_at = Some(Instant::now());
        Ok(())
    }

    /// Hands the new metadata to readers and the applied index to waiting proposers.
    fn publish(&self) {
        let Some(ctx) = &self.ctx else { return };
        if self.behind_published(ctx) {
            return;
        }
        ctx.metadata.send_replace(Arc::new(self.state.metadata.clone()));
        let index = self.state.last_applied.map_or(0, |id| id.index);
        ctx.applied_index.send_replace(index);
    }

    /// Whether this state is older than what the node's actors already have: after a restart of
    /// this actor alone, while openraft re-applies what was applied since the last persist. An
    /// older state published would make the replica supervisor delete replicas those entries
    /// created; the published metadata never goes back.
    fn behind_published(&self, ctx: &NodeContext) -> bool {
        self.state.last_applied.map_or(0, |id| id.index) < *ctx.applied_index.borrow()
    }

    /// Waits (bounded) until the local replicas match, so a node that proposed a topic answers
    /// once its own replicas exist. A restarting supervisor reconciles by itself.
    async fn reconcile(&self) {
        let Some(ctx) = &self.ctx else { return };
        if self.behind_published(ctx) {
            return;
        }
        if let Some(sup) = ctx.replica_supervisor.get() {
            let metadata = ctx.metadata();
            let msg = |reply| ReplicaSupervisorMsg::Reconcile { metadata, reply };
            let _ = sup.call(msg, Duration::from_secs(30)).await;
        }
    }

    fn apply_entry(&mut self, entry: Entry<TypeConfig>) -> Vec<CommandResult> {
        self.state.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => Vec::new(),
            EntryPayload::Normal(commands) => {
                let leader = entry.log_id.leader_id;
                let appended_by = chronik::cluster::EntryLeader { term: leader.term, node: leader.node_id };
                commands
                    .iter()
                    .map(|c| {
                        let result = self.state.metadata.apply_in_term(c, Some(appended_by));
                        match &result {
                            Ok(_) => log_applied(&self.state.metadata, c),
                            Err(e) => log_refused(c, e),
                        }
                        result
                    })
                    .collect()
            }
            EntryPayload::Membership(membership) => {
                let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
                let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
                let members = membership.nodes().map(|(id, node)| with_id(*id, node));
                self.state.metadata.set_membership(voters.clone(), members.collect::<Vec<_>>());
                info!(
                    "ConfChange applied at log index {}: voters={:?} learners={:?}",
                    entry.log_id.index, voters, learners
                );
                self.state.membership = StoredMembership::new(Some(entry.log_id), membership);
                Vec::new()
            }
        }
    }
}

/// The membership's node entry with its id filled in (the id is the map key in openraft).
fn with_id(id: NodeId, node: &chronik::cluster::NodeInfo) -> chronik::cluster::NodeInfo {
    chronik::cluster::NodeInfo { id, ..node.clone() }
}

/// One log line per applied command; partition placement as `AssignPartition` lines.
fn log_applied(metadata: &ClusterMetadata, command: &MetadataCommand) {
    match command {
        MetadataCommand::CreateTopic { name, .. } | MetadataCommand::CreatePartitions { name, .. } => {
            info!(topic = %name, "applied {}", command.name());
            for p in metadata.topics.get(name).map(|t| t.partitions.as_slice()).unwrap_or_default() {
                info!("AssignPartition topic={} partition={} replicas={:?}", name, p.partition, p.replicas);
            }
        }
        other => info!(command = ?other, "applied {}", command.name()),
    }
}

/// A refusal worth an operator's attention: a deposed leader's plan, or an unsafe move.
fn log_refused(command: &MetadataCommand, error: &chronik::cluster::MetadataError) {
    use chronik::cluster::MetadataError::{StaleLeader, StaleTerm, UnsafeReassignment};
    if matches!(error, StaleTerm { .. } | StaleLeader { .. } | UnsafeReassignment { .. }) {
        warn!(command = ?command, %error, "refused {}", command.name());
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, chronik::cluster::NodeInfo>), StorageError<NodeId>>
    {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<CommandResult>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let membership = *self.state.membership.log_id();
        let cluster_id = self.state.metadata.cluster_id.clone();
        let results: Vec<_> = entries.into_iter().map(|e| self.apply_entry(e)).collect();
        // Identity is read from the persisted state before Raft starts (`stored_cluster_id`).
        let identity_changed =
            *self.state.membership.log_id() != membership || self.state.metadata.cluster_id != cluster_id;
        if identity_changed || self.persisted_at.is_none_or(|at| at.elapsed() >= PERSIST_EVERY) {
            self.persist()?;
        }
        self.publish();
        self.reconcile().await;
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { db: self.db.clone(), state: self.state.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, chronik::cluster::NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let state: AppliedState = serde_json::from_slice(&data)
            .map_err(|e| storage_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), e), e))?;
        info!(last = ?meta.last_log_id, "installing a metadata snapshot from the leader");
        self.state = state;
        self.persisted_at = Some(Instant::now());
        let stored = StoredSnapshot { meta: meta.clone(), data };
        let snapshot_bytes = json(&stored).map_err(|e| storage_err(StorageIOError::write_state_machine, e))?;
        let state_bytes = json(&self.state).map_err(|e| storage_err(StorageIOError::write_state_machine, e))?;
        write_values(&self.db, SM, &[(STATE, &state_bytes), (SNAPSHOT, &snapshot_bytes)])
            .map_err(|e| storage_err(StorageIOError::write_state_machine, StoreError(e)))?;
        self.publish();
        self.reconcile().await;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let stored = read_value::<StoredSnapshot>(&self.db, SM, SNAPSHOT)
            .map_err(|e| storage_err(|e| StorageIOError::read_snapshot(None, e), StoreError(e)))?;
        Ok(stored.map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}

/// Builds a snapshot from a copy of the applied state taken when openraft asked for it.
pub struct SnapshotBuilder {
    /// Where the built snapshot is kept.
    db: Arc<Database>,
    /// The state to snapshot.
    state: AppliedState,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let data = json(&self.state).map_err(|e| storage_err(StorageIOError::write_state_machine, e))?;
        let last = self.state.last_applied;
        let snapshot_id = match last {
            Some(id) => format!("{}-{}", id.leader_id, id.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta { last_log_id: last, last_membership: self.state.membership.clone(), snapshot_id };
        let stored = StoredSnapshot { meta: meta.clone(), data: data.clone() };
        let bytes = json(&stored).map_err(|e| storage_err(StorageIOError::write_state_machine, e))?;
        write_values(&self.db, SM, &[(SNAPSHOT, &bytes)])
            .map_err(|e| storage_err(|e| StorageIOError::write_snapshot(None, e), StoreError(e)))?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
