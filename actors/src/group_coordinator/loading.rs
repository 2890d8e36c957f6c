//! Following the metadata: which offsets partitions this node loads, serves and unloads, and
//! whether a group's requests are served here.

use std::sync::Arc;

use chronik::cluster::{ClusterMetadata, MetadataError};
use chronik::group::Group;
use chronik::offsets::{CommittedOffset, OFFSETS_TOPIC, OffsetKey};
use kafka_protocol::ResponseError;
use ractor::ActorRef;
use tracing::{debug, info, warn};

use super::ownership::{self, Ownership};
use super::{CoordinatorMsg, CoordinatorState, LedPartition, Loaded, offsets_store};
use crate::context::NodeContext;
use crate::directory::TaskGuard;

/// Subscribes an actor to the node's metadata: returns the current version and a task that
/// forwards every later one as `changed(..)` (the watch keeps only the latest, so a burst of
/// changes arrives as one).
pub(crate) fn watch_metadata<M: ractor::Message>(
    ctx: &NodeContext,
    myself: &ActorRef<M>,
    changed: fn(Arc<ClusterMetadata>) -> M,
) -> (TaskGuard, Arc<ClusterMetadata>) {
    let mut rx = ctx.metadata.subscribe();
    let current = rx.borrow_and_update().clone();
    let me = myself.clone();
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let metadata = rx.borrow_and_update().clone();
            if me.cast(changed(metadata)).is_err() {
                return;
            }
        }
    });
    (TaskGuard(task), current)
}

impl CoordinatorState {
    /// At start: follows the current metadata. Partitions whose replica already runs here (any
    /// standalone restart) are read back before the first request is taken, so clients never
    /// see a load in progress then; the others load in the background.
    pub(super) async fn start_serving(&mut self, myself: &ActorRef<CoordinatorMsg>, metadata: Arc<ClusterMetadata>) {
        let ownership = Ownership::of(&metadata, self.ctx.config.node_id);
        self.metadata = metadata;
        self.ownership = ownership;
        let led: Vec<i32> = self.ownership.led.keys().copied().collect();
        for partition in led {
            match offsets_store::load(&self.ctx, partition, self.ownership.partitions).await {
                Ok(loaded) => self.serve(myself, partition, loaded, Vec::new()),
                Err(e) => {
                    debug!(partition, error = %e, "offsets partition not readable yet; loading in the background");
                    self.start_load(myself, partition);
                }
            }
        }
    }

    /// Follows a metadata change: unloads the groups of partitions no longer led here, starts
    /// loading newly led ones, and drops committed offsets of deleted topics.
    pub(super) fn follow(&mut self, myself: &ActorRef<CoordinatorMsg>, metadata: Arc<ClusterMetadata>) {
        let ownership = Ownership::of(&metadata, self.ctx.config.node_id);
        let handover = ownership::plan(&self.ownership, &ownership);
        let deleted = ownership::deleted_topics(&self.metadata, &metadata);
        self.metadata = metadata;
        // Unloading maps groups with the old partition count, loading with the new one.
        self.unload(&handover.unload);
        self.ownership = ownership;
        for &partition in &handover.load {
            self.start_load(myself, partition);
        }
        if !handover.load.is_empty() {
            info!(partitions = ?handover.load, "leading offsets partitions; loading their groups");
        }
        if !deleted.is_empty() {
            self.forget_topics(myself, &deleted);
        }
    }

    /// From a load task: serves the partition, unless it was unloaded (or reloaded) meanwhile.
    pub(super) fn loaded(&mut self, myself: &ActorRef<CoordinatorMsg>, partition: i32, load_id: u64, loaded: Loaded) {
        let pending = match self.partitions.remove(&partition) {
            Some(LedPartition::Loading { load_id: current, pending, .. }) if current == load_id => pending,
            other => {
                if let Some(state) = other {
                    self.partitions.insert(partition, state);
                }
                debug!(partition, load_id, "stale offsets load ignored");
                return;
            }
        };
        self.serve(myself, partition, loaded, pending);
    }

    /// Starts coordinating the groups of `partition` as they were read back: their commits,
    /// open transactions' commits and memberships (each member's session starting now);
    /// `pending` are commits that became durable during the read.
    fn serve(
        &mut self,
        myself: &ActorRef<CoordinatorMsg>,
        partition: i32,
        Loaded { offsets, open_txns, groups: memberships }: Loaded,
        pending: Vec<(OffsetKey, Option<CommittedOffset>)>,
    ) {
        for (producer_id, records) in open_txns {
            self.txn_commits.insert((partition, producer_id), records);
        }
        let members = memberships.len();
        let now = crate::replica::now_ms().max(0) as u64;
        for (id, snapshot) in memberships {
            let group = Group::restore(id.clone(), self.group_config.clone(), snapshot.clone(), now);
            self.groups.entry(id.clone()).or_insert(group);
            self.stored.insert(id, snapshot);
        }
        let groups = offsets.len();
        // Offsets of topics deleted while another node (or nobody) coordinated these groups.
        let topics = offsets.values().flat_map(|m| m.keys().map(|(t, _)| t.as_str()));
        let gone = ownership::missing_topics(&self.metadata, topics);
        self.offsets.extend(offsets);
        self.partitions.insert(partition, LedPartition::Serving);
        self.cache(pending);
        if !gone.is_empty() {
            self.forget_topics(myself, &gone);
        }
        info!(partition, groups, with_members = members, "offsets partition loaded; its groups are coordinated here");
    }

    pub(super) fn start_load(&mut self, myself: &ActorRef<CoordinatorMsg>, partition: i32) {
        self.next_load += 1;
        let load_id = self.next_load;
        let task = offsets_store::spawn_load(&self.ctx, myself, partition, self.ownership.partitions, load_id);
        self.partitions.insert(partition, LedPartition::Loading { load_id, pending: Vec::new(), _task: task });
    }

    /// Stops coordinating the groups of `partitions`: their parked joins and syncs answer
    /// NOT_COORDINATOR (so the members look for the new coordinator) and their offsets leave
    /// memory. Uses the current (old) group → partition mapping.
    fn unload(&mut self, partitions: &[i32]) {
        if partitions.is_empty() {
            return;
        }
        for partition in partitions {
            self.partitions.remove(partition);
        }
        self.txn_commits.retain(|(p, _), _| !partitions.contains(p));
        let own = &self.ownership;
        let moved = |group: &str| own.partition_for(group).is_some_and(|p| partitions.contains(&p));
        let ids: Vec<String> = self.groups.keys().filter(|id| moved(id)).cloned().collect();
        let before = self.offsets.len();
        self.offsets.retain(|id, _| !moved(id));
        self.stored.retain(|id, _| !moved(id));
        let dropped = before - self.offsets.len();
        for id in &ids {
            if let Some(mut group) = self.groups.remove(id) {
                let replies = group.unload();
                self.route(replies);
            }
        }
        info!(?partitions, groups = ids.len(), offsets_groups = dropped, "offsets partitions unloaded");
    }

    /// The offsets partition of `group` if its requests are served here, else the error code
    /// the client gets: NOT_COORDINATOR (ask FindCoordinator again) or
    /// COORDINATOR_LOAD_IN_PROGRESS (retry here shortly).
    pub(super) fn serving(&self, group: &str) -> Result<i32, i16> {
        let not_here = ResponseError::NotCoordinator.code();
        let partition = self.ownership.partition_for(group).ok_or(not_here)?;
        if !crate::raft::contact::in_touch(&self.ctx) {
            return Err(not_here);
        }
        match self.partitions.get(&partition) {
            Some(LedPartition::Serving) => Ok(partition),
            Some(LedPartition::Loading { .. }) => Err(ResponseError::CoordinatorLoadInProgress.code()),
            None => Err(not_here),
        }
    }

    /// Whether some led partition is still being read back.
    pub(super) fn loading(&self) -> bool {
        self.partitions.values().any(|p| matches!(p, LedPartition::Loading { .. }))
    }

    /// Durable commit records (all of one group) reach the cache, if the group is still
    /// coordinated here; during a reload they wait until the load is applied. Once the group
    /// moved away they are dropped: its new coordinator reads them from the log.
    pub(super) fn commit_durable(&mut self, records: Vec<(OffsetKey, Option<CommittedOffset>)>) {
        let Some(partition) = records.first().and_then(|(k, _)| self.ownership.partition_for(&k.group)) else {
            return;
        };
        match self.partitions.get_mut(&partition) {
            Some(LedPartition::Serving) => self.cache(records),
            Some(LedPartition::Loading { pending, .. }) => pending.extend(records),
            None => {}
        }
    }

    /// From FindCoordinator: proposes `__consumer_offsets` unless it exists or is being proposed.
    pub(super) fn create_offsets_topic(&mut self, myself: &ActorRef<CoordinatorMsg>) {
        if self.creating.is_some() || self.ctx.metadata().topics.contains_key(OFFSETS_TOPIC) {
            return;
        }
        info!(partitions = self.ctx.config.groups.offsets_partitions, "proposing {OFFSETS_TOPIC}");
        self.creating = Some(offsets_store::create_topic(&self.ctx, myself));
    }

    /// The proposal of `__consumer_offsets` ended; a later FindCoordinator retries a failure.
    pub(super) fn offsets_topic_created(&mut self, result: Result<(), MetadataError>) {
        self.creating = None;
        match result {
            Ok(()) => info!("{OFFSETS_TOPIC} created"),
            // Another node (or an earlier proposal) created it first.
            Err(MetadataError::TopicExists(_)) => {}
            // No Raft leader yet: expected while a cluster forms.
            Err(e @ MetadataError::Unavailable(_)) => debug!(error = %e, "{OFFSETS_TOPIC} not created yet"),
            Err(e) => warn!(error = %e, "cannot create {OFFSETS_TOPIC}"),
        }
    }
}
