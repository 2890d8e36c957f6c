//! A transaction's effects on its partitions, on this node or over the wal port: registering
//! the partitions with their replicas (so they take the producer's transactional writes) and
//! writing the commit or abort markers at their leaders.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chronik::config::NodeId;
use kafka_protocol::ResponseError;
use ractor::ActorRef;
use tracing::{debug, info, warn};

use super::{TxnCoordinatorMsg, TxnPartition};
use crate::context::{NodeContext, TopicPartition};
use crate::directory::TaskGuard;
use crate::group_coordinator::CoordinatorMsg;
use crate::handlers::{ask_replica, replica_for};
use crate::replica::{PartitionError, ReplicaMsg, TxnMarker};
use crate::replication_service::peer_client;
use crate::replication_service::proto::{RegisterTxnRequest, TxnPartition as WirePartition, WriteMarkersRequest};
use chronik::offsets::OFFSETS_TOPIC;

/// How long one node may take to register partitions or write markers.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// First wait before retrying markers that failed; doubled up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Longest wait between marker attempts.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Registers `partitions` for `producer_id` at `epoch` with every node holding a replica of
/// one of them (the leader must take the registration; a follower that misses it re-learns
/// the transaction from the log once the producer wrote there). UNKNOWN_TOPIC_OR_PARTITION
/// for a partition that does not exist.
pub(super) async fn register(
    ctx: &NodeContext,
    producer_id: i64,
    epoch: i16,
    partitions: &[TxnPartition],
) -> Result<(), ResponseError> {
    let metadata = ctx.metadata();
    let mut by_node: BTreeMap<NodeId, (bool, Vec<TxnPartition>)> = BTreeMap::new();
    for (topic, partition) in partitions {
        let meta = metadata.partition(topic, *partition).ok_or(ResponseError::UnknownTopicOrPartition)?;
        for &node in &meta.replicas {
            let entry = by_node.entry(node).or_default();
            entry.0 |= node == meta.leader;
            entry.1.push((topic.clone(), *partition));
        }
    }
    for (node, (leads, partitions)) in by_node {
        let result = if node == ctx.config.node_id {
            register_here(ctx, producer_id, epoch, &partitions);
            Ok(())
        } else {
            register_remote(ctx, node, producer_id, epoch, partitions).await
        };
        match result {
            Ok(()) => {}
            Err(e) if leads => {
                warn!(node, error = %e, "a partition leader did not take a transaction's partitions");
                return Err(ResponseError::ConcurrentTransactions);
            }
            Err(e) => debug!(node, error = %e, "a follower did not take a transaction's partitions"),
        }
    }
    Ok(())
}

/// Registers partitions with this node's registry (the wal port's RegisterTxnPartitions too).
pub(crate) fn register_here(ctx: &NodeContext, producer_id: i64, epoch: i16, partitions: &[TxnPartition]) {
    for (topic, partition) in partitions {
        ctx.transactions.register(TopicPartition::new(topic, *partition), producer_id, epoch);
    }
}

async fn register_remote(
    ctx: &NodeContext,
    node: NodeId,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<TxnPartition>,
) -> Result<(), String> {
    let mut client = peer_client(ctx, node)?;
    let request = RegisterTxnRequest { producer_id, producer_epoch: i32::from(epoch), partitions: wire(partitions) };
    let call = client.register_txn_partitions(request);
    tokio::time::timeout(RPC_TIMEOUT, call).await.map_err(|_| "timed out".to_string())?.map_err(|s| s.to_string())?;
    Ok(())
}

/// Writes `marker` at this node's leaders of `partitions`, each answered once its in-sync
/// replicas have it (also what the wal port's WriteTxnMarkers runs).
pub(crate) async fn write_markers_here(
    ctx: &NodeContext,
    marker: TxnMarker,
    partitions: Vec<TxnPartition>,
) -> Vec<(TxnPartition, Result<(), PartitionError>)> {
    let mut out = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let result = match replica_for(ctx, &topic, partition) {
            Ok(replica) => ask_replica(&replica, |reply| ReplicaMsg::WriteMarker { marker, reply }).await.map(|_| ()),
            Err(e) => Err(e),
        };
        // A group's transactional commits take effect (or are dropped) with the marker.
        if result.is_ok()
            && topic == OFFSETS_TOPIC
            && let Some(coordinator) = ctx.coordinator.get()
        {
            let (producer_id, commit) = (marker.producer_id, marker.commit);
            let _ = coordinator.cast(CoordinatorMsg::TxnMarker { partition, producer_id, commit });
        }
        out.push(((topic, partition), result));
    }
    out
}

/// Writes the markers of a decided transaction to every one of its partitions, retrying the
/// ones that fail (a leader moving, a replica restarting) until each has it; partitions whose
/// topic was deleted meanwhile are dropped. Then reports `MarkersWritten`.
pub(super) fn spawn_markers(
    ctx: &Arc<NodeContext>,
    myself: &ActorRef<TxnCoordinatorMsg>,
    transactional_id: String,
    marker: TxnMarker,
    partitions: Vec<TxnPartition>,
) -> TaskGuard {
    let (ctx, me) = (ctx.clone(), myself.clone());
    TaskGuard(tokio::spawn(async move {
        let mut left = partitions;
        let mut wait = FIRST_RETRY;
        loop {
            left = write_round(&ctx, marker, left).await;
            if left.is_empty() {
                break;
            }
            debug!(%transactional_id, partitions = ?left, "markers not written yet; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY);
        }
        let producer_epoch = marker.producer_epoch;
        let _ = me.cast(TxnCoordinatorMsg::MarkersWritten { transactional_id, producer_epoch });
    }))
}

/// One attempt at every partition left, grouped by leader; returns those still without their
/// marker.
async fn write_round(ctx: &NodeContext, marker: TxnMarker, partitions: Vec<TxnPartition>) -> Vec<TxnPartition> {
    let metadata = ctx.metadata();
    let mut by_leader: BTreeMap<NodeId, Vec<TxnPartition>> = BTreeMap::new();
    for tp in partitions {
        // A deleted topic's records are gone: its marker has nothing left to decide.
        if let Some(meta) = metadata.partition(&tp.0, tp.1) {
            by_leader.entry(meta.leader).or_default().push(tp);
        }
    }
    let mut left = Vec::new();
    for (leader, partitions) in by_leader {
        let results = if leader == ctx.config.node_id {
            write_markers_here(ctx, marker, partitions).await
        } else {
            match write_remote(ctx, leader, marker, partitions.clone()).await {
                Ok(results) => results,
                Err(e) => {
                    debug!(leader, error = %e, "could not reach a leader to write markers");
                    left.extend(partitions);
                    continue;
                }
            }
        };
        for (tp, result) in results {
            match result {
                Ok(()) => {}
                // A newer coordinator of this id wrote markers there: this one was replaced
                // (frozen or cut off meanwhile) and must not decide anything more.
                Err(e) if e.code == ResponseError::TransactionCoordinatorFenced.code() => {
                    info!(topic = %tp.0, partition = tp.1, error = %e.message, "a newer coordinator fenced this one's marker; giving it up");
                }
                Err(e) => {
                    debug!(topic = %tp.0, partition = tp.1, error = %e.message, "marker not written");
                    left.push(tp);
                }
            }
        }
    }
    left
}

async fn write_remote(
    ctx: &NodeContext,
    node: NodeId,
    marker: TxnMarker,
    partitions: Vec<TxnPartition>,
) -> Result<Vec<(TxnPartition, Result<(), PartitionError>)>, String> {
    let mut client = peer_client(ctx, node)?;
    let request = WriteMarkersRequest {
        producer_id: marker.producer_id,
        producer_epoch: i32::from(marker.producer_epoch),
        commit: marker.commit,
        coordinator_epoch: marker.coordinator_epoch,
        partitions: wire(partitions),
    };
    let call = client.write_txn_markers(request);
    let answer = tokio::time::timeout(RPC_TIMEOUT, call)
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|s| s.to_string())?
        .into_inner();
    Ok(answer
        .results
        .into_iter()
        .map(|r| {
            let result = match i16::try_from(r.error_code) {
                Ok(0) => Ok(()),
                Ok(code) => Err(PartitionError { code, message: r.error_message }),
                Err(_) => Err(PartitionError { code: -1, message: r.error_message }),
            };
            ((r.topic, r.partition), result)
        })
        .collect())
}

fn wire(partitions: Vec<TxnPartition>) -> Vec<WirePartition> {
    partitions.into_iter().map(|(topic, partition)| WirePartition { topic, partition }).collect()
}

/// Partitions as the wal port received them.
pub(crate) fn from_wire(partitions: Vec<WirePartition>) -> Vec<TxnPartition> {
    partitions.into_iter().map(|p| (p.topic, p.partition)).collect()
}

/// A producer epoch as the wal port carries it; out of range reads as -1 (refused as stale).
pub(crate) fn epoch_from_wire(epoch: i32) -> i16 {
    i16::try_from(epoch).unwrap_or(-1)
}
