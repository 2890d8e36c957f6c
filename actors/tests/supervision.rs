//! In-process tests of the supervision tree: a replica that panics is restarted and serves
//! what was written before the crash; one that keeps failing is taken offline alone (the node
//! and its ReplicaSupervisor keep running) until an operator brings it back.

use bytes::Bytes;
use chronik::records::encode_batch;
use chronik_actors::context::TopicPartition;
use chronik_actors::directory::{ActorNode, Counted};
use chronik_actors::replica::{AppendOutcome, PartitionError, ReplicaMsg};
use chronik_actors::replica_supervisor::ReplicaSupervisorMsg;
use kafka_protocol::records::Compression;
use ractor::rpc::CallResult;

mod common;

use common::{T, epoch, eventually, leading, replica, start_with_topic};

fn batch(first: i32, n: i32) -> Bytes {
    let entries: Vec<_> = (first..first + n).map(|i| (None, Some(Bytes::from(format!("message-{i}"))))).collect();
    encode_batch(&entries, 1_700_000_000_000, Compression::None).expect("encode")
}

async fn append(replica: &Counted<ReplicaMsg>, first: i32) -> Result<AppendOutcome, PartitionError> {
    let msg = |reply| ReplicaMsg::Append {
        batches: vec![batch(first, 10)],
        acks_all: true,
        reply: Some(reply),
        forward: false,
    };
    match replica.call(msg, T).await.expect("send") {
        CallResult::Success(r) => r,
        other => panic!("append got no answer: {other:?}"),
    }
}

/// An append to an armed replica: it panics instead of answering.
async fn crash(replica: &Counted<ReplicaMsg>) {
    let msg =
        |reply| ReplicaMsg::Append { batches: vec![batch(0, 1)], acks_all: true, reply: Some(reply), forward: false };
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
    let (node, handle, ctx) = start_with_topic(dir.path()).await;
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
