"""Topic configs that change what Produce accepts and stores (issue 15): `max.message.bytes`,
the `message.timestamp.*` window and `message.timestamp.type=LogAppendTime`, through
kafka-python and confluent-kafka, created with the topic and changed at run time."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TIMESTAMP_LOG_APPEND_TIME
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import InvalidTimestampError, MessageSizeTooLargeError

from harness import wait_until

HOUR_MS = 3_600_000


def new_topic(bootstrap: str, configs: dict[str, str]) -> str:
    topic = f"rules-{uuid.uuid4().hex[:8]}"
    ac = AdminClient({"bootstrap.servers": bootstrap})
    ac.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(15)
    wait_until(lambda: topic in ac.list_topics(timeout=5).topics, 15, f"{topic} in metadata")
    return topic


def set_config(bootstrap: str, topic: str, key: str, value: str) -> None:
    ac = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource("topic", topic, incremental_configs=[ConfigEntry(key, value,
                                                                            incremental_operation=AlterConfigOpType.SET)])
    ac.incremental_alter_configs([res])[res].result(15)


def kp_producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, retries=0, enable_idempotence=False,
                         request_timeout_ms=10000)


def read_all(bootstrap: str, topic: str, n: int) -> list:
    c = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10000)
    try:
        c.assign([TopicPartition(topic, 0)])
        out = []
        for m in c:
            out.append(m)
            if len(out) == n:
                break
        return out
    finally:
        c.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_batch_above_max_message_bytes_is_refused_and_smaller_ones_land(broker):
    topic = new_topic(broker.bootstrap, {"max.message.bytes": "2048"})
    p = kp_producer(broker.bootstrap)
    try:
        assert p.send(topic, b"small").get(10).offset == 0
        with pytest.raises(MessageSizeTooLargeError):
            p.send(topic, b"x" * 4096).get(10)
        # Raised at run time, the limit lets the same record through.
        set_config(broker.bootstrap, topic, "max.message.bytes", "65536")
        assert p.send(topic, b"x" * 4096).get(10).offset == 1
    finally:
        p.close()
    assert [len(m.value) for m in read_all(broker.bootstrap, topic, 2)] == [5, 4096]

    # confluent-kafka reports the broker's MESSAGE_TOO_LARGE on the delivery report.
    set_config(broker.bootstrap, topic, "max.message.bytes", "1024")
    errors = []
    ck = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "enable.idempotence": False,
                   "message.send.max.retries": 0})
    ck.produce(topic, b"y" * 3000, on_delivery=lambda err, msg: errors.append(err))
    ck.flush(15)
    assert [e.code() for e in errors] == [KafkaError.MSG_SIZE_TOO_LARGE], errors


def test_timestamps_outside_the_window_are_invalid_timestamp(broker):
    topic = new_topic(broker.bootstrap, {"message.timestamp.before.max.ms": str(HOUR_MS),
                                         "message.timestamp.after.max.ms": "60000"})
    p = kp_producer(broker.bootstrap)
    try:
        assert p.send(topic, b"now", timestamp_ms=now_ms()).get(10).offset == 0
        assert p.send(topic, b"half an hour old", timestamp_ms=now_ms() - HOUR_MS // 2).get(10).offset == 1
        with pytest.raises(InvalidTimestampError):
            p.send(topic, b"two hours old", timestamp_ms=now_ms() - 2 * HOUR_MS).get(10)
        with pytest.raises(InvalidTimestampError):
            p.send(topic, b"an hour ahead", timestamp_ms=now_ms() + HOUR_MS).get(10)
        # Widened at run time, the old record is accepted.
        set_config(broker.bootstrap, topic, "message.timestamp.before.max.ms", str(3 * HOUR_MS))
        old = now_ms() - 2 * HOUR_MS
        assert p.send(topic, b"two hours old", timestamp_ms=old).get(10).offset == 2
    finally:
        p.close()
    got = read_all(broker.bootstrap, topic, 3)
    assert [m.value for m in got] == [b"now", b"half an hour old", b"two hours old"]
    assert got[2].timestamp == old, "CreateTime is kept as produced"


def test_the_deprecated_difference_bounds_both_sides(broker):
    topic = new_topic(broker.bootstrap, {"message.timestamp.difference.max.ms": str(HOUR_MS)})
    errors = []
    ck = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "enable.idempotence": False,
                   "message.send.max.retries": 0})
    for ts in (now_ms(), now_ms() - 2 * HOUR_MS, now_ms() + 2 * HOUR_MS):
        ck.produce(topic, b"v", timestamp=ts, on_delivery=lambda err, msg: errors.append(err and err.code()))
        ck.flush(15)
    assert errors == [None, KafkaError.INVALID_TIMESTAMP, KafkaError.INVALID_TIMESTAMP]


def test_a_log_append_time_topic_stamps_records_with_the_brokers_time(broker):
    topic = new_topic(broker.bootstrap, {"message.timestamp.type": "LogAppendTime",
                                         "message.timestamp.before.max.ms": "1000"})
    long_ago = 1_000_000_000_000  # 2001: no window applies to LogAppendTime
    before = now_ms()
    p = kp_producer(broker.bootstrap)
    try:
        meta = p.send(topic, b"kp", timestamp_ms=long_ago).get(10)
    finally:
        p.close()
    ck = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    ck.produce(topic, b"ck", timestamp=long_ago)
    assert ck.flush(15) == 0
    after = now_ms()
    # kafka-python's record metadata carries the produce response's log_append_time.
    assert before - 1000 <= meta.timestamp <= after + 1000, (before, meta.timestamp, after)

    got = read_all(broker.bootstrap, topic, 2)
    assert [m.value for m in got] == [b"kp", b"ck"]
    for m in got:
        assert m.timestamp_type == 1, "LogAppendTime"
        assert before - 1000 <= m.timestamp <= after + 1000, (before, m.timestamp, after)
    assert got[0].timestamp == meta.timestamp

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"lat-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        seen = []
        deadline = time.monotonic() + 20
        while len(seen) < 2 and time.monotonic() < deadline:
            m = c.poll(1)
            if m is not None and m.error() is None:
                seen.append(m.timestamp())
        assert len(seen) == 2
        assert all(kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= after + 1000 for kind, ts in seen), seen
    finally:
        c.close()
