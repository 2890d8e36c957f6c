//! The coordinator's use of `__transaction_state`: propose it, read a partition back when this
//! node starts leading it, append changes to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::{MetadataCommand, MetadataError};
use chronik::txn::{
    TRANSACTION_STATE_TOPIC, TxnMetadata, decode_txn_records, encode_txn_records, partition_for_transaction,
};
use ractor::ActorRef;
use tracing::{debug, warn};

use super::TxnCoordinatorMsg;
use super::requests::AfterPersist;
use crate::context::NodeContext;
use crate::directory::TaskGuard;
use crate::group_coordinator::offsets_store::read_from_start;
use crate::group_coordinator::ownership::offsets_replication_factor;
use crate::handlers::{apply_metadata, ask_replica, replica_for};
use crate::replica::{ReplicaMsg, now_ms};

/// First wait before reading a partition again; doubled up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Longest wait between two attempts to read a partition.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Proposes `__transaction_state` (as Kafka, on the first FindCoordinator for a transaction),
/// compacted: the latest metadata of each id is kept. The outcome comes back as `TopicCreated`.
pub(super) fn create_topic(ctx: &Arc<NodeContext>, myself: &ActorRef<TxnCoordinatorMsg>) -> TaskGuard {
    let metadata = ctx.metadata();
    let configs = [
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), ctx.config.groups.offsets_segment_bytes.to_string()),
    ]
    .into_iter()
    .collect();
    let command = MetadataCommand::CreateTopic {
        name: TRANSACTION_STATE_TOPIC.into(),
        id: uuid::Uuid::new_v4(),
        partitions: ctx.config.groups.offsets_partitions,
        replication_factor: offsets_replication_factor(&metadata),
        configs,
        assignments: Vec::new(),
    };
    let (ctx, me) = (ctx.clone(), myself.clone());
    TaskGuard(tokio::spawn(async move {
        let result = apply_metadata(&ctx, vec![command])
            .await
            .pop()
            .unwrap_or_else(|| Err(MetadataError::Unavailable("the metadata actor gave no answer".into())));
        let _ = me.cast(TxnCoordinatorMsg::TopicCreated(result));
    }))
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
    let (ctx, me) = (ctx.clone(), myself.clone());
    TaskGuard(tokio::spawn(async move {
        let mut wait = FIRST_RETRY;
        let mut failures = 0u32;
        let txns = loop {
            match load(&ctx, partition, partitions).await {
                Ok(txns) => break txns,
                Err(e) => {
                    failures += 1;
                    if failures == 10 {
                        warn!(partition, error = %e, "transaction state partition still cannot be loaded; retrying");
                    } else {
                        debug!(partition, error = %e, "transaction state partition not loaded yet; retrying");
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY);
        };
        let _ = me.cast(TxnCoordinatorMsg::Loaded { partition, load_id, txns });
    }))
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
    let started = replica_for(ctx, TRANSACTION_STATE_TOPIC, partition)
        .map_err(|e| e.message)
        .and_then(|replica| Ok((replica, encode_txn_records(&[(id.clone(), Some(next.clone()))], now_ms())?)));
    let me = myself.clone();
    tokio::spawn(async move {
        let result = match started {
            Ok((replica, batch)) => {
                let msg = |reply| ReplicaMsg::Append { batches: vec![batch], acks_all: true, reply: Some(reply) };
                ask_replica(&replica, msg).await.map(|_| ()).map_err(|e| e.message)
            }
            Err(e) => Err(e),
        };
        let _ = me.cast(TxnCoordinatorMsg::Persisted { transactional_id: id, next, result, then });
    });
}
