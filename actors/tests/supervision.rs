//! In-process tests of the supervision tree: a replica that panics is restarted and serves
//! what was written before the crash; one that keeps failing escalates to the NodeSupervisor,
//! which restarts the ReplicaSupervisor and with it every replica.

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
    let msg = |reply| ReplicaMsg::Read { offset: 0, max_bytes: 1 << 20, min_one: true, reply };
    match replica.call(msg, T).await.expect("send") {
        CallResult::Success(Ok(r)) => r.records,
        other => panic!("read failed: {other:?}"),
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
async fn panicking_replica_restarts_then_escalates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, handle, ctx): (_, _, Arc<NodeContext>) =
        chronik_actors::start_node(config(dir.path())).await.expect("start");
    let create = MetadataCommand::CreateTopic {
        name: "orders".into(),
        id: uuid::Uuid::new_v4(),
        partitions: 1,
        replication_factor: 1,
        configs: Default::default(),
    };
    let meta = ctx.metadata_actor.get().expect("metadata actor");
    let results = meta.call(|reply| MetadataMsg::Apply { commands: vec![create], reply }, T).await.expect("apply");
    assert!(matches!(results, CallResult::Success(ref r) if r.iter().all(Result::is_ok)), "{results:?}");

    let first = eventually("replica", || replica(&ctx)).await;
    assert_eq!(append(&first, 0).await.expect("append").base_offset, 0);
    assert_eq!(append(&first, 10).await.expect("append").base_offset, 10);
    let before = read_all(&first).await;

    // Trip the fail point: the append panics (its caller gets no answer), the supervisor
    // restarts the replica.
    first.cast(ReplicaMsg::ArmFailPoint).expect("arm");
    crash(&first).await;
    let second =
        eventually("restarted replica", || replica(&ctx).filter(|r| r.actor.get_id() != first.actor.get_id())).await;
    assert_eq!(read_all(&second).await, before, "data written before the crash is served after it");
    assert_eq!(append(&second, 30).await.expect("append after restart").base_offset, 20);
    let root = node.get_cell();
    let tree = ctx.directory.tree(&root);
    assert_eq!(find(&tree, REPLICA).expect("replica in tree").restarts, 1);

    // Past the budget (2 restarts in the window) the ReplicaSupervisor escalates and is itself
    // restarted by the NodeSupervisor, bringing the replica back with its data.
    let mut current = second;
    for _ in 0..2 {
        current.cast(ReplicaMsg::ArmFailPoint).expect("arm");
        crash(&current).await;
        let old = current.actor.get_id();
        current = eventually("replica back", || replica(&ctx).filter(|r| r.actor.get_id() != old)).await;
    }
    let tree = eventually("supervisor restarted", || {
        let tree = ctx.directory.tree(&root);
        find(&tree, "ReplicaSupervisor").filter(|s| s.restarts == 1 && find(s, REPLICA).is_some()).map(|_| tree.clone())
    })
    .await;
    assert_eq!(find(&tree, "ReplicaSupervisor").map(|s| s.status.as_str()), Some("running"));
    let replica_now = eventually("replica after escalation", || replica(&ctx)).await;
    let data = read_all(&replica_now).await;
    assert!(data.starts_with(&before), "everything acknowledged survives the escalation");

    node.stop(None);
    handle.await.expect("node stops");
}
