"""Transactions in a compacted topic (what Kafka Streams' changelogs are under exactly_once_v2),
on one broker whose cleaner runs every 300 ms over 1 KiB segments (compaction_helpers).

A confluent-kafka transactional producer writes 10 keys in 6 rounds of one transaction each;
rounds 2 and 5 abort, so the last committed version of every key is round 4's and round 5's
aborted versions come after it. Kafka's cleaner rules, asserted with real consumers:
- an aborted record is removed, and it never counts as a newer version of its key: once cleaned,
  read_committed and read_uncommitted consumers both read exactly round 4's records plus the
  fillers, at the offsets they were written at;
- a commit or abort marker stays while a record of its transaction does, and goes once none does
  and `delete.retention.ms` (3 s) has passed since its first cleaning; a producer's last batch
  (its round-5 marker) always stays, so its epoch survives restarts: in the end the log holds the
  markers of rounds 4 and 5 only;
- after kill -9 and a restart the views are the same, the last stable offset is the high
  watermark, and the same transactional.id commits a new transaction.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from kafka.record import MemoryRecords

import kproto
from compaction_helpers import CLEANER_ENV, compact_configs, create_compacted
from harness import Broker, unique_topic, wait_until
from txn_helpers import (READ_COMMITTED, READ_UNCOMMITTED, TXN_CALL_TIMEOUT, Delivered, ck_reader_config,
                         end_offsets, last_stable_offsets, txn_producer)

KEYS, ROUNDS, ABORTED = 10, 6, {2, 5}
RETENTION_MS = 3000
END = b"END-"

View = list[tuple[int, bytes, bytes]]  # (offset, key, value)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("txn-compaction"), name="txn-compaction", fsync="interval",
               auto_create_topics=False, extra_env=CLEANER_ENV)
    b.start()
    yield b
    assert b.stop() == 0


def keyed(producer: Producer, topic: str, items: list[tuple[bytes, bytes]]) -> dict[bytes, int]:
    """Produces keyed records to partition 0; returns value -> offset (every one must succeed)."""
    d = Delivered()
    for k, v in items:
        producer.produce(topic, key=k, value=v, partition=0, on_delivery=d)
    assert producer.flush(TXN_CALL_TIMEOUT) == 0 and not d.failed, d.failed
    return {v: off for v, (_p, off) in d.ok.items()}


def read(bootstrap: str, topic: str, isolation: str) -> View:
    """Everything before a fresh keyed END record, read from the beginning with `isolation`."""
    sealer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    end = keyed(sealer, topic, [(END + uuid.uuid4().hex.encode(), b"end")])[b"end"]
    c = Consumer(ck_reader_config(bootstrap, isolation))
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: View = []
    try:
        def past_end():
            for m in c.consume(1000, 0.5):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.key(), m.value()))
            return out and out[-1][0] >= end
        wait_until(past_end, 60, f"{isolation} read of {topic} up to offset {end}")
    finally:
        c.close()
    return [r for r in out if r[0] < end and not r[1].startswith(END)]


def control_batches(bootstrap: str, topic: str) -> list[int]:
    """Base offsets of the control batches (markers) the partition holds, from a raw fetch."""
    _cid, body = kproto.call(bootstrap, kproto.fetch_v4(5, topic, 0, 0, max_wait_ms=0, max_bytes=8 << 20))
    [p] = kproto.parse_fetch_v4(body)
    assert p["error_code"] == 0, p
    out, records = [], MemoryRecords(p["records"] or b"")
    while (batch := records.next_batch()) is not None:
        if batch.is_control_batch:
            out.append(batch.base_offset)
    return out


def test_aborted_records_and_spent_markers_are_compacted_away(broker):
    bs = broker.bootstrap
    topic = unique_topic("txn-compacted")
    create_compacted(bs, topic, configs=compact_configs({"delete.retention.ms": str(RETENTION_MS)}))
    txn_id = unique_topic("tid-compacted")
    prod = txn_producer(bs, txn_id)
    prod.init_transactions(TXN_CALL_TIMEOUT)
    written: dict[int, View] = {}  # round -> its records
    markers: dict[int, int] = {}  # round -> its marker's offset (one producer, one partition)
    pad = b"p" * 40
    for r in range(ROUNDS):
        prod.begin_transaction()
        items = [(b"k%02d" % k, b"k%02d:r%d:" % (k, r) + pad) for k in range(KEYS)]
        sent = keyed(prod, topic, items)
        written[r] = [(sent[v], k, v) for k, v in items]
        markers[r] = max(sent.values()) + 1
        (prod.abort_transaction if r in ABORTED else prod.commit_transaction)(TXN_CALL_TIMEOUT)
    # Non-transactional records with fresh keys push the rounds out of the active segment.
    plain = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    items = [(b"fill-%03d" % i, b"filler-%03d:" % i + pad) for i in range(40)]
    sent = keyed(plain, topic, items)
    want = written[4] + [(sent[v], k, v) for k, v in items]

    def cleaned(isolation: str):
        view = read(bs, topic, isolation)
        return view == want or None

    for iso in (READ_UNCOMMITTED, READ_COMMITTED):
        wait_until(lambda iso=iso: cleaned(iso), 60, f"{iso}: round 4's records and the fillers only")

    # Markers: every round's stays until delete.retention.ms after its first cleaning; then only
    # round 4's (its records are there) and round 5's (the producer's last batch) are left.
    assert set(control_batches(bs, topic)) >= {markers[4], markers[5]}
    wait_until(lambda: control_batches(bs, topic) == [markers[4], markers[5]], 60,
               f"only the markers of rounds 4 and 5 ({markers[4]}, {markers[5]}) left")
    # The aborted rounds' markers are gone, so the partition must no longer report those
    # transactions as aborted: a read_committed consumer would wait for their markers and skip
    # round 4, the same producer's later records.
    assert read(bs, topic, READ_COMMITTED) == want

    broker.kill()
    broker.restart()
    for iso in (READ_UNCOMMITTED, READ_COMMITTED):
        assert read(bs, topic, iso) == want, f"{iso} after kill -9"
    wait_until(lambda: last_stable_offsets(bs, topic, 1) == end_offsets(bs, topic, 1), 30,
               "the last stable offset is the high watermark: no transaction left open by the cleaning")
    again = txn_producer(bs, txn_id)
    again.init_transactions(TXN_CALL_TIMEOUT)
    again.begin_transaction()
    new = keyed(again, topic, [(b"k00", b"k00:after-restart")])
    again.commit_transaction(TXN_CALL_TIMEOUT)
    view = read(bs, topic, READ_COMMITTED)
    assert view[-1] == (new[b"k00:after-restart"], b"k00", b"k00:after-restart"), view[-3:]
