//! A partition's transactions at the replica: a `read_committed` read stops at the last
//! stable offset while a transaction is open, lists an aborted one for the consumer to drop,
//! moves on at each marker, and all of it is rebuilt from the log after a crash.

use bytes::{Bytes, BytesMut};
use chronik_actors::directory::Counted;
use chronik_actors::replica::{ReadOutcome, ReplicaMsg, TxnMarker};
use kafka_protocol::ResponseError;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use ractor::rpc::CallResult;

mod common;

use common::{T, leading, start_with_topic};

const PRODUCER: i64 = 7;

/// `n` transactional records of `PRODUCER`, starting at sequence `first`.
fn txn_batch(first: i32, n: i32) -> Bytes {
    let records: Vec<Record> = (first..first + n)
        .map(|i| Record {
            transactional: true,
            control: false,
            partition_leader_epoch: 0,
            producer_id: PRODUCER,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i - first),
            sequence: i,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("txn-{i}"))),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
    buf.freeze()
}

async fn call<R: std::fmt::Debug + Send + 'static>(
    replica: &Counted<ReplicaMsg>,
    msg: impl FnOnce(ractor::RpcReplyPort<R>) -> ReplicaMsg,
) -> R {
    match replica.call(msg, T).await.expect("send") {
        CallResult::Success(r) => r,
        other => panic!("no answer: {other:?}"),
    }
}

async fn append(replica: &Counted<ReplicaMsg>, batch: Bytes) -> i64 {
    let outcome = call(replica, |reply| ReplicaMsg::Append {
        batches: vec![batch],
        acks_all: true,
        reply: Some(reply),
        forward: false,
    });
    outcome.await.expect("append").base_offset
}

async fn marker(replica: &Counted<ReplicaMsg>, commit: bool) -> i64 {
    marker_of(replica, commit, 0).await.expect("marker")
}

/// A marker written by the coordinator of `coordinator_epoch`: its offset, or the error code.
async fn marker_of(replica: &Counted<ReplicaMsg>, commit: bool, coordinator_epoch: i32) -> Result<i64, i16> {
    let marker = TxnMarker { producer_id: PRODUCER, producer_epoch: 0, commit, coordinator_epoch };
    let written = call(replica, |reply| ReplicaMsg::WriteMarker { marker, reply }).await;
    written.map(|w| w.base_offset).map_err(|e| e.code)
}

async fn read(replica: &Counted<ReplicaMsg>, committed: bool) -> ReadOutcome {
    let msg = |reply| ReplicaMsg::Read { offset: 0, committed, max_bytes: 1 << 20, min_one: true, reply };
    call(replica, msg).await.expect("read")
}

async fn latest(replica: &Counted<ReplicaMsg>, committed: bool) -> i64 {
    call(replica, |reply| ReplicaMsg::ListOffset { timestamp: -1, committed, reply }).await.expect("list").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_stops_at_open_transactions_and_skips_aborted_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, handle, ctx) = start_with_topic(dir.path()).await;
    let replica = leading(&ctx, None).await;

    // An open transaction: read_uncommitted sees it, read_committed stops before it.
    assert_eq!(append(&replica, txn_batch(0, 10)).await, 0);
    let open = read(&replica, true).await;
    assert_eq!((open.high_watermark, open.last_stable_offset), (10, 0));
    assert!(open.records.is_empty(), "nothing of an open transaction is read committed");
    assert!(!read(&replica, false).await.records.is_empty());
    assert_eq!((latest(&replica, true).await, latest(&replica, false).await), (0, 10));

    // Aborted: readable again up to the marker, with the abort listed for the consumer.
    assert_eq!(marker(&replica, false).await, 10);
    let aborted = read(&replica, true).await;
    assert_eq!(aborted.last_stable_offset, 11);
    assert_eq!(aborted.aborted.iter().map(|a| (a.producer_id, a.first_offset)).collect::<Vec<_>>(), vec![(7, 0)]);

    // A second transaction of the same producer, committed.
    assert_eq!(append(&replica, txn_batch(10, 5)).await, 11);
    assert_eq!(read(&replica, true).await.last_stable_offset, 11);
    assert_eq!(marker(&replica, true).await, 16);
    let committed = read(&replica, true).await;
    assert_eq!((committed.last_stable_offset, committed.high_watermark), (17, 17));
    assert_eq!(committed.aborted.len(), 1, "only the first transaction was aborted");

    // A third, left open, then a crash: everything is rebuilt from the log.
    assert_eq!(append(&replica, txn_batch(15, 3)).await, 17);
    replica.cast(ReplicaMsg::ArmFailPoint).expect("arm");
    let crash = |reply| ReplicaMsg::Append {
        batches: vec![txn_batch(18, 1)],
        acks_all: true,
        reply: Some(reply),
        forward: false,
    };
    assert!(matches!(replica.call(crash, T).await, Ok(CallResult::SenderError)), "the replica should die");
    let restarted = leading(&ctx, Some(replica.actor.get_id())).await;
    let after = read(&restarted, true).await;
    assert_eq!((after.last_stable_offset, after.high_watermark), (17, 20));
    assert_eq!(after.aborted.iter().map(|a| (a.first_offset, a.last_offset)).collect::<Vec<_>>(), vec![(0, 10)]);
    assert_eq!(marker(&restarted, false).await, 20);
    assert_eq!(read(&restarted, true).await.last_stable_offset, 21);

    node.stop(None);
    handle.await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_coordinators_marker_is_refused_even_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, handle, ctx) = start_with_topic(dir.path()).await;
    let replica = leading(&ctx, None).await;
    let fenced = Err(ResponseError::TransactionCoordinatorFenced.code());

    // Coordinator epoch 3 commits the first transaction; the producer begins a second one.
    assert_eq!(append(&replica, txn_batch(0, 5)).await, 0);
    assert_eq!(marker_of(&replica, true, 3).await, Ok(5));
    assert_eq!(append(&replica, txn_batch(5, 5)).await, 6);
    // The coordinator of epoch 2, frozen through the hand-over, wakes up and repeats its commit
    // of the first transaction: taken, it would commit the second one here.
    assert_eq!(marker_of(&replica, true, 2).await, fenced);
    let open = read(&replica, true).await;
    assert_eq!((open.last_stable_offset, open.high_watermark), (6, 11), "the second transaction is still open");

    replica.cast(ReplicaMsg::ArmFailPoint).expect("arm");
    let crash = |reply| ReplicaMsg::Append {
        batches: vec![txn_batch(10, 1)],
        acks_all: true,
        reply: Some(reply),
        forward: false,
    };
    assert!(matches!(replica.call(crash, T).await, Ok(CallResult::SenderError)), "the replica should die");
    let restarted = leading(&ctx, Some(replica.actor.get_id())).await;
    assert_eq!(marker_of(&restarted, true, 2).await, fenced, "the coordinator epoch is rebuilt from the log");
    assert_eq!(marker_of(&restarted, false, 3).await, Ok(11));
    let aborted = read(&restarted, true).await;
    assert_eq!(aborted.aborted.iter().map(|a| (a.first_offset, a.last_offset)).collect::<Vec<_>>(), vec![(6, 11)]);

    node.stop(None);
    handle.await.expect("node stops");
}
