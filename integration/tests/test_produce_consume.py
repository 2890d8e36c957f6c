"""Produce 20,000 messages over 3 partitions with each codec, read them back byte-exact.

Each case uses its own topic. Partition of message i is i % 3, so the expected
per-partition contents (and end offsets) are known exactly. Every topic is read
back with both kafka-python and confluent-kafka.
"""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Producer
from kafka import KafkaProducer
from kafka.structs import TopicPartition

from client_helpers import ck_consume_all, ck_watermarks, create_topic, kp_consume_all, kp_consumer, payload
from harness import unique_topic

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 20_000
PARTITIONS = 3


def expected(seed: str) -> dict[int, list[tuple[bytes, bytes]]]:
    out: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in range(PARTITIONS)}
    for i in range(N):
        out[i % PARTITIONS].append((b"k%d" % i, payload(seed, i)))
    return out


def assert_partition_equal(got, want, label: str) -> None:
    assert len(got) == len(want), f"{label}: got {len(got)} records, want {len(want)}"
    for idx, ((offset, key, value), (wkey, wvalue)) in enumerate(zip(got, want)):
        assert offset == idx, f"{label}: record {idx} has offset {offset}"
        if (key, value) != (wkey, wvalue):
            raise AssertionError(f"{label}: record at offset {offset} differs: key {key!r} vs {wkey!r}, "
                                 f"value[:60] {value[:60]!r} vs {wvalue[:60]!r} (len {len(value)} vs {len(wvalue)})")


def verify_topic(bootstrap: str, topic: str, want: dict[int, list[tuple[bytes, bytes]]]) -> None:
    counts = {p: len(v) for p, v in want.items()}
    # End offsets as both clients see them.
    c = kp_consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        assert {tp.partition: o for tp, o in c.end_offsets(tps).items()} == counts, "kafka-python end_offsets"
        assert {tp.partition: o for tp, o in c.beginning_offsets(tps).items()} == {p: 0 for p in counts}
    finally:
        c.close()
    assert ck_watermarks(bootstrap, topic, PARTITIONS) == {p: (0, n) for p, n in counts.items()}, \
        "confluent get_watermark_offsets"
    for client, consume in (("kafka-python", kp_consume_all), ("confluent-kafka", ck_consume_all)):
        got = consume(bootstrap, topic, PARTITIONS)
        for p in range(PARTITIONS):
            assert_partition_equal(got[p], want[p], f"{client} consumer, {topic}[{p}]")


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_default_producer_roundtrip(broker, codec):
    topic = unique_topic(f"kp-{codec}")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    want = expected(topic)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap,
                             compression_type=None if codec == "none" else codec)
    try:
        # The 3.x defaults this test exists to exercise.
        assert producer.config["enable_idempotence"] is True
        assert producer.config["acks"] == -1
        futures = [producer.send(topic, key=b"k%d" % i, value=payload(topic, i), partition=i % PARTITIONS)
                   for i in range(N)]
        producer.flush(timeout=120)
        metas = [f.get(timeout=0) for f in futures]  # raises the first delivery error
    finally:
        producer.close(timeout=10)
    acked = {p: [m.offset for m in metas if m.partition == p] for p in range(PARTITIONS)}
    for p in range(PARTITIONS):
        assert acked[p] == list(range(len(want[p]))), f"acknowledged offsets of partition {p} not 0..n-1 in order"
    verify_topic(broker.bootstrap, topic, want)


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_producer_roundtrip(broker, codec):
    topic = unique_topic(f"ck-{codec}")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    want = expected(topic)
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "client.id": "chronik-it-ck-producer",
        "compression.type": codec,
        "enable.idempotence": True,
        "linger.ms": 5,
    })
    offsets: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            offsets[msg.partition()].append(msg.offset())

    for i in range(N):
        while True:
            try:
                producer.produce(topic, key=b"k%d" % i, value=payload(topic, i), partition=i % PARTITIONS,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    assert remaining == 0, f"{remaining} messages still undelivered after flush"
    assert not errors, f"{len(errors)} delivery errors, e.g. {errors[:5]}"
    for p in range(PARTITIONS):
        assert offsets[p] == list(range(len(want[p]))), f"delivered offsets of partition {p} not 0..n-1 in order"
    verify_topic(broker.bootstrap, topic, want)


def test_aiokafka_roundtrip(broker, topic):
    """aiokafka speaks the oldest versions (ApiVersions v0, InitProducerId v0)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioTP

    values = [payload(topic, i) for i in range(500)]

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                                    compression_type="gzip")
        await producer.start()
        try:
            for v in values[:-1]:
                await producer.send(topic, v, partition=0)
            meta = await producer.send_and_wait(topic, values[-1], partition=0)
        finally:
            await producer.stop()
        assert meta.offset == len(values) - 1
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        got = []
        try:
            tp = AioTP(topic, 0)
            consumer.assign([tp])
            try:
                async with asyncio.timeout(30):
                    await consumer.seek_to_beginning(tp)
                    while len(got) < len(values):
                        for recs in (await consumer.getmany(timeout_ms=500)).values():
                            got.extend((r.offset, r.value) for r in recs)
            except TimeoutError:
                raise AssertionError(f"aiokafka consumer read {len(got)} of {len(values)} records in 30 s") from None
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(run())
    assert got == list(enumerate(values))
