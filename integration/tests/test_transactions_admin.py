"""Seeing and ending a hanging transaction as an operator would, on a standalone broker:
kafka-python's ListTransactions / DescribeTransactions (what `kafka-transactions list|describe`
send), `GET /admin/transactions`, the partitions' last stable offset in `/admin/partitions` and
`/metrics`, and `POST /admin/transactions/{id}/abort`, after which the producer is fenced and a
read_committed consumer moves past the aborted records. And an idle transactional id is
forgotten after `[groups] transactional_id_expiration_ms`, durably (kill -9 and restart)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from kafka import KafkaAdminClient

from client_helpers import create_topic
from harness import Broker, unique_topic, wait_until
from txn_helpers import (FENCED_CODES, READ_COMMITTED, READ_UNCOMMITTED, TXN_CALL_TIMEOUT, Delivered,
                         assert_exactly, by_partition, consume_all, numbered, produce_items, produce_txn,
                         txn_producer)

P = 2


def partition_view(broker, topic: str, partition: int) -> dict:
    rows = broker.get("/admin/partitions").json()["partitions"]
    return next(r for r in rows if r["topic"] == topic and r["partition"] == partition)


def metric(broker, line_start: str) -> float | None:
    for line in broker.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


@pytest.mark.timeout(240)
def test_an_operator_sees_and_aborts_a_hanging_transaction(broker):
    bs = broker.bootstrap
    topic = unique_topic("txn-admin")
    create_topic(bs, topic, P)
    tid = unique_topic("tid-admin")
    committed = numbered("admin-committed", 0, 10, P)
    hanging = numbered("admin-hanging", 100, 10, P)

    producer = txn_producer(bs, tid)
    producer.init_transactions(TXN_CALL_TIMEOUT)
    produce_txn(producer, topic, committed, True, Delivered())
    producer.begin_transaction()
    produce_items(producer, topic, hanging, Delivered())

    # The coordinator lists it Ongoing, with both partitions.
    listed = broker.get("/admin/transactions").json()["transactions"]
    mine = [t for t in listed if t["transactional_id"] == tid]
    assert len(mine) == 1, listed
    assert mine[0]["state_name"] == "Ongoing"
    assert sorted(tuple(p) for p in mine[0]["partitions"]) == [(topic, 0), (topic, 1)]
    assert mine[0]["start_ms"] > 0 and mine[0]["producer_epoch"] >= 0

    # Each partition holds its last stable offset at the open transaction's first record.
    for p in range(P):
        view = partition_view(broker, topic, p)
        assert view["replica"]["open_transactions"] == 1, view
        assert view["last_stable_offset"] == 6, f"5 committed records and their marker: {view}"
        assert view["high_watermark"] == 11, view
        assert metric(broker, f'chronik_partition_last_stable_offset{{partition="{p}",topic="{topic}"}}') == 6
    assert metric(broker, 'chronik_transactions{state="Ongoing"}') >= 1

    # What Kafka's tools ask: ListTransactions (every broker) and DescribeTransactions (the coordinator).
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=20000)
    try:
        by_broker = admin.list_transactions(state_filters=["Ongoing"])
        ids = {t.transactional_id for listings in by_broker.values() for t in listings}
        assert tid in ids, by_broker
        assert not any(admin.list_transactions(state_filters=["CompleteAbort"]).values()), "filtered by state"
        described = admin.describe_transactions([tid])[tid]
        assert str(getattr(described.state, "value", described.state)) == "Ongoing", described
        assert described.coordinator_id == 1 and described.transaction_timeout_ms > 0, described
        assert {(tp.topic, tp.partition) for tp in described.topic_partitions} == {(topic, 0), (topic, 1)}
    finally:
        admin.close()

    # A bad request gets a clear 4xx.
    missing = broker.http.post(f"{broker.admin_url}/admin/transactions/no-such-id/abort", timeout=10)
    assert missing.status_code == 404, missing.text
    assert "no-such-id" in missing.json()["message"]

    aborted = broker.http.post(f"{broker.admin_url}/admin/transactions/{tid}/abort", timeout=30)
    assert aborted.status_code == 200, aborted.text
    wait_until(lambda: all(partition_view(broker, topic, p)["last_stable_offset"] == 12 for p in range(P)), 30,
               "the abort markers are committed (last stable offset past them)")
    again = broker.http.post(f"{broker.admin_url}/admin/transactions/{tid}/abort", timeout=30)
    assert again.status_code == 409, again.text

    # The producer was fenced by the abort: its commit fails for good.
    with pytest.raises(KafkaException) as failed:
        producer.commit_transaction(TXN_CALL_TIMEOUT)
    err = failed.value.args[0]
    assert err.fatal() or err.code() in FENCED_CODES, err

    assert_exactly(consume_all(bs, topic, P, READ_COMMITTED), by_partition(committed, P),
                   "read_committed: the committed transaction only")
    assert_exactly(consume_all(bs, topic, P, READ_UNCOMMITTED), by_partition(committed + hanging, P),
                   "read_uncommitted: the aborted records too")


EXPIRATION_MS = 3000


@pytest.fixture(scope="module")
def expiring(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("txn-expiry"), name="txn-expiry", fsync="interval",
               extra_env={"CHRONIK_GROUPS__TRANSACTIONAL_ID_EXPIRATION_MS": str(EXPIRATION_MS)})
    b.start()
    yield b
    assert b.stop() == 0


def listed(broker, tid: str) -> list[dict]:
    return [t for t in broker.get("/admin/transactions").json()["transactions"] if t["transactional_id"] == tid]


@pytest.mark.timeout(240)
def test_an_idle_transactional_id_is_forgotten_after_its_expiration(expiring):
    """As Kafka's transactional.id.expiration.ms: an id with no transaction open for longer is
    forgotten (a tombstone in __transaction_state); one with a transaction open is not. After a
    kill -9 the forgotten id stays forgotten: initialising it again allocates a new producer id."""
    bs = expiring.bootstrap
    topic = unique_topic("txn-expiry")
    create_topic(bs, topic, 1)
    idle_tid, open_tid = unique_topic("tid-idle"), unique_topic("tid-open")
    idle = txn_producer(bs, idle_tid)
    idle.init_transactions(TXN_CALL_TIMEOUT)
    produce_txn(idle, topic, numbered("expiry", 0, 5, 1), True, Delivered())
    [before] = listed(expiring, idle_tid)
    assert before["state_name"] == "CompleteCommit", before
    # Open longer than the expiration (its timeout is longer still): it must stay.
    kept = txn_producer(bs, open_tid)
    kept.init_transactions(TXN_CALL_TIMEOUT)
    kept.begin_transaction()
    produce_items(kept, topic, numbered("expiry-open", 100, 5, 1), Delivered())

    wait_until(lambda: not listed(expiring, idle_tid), 30, f"{idle_tid} forgotten after {EXPIRATION_MS} ms idle")
    assert [t["state_name"] for t in listed(expiring, open_tid)] == ["Ongoing"], "an open transaction's id stays"
    kept.commit_transaction(TXN_CALL_TIMEOUT)

    expiring.kill()
    expiring.restart()
    again = txn_producer(bs, idle_tid)
    again.init_transactions(TXN_CALL_TIMEOUT)
    [after] = listed(expiring, idle_tid)
    assert after["producer_id"] != before["producer_id"], (before, after)
    produce_txn(again, topic, numbered("expiry-again", 200, 5, 1), True, Delivered())
