//! The coordinator's use of `__consumer_offsets`: propose it, read a partition back when this
//! node starts leading it, append commits to it.

use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::{MetadataCommand, MetadataError};
use chronik::group::GroupSnapshot;
use chronik::log::split_batches;
use chronik::offsets::{
    OFFSETS_TOPIC, OffsetLogEntry, OffsetRecord, decode_offsets_log, encode_commits, encode_group, partition_for_group,
};
use kafka_protocol::ResponseError;
use ractor::{ActorRef, RpcReplyPort};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::ownership::offsets_replication_factor;
use super::{CoordinatorMsg, GroupOffsets, Loaded};
use crate::context::NodeContext;
use crate::directory::TaskGuard;
use crate::handlers::{apply_metadata, ask_replica, replica_for};
use crate::replica::{PartitionError, ReplicaMsg, now_ms};

/// Bytes read per request while loading.
const LOAD_CHUNK: usize = 4 * 1024 * 1024;
/// The longest wait for one answer of the replica a load reads, or for its high watermark to
/// move before asking again.
const LOAD_WAIT: Duration = Duration::from_secs(1);
/// First wait before reading a partition again; doubled up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Longest wait between two attempts to read a partition.
const MAX_RETRY: Duration = Duration::from_secs(2);
/// Failed attempts after which a load is reported as degraded (about 10 s of retries).
const WARN_AFTER: u32 = 10;

/// Proposes the offsets topic (as Kafka, on the first FindCoordinator). The outcome comes back
/// as `OffsetsTopicCreated`.
pub(super) fn create_topic(ctx: &Arc<NodeContext>, myself: &ActorRef<CoordinatorMsg>) -> TaskGuard {
    create_internal_topic(ctx, myself, OFFSETS_TOPIC, CoordinatorMsg::OffsetsTopicCreated)
}

/// Proposes a coordinator's internal topic (`__consumer_offsets`, `__transaction_state`),
/// compacted as in Kafka (the latest record per key is kept, superseded ones and tombstones are
/// cleaned away), with `[groups] offsets_partitions` partitions; `done` wraps the outcome for
/// the coordinator's mailbox.
pub(crate) fn create_internal_topic<M: ractor::Message>(
    ctx: &Arc<NodeContext>,
    myself: &ActorRef<M>,
    name: &str,
    done: fn(Result<(), MetadataError>) -> M,
) -> TaskGuard {
    let metadata = ctx.metadata();
    let configs = [
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), ctx.config.groups.offsets_segment_bytes.to_string()),
    ]
    .into_iter()
    .collect();
    let command = MetadataCommand::CreateTopic {
        name: name.into(),
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
        let _ = me.cast(done(result));
    }))
}

/// Reads offsets partition `partition` back until it succeeds, then hands its groups' commits
/// over as `Loaded`; aborted (through its guard) when the coordinator unloads the partition.
pub(super) fn spawn_load(
    ctx: &Arc<NodeContext>,
    myself: &ActorRef<CoordinatorMsg>,
    partition: i32,
    partitions: i32,
    load_id: u64,
) -> TaskGuard {
    let ctx = ctx.clone();
    retry_load(
        myself,
        OFFSETS_TOPIC,
        partition,
        move || {
            let ctx = ctx.clone();
            async move { load(&ctx, partition, partitions).await }
        },
        move |loaded| CoordinatorMsg::Loaded { partition, load_id, loaded },
    )
}

/// Runs `load` until it succeeds and sends what it read as `done(..)`. Right after a
/// leadership change the partition's replica may not run here yet, so failures are retried
/// with back-off (and reported once they last about 10 s).
pub(crate) fn retry_load<M, T, F, Fut>(
    myself: &ActorRef<M>,
    topic: &'static str,
    partition: i32,
    load: F,
    done: impl FnOnce(T) -> M + Send + 'static,
) -> TaskGuard
where
    M: ractor::Message,
    T: Send + 'static,
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>> + Send,
{
    let me = myself.clone();
    TaskGuard(tokio::spawn(async move {
        let mut wait = FIRST_RETRY;
        let mut failures = 0u32;
        let loaded = loop {
            match load().await {
                Ok(loaded) => break loaded,
                Err(e) => {
                    failures += 1;
                    if failures == WARN_AFTER {
                        warn!(topic, partition, error = %e, "internal partition still cannot be loaded; retrying");
                    } else {
                        debug!(topic, partition, error = %e, "internal partition not loaded yet; retrying");
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY);
        };
        let _ = me.cast(done(loaded));
    }))
}

/// Reads one offsets partition from its start and replays its commits and memberships: a
/// transaction's commits take effect at its commit marker; those of transactions still open are
/// returned apart, by producer. Only groups that map to `partition` (of `partitions`) are kept:
/// records another mapping left there are not ours.
pub(super) async fn load(ctx: &NodeContext, partition: i32, partitions: i32) -> Result<Loaded, String> {
    let Loaded { offsets: mut out, open_txns: mut open, mut groups } = Loaded::default();
    let our_group = |group: &str| partition_for_group(group, partitions) == partition;
    let ours = |r: &OffsetRecord| our_group(&r.0.group);
    read_from_start(ctx, OFFSETS_TOPIC, partition, |records| {
        for entry in decode_offsets_log(records)? {
            match entry {
                OffsetLogEntry::Commit(record) if ours(&record) => apply(&mut out, record),
                OffsetLogEntry::Transactional { producer_id, record } if ours(&record) => {
                    open.entry(producer_id).or_default().push(record)
                }
                OffsetLogEntry::Marker { producer_id, commit } => {
                    let records = open.remove(&producer_id).unwrap_or_default();
                    if commit {
                        records.into_iter().for_each(|r| apply(&mut out, r));
                    }
                }
                OffsetLogEntry::Group { group, snapshot } if our_group(&group) => match snapshot {
                    Some(snapshot) => {
                        groups.insert(group, snapshot);
                    }
                    None => {
                        groups.remove(&group);
                    }
                },
                _ => {}
            }
        }
        Ok(())
    })
    .await?;
    out.retain(|_, m| !m.is_empty());
    Ok(Loaded { offsets: out, open_txns: open, groups })
}

fn apply(out: &mut GroupOffsets, (key, value): OffsetRecord) {
    let group = out.entry(key.group).or_default();
    match value {
        Some(c) => group.insert((key.topic, key.partition), c),
        None => group.remove(&(key.topic, key.partition)),
    };
}

/// Reads an internal topic's partition on this node from its start, handing each chunk of
/// whole batches to `each`, in log order.
pub(crate) async fn read_from_start(
    ctx: &NodeContext,
    topic: &str,
    partition: i32,
    mut each: impl FnMut(bytes::Bytes) -> Result<(), String>,
) -> Result<(), String> {
    let replica = replica_for(ctx, topic, partition).map_err(|e| e.message)?;
    committed_to_log_end(&replica).await?;
    let mut offset = 0;
    loop {
        let msg = |reply| ReplicaMsg::Read { offset, committed: false, max_bytes: LOAD_CHUNK, min_one: true, reply };
        let read = ask_replica(&replica, msg).await.map_err(|e| e.message)?;
        let batches = split_batches(&read.records).map_err(|e| e.to_string())?;
        let Some(last) = batches.last() else { return Ok(()) };
        offset = chronik::log::BatchHeader::parse(last).map_err(|e| e.to_string())?.next_offset();
        each(read.records)?;
    }
}

/// Waits until this leader's high watermark reaches the log end it has now. A follower learns
/// the high watermark one fetch late, so a new leader may hold its predecessor's last
/// acknowledged records above its own: a load that stopped at the high watermark would miss
/// them (a group's last commits, a transaction's decision). Followers in the ISR fetch them
/// within a round trip; until the ISR has them they are not committed.
async fn committed_to_log_end(replica: &crate::directory::Counted<ReplicaMsg>) -> Result<(), String> {
    let info = || async {
        match replica.call(ReplicaMsg::Info, LOAD_WAIT).await {
            Ok(ractor::rpc::CallResult::Success(info)) => Ok(info),
            _ => Err("the replica did not answer".to_string()),
        }
    };
    let end = info().await?.log_end_offset;
    loop {
        let hw = info().await?.high_watermark;
        if hw >= end {
            return Ok(());
        }
        // Answered once the high watermark moves past `hw` (or the role changes); asked again
        // after a while regardless.
        let (tx, moved) = oneshot::channel();
        let wait = ReplicaMsg::WaitForData { offset: hw, committed: false, reply: tx.into() };
        replica.cast(wait).map_err(|_| "the replica stopped".to_string())?;
        let _ = tokio::time::timeout(LOAD_WAIT, moved).await;
    }
}

/// Appends records for `group` to its offsets partition `partition`. The append is handed to
/// the replica here, in the coordinator's order (so commits land in the order they were
/// accepted); only the wait for durability runs on a task, whose outcome comes back as
/// `CommitDone`. That task waits for `previous` (the completion of the partition's previous
/// append) before sending, so the `CommitDone`s of a partition arrive in append order and an
/// older commit never overwrites a newer one in the cache. Returns this append's completion.
pub(super) fn append(
    ctx: &Arc<NodeContext>,
    myself: &ActorRef<CoordinatorMsg>,
    partition: i32,
    (records, codes, producer): (Vec<OffsetRecord>, Vec<i16>, Option<(i64, i16)>),
    reply: Option<RpcReplyPort<Vec<i16>>>,
    previous: Option<oneshot::Receiver<()>>,
) -> oneshot::Receiver<()> {
    let started = start_append(ctx, partition, encode_commits(&records, now_ms(), producer));
    let me = myself.clone();
    let (done, completion) = oneshot::channel();
    tokio::spawn(async move {
        let result = durable(started).await;
        if let Some(previous) = previous {
            // Sent or dropped: either way the previous `CommitDone` is in the mailbox.
            let _ = previous.await;
        }
        let producer_id = producer.map(|(id, _)| id);
        let _ = me.cast(CoordinatorMsg::CommitDone { partition, records, result, codes, reply, producer_id });
        let _ = done.send(());
    });
    completion
}

/// Writes `group`'s membership (`None`: deletes it) to offsets partition `partition`. Handed to
/// the replica here, so it lands in the coordinator's order among the commits; nobody waits for
/// it: a coordinator that fails over before it is durable leaves the previous generation's
/// record, and the members rejoin from that one.
pub(super) fn append_group(ctx: &NodeContext, partition: i32, group: &str, snapshot: Option<&GroupSnapshot>) {
    let started = start_append(ctx, partition, encode_group(group, snapshot, now_ms()));
    let group = group.to_owned();
    tokio::spawn(async move {
        if let Err(e) = durable(started).await {
            debug!(group, partition, error = %e.message, "group membership not written");
        }
    });
}

type AppendWait = oneshot::Receiver<Result<crate::replica::AppendOutcome, PartitionError>>;

/// Hands an encoded batch to offsets partition `partition`'s replica (acks=all).
fn start_append(
    ctx: &NodeContext,
    partition: i32,
    batch: Result<bytes::Bytes, String>,
) -> Result<AppendWait, PartitionError> {
    let replica = replica_for(ctx, OFFSETS_TOPIC, partition)?;
    let batch = batch.map_err(|e| PartitionError::new(ResponseError::UnknownServerError, e))?;
    let (tx, rx) = oneshot::channel();
    replica
        .cast(ReplicaMsg::Append { batches: vec![batch], acks_all: true, reply: Some(tx.into()), forward: false })
        .map_err(|_| unavailable("the offsets replica is restarting"))?;
    Ok(rx)
}

/// Waits until a started append is durable.
async fn durable(started: Result<AppendWait, PartitionError>) -> Result<(), PartitionError> {
    match started?.await {
        Ok(outcome) => outcome.map(|_| ()),
        Err(_) => Err(unavailable("the offsets replica restarted")),
    }
}

fn unavailable(why: &str) -> PartitionError {
    PartitionError::new(ResponseError::CoordinatorNotAvailable, why)
}
