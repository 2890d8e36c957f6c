//! The Raft log store and state machine against openraft's own storage conformance suite, and
//! the state machine's durability across a reopen (a restart must not replay applied entries).

use std::sync::Arc;

use chronik::cluster::{Applied, MetadataCommand};
use chronik_actors::raft::{LogStore, StateMachine, TypeConfig, open_db};
use openraft::storage::RaftStateMachine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, StorageError};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Arc::new(open_db(&dir.path().to_string_lossy()).expect("open db"));
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
        let db = Arc::new(open_db(&path).expect("open db"));
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
    let db = Arc::new(open_db(&path).expect("reopen db"));
    let mut sm = StateMachine::open(db, None).expect("reopen");
    let (applied, membership) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied.map(|id| id.index), Some(2));
    assert_eq!(membership.membership().voter_ids().collect::<Vec<_>>(), vec![1]);
    let metadata = sm.metadata();
    assert_eq!(metadata.topics["orders"].partitions.len(), 2);
    assert_eq!(metadata.voters.iter().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(metadata.next_producer_id, 10);
}
