//! The coordinator's use of `__consumer_offsets`: create it, read it back on start, append
//! commits to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chronik::cluster::MetadataCommand;
use chronik::log::split_batches;
use chronik::offsets::{
    CommittedOffset, OFFSETS_TOPIC, OffsetKey, decode_commits, encode_commits, partition_for_group,
};
use kafka_protocol::ResponseError;
use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::oneshot;

use super::{CoordinatorMsg, OffsetPartition};
use crate::context::NodeContext;
use crate::handlers::{apply_metadata, ask_replica, replica_for};
use crate::replica::{PartitionError, ReplicaMsg, now_ms};

/// Bytes read per request while loading.
const LOAD_CHUNK: usize = 4 * 1024 * 1024;

/// Creates the offsets topic on first start; it keeps its records forever (no time retention).
pub(super) async fn ensure_topic(ctx: &NodeContext) -> Result<(), ActorProcessingErr> {
    let metadata = ctx.metadata();
    if metadata.topics.contains_key(OFFSETS_TOPIC) {
        return Ok(());
    }
    let rf = ctx.config.replication_factor.min(metadata.nodes.len().max(1) as i16);
    let configs = [("retention.ms".to_string(), "-1".to_string())].into_iter().collect();
    let command = MetadataCommand::CreateTopic {
        name: OFFSETS_TOPIC.into(),
        id: uuid::Uuid::new_v4(),
        partitions: ctx.config.groups.offsets_partitions,
        replication_factor: rf,
        configs,
    };
    match apply_metadata(ctx, vec![command]).await.pop() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(format!("cannot create {OFFSETS_TOPIC}: {e}").into()),
        None => Err(format!("cannot create {OFFSETS_TOPIC}: no answer").into()),
    }
}

/// Reads every offsets partition from its start and replays the commits.
pub(super) async fn load(
    ctx: &NodeContext,
) -> Result<HashMap<String, BTreeMap<OffsetPartition, CommittedOffset>>, ActorProcessingErr> {
    let mut out: HashMap<String, BTreeMap<OffsetPartition, CommittedOffset>> = HashMap::new();
    let partitions = ctx.metadata().topics.get(OFFSETS_TOPIC).map_or(0, |t| t.partitions.len() as i32);
    for p in 0..partitions {
        let replica = replica_for(ctx, OFFSETS_TOPIC, p).map_err(|e| e.message)?;
        let mut offset = 0;
        loop {
            let msg = |reply| ReplicaMsg::Read { offset, max_bytes: LOAD_CHUNK, min_one: true, reply };
            let read = ask_replica(&replica, msg).await.map_err(|e| e.message)?;
            let batches = split_batches(&read.records).map_err(|e| e.to_string())?;
            let Some(last) = batches.last() else { break };
            offset = chronik::log::BatchHeader::parse(last).map_err(|e| e.to_string())?.next_offset();
            for (key, value) in decode_commits(read.records)? {
                let group = out.entry(key.group).or_default();
                match value {
                    Some(c) => group.insert((key.topic, key.partition), c),
                    None => group.remove(&(key.topic, key.partition)),
                };
            }
        }
    }
    out.retain(|_, m| !m.is_empty());
    Ok(out)
}

/// Appends records for `group` to its offsets partition. The append is handed to the replica
/// here, in the coordinator's order (so commits land in the order they were accepted); only the
/// wait for durability runs on a task, whose outcome comes back as `CommitDone`.
pub(super) fn append(
    ctx: &Arc<NodeContext>,
    myself: &ActorRef<CoordinatorMsg>,
    group: &str,
    records: Vec<(OffsetKey, Option<CommittedOffset>)>,
    codes: Vec<i16>,
    reply: Option<RpcReplyPort<Vec<i16>>>,
) {
    let partitions = ctx.metadata().topics.get(OFFSETS_TOPIC).map_or(1, |t| t.partitions.len() as i32);
    let partition = partition_for_group(group, partitions);
    let started = start_append(ctx, partition, &records);
    let me = myself.clone();
    tokio::spawn(async move {
        let result = match started {
            Ok(rx) => match rx.await {
                Ok(r) => r.map(|_| ()),
                Err(_) => Err(unavailable("the offsets replica restarted")),
            },
            Err(e) => Err(e),
        };
        let _ = me.cast(CoordinatorMsg::CommitDone { records, result, codes, reply });
    });
}

type AppendWait = oneshot::Receiver<Result<crate::replica::AppendOutcome, PartitionError>>;

fn start_append(
    ctx: &NodeContext,
    partition: i32,
    records: &[(OffsetKey, Option<CommittedOffset>)],
) -> Result<AppendWait, PartitionError> {
    let replica = replica_for(ctx, OFFSETS_TOPIC, partition)?;
    let batch =
        encode_commits(records, now_ms()).map_err(|e| PartitionError::new(ResponseError::UnknownServerError, e))?;
    let (tx, rx) = oneshot::channel();
    replica
        .cast(ReplicaMsg::Append { batches: vec![batch], reply: Some(tx.into()) })
        .map_err(|_| unavailable("the offsets replica is restarting"))?;
    Ok(rx)
}

fn unavailable(why: &str) -> PartitionError {
    PartitionError::new(ResponseError::CoordinatorNotAvailable, why)
}
