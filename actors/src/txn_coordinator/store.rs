//! The coordinator's use of `__transaction_state`: propose it, read a partition back when this
//! node starts leading it, append changes to it.

use std::collections::HashMap;
use std::sync::Arc;

use chronik::txn::{
    TRANSACTION_STATE_TOPIC, TxnMetadata, TxnRecord, decode_txn_records, encode_txn_records, partition_for_transaction,
};
use ractor::ActorRef;

use super::TxnCoordinatorMsg;
use super::requests::AfterPersist;
use crate::context::NodeContext;
use crate::directory::TaskGuard;
use crate::group_coordinator::offsets_store::{create_internal_topic, read_from_start, retry_load};
use crate::handlers::{ask_replica, replica_for};
use crate::replica::{ReplicaMsg, now_ms};

/// Proposes `__transaction_state` (as Kafka, on the first FindCoordinator for a transaction);
/// the outcome comes back as `TopicCreated`.
pub(super) fn create_topic(ctx: &Arc<NodeContext>, myself: &ActorRef<TxnCoordinatorMsg>) -> TaskGuard {
    create_internal_topic(ctx, myself, TRANSACTION_STATE_TOPIC, TxnCoordinatorMsg::TopicCreated)
}

/// Reads partition `partition` back until it succeeds, then hands its transactions over as
/// `Loaded`; aborted through its guard when the partition is unloaded.
pub(super) fn spawn_load(
    ctx: &Arc<NodeContext>,
    myself: &ActorRef<TxnCoordinatorMsg>,
    partition: i32,
    partitions: i32,
    load_id: u64,
) -> TaskGuard {
    let ctx = ctx.clone();
    let load_partition = move || {
        let ctx = ctx.clone();
        async move { load(&ctx, partition, partitions).await }
    };
    let done = move |txns| TxnCoordinatorMsg::Loaded { partition, load_id, txns };
    retry_load(myself, TRANSACTION_STATE_TOPIC, partition, load_partition, done)
}

/// Replays one partition: the latest metadata of each id that maps to it.
async fn load(ctx: &NodeContext, partition: i32, partitions: i32) -> Result<HashMap<String, TxnMetadata>, String> {
    let mut out = HashMap::new();
    read_from_start(ctx, TRANSACTION_STATE_TOPIC, partition, |records| {
        for (id, value) in decode_txn_records(records)? {
            if partition_for_transaction(&id, partitions) != partition {
                continue;
            }
            match value {
                Some(m) => out.insert(id, m),
                None => out.remove(&id),
            };
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Appends `next` for `id` to partition `partition` (acks=all) on a task; the outcome comes
/// back as `Persisted` with `then`.
pub(super) fn persist(
    ctx: &NodeContext,
    myself: &ActorRef<TxnCoordinatorMsg>,
    (partition, id): (i32, String),
    next: TxnMetadata,
    then: AfterPersist,
) {
    let append = append(ctx, partition, &[(id.clone(), Some(next.clone()))]);
    let me = myself.clone();
    tokio::spawn(async move {
        let result = append.await;
        let _ = me.cast(TxnCoordinatorMsg::Persisted { transactional_id: id, next, result, then });
    });
}

/// Appends the tombstones of `ids` (expired) to partition `partition` (acks=all) on a task; the
/// outcome comes back as `Forgotten`.
pub(super) fn forget(ctx: &NodeContext, myself: &ActorRef<TxnCoordinatorMsg>, partition: i32, ids: Vec<String>) {
    let tombstones: Vec<_> = ids.iter().map(|id| (id.clone(), None)).collect();
    let append = append(ctx, partition, &tombstones);
    let me = myself.clone();
    tokio::spawn(async move {
        let result = append.await;
        let _ = me.cast(TxnCoordinatorMsg::Forgotten { transactional_ids: ids, result });
    });
}

/// One acks=all append of `records` to partition `partition`, to await on a task.
fn append(
    ctx: &NodeContext,
    partition: i32,
    records: &[TxnRecord],
) -> impl std::future::Future<Output = Result<(), String>> + use<> {
    let started = replica_for(ctx, TRANSACTION_STATE_TOPIC, partition)
        .map_err(|e| e.message)
        .and_then(|replica| Ok((replica, encode_txn_records(records, now_ms())?)));
    async move {
        let (replica, batch) = started?;
        let msg =
            |reply| ReplicaMsg::Append { batches: vec![batch], acks_all: true, reply: Some(reply), forward: false };
        ask_replica(&replica, msg).await.map(|_| ()).map_err(|e| e.message)
    }
}
