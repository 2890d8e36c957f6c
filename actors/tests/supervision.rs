//! In-process tests of the supervision tree: a replica that panics is restarted and serves
//! what was written before the crash; one that keeps failing is taken offline alone (the node
//! and its ReplicaSupervisor keep running) until an operator brings it back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronik::cluster::MetadataCommand;
use chronik::config::{CliOverrides, Config};
use chronik::records::encode_batch;
use chronik_actors::NodeContext;
use chronik_actors::context::TopicPartition;
use chronik_actors::directory::{ActorNode, Counted};
use chronik_actors::metadata_actor::MetadataMsg;
use chronik_actors::replica::{AppendOutcome, PartitionError, ReplicaMsg};
use chronik_actors::replica_supervisor::ReplicaSupervisorMsg;
use kafka_protocol::records::Compression;
use ractor::rpc::CallResult;

const T: Duration = Duration::from_secs(10);

fn config(dir: &std::path::Path) -> Config {
    let env: HashMap<String, String> = [
        ("CHRONIK_BIND__KAFKA", "127.0.0.1:0"),
        ("CHRONIK_BIND__ADMIN", "127.0.0.1:0"),
        ("CHRONIK_DEBUG__FAIL_POINTS", "true"),
        ("CHRONIK_SUPERVISION__MAX_RESTARTS", "2"),
        ("CHRONIK_SUPERVISION__BACKOFF_INITIAL_MS", "10"),
        ("CHRONIK_SUPERVISION__BACKOFF_MAX_MS", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cli = CliOverrides { data_dir: Some(dir.display().to_string()), node_id: None };
    Config::load(None, env, &cli).expect("config")
}

fn batch(first: i32, n: i32) -> Bytes {
    let entries: Vec<_> = (first..first + n).map(|i| (None, Some(Bytes::from(format!("message-{i}"))))).collect();
    encode_batch(&entries, 1_700_000_000_000, Compression::None).expect("encode")
}

/// Polls `cond` until it holds, failing after `T`.
async fn eventually<V>(what: &str, mut cond: impl FnMut() -> Option<V>) -> V {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn replica(ctx: &NodeContext) -> Option<Counted<ReplicaMsg>> {
    ctx.replicas.get(&TopicPartition::new("orders", 0)).map(|r| r.clone())
}

async fn append(replica: &Counted<ReplicaMsg>, first: i32) -> Result<AppendOutcome, PartitionError> {
    let msg = |reply| ReplicaMsg::Append { batches: vec![batch(first, 10)], acks_all: true, reply: Some(reply) };
    match replica.call(msg, T).await.expect("send") {
        CallResult::Success(r) => r,
        other => panic!("append got no answer: {other:?}"),
    }
}

/// An append to an armed replica: it panics instead of answering.
async fn crash(replica: &Counted<ReplicaMsg>) {
    let msg = |reply| ReplicaMsg::Append { batches: vec![batch(0, 1)], acks_all: true, reply: Some(reply) };
    let answer = replica.call(msg, T).await;
    assert!(matches!(answer, Ok(CallResult::SenderError)), "expected the replica to die, got {answer:?}");
}

async fn read_all(replica: &Counted<ReplicaMsg>) -> Bytes {
    let msg = |reply| ReplicaMsg::Read { offset: 0, committed: false, max_bytes: 1 << 20, min_one: true, reply };
    match replica.call(msg, T).await.expect("send") {
        CallResult::Success(Ok(r)) => r.records,
        other => panic!("read failed: {other:?}"),
    }
}

/// The replica, once it leads (a restarted leader waits for a new leader epoch first).
async fn leading(ctx: &NodeContext, not: Option<ractor::ActorId>) -> Counted<ReplicaMsg> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Some(r) = replica(ctx).filter(|r| Some(r.actor.get_id()) != not)
            && let Ok(CallResult::Success(info)) = r.call(ReplicaMsg::Info, T).await
            && info.role == "leader"
        {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for a leading replica");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The leader epoch the replica acts under.
async fn epoch(replica: &Counted<ReplicaMsg>) -> i32 {
    match replica.call(ReplicaMsg::Info, T).await.expect("send") {
        CallResult::Success(info) => info.leader_epoch,
        other => panic!("info failed: {other:?}"),
    }
}

/// The first actor in the tree with this role or name.
fn find<'a>(node: &'a ActorNode, role_or_name: &str) -> Option<&'a ActorNode> {
    if node.role == role_or_name || node.name == role_or_name {
        return Some(node);
    }
    node.children.iter().find_map(|c| find(c, role_or_name))
}

const REPLICA: &str = "replica:orders-0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_replica_restarts_then_goes_offline_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, handle, ctx): (_, _, Arc<NodeContext>) =
        chronik_actors::start_node(config(dir.path())).await.expect("start");
    let create = MetadataCommand::CreateTopic {
        name: "orders".into(),
        id: uuid::Uuid::new_v4(),
        partitions: 1,
        replication_factor: 1,
        configs: Default::default(),
        assignments: Vec::new(),
    };
    let meta = ctx.metadata_actor.get().expect("metadata actor");
    let results = meta.call(|reply| MetadataMsg::Apply { commands: vec![create], reply }, T).await.expect("apply");
    assert!(matches!(results, CallResult::Success(ref r) if r.iter().all(Result::is_ok)), "{results:?}");

    // A replica leads once this process is registered (which gave it a new epoch).
    let me = ctx.config.node_id;
    eventually("registration", || (ctx.metadata().incarnations.get(&me) == Some(&ctx.incarnation)).then_some(())).await;
    let first = leading(&ctx, None).await;
    let epoch_before = epoch(&first).await;
    assert_eq!(append(&first, 0).await.expect("append").base_offset, 0);
    assert_eq!(append(&first, 10).await.expect("append").base_offset, 10);
    let before = read_all(&first).await;

    // Trip the fail point: the append panics (its caller gets no answer), the supervisor
    // restarts the replica.
    first.cast(ReplicaMsg::ArmFailPoint).expect("arm");
    crash(&first).await;
    let second = leading(&ctx, Some(first.actor.get_id())).await;
    assert!(epoch(&second).await > epoch_before, "a restarted leader leads on in a new epoch");
    assert_eq!(read_all(&second).await, before, "data written before the crash is served after it");
    assert_eq!(append(&second, 30).await.expect("append after restart").base_offset, 20);
    let root = node.get_cell();
    let tree = ctx.directory.tree(&root);
    assert_eq!(find(&tree, REPLICA).expect("replica in tree").restarts, 1);

    // Past the budget (2 restarts in the window) the replica is taken offline alone: the
    // ReplicaSupervisor is not restarted and the node keeps running.
    second.cast(ReplicaMsg::ArmFailPoint).expect("arm");
    crash(&second).await;
    let third = leading(&ctx, Some(second.actor.get_id())).await;
    third.cast(ReplicaMsg::ArmFailPoint).expect("arm");
    crash(&third).await;
    let tp = TopicPartition::new("orders", 0);
    let offline = eventually("offline", || ctx.offline.get(&tp).map(|o| o.clone())).await;
    assert!(offline.reason.contains("fail point"), "the reason names the failure: {}", offline.reason);
    assert!(replica(&ctx).is_none(), "an offline replica serves nothing");
    let tree = ctx.directory.tree(&root);
    let supervisor = find(&tree, "ReplicaSupervisor").expect("supervisor");
    assert_eq!((supervisor.restarts, supervisor.status.as_str()), (0, "running"), "nothing escalated");

    // Once the cause is fixed, an operator brings it back with its data.
    let sup = ctx.replica_supervisor.get().expect("replica supervisor");
    let back = sup.call(|reply| ReplicaSupervisorMsg::BringOnline { tp: tp.clone(), reply }, T).await.expect("call");
    assert!(matches!(back, CallResult::Success(Ok(()))), "{back:?}");
    assert!(ctx.offline.get(&tp).is_none());
    let replica_now = leading(&ctx, None).await;
    let data = read_all(&replica_now).await;
    assert!(data.starts_with(&before), "everything acknowledged survives");

    node.stop(None);
    handle.await.expect("node stops");
}
