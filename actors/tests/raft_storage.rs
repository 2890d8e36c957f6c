//! The Raft log store and state machine against openraft's own storage conformance suite, and
//! the state machine's durability across a reopen: what it persisted, and what openraft must re-apply.

use std::sync::Arc;

use chronik::cluster::{Applied, MetadataCommand};
use chronik_actors::raft::{LogStore, RaftDb, StateMachine, TypeConfig};
use openraft::storage::RaftStateMachine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, StorageError};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = RaftDb::at(&dir.path().to_string_lossy()).get().expect("open db");
        let sm = StateMachine::open(db.clone(), None).expect("open state machine");
        Ok((dir, LogStore::new(db), sm))
    }
}

#[test]
fn log_store_and_state_machine_pass_the_openraft_suite() {
    Suite::test_all(Builder).expect("conformance suite");
}

fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
    Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload }
}

#[tokio::test]
async fn applied_state_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_string_lossy().to_string();
    let node = chronik::cluster::NodeInfo { id: 1, kafka: "localhost:9092".into(), ..Default::default() };
    let membership = Membership::new(vec![[1u64].into()], std::collections::BTreeMap::from([(1u64, node)]));
    let create = MetadataCommand::CreateTopic {
        name: "orders".into(),
        id: uuid::Uuid::nil(),
        partitions: 2,
        replication_factor: 1,
        configs: Default::default(),
        assignments: Vec::new(),
    };
    let alloc = MetadataCommand::AllocateProducerIds { count: 10 };
    {
        let db = RaftDb::at(&path).get().expect("open db");
        let mut sm = StateMachine::open(db, None).expect("open");
        let results = sm
            .apply(vec![
                entry(1, EntryPayload::Membership(membership)),
                entry(2, EntryPayload::Normal(vec![create, alloc])),
            ])
            .await
            .expect("apply");
        assert_eq!(results[1], vec![Ok(Applied::Done), Ok(Applied::ProducerIds { first: 0 })]);
    }
    let db = RaftDb::at(&path).get().expect("reopen db");
    let mut sm = StateMachine::open(db, None).expect("reopen");
    let (applied, membership) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied.map(|id| id.index), Some(2));
    assert_eq!(membership.membership().voter_ids().collect::<Vec<_>>(), vec![1]);
    let metadata = sm.metadata();
    assert_eq!(metadata.topics["orders"].partitions.len(), 2);
    assert_eq!(metadata.voters.iter().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(metadata.next_producer_id, 10);
}

fn allocate(count: i64) -> EntryPayload<TypeConfig> {
    EntryPayload::Normal(vec![MetadataCommand::AllocateProducerIds { count }])
}

/// Opens the state machine over the database at `path`, as a (re)start does, with the index of
/// the entry it starts from.
async fn open_at(path: &str) -> (StateMachine, Arc<redb::Database>, Option<u64>) {
    let db = RaftDb::at(path).get().expect("open db");
    let mut sm = StateMachine::open(db.clone(), None).expect("open state machine");
    let (applied, _) = sm.applied_state().await.expect("applied state");
    (sm, db, applied.map(|id| id.index))
}

/// Applies entry 1 (the first apply of a process is always persisted), then entry 2 at once
/// (left to the next persist); dropping the result is a crash.
async fn apply_two_quickly(path: &str) -> StateMachine {
    let (mut sm, _, _) = open_at(path).await;
    sm.apply(vec![entry(1, allocate(10))]).await.expect("apply 1");
    sm.apply(vec![entry(2, allocate(5))]).await.expect("apply 2");
    assert_eq!(sm.metadata().next_producer_id, 15);
    sm
}

#[tokio::test]
async fn a_restart_starts_from_the_last_persisted_state_and_openraft_reapplies_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_string_lossy().to_string();
    drop(apply_two_quickly(&path).await);
    let (mut sm, _, applied) = open_at(&path).await;
    assert_eq!(applied, Some(1), "entry 2 was applied within PERSIST_EVERY of entry 1");
    assert_eq!(sm.metadata().next_producer_id, 10);
    // What openraft does at start-up for the entries between the applied state and the commit
    // index: the same entry applied again gives the same state.
    sm.apply(vec![entry(2, allocate(5))]).await.expect("re-apply 2");
    assert_eq!(sm.metadata().next_producer_id, 15);
}

#[tokio::test]
async fn a_snapshot_newer_than_the_persisted_state_is_what_a_restart_starts_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_string_lossy().to_string();
    {
        let mut sm = apply_two_quickly(&path).await;
        // The log up to the snapshot may be purged after this: entry 2 must not be needed again.
        let mut builder = sm.get_snapshot_builder().await;
        openraft::RaftSnapshotBuilder::build_snapshot(&mut builder).await.expect("snapshot");
    }
    let (sm, _, applied) = open_at(&path).await;
    assert_eq!(applied, Some(2));
    assert_eq!(sm.metadata().next_producer_id, 15);
}

#[tokio::test]
async fn a_membership_or_cluster_id_change_is_persisted_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_string_lossy().to_string();
    let node = chronik::cluster::NodeInfo { id: 1, kafka: "localhost:9092".into(), ..Default::default() };
    let membership = Membership::new(vec![[1u64].into()], std::collections::BTreeMap::from([(1u64, node)]));
    {
        let (mut sm, _, _) = open_at(&path).await;
        sm.apply(vec![entry(1, allocate(10))]).await.expect("apply 1");
        sm.apply(vec![entry(2, EntryPayload::Membership(membership))]).await.expect("apply 2");
    }
    let (mut sm, db, applied) = open_at(&path).await;
    assert_eq!(applied, Some(2));
    let (_, membership) = sm.applied_state().await.expect("applied state");
    assert_eq!(membership.membership().voter_ids().collect::<Vec<_>>(), vec![1]);

    // The reopened state machine persists its first apply; the cluster id right after it too,
    // as the identity check before Raft starts reads it from the persisted state.
    sm.apply(vec![entry(3, allocate(1))]).await.expect("apply 3");
    let init = MetadataCommand::InitCluster { cluster_id: "c-1".into(), min_insync_replicas: 1 };
    sm.apply(vec![entry(4, EntryPayload::Normal(vec![init]))]).await.expect("apply 4");
    drop(sm);
    assert_eq!(StateMachine::stored_cluster_id(&db).expect("read"), Some("c-1".into()));
}
