//! In-process tests of a leader's parked follower fetches (`WaitForLogEnd`). An idle follower
//! asks for a long poll of seconds, so everything it must learn has to answer the poll at
//! once, not when it runs out: an append, a new log start (DeleteRecords), a new role.

use std::time::Duration;

use bytes::Bytes;
use chronik::records::encode_batch;
use chronik_actors::directory::Counted;
use chronik_actors::replica::{Leadership, ReplicaMsg};
use kafka_protocol::records::Compression;
use ractor::rpc::CallResult;
use tokio::task::JoinHandle;

mod common;

use common::{T, epoch, leading, start_with_topic};

/// Longer than any test waits: a poll answered within `T` was woken, not timed out.
const POLL: Duration = Duration::from_secs(60);

/// What a parked poll is given to prove it stays parked while nothing changes.
const STAYS_PARKED: Duration = Duration::from_millis(300);

async fn append(replica: &Counted<ReplicaMsg>, n: i32) {
    let entries: Vec<_> = (0..n).map(|i| (None, Some(Bytes::from(format!("m-{i}"))))).collect();
    let batch = encode_batch(&entries, 1_700_000_000_000, Compression::None).expect("encode");
    let msg = |reply| ReplicaMsg::Append { batches: vec![batch], acks_all: true, reply: Some(reply), forward: false };
    assert!(matches!(replica.call(msg, T).await, Ok(CallResult::Success(Ok(_)))), "append failed");
}

async fn log_end(replica: &Counted<ReplicaMsg>) -> i64 {
    match replica.call(ReplicaMsg::Info, T).await.expect("send") {
        CallResult::Success(info) => info.log_end_offset,
        other => panic!("info failed: {other:?}"),
    }
}

/// A follower's long poll at `offset`, parked on the replica.
fn park(replica: &Counted<ReplicaMsg>, offset: i64) -> JoinHandle<bool> {
    let actor = replica.actor.clone();
    tokio::spawn(async move {
        matches!(
            actor.call(|reply| ReplicaMsg::WaitForLogEnd { offset, reply }, Some(POLL)).await,
            Ok(CallResult::Success(()))
        )
    })
}

/// Parks a poll at the log end and checks nothing answers it while nothing changes.
async fn parked_at_log_end(replica: &Counted<ReplicaMsg>) -> JoinHandle<bool> {
    let mut poll = park(replica, log_end(replica).await);
    assert!(tokio::time::timeout(STAYS_PARKED, &mut poll).await.is_err(), "a poll at the log end was answered");
    poll
}

async fn answered(poll: JoinHandle<bool>, what: &str) {
    let woke = tokio::time::timeout(T, poll).await.unwrap_or_else(|_| panic!("{what} left the poll parked"));
    assert!(woke.expect("poll task"), "{what}: the poll was dropped, not answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_follower_fetch_is_answered_by_whatever_it_must_learn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, handle, ctx) = start_with_topic(dir.path()).await;
    let replica = leading(&ctx, None).await;
    append(&replica, 10).await;

    let poll = parked_at_log_end(&replica).await;
    append(&replica, 1).await;
    answered(poll, "an append").await;

    let poll = parked_at_log_end(&replica).await;
    let delete = |reply| ReplicaMsg::DeleteRecords { offset: 5, timeout_ms: 10_000, reply };
    assert!(matches!(replica.call(delete, T).await, Ok(CallResult::Success(Ok(5)))), "DeleteRecords failed");
    answered(poll, "a new log start").await;

    let poll = parked_at_log_end(&replica).await;
    let me = ctx.config.node_id;
    let next = Leadership {
        leader: me,
        leader_epoch: epoch(&replica).await + 1,
        isr: vec![me],
        replicas: vec![me],
        min_insync: 1,
        registered: true,
        handover: None,
    };
    replica.cast(ReplicaMsg::SetLeadership(next)).expect("cast");
    answered(poll, "a new leader epoch").await;

    node.stop(None);
    handle.await.expect("node stops");
}
