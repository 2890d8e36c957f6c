"""Kafka client helpers shared by the tests (kafka-python, confluent-kafka): payloads, consume-to-end, admin.

Consumers never join a group (the broker has no group coordinator yet): they
`assign()` partitions and read from the beginning up to the high watermark
sampled before reading.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from collections import defaultdict
from typing import Optional

from confluent_kafka import Consumer, KafkaError, Producer as CkProducer, TopicPartition as CkTopicPartition
from confluent_kafka import OFFSET_BEGINNING
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition

from harness import wait_until

Record = tuple[int, Optional[bytes], Optional[bytes]]  # (offset, key, value)


def payload(seed: str, i: int) -> bytes:
    """Deterministic, partly compressible, variable-length bytes (1..400) including all byte values."""
    rnd = random.Random(f"{seed}/{i}")
    n = rnd.randint(1, 400)
    raw = rnd.randbytes(n // 2)
    text = (f"{seed}:{i}:" * (n // 8 + 1)).encode()[: n - len(raw)]
    return raw + text


def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="chronik-it-admin",
                            request_timeout_ms=15000)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    a = admin(bootstrap)
    try:
        a.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
        wait_until(lambda: _partition_count(a, topic) == partitions, 15,
                   f"topic {topic} with {partitions} partitions in metadata")
    finally:
        a.close()


def describe_producers(bootstrap: str, topic: str, partition: int = 0) -> dict[int, tuple[int, int]]:
    """DescribeProducers (kafka-python admin): producer id -> (epoch, last sequence)."""
    tp = TopicPartition(topic, partition)
    a = admin(bootstrap)
    try:
        state = a.describe_producers([tp])[tp]
    finally:
        a.close()
    return {p.producer_id: (p.producer_epoch, p.last_sequence) for p in state.active_producers}


def _partition_count(a: KafkaAdminClient, topic: str) -> int:
    for t in a.describe_topics([topic]):
        if t["name"] == topic and t.get("error_code", 0) == 0:
            return len(t["partitions"])
    return -1


# ---- kafka-python ------------------------------------------------------------


def kp_consumer(bootstrap: str, **overrides) -> KafkaConsumer:
    cfg = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
               auto_offset_reset="earliest", client_id="chronik-it-consumer",
               request_timeout_ms=30000)
    cfg.update(overrides)
    return KafkaConsumer(**cfg)


def kp_consume_all(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> dict[int, list[Record]]:
    """Every record of every partition, read with kafka-python up to the end offsets."""
    c = kp_consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning()
        ends = c.end_offsets(tps)
        out: dict[int, list[Record]] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + timeout
        while any(c.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                got = {p: len(v) for p, v in out.items()}
                raise AssertionError(f"kafka-python consume of {topic} timed out: got {got}, end offsets {ends}")
            for tp, recs in c.poll(timeout_ms=500, max_records=10000).items():
                out[tp.partition].extend((r.offset, r.key, r.value) for r in recs)
        return out
    finally:
        c.close()


class AckTracker:
    """Futures' callbacks record which numbered messages were acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked: dict[int, int] = {}   # message number -> offset
        self.errors: list[tuple[int, str]] = []

    def on_ok(self, n: int):
        def cb(meta):
            with self.lock:
                self.acked[n] = meta.offset
        return cb

    def on_err(self, n: int):
        def cb(exc):
            with self.lock:
                self.errors.append((n, repr(exc)))
        return cb

    def send(self, producer: KafkaProducer, topic: str, n: int, value: bytes, partition: Optional[int] = None,
             key: Optional[bytes] = None):
        fut = producer.send(topic, value=value, key=key, partition=partition)
        fut.add_callback(self.on_ok(n))
        fut.add_errback(self.on_err(n))
        return fut

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


class AckedProducer:
    """An idempotent acks=all confluent-kafka producer sending numbered values (`prefix` + number)
    round-robin over partitions 0..partitions-1, recording what was acknowledged and what failed."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, prefix: bytes, **config):
        self.producer = CkProducer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                    **config})
        self.topic, self.partitions, self.prefix = topic, partitions, prefix
        self.acked: list[bytes] = []
        self.failed: list = []

    def _report(self, err, msg) -> None:
        (self.failed if err else self.acked).append(err or msg.value())

    def send(self, n: int, start: int) -> None:
        """Values `start`..`start + n - 1`, about 500 a second."""
        for i in range(start, start + n):
            self.producer.produce(self.topic, self.prefix + b"%05d" % i, partition=i % self.partitions,
                                  on_delivery=self._report)
            self.producer.poll(0)
            time.sleep(0.002)

    def flush(self, timeout: float = 60) -> int:
        """Waits for every answer; returns how many are still outstanding."""
        return self.producer.flush(timeout)


class BackgroundProducer:
    """A kafka-python producer sending numbered messages in a thread until stopped."""

    def __init__(self, bootstrap: str, topic: str, partition: Optional[int] = 0, pace_s: float = 0.002,
                 limit: Optional[int] = None, **producer_cfg):
        self.topic = topic
        self.partition = partition
        self.pace_s = pace_s
        self.limit = limit
        self.tracker = AckTracker()
        self.sent = 0
        self.send_errors: list[str] = []
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="chronik-it-bg", **producer_cfg)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bg-producer-{topic}", daemon=True)

    def start(self) -> "BackgroundProducer":
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set() and (self.limit is None or self.sent < self.limit):
            n = self.sent
            try:
                self.tracker.send(self.producer, self.topic, n, b"msg-%08d" % n, partition=self.partition)
            except Exception as exc:  # noqa: BLE001 - recorded, asserted by the test
                self.send_errors.append(repr(exc))
                time.sleep(0.05)
                continue
            self.sent += 1
            if self.pace_s:
                time.sleep(self.pace_s)

    def finish(self, flush_timeout: float = 120.0) -> AckTracker:
        self._stop.set()
        self._thread.join(30)
        self.producer.flush(timeout=flush_timeout)
        self.producer.close(timeout=10)
        return self.tracker

    def wait_acked(self, count: int, timeout: float = 60.0):
        wait_until(lambda: self.tracker.count() >= count, timeout,
                   f"{count} acks on {self.topic} (have {self.tracker.count()}, errors {self.tracker.errors[:3]})")


def check_numbered(records: list[Record], acked: set[int], sent: int) -> None:
    """Every acknowledged numbered message is present exactly once, all in send order,
    nothing unknown, no duplicates at all."""
    numbers = []
    for offset, _k, v in records:
        assert v is not None and v.startswith(b"msg-"), f"unexpected record at offset {offset}: {v!r}"
        numbers.append(int(v[4:]))
    counts = defaultdict(int)
    for n in numbers:
        counts[n] += 1
    dups = sorted(n for n, c in counts.items() if c > 1)
    assert not dups, f"{len(dups)} duplicated messages, e.g. {dups[:10]}"
    missing = sorted(acked - set(numbers))
    assert not missing, f"{len(missing)} acknowledged messages missing, e.g. {missing[:10]}"
    unknown = [n for n in numbers if n >= sent]
    assert not unknown, f"messages never sent were read: {unknown[:10]}"
    out_of_order = [(a, b) for a, b in zip(numbers, numbers[1:]) if b <= a]
    assert not out_of_order, f"messages out of order, e.g. {out_of_order[:5]}"
    offsets = [o for o, _k, _v in records]
    assert offsets == list(range(len(offsets))), f"offsets not 0..{len(offsets) - 1}: {offsets[:5]}...{offsets[-5:]}"


# ---- confluent-kafka -----------------------------------------------------------


def ck_consumer(bootstrap: str, **overrides) -> Consumer:
    cfg = {
        "bootstrap.servers": bootstrap,
        "group.id": "chronik-it-nogroup",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "client.id": "chronik-it-ck-consumer",
        "log_level": 3,  # no coordinator yet: keep its retries out of the log
    }
    cfg.update(overrides)
    return Consumer(cfg)


def ck_consume_all(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> dict[int, list[Record]]:
    """Every record of every partition, read with confluent-kafka up to the high watermarks."""
    c = ck_consumer(bootstrap)
    try:
        # A leader that just changed answers NOT_LEADER until the client's metadata catches up.
        ends = {p: wait_until(lambda p=p: c.get_watermark_offsets(CkTopicPartition(topic, p), timeout=15), 30,
                              f"the high watermark of {topic}-{p}")[1] for p in range(partitions)}
        c.assign([CkTopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out: dict[int, list[Record]] = {p: [] for p in range(partitions)}
        nxt = {p: 0 for p in range(partitions)}
        deadline = time.monotonic() + timeout
        while any(nxt[p] < ends[p] for p in range(partitions)):
            if time.monotonic() > deadline:
                got = {p: len(v) for p, v in out.items()}
                raise AssertionError(f"confluent consume of {topic} timed out: got {got}, high watermarks {ends}")
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error on {topic}: {m.error()}")
                out[m.partition()].append((m.offset(), m.key(), m.value()))
                nxt[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


def ck_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    c = ck_consumer(bootstrap)
    try:
        return {p: c.get_watermark_offsets(CkTopicPartition(topic, p), timeout=15) for p in range(partitions)}
    finally:
        c.close()


def fill_and_wait_for_retention(b, topic: str, what: str, segment_bytes: int = 2048,
                                retention_bytes: int = 8192) -> dict:
    """Produces 400 records of 100 bytes to partition 0 of `topic` (whose segments roll at
    `segment_bytes`), then waits until retention has deleted old segments. Kafka's rule deletes
    the oldest segment while what remains stays at least `retention_bytes`, so the log settles
    between that and one segment more (plus the active one). Returns the partition's
    /admin/partitions entry."""
    p = KafkaProducer(bootstrap_servers=b.bootstrap, linger_ms=0, batch_size=200)
    for i in range(400):
        p.send(topic, b"x" * 100, partition=0)
        if i % 20 == 0:
            p.flush()
    p.flush()
    p.close()
    bound = retention_bytes + 2 * segment_bytes + 4096

    def trimmed():
        q = b.partition(topic, 0)
        return q if q and q["log_start_offset"] > 0 and q["replica"]["size_bytes"] < bound else None

    part = wait_until(trimmed, 20, what)
    assert part["high_watermark"] == 400, part
    return part


def ck_produce_waiting(producer: CkProducer, topic: str, value: bytes, partition: int, on_delivery) -> None:
    """`producer.produce`, serving delivery reports while librdkafka's queue is full."""
    while True:
        try:
            producer.produce(topic, value=value, partition=partition, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.05)


class PacedProducer:
    """A confluent-kafka producer sending numbered values (`prefix` + number) round-robin over
    the first `partitions` partitions of each of `topics` at `rate` per second, in its own
    thread; records each ack (topic, partition, offset, value) with its latency, and every
    error. With `broker_stats`, librdkafka's view of each broker once a second (see
    `broker_summary`): where an ack's time went, in the client's queue or on the wire."""

    def __init__(self, bootstrap: str, topics: list[str], partitions: int, rate: int, prefix: bytes,
                 broker_stats: bool = False, **config):
        # (when, {node id: (request round trip p99 ms, queue wait p99 ms, requests awaiting answers)})
        self.broker_stats: list[tuple[float, dict[int, tuple[float, float, int]]]] = []
        if broker_stats:
            config = {"statistics.interval.ms": 1000, "stats_cb": self._record_stats, **config}
        self.producer = CkProducer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 3, **config})
        self.topics, self.partitions, self.rate, self.prefix = topics, partitions, rate, prefix
        self.acked: list[tuple[str, int, int, bytes]] = []
        self.latencies: list[tuple[float, float]] = []  # (sent at, ms)
        self.errors: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scale-producer", daemon=True)

    def _report(self, sent_at: float):
        def report(err, msg):
            if err:
                self.errors.append(str(err))
                return
            self.acked.append((msg.topic(), msg.partition(), msg.offset(), msg.value()))
            self.latencies.append((sent_at, (time.monotonic() - sent_at) * 1000))
        return report

    def _record_stats(self, stats_json: str):
        brokers = json.loads(stats_json)["brokers"].values()
        self.broker_stats.append((time.monotonic(), {
            b["nodeid"]: (b["rtt"]["p99"] / 1000, b["int_latency"]["p99"] / 1000, b["waitresp_cnt"])
            for b in brokers if b["nodeid"] >= 0}))

    def broker_summary(self, since: float, until: float) -> str:
        """The broker statistics taken in [since, until): per broker, the p99 request round trip,
        the p99 wait in the client's queue before a request took the record, and the requests
        awaiting an answer (librdkafka sends one request per partition and, with idempotence, at
        most five at a time per broker: round trips that grow turn into queue wait)."""
        return "; ".join(
            " ".join(f"b{n} rtt {rtt:.0f} queue {queue:.0f} in-flight {waiting}"
                     for n, (rtt, queue, waiting) in sorted(brokers.items()))
            for t, brokers in self.broker_stats if since <= t < until)

    def _run(self):
        start = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while self.sent < due:
                i = self.sent
                topic, partition = self.topics[i % len(self.topics)], (i // len(self.topics)) % self.partitions
                self.producer.produce(topic, self.prefix + b"%08d" % i, partition=partition,
                                      on_delivery=self._report(time.monotonic()))
                self.sent += 1
            self.producer.poll(0.005)

    def start(self) -> "PacedProducer":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.producer.flush(120)

    def p99(self, since: float, until: float) -> tuple[float, int]:
        window = sorted(ms for t, ms in self.latencies if since <= t < until)
        assert len(window) >= 100, f"only {len(window)} acks between {since:.1f} and {until:.1f}"
        return statistics.quantiles(window, n=100)[98], len(window)
