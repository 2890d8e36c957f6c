//! DescribeLogDirs: this node's one log directory (the absolute data directory) with every
//! partition replica it hosts: size on disk, offset lag (0 on a leader; on a follower its
//! leader's log end minus its own, as the last fetch answer said, else 0) and
//! `is_future_key = false` (replicas never move between directories here). From v4 the file
//! system's total and usable bytes (statvfs). A null topic list means every partition.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, ResponseKind};

use super::{str_bytes, topic_name};
use crate::context::{NodeContext, TopicPartition};
use crate::replica::{ReplicaInfo, ReplicaMsg};

/// Longest wait for one replica's report; a replica that is restarting is left out.
const ASK: Duration = Duration::from_secs(5);

/// Handles one DescribeLogDirs request.
pub async fn handle(ctx: &Arc<NodeContext>, req: DescribeLogDirsRequest, version: i16) -> ResponseKind {
    let wanted = req.topics.as_ref().map(|topics| {
        topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p))).collect::<HashSet<_>>()
    });
    let replicas: Vec<_> = ctx
        .replicas
        .iter()
        .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&(e.key().topic.to_string(), e.key().partition))))
        .map(|e| (e.key().clone(), e.value().clone()))
        .collect();
    let infos = join_all(replicas.into_iter().map(|(tp, replica)| async move {
        match replica.call(ReplicaMsg::Info, ASK).await {
            Ok(ractor::rpc::CallResult::Success(info)) => Some((tp, info)),
            _ => None,
        }
    }))
    .await;
    let dir = std::path::absolute(&ctx.config.data_dir).unwrap_or_else(|_| ctx.config.data_dir.clone().into());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(dir.to_string_lossy()))
        .with_topics(topics(infos.into_iter().flatten()));
    if version >= 4 {
        let (total, usable) = disk_space(&dir).unwrap_or((-1, -1));
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    ResponseKind::DescribeLogDirs(DescribeLogDirsResponse::default().with_results(vec![result]))
}

/// The replicas' reports grouped by topic, topics and partitions in order.
fn topics(infos: impl Iterator<Item = (TopicPartition, ReplicaInfo)>) -> Vec<DescribeLogDirsTopic> {
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (tp, info) in infos {
        let partition = DescribeLogDirsPartition::default()
            .with_partition_index(tp.partition)
            .with_partition_size(i64::try_from(info.size_bytes).unwrap_or(i64::MAX))
            .with_offset_lag(offset_lag(&info))
            .with_is_future_key(false);
        by_topic.entry(tp.topic.to_string()).or_default().push(partition);
    }
    by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect()
}

/// How far a follower is behind its leader's log end; 0 on the leader or when not known yet.
fn offset_lag(info: &ReplicaInfo) -> i64 {
    match (info.role, info.leader_log_end_offset) {
        ("follower", Some(leader_end)) => (leader_end - info.log_end_offset).max(0),
        _ => 0,
    }
}

/// `(total, usable)` bytes of the file system holding `dir`, as statvfs reports them
/// (usable: the blocks available to an unprivileged process, as Kafka's `getUsableSpace`).
fn disk_space(dir: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `stat` points to
    // writable memory of the struct's size; it is read only after statvfs reports success.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    let fragment = u128::from(stat.f_frsize);
    let bytes = |blocks: libc::fsblkcnt_t| i64::try_from(u128::from(blocks) * fragment).unwrap_or(i64::MAX);
    Some((bytes(stat.f_blocks), bytes(stat.f_bavail)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_space_of_an_existing_directory_is_known_and_of_a_missing_one_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (total, usable) = disk_space(dir.path()).expect("statvfs");
        assert!(total > 0 && (0..=total).contains(&usable), "total {total}, usable {usable}");
        assert_eq!(disk_space(&dir.path().join("missing")), None);
    }
}
