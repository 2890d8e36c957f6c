"""ListOffsets (earliest, latest, by timestamp) and Fetch long polling."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import TopicPartition as CkTopicPartition
from kafka import KafkaProducer
from kafka.structs import TopicPartition

import kproto
from client_helpers import ck_consumer, create_topic, kp_consumer

BASE_TS = 1_700_000_000_000  # fixed CreateTime timestamps, 1 s apart


@pytest.fixture
def ts_topic(broker, topic):
    """10 records at offsets 0..9 with timestamps BASE_TS + i*1000: offsets 0-4 one batch each,
    5-9 together in one batch (so lookups must look inside a batch)."""
    create_topic(broker.bootstrap, topic, 1)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=200)
    try:
        for i in range(5):
            p.send(topic, b"v%d" % i, partition=0, timestamp_ms=BASE_TS + i * 1000).get(timeout=30)
        futs = [p.send(topic, b"v%d" % i, partition=0, timestamp_ms=BASE_TS + i * 1000) for i in range(5, 10)]
        p.flush(30)
        assert [f.get(timeout=0).offset for f in futs] == list(range(5, 10))
    finally:
        p.close()
    return topic


# target timestamp -> (offset, timestamp) expected, or None
TS_CASES = {
    BASE_TS - 1: (0, BASE_TS),
    BASE_TS: (0, BASE_TS),
    BASE_TS + 1: (1, BASE_TS + 1000),
    BASE_TS + 3500: (4, BASE_TS + 4000),
    BASE_TS + 5000: (5, BASE_TS + 5000),
    BASE_TS + 6001: (7, BASE_TS + 7000),
    BASE_TS + 9000: (9, BASE_TS + 9000),
    BASE_TS + 9001: None,
}


def test_earliest_latest_kafka_python(broker, ts_topic):
    c = kp_consumer(broker.bootstrap)
    try:
        tp = TopicPartition(ts_topic, 0)
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: 10}
    finally:
        c.close()


def test_earliest_latest_raw_list_offsets_v1(broker, ts_topic):
    for ts, want in ((-2, 0), (-1, 10)):
        _, body = kproto.call(broker.bootstrap, kproto.list_offsets_v1(1, ts_topic, 0, ts))
        [res] = kproto.parse_list_offsets_v1(body)
        assert (res["error_code"], res["offset"]) == (0, want), f"ListOffsets(timestamp={ts}): {res}"


def test_offsets_for_times_kafka_python(broker, ts_topic):
    c = kp_consumer(broker.bootstrap)
    try:
        tp = TopicPartition(ts_topic, 0)
        for target, want in TS_CASES.items():
            got = c.offsets_for_times({tp: target})[tp]
            got = None if got is None else (got.offset, got.timestamp)
            assert got == want, f"offsets_for_times({target - BASE_TS:+d} ms from base): {got} != {want}"
    finally:
        c.close()


def test_offsets_for_times_confluent(broker, ts_topic):
    c = ck_consumer(broker.bootstrap)
    try:
        for target, want in TS_CASES.items():
            [res] = c.offsets_for_times([CkTopicPartition(ts_topic, 0, target)], timeout=15)
            assert res.error is None, res.error
            want_offset = -1 if want is None else want[0]  # librdkafka reports "none" as -1 (OFFSET_END)
            assert res.offset == want_offset, f"offsets_for_times({target - BASE_TS:+d} ms): {res.offset} != {want}"
    finally:
        c.close()


def test_offsets_for_times_out_of_order_timestamps(broker, topic):
    """The earliest OFFSET whose timestamp >= target, not a binary search on timestamps."""
    create_topic(broker.bootstrap, topic, 1)
    stamps = [BASE_TS + 5000, BASE_TS + 1000, BASE_TS + 3000, BASE_TS + 8000]
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        for i, ts in enumerate(stamps):
            p.send(topic, b"v%d" % i, partition=0, timestamp_ms=ts).get(timeout=30)
    finally:
        p.close()
    c = kp_consumer(broker.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        for target, want_offset in ((BASE_TS + 2000, 0), (BASE_TS + 5000, 0), (BASE_TS + 5001, 3)):
            got = c.offsets_for_times({tp: target})[tp]
            assert got is not None and got.offset == want_offset, \
                f"target {target - BASE_TS:+d}: got {got}, want offset {want_offset}"
    finally:
        c.close()


def test_fetch_on_empty_partition_waits_max_wait(broker, topic):
    """No busy loop: an empty fetch is answered only after max_wait_ms, and then with no records."""
    create_topic(broker.bootstrap, topic, 1)
    with kproto.connect(broker.bootstrap) as s:
        for corr, max_wait_ms in ((1, 1500), (2, 1000)):
            t0 = time.monotonic()
            s.sendall(kproto.fetch_v4(corr, topic, 0, 0, max_wait_ms=max_wait_ms))
            got_corr, body = kproto.read_response(s)
            elapsed = time.monotonic() - t0
            assert got_corr == corr
            [res] = kproto.parse_fetch_v4(body)
            assert res["error_code"] == 0 and res["high_watermark"] == 0, res
            assert not res["records"], "records returned from an empty partition"
            assert elapsed >= max_wait_ms / 1000 * 0.9, f"empty fetch answered after {elapsed:.3f}s < max_wait"
            assert elapsed < max_wait_ms / 1000 + 2.0, f"empty fetch answered after {elapsed:.3f}s"


def test_fetch_long_poll_wakes_on_produce(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    produced_at = {}

    def produce_later():
        time.sleep(1.0)  # the point of the test: data arrives while the fetch is parked
        produced_at["t"] = time.monotonic()
        batch = kproto.record_batch([b"late-arrival"])
        kproto.call(broker.bootstrap, kproto.produce_v3(9, topic, 0, batch, acks=-1))
        produced_at["acked"] = time.monotonic()

    with kproto.connect(broker.bootstrap, timeout=20) as s:
        t0 = time.monotonic()
        s.sendall(kproto.fetch_v4(1, topic, 0, 0, max_wait_ms=10_000))
        th = threading.Thread(target=produce_later)
        th.start()
        _, body = kproto.read_response(s)
        answered = time.monotonic()
        th.join(20)
    [res] = kproto.parse_fetch_v4(body)
    assert res["error_code"] == 0, res
    records = kproto.decode_records(res["records"] or b"")
    assert [(o, v) for o, _ts, _k, v in records] == [(0, b"late-arrival")], records
    assert answered - t0 >= 0.9, f"fetch returned after {answered - t0:.3f}s, before the data existed"
    assert answered - produced_at["t"] < 2.0, \
        f"parked fetch answered {answered - produced_at['t']:.3f}s after the produce (max_wait was 10 s)"


def test_consumer_long_poll_receives_late_message(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    c = kp_consumer(broker.bootstrap, fetch_max_wait_ms=10_000)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        t0 = time.monotonic()
        sent_at = None
        received = []
        while time.monotonic() - t0 < 15 and not received:
            batch = c.poll(timeout_ms=200)
            if batch:
                assert sent_at is not None, f"poll returned records before anything was produced: {batch}"
                received = [r.value for recs in batch.values() for r in recs]
                break
            if sent_at is None and time.monotonic() - t0 >= 1.0:
                p.send(topic, b"hello-late", partition=0).get(timeout=10)
                sent_at = time.monotonic()
        arrived = time.monotonic()
        assert received == [b"hello-late"]
        # Far below fetch_max_wait_ms (10 s): the parked fetch was woken by the append.
        assert arrived - sent_at < 3.0, f"message reached the consumer {arrived - sent_at:.3f}s after its ack"
    finally:
        p.close()
        c.close()
