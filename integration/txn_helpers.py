"""What the transaction tests share (tests/test_transactions*.py, clients/test_client_transactions.py).

- `txn_cluster`            a 3-node cluster (RF 3, min ISR 2, short initial rebalance delay) for a module.
- `txn_producer`           a confluent-kafka transactional producer; `Delivered` records its delivery reports.
- `produce_txn`            begin, produce (partition, value) pairs, flush, commit or abort; asserts every
                           record was acknowledged (so an aborted one is in the log, as Kafka writes it).
- `finish_txn`             commit (or abort) the way Kafka's docs say to handle errors: retry a retriable
                           one, abort after an abortable one; returns what became of the transaction.
- `seal` / `consume_all`   Kafka offers no "end of the read_committed log" short of the last stable
                           offset, so a read ends at a marker: `seal` appends one non-transactional
                           `END-<uuid>` record to each partition, and `consume_all` reads (read_committed
                           or read_uncommitted) from offset 0 until it has read every partition's marker.
                           A read_committed consumer reaches a marker only once every transaction before
                           it has ended (the last stable offset passed it), so a hanging transaction shows
                           up as a timeout naming the last stable offsets.
- `Reader`                 a long-lived assigned consumer (no group) for tests that watch records arrive.
- `last_stable_offsets` / `end_offsets`   ListOffsets latest, READ_COMMITTED / READ_UNCOMMITTED.
- `group_committed`        a group's committed offsets (OffsetFetch through confluent's AdminClient).
- `find_txn_coordinator`   FindCoordinator v1, key type 1 (TRANSACTION), raw; `java_hash` /
                           `txn_state_partition` are Kafka's transactional.id -> __transaction_state map.
- `add_partitions_v1` / `end_txn_v1`   raw requests a test sends as a producer would (a zombie's, say),
                           with the answers' error codes from `parse_add_partitions_v1` / `parse_end_txn_v1`.

Values are unique and numbered by the tests, so "exactly once, in order" is a list equality per
partition.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional

from confluent_kafka import (OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, IsolationLevel, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, OffsetSpec

import kproto
from cluster import Cluster, started
from harness import wait_until

READ_COMMITTED = "read_committed"
READ_UNCOMMITTED = "read_uncommitted"
# Generous for a 2-core machine running three brokers: client calls that wait on the coordinator.
TXN_CALL_TIMEOUT = 60.0
GROUP_ENV = {"CHRONIK_GROUPS__INITIAL_REBALANCE_DELAY_MS": "300"}
# What librdkafka reports when another producer took the transactional.id over (a zombie).
FENCED_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
END = b"END-"

Items = list[tuple[int, bytes]]  # (partition, value)
Records = dict[int, list[tuple[int, bytes]]]  # partition -> [(offset, value)]


@contextmanager
def txn_cluster(tmp_path_factory, name: str) -> Iterator[Cluster]:
    """Nodes 1-3 (no spare), RF 3, min ISR 2; SIGTERMed at the end, each must exit 0."""
    with started(Cluster(tmp_path_factory.mktemp(name), size=3, spare=0, name="node", replication_factor=3,
                         min_insync_replicas=2, extra_env=GROUP_ENV), clean_stop=True) as c:
        yield c


def bootstrap_all(cluster: Cluster) -> str:
    return ",".join(cluster.bootstrap(i) for i in cluster.members)


# ---- Kafka's transactional.id -> coordinator -------------------------------------------------


def java_hash(s: str) -> int:
    """Java's String.hashCode (UTF-16 code units, 32-bit signed overflow)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def txn_state_partition(txn_id: str, partitions: int) -> int:
    """Kafka's TransactionStateManager.partitionFor: Utils.abs(hashCode) % partitions (Utils.abs
    is Math.abs with Integer.MIN_VALUE mapped to 0; not `& 0x7fffffff`, which is toPositive)."""
    h = java_hash(txn_id)
    return 0 if h == -(1 << 31) else abs(h) % partitions


def find_txn_coordinator(bootstrap: str, txn_id: str, timeout: float = 30.0) -> int:
    """The node id FindCoordinator v1 (key type 1, TRANSACTION) names for `txn_id`, once it names one."""
    return coordinator_node(bootstrap, txn_id, 1, timeout)


def coordinator_node(bootstrap: str, key: str, key_type: int, timeout: float = 30.0) -> int:
    """The node id FindCoordinator v1 names for `key` (key type 0 GROUP, 1 TRANSACTION), once it
    names one."""
    first = bootstrap.split(",")[0]

    def ask():
        _cid, body = kproto.call(first, kproto.frame(kproto.API_FIND_COORDINATOR, 1, 1,
                                                         kproto.string(key) + kproto.i8(key_type)), timeout=10)
        r = kproto.Reader(body)
        _throttle, error, message, node = r.i32(), r.i16(), r.string(), r.i32()
        if error != 0:
            raise AssertionError(f"FindCoordinator({key!r}, type {key_type}): error {error} {message!r}")
        return node
    return wait_until(ask, timeout, f"a coordinator for {key}", interval=0.2)


API_ADD_PARTITIONS_TO_TXN = 24
API_END_TXN = 26


def add_partitions_v1(correlation_id: int, txn_id: str, producer: tuple[int, int], topic: str,
                      partitions: list[int]) -> bytes:
    """AddPartitionsToTxn v1 for (producer id, epoch)."""
    pid, epoch = producer
    body = (kproto.string(txn_id) + kproto.i64(pid) + kproto.i16(epoch)
            + kproto.array([kproto.string(topic) + kproto.array([kproto.i32(p) for p in partitions])]))
    return kproto.frame(API_ADD_PARTITIONS_TO_TXN, 1, correlation_id, body)


def parse_add_partitions_v1(body: bytes) -> dict[tuple[str, int], int]:
    """(topic, partition) -> error code."""
    r = kproto.Reader(body)
    _throttle = r.i32()
    return {(name, p): code for name, parts in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16()))))
            for p, code in parts}


def end_txn_v1(correlation_id: int, txn_id: str, producer: tuple[int, int], commit: bool) -> bytes:
    """EndTxn v1 for (producer id, epoch)."""
    pid, epoch = producer
    body = kproto.string(txn_id) + kproto.i64(pid) + kproto.i16(epoch) + kproto.i8(1 if commit else 0)
    return kproto.frame(API_END_TXN, 1, correlation_id, body)


def parse_end_txn_v1(body: bytes) -> int:
    """The error code."""
    r = kproto.Reader(body)
    _throttle = r.i32()
    return r.i16()


# ---- producing -----------------------------------------------------------------------------


class Delivered:
    """Delivery reports: value -> (partition, offset) for successes, (value, error) for failures."""

    def __init__(self):
        self.ok: dict[bytes, tuple[int, int]] = {}
        self.failed: list[tuple[bytes, KafkaError]] = []

    def __call__(self, err, msg) -> None:
        if err is not None:
            self.failed.append((msg.value(), err))
        else:
            self.ok[msg.value()] = (msg.partition(), msg.offset())

    def offsets(self, values: Iterable[bytes]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for v in values:
            p, o = self.ok[v]
            out.setdefault(p, []).append(o)
        return out


def txn_producer(bootstrap: str, txn_id: str, **overrides) -> Producer:
    cfg = {
        "bootstrap.servers": bootstrap,
        "client.id": f"txn-it-{txn_id[:40]}",
        "transactional.id": txn_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "transaction.timeout.ms": 60000,
    }
    cfg.update(overrides)
    return Producer(cfg)


def produce_items(producer: Producer, topic: str, items: Items, delivered: Delivered,
                  flush_timeout: float = TXN_CALL_TIMEOUT) -> None:
    """Produces (partition, value) pairs in order and waits for every delivery report; each must be a success."""
    for p, v in items:
        while True:
            try:
                producer.produce(topic, v, partition=p, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
    left = producer.flush(flush_timeout)
    assert left == 0, f"{left} records of {topic} still undelivered after {flush_timeout}s"
    mine = {v for _p, v in items}
    bad = [(v, e) for v, e in delivered.failed if v in mine]
    assert not bad, f"{len(bad)} records of {topic} failed, e.g. {bad[:3]}"
    missing = [v for _p, v in items if v not in delivered.ok]
    assert not missing, f"no delivery report for {len(missing)} records, e.g. {missing[:3]}"


def produce_txn(producer: Producer, topic: str, items: Items, commit: bool, delivered: Delivered) -> None:
    """One transaction: begin, produce and flush every item, then commit or abort."""
    producer.begin_transaction()
    produce_items(producer, topic, items, delivered)
    if commit:
        producer.commit_transaction(TXN_CALL_TIMEOUT)
    else:
        producer.abort_transaction(TXN_CALL_TIMEOUT)


def finish_txn(producer: Producer, commit: bool = True, attempts: int = 3,
               timeout: float = TXN_CALL_TIMEOUT) -> tuple[str, list[KafkaError]]:
    """Commits (or aborts) the open transaction, handling errors as the client docs say: a retriable
    error -> call again; an abortable one -> abort instead. Returns ("committed" | "aborted" |
    "failed", the errors seen); "failed" is a fatal error or attempts used up."""
    errors: list[KafkaError] = []
    for _ in range(attempts):
        try:
            if commit:
                producer.commit_transaction(timeout)
            else:
                producer.abort_transaction(timeout)
            return ("committed" if commit else "aborted"), errors
        except KafkaException as exc:
            err = exc.args[0]
            errors.append(err)
            if err.fatal():
                return "failed", errors
            if commit and err.txn_requires_abort():
                commit = False
    return "failed", errors


def numbered(prefix: str, start: int, count: int, partitions: int) -> Items:
    """(n % partitions, b"<prefix>-<n>") for n in start..start+count-1."""
    return [(n % partitions, b"%s-%05d" % (prefix.encode(), n)) for n in range(start, start + count)]


def by_partition(items: Items, partitions: int) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    for p, v in items:
        out[p].append(v)
    return out


# ---- reading -------------------------------------------------------------------------------


def ck_reader_config(bootstrap: str, isolation: str, **overrides) -> dict:
    cfg = {
        "bootstrap.servers": bootstrap,
        "group.id": "txn-it-reader",  # required by librdkafka; assign() never joins it
        "client.id": f"txn-it-reader-{isolation}",
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }
    cfg.update(overrides)
    return cfg


class Reader:
    """An assigned consumer (no group) reading `topic` from offset 0 with `isolation`; `records`
    keeps what it read, per partition, END markers included."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, isolation: str):
        self.topic, self.partitions, self.isolation = topic, partitions, isolation
        self.consumer = Consumer(ck_reader_config(bootstrap, isolation))
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        self.records: Records = {p: [] for p in range(partitions)}
        self.errors: list[KafkaError] = []  # consumer errors (transient ones while a node is down)

    def poll(self, timeout: float = 0.5) -> int:
        msgs = self.consumer.consume(num_messages=10000, timeout=timeout)
        n = 0
        for m in msgs:
            if m.error():
                self.errors.append(m.error())
                continue
            self.records[m.partition()].append((m.offset(), m.value()))
            n += 1
        return n

    def values(self) -> set[bytes]:
        return {v for recs in self.records.values() for _o, v in recs}

    def read_past(self, offsets: dict[int, int], timeout: float, what: str, bootstrap: str = "") -> None:
        """Polls until, on every partition p, a record at offset >= offsets[p] was read."""
        def done():
            self.poll()
            return all(any(o >= offsets[p] for o, _v in self.records[p][-1:]) for p in offsets)
        try:
            wait_until(done, timeout, what, interval=0)
        except AssertionError as exc:
            note = stable_note(bootstrap, self.topic, self.partitions)
            raise AssertionError(f"{exc}; read per partition {self.counts()}, wanted past {offsets}, "
                                 f"consumer errors {self.errors[-3:]}{note}") from None

    def counts(self) -> dict[int, int]:
        return {p: len(r) for p, r in self.records.items()}

    def close(self) -> None:
        self.consumer.close()


def seal(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Appends one non-transactional (idempotent, acks=all) `END-<uuid>` record to every partition;
    returns partition -> its offset."""
    p = Producer({"bootstrap.servers": bootstrap, "client.id": "txn-it-seal", "enable.idempotence": True,
                  "acks": "all"})
    d = Delivered()
    tag = END + uuid.uuid4().hex[:8].encode()
    items = [(q, tag + b"-%d" % q) for q in range(partitions)]
    produce_items(p, topic, items, d)
    return {q: d.ok[v][1] for q, v in items}


def consume_all(bootstrap: str, topic: str, partitions: int, isolation: str, timeout: float = 90.0) -> Records:
    """Seals `topic` and reads it from offset 0 with `isolation` up to every partition's new END
    marker. Returns partition -> [(offset, value)] in read order, END markers left out."""
    ends = seal(bootstrap, topic, partitions)
    r = Reader(bootstrap, topic, partitions, isolation)
    try:
        r.read_past(ends, timeout, f"{isolation} read of {topic} up to the END markers at {ends}", bootstrap)
    finally:
        r.close()
    return {p: [(o, v) for o, v in recs if o < ends[p] and not v.startswith(END)] for p, recs in r.records.items()}


def values_of(records: Records) -> dict[int, list[bytes]]:
    return {p: [v for _o, v in recs] for p, recs in records.items()}


def assert_exactly(records: Records, want: dict[int, list[bytes]], what: str) -> None:
    """Per partition: exactly the wanted values, each once, in the wanted order, offsets increasing."""
    for p, w in want.items():
        got = [v for _o, v in records.get(p, [])]
        offsets = [o for o, _v in records.get(p, [])]
        assert offsets == sorted(set(offsets)), f"{what}: partition {p} offsets not increasing: {offsets[:20]}"
        if got != w:
            extra = sorted(set(got) - set(w))
            missing = sorted(set(w) - set(got))
            dups = sorted({v for v in got if got.count(v) > 1})
            raise AssertionError(
                f"{what}: partition {p} has {len(got)} records, wanted {len(w)}: {len(missing)} missing "
                f"(e.g. {missing[:5]}), {len(extra)} unexpected (e.g. {extra[:5]}), duplicates {dups[:5]}"
                + ("" if missing or extra or dups else f"; order differs: got {got[:10]} want {w[:10]}"))


# ---- offsets -------------------------------------------------------------------------------


def _list_offsets(bootstrap: str, topic: str, partitions: int, level: IsolationLevel) -> dict[int, int]:
    a = AdminClient({"bootstrap.servers": bootstrap})
    futs = a.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                          isolation_level=level, request_timeout=15)
    return {tp.partition: f.result().offset for tp, f in futs.items()}


def last_stable_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """ListOffsets latest with READ_COMMITTED: the last stable offset of each partition."""
    return _list_offsets(bootstrap, topic, partitions, IsolationLevel.READ_COMMITTED)


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """ListOffsets latest with READ_UNCOMMITTED: the high watermark of each partition."""
    return _list_offsets(bootstrap, topic, partitions, IsolationLevel.READ_UNCOMMITTED)


def stable_note(bootstrap: str, topic: str, partitions: int) -> str:
    if not bootstrap:
        return ""
    try:
        return (f"; last stable offsets {last_stable_offsets(bootstrap, topic, partitions)}, "
                f"high watermarks {end_offsets(bootstrap, topic, partitions)}")
    except Exception as exc:  # noqa: BLE001 - only a diagnostic
        return f"; (ListOffsets failed: {exc!r})"


def group_committed(bootstrap: str, group: str, topic: Optional[str] = None) -> dict[int, int]:
    """The group's committed offsets (OffsetFetch, require_stable false) for `topic`."""
    a = AdminClient({"bootstrap.servers": bootstrap})
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=15)[group].result()
    return {tp.partition: tp.offset for tp in res.topic_partitions
            if (topic is None or tp.topic == topic) and tp.offset >= 0 and tp.error is None}


def elapsed(t0: float) -> str:
    return f"{time.monotonic() - t0:.1f}s"
