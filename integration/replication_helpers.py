"""What the replication and data-safety tests share: the views of a partition (each node's
Metadata, /admin/partitions, confluent-kafka's list_topics) and waiting for them to agree; two
numbered producers (kafka-python and confluent-kafka, idempotent, acks=all) that record every
acknowledgement; and `check_log`, which reads a topic back and asserts every acknowledged record
is there exactly once, at its offset, offsets contiguous, each producer's order kept.

Defaults are the replication tests' shape: voters 1-3, 6 partitions, RF 3 (round robin).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Iterable, Optional

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

import kproto
from client_helpers import ck_consume_all
from cluster import Cluster, NotAgreed, round_robin
from harness import wait_until

VOTERS = [1, 2, 3]
PARTITIONS = 6
RF = 3
# Produce requests to a dead or stopped broker time out after this; short enough that the
# clients move on within a scenario.
CLIENT_REQUEST_TIMEOUT_MS = 10_000
PACE_S = 0.004  # per producer, between sends: ~250 msg/s each

Layout = dict[int, tuple[int, list[int]]]  # partition -> (leader, replicas)


# ---- views of a partition: leader, ISR, offsets ------------------------------------------


def raw_view(cluster: Cluster, i: int, topic: str) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader, sorted ISR) in node i's own Metadata v1 answer."""
    _cid, body = kproto.call(cluster.bootstrap(i), kproto.metadata_v1(1, [topic]), timeout=5)
    [t] = kproto.parse_metadata_v1(body)["topics"]
    if t["error_code"] != 0:
        raise NotAgreed(f"node {i}: Metadata of {topic}: error {t['error_code']}")
    return {p["partition"]: (p["leader"], sorted(p["isr"])) for p in t["partitions"]}


def ck_view(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader, sorted ISR) as confluent-kafka's AdminClient.list_topics reports."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic=topic, timeout=5)
    t = md.topics[topic]
    if t.error is not None:
        raise NotAgreed(f"list_topics {topic} via {bootstrap}: {t.error}")
    return {p: (pm.leader, sorted(pm.isrs)) for p, pm in t.partitions.items()}


def admin_view(cluster: Cluster, i: int, topic: str) -> dict[int, dict]:
    """partition -> node i's `GET /admin/partitions` entry (metadata plus its own replica)."""
    return {p["partition"]: p for p in cluster.node(i).partitions() if p["topic"] == topic}


def wait_views(cluster: Cluster, topic: str, want: dict[int, tuple[int, list[int]]],
               ids: Iterable[int], timeout: float, what: str) -> float:
    """Waits until, for every partition in `want`, (leader, sorted ISR) is as wanted in each
    node's Metadata and /admin/partitions (nodes `ids`) and in confluent-kafka's list_topics;
    returns the monotonic time it first held."""
    ids = list(ids)

    def check():
        for i in ids:
            raw = {p: v for p, v in raw_view(cluster, i, topic).items() if p in want}
            if raw != want:
                raise NotAgreed(f"node {i} Metadata: {raw}")
            adm = {p: (e["leader"], sorted(e["isr"])) for p, e in admin_view(cluster, i, topic).items()
                   if p in want}
            if adm != want:
                raise NotAgreed(f"node {i} /admin/partitions: {adm}")
        ck = {p: v for p, v in ck_view(",".join(cluster.bootstrap(i) for i in ids), topic).items()
              if p in want}
        if ck != want:
            raise NotAgreed(f"confluent list_topics: {ck}")
        return time.monotonic()

    return wait_until(check, timeout, f"{what}: (leader, ISR) {want} on nodes {ids}", interval=0.1)


def isr_without(layout: Layout, partitions: Iterable[int], gone: Iterable[int]) -> dict[int, tuple[int, list[int]]]:
    """partition -> (its layout leader, its replicas but `gone`, sorted): the wanted view."""
    gone = set(gone)
    return {p: (layout[p][0], sorted(set(layout[p][1]) - gone)) for p in partitions}


def wait_replicas_equal(cluster: Cluster, topic: str, ids: Iterable[int], timeout: float = 30.0,
                        partitions: int = PARTITIONS) -> dict:
    """Waits until every partition's replica on each of `ids` has its leader's log end offset and
    high watermark, and the leader's high watermark is its log end (producers stopped)."""
    ids = list(ids)

    def check():
        views = {i: admin_view(cluster, i, topic) for i in ids}
        for p in range(partitions):
            leader = views[ids[0]][p]["leader"]
            lead = views[leader][p]["replica"] if leader in views else None
            if lead is None or lead["high_watermark"] != lead["log_end_offset"]:
                raise NotAgreed(f"{topic}/{p}: leader {leader} replica {lead}")
            for i in ids:
                r = views[i][p]["replica"]
                if r is None or (r["log_end_offset"], r["high_watermark"]) != (
                        lead["log_end_offset"], lead["high_watermark"]):
                    raise NotAgreed(f"{topic}/{p}: node {i} replica {r}, leader {leader} replica {lead}")
        return views

    return wait_until(check, timeout, f"every replica of {topic} on nodes {ids} equal to its leader's",
                      interval=0.2)


def create_topic(cluster: Cluster, topic: str, configs: Optional[dict[str, str]] = None,
                 partitions: int = PARTITIONS, voters: list[int] = VOTERS) -> Layout:
    """confluent-kafka CreateTopics (6 partitions, RF 3); returns once every node's Metadata and
    /admin/partitions show the round-robin table with full ISRs and every node hosts its replicas."""
    a = AdminClient({"bootstrap.servers": cluster.bootstrap(voters[0])})
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=RF,
                              config=dict(configs or {}))])[topic].result(30)
    layout = {p: (r[0], r) for p, r in round_robin(voters, partitions, RF).items()}
    wait_views(cluster, topic, isr_without(layout, range(partitions), []), voters, 15, f"{topic} created")
    wait_until(lambda: all(e["replica"] is not None for i in voters for e in admin_view(cluster, i, topic).values()),
               15, f"every node hosting its replicas of {topic}")
    return layout


# ---- two producers, numbered streams -----------------------------------------------------


class NumberedProducers:
    """A kafka-python and a confluent-kafka producer, each in its own thread, sending
    b"kp-%08d" / b"ck-%08d" round-robin over `partitions`, paced. Every ack is recorded as
    (producer, partition, offset, value, monotonic time); every failure as an error.

    A context manager: entering starts both; leaving stops sending and flushes, so every message
    is acknowledged or failed (briefly when leaving on an exception: the test failed already)."""

    def __init__(self, bootstrap: str, topic: str, partitions: list[int], pace_s: float = PACE_S):
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = list(partitions)
        self.pace_s = pace_s
        self.lock = threading.Lock()
        self.acks: list[tuple[str, int, int, bytes, float]] = []
        self.errors: list[tuple[str, bytes, str]] = []
        self.sent = {"kp": 0, "ck": 0}
        self.flush_timeout = 90.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run_kp, name=f"kp-{topic}", daemon=True),
                         threading.Thread(target=self._run_ck, name=f"ck-{topic}", daemon=True)]

    def __enter__(self) -> "NumberedProducers":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, exc_type, _exc, _tb) -> bool:
        self.stop(flush_timeout=5 if exc_type else 90)
        return False

    def _ok(self, tag: str, partition: int, offset: int, value: bytes) -> None:
        with self.lock:
            self.acks.append((tag, partition, offset, value, time.monotonic()))

    def _err(self, tag: str, value: bytes, err: str) -> None:
        with self.lock:
            self.errors.append((tag, value, err))

    def _run_kp(self) -> None:
        kp = KafkaProducer(bootstrap_servers=self.bootstrap.split(","), client_id="chronik-it-repl-kp",
                           linger_ms=5, request_timeout_ms=CLIENT_REQUEST_TIMEOUT_MS)
        try:
            n = 0
            while not self._stop.is_set():
                v = b"kp-%08d" % n
                try:
                    fut = kp.send(self.topic, value=v, partition=self.partitions[n % len(self.partitions)])
                except Exception as exc:  # noqa: BLE001 - asserted by the test
                    self._err("kp", v, repr(exc))
                else:
                    fut.add_callback(lambda m, v=v: self._ok("kp", m.partition, m.offset, v))
                    fut.add_errback(lambda e, v=v: self._err("kp", v, repr(e)))
                n += 1
                self.sent["kp"] = n
                time.sleep(self.pace_s)
            try:
                kp.flush(timeout=self.flush_timeout)
            except Exception as exc:  # noqa: BLE001 - asserted by the test
                self._err("kp", b"", f"flush: {exc!r}")
        finally:
            try:
                kp.close(timeout=10)  # flushes again: raises if messages are still pending
            except Exception as exc:  # noqa: BLE001 - asserted by the test
                self._err("kp", b"", f"close: {exc!r}")

    def _run_ck(self) -> None:
        # debug=eos: librdkafka logs its idempotence state (producer id, drains, epoch bumps) to
        # stderr, which pytest prints with a failure: an epoch bump explains a duplicate.
        ck = Producer({"bootstrap.servers": self.bootstrap, "client.id": "chronik-it-repl-ck",
                       "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                       "request.timeout.ms": CLIENT_REQUEST_TIMEOUT_MS, "debug": "eos"})

        def on_delivery(err, msg):
            if err is not None:
                self._err("ck", msg.value(), str(err))
            else:
                self._ok("ck", msg.partition(), msg.offset(), msg.value())

        n = 0
        while not self._stop.is_set():
            v = b"ck-%08d" % n
            try:
                ck.produce(self.topic, value=v, partition=self.partitions[n % len(self.partitions)],
                           on_delivery=on_delivery)
            except BufferError as exc:
                self._err("ck", v, repr(exc))
            n += 1
            self.sent["ck"] = n
            ck.poll(0)
            time.sleep(self.pace_s)
        left = ck.flush(self.flush_timeout)
        if left:
            self._err("ck", b"", f"{left} messages still queued after flush({self.flush_timeout})")

    def count(self, partitions: Optional[Iterable[int]] = None, since: float = 0.0) -> dict[int, int]:
        """Acks per partition (of `partitions`, default all written) received after `since`."""
        ps = list(partitions if partitions is not None else self.partitions)
        out = {p: 0 for p in ps}
        with self.lock:
            for _tag, p, _o, _v, t in self.acks:
                if p in out and t > since:
                    out[p] += 1
        return out

    def wait_acks(self, n: int, partitions: Optional[Iterable[int]] = None, since: float = 0.0,
                  timeout: float = 30.0, what: str = "") -> float:
        """Waits until each partition has `n` acks after `since`; returns when."""
        def enough():
            got = self.count(partitions, since)
            if min(got.values()) < n:
                raise NotAgreed(f"acks {got}, errors {self.errors[:3]}")
            return time.monotonic()

        return wait_until(enough, timeout, f"{n} acks per partition {what}", interval=0.05)

    def stop(self, flush_timeout: float = 90.0) -> None:
        """Stops sending, flushes both producers (every message acked or failed)."""
        self.flush_timeout = flush_timeout
        self._stop.set()
        for t in self._threads:
            t.join(flush_timeout + 30)
            assert not t.is_alive(), f"producer thread {t.name} did not finish"


# ---- raw probes and the final check ---------------------------------------------------------


def raw_produce(bootstrap: str, topic: str, partition: int, value: bytes, acks: int,
                timeout_ms: int = 5000) -> dict:
    """One non-idempotent, unretried Produce v3 of `value` to exactly this node."""
    req = kproto.produce_v3(51, topic, partition, kproto.record_batch([value]), acks=acks, timeout_ms=timeout_ms)
    _cid, body = kproto.call(bootstrap, req, timeout=timeout_ms / 1000 + 10)
    [res] = kproto.parse_produce_v3(body)
    return res


def ck_probe(bootstrap: str, topic: str, partition: int, value: bytes, acks: str):
    """confluent-kafka, idempotence off and retries 0: (error or None, offset) of one message."""
    p = Producer({"bootstrap.servers": bootstrap, "client.id": "chronik-it-repl-probe", "acks": acks,
                  "enable.idempotence": False, "retries": 0, "linger.ms": 0,
                  "request.timeout.ms": CLIENT_REQUEST_TIMEOUT_MS})
    out = []
    p.produce(topic, value=value, partition=partition, on_delivery=lambda e, m: out.append((e, m.offset())))
    assert p.flush(30) == 0, f"probe {value!r} still queued after 30 s"
    return out[0]


class Extras:
    """Records written outside the numbered streams: those that must be in the log exactly once
    (at a known offset), those that must not be there, those that may be (at most once)."""

    def __init__(self):
        self.present: dict[bytes, tuple[int, int]] = {}  # value -> (partition, offset)
        self.absent: set[bytes] = set()
        self.maybe: set[bytes] = set()

    def all(self) -> set[bytes]:
        return set(self.present) | self.absent | self.maybe


def check_log(consumed: dict[int, list], prods: NumberedProducers, extras: Optional[Extras] = None) -> None:
    extras = extras or Extras()
    at: dict[tuple[int, int], bytes] = {}
    for p, records in consumed.items():
        offsets = [o for o, _k, _v in records]
        assert offsets == list(range(len(offsets))), \
            f"partition {p}: offsets not contiguous from 0: {offsets[:5]} ... {offsets[-5:]}"
        at.update(((p, o), v) for o, _k, v in records)
    counts = Counter(at.values())
    dups = sorted(v for v, c in counts.items() if c > 1)
    assert not dups, f"{len(dups)} values in the log more than once, e.g. {dups[:5]}"

    # librdkafka acknowledges a message "implicitly", with no offset, when a request timed out
    # but a later one of the same idempotent producer succeeded: it is in the log, somewhere.
    in_partition = {(p, v) for (p, _o), v in at.items()}
    missing = [(tag, p, o, v) for tag, p, o, v, _t in prods.acks
               if (at.get((p, o)) != v if o is not None else (p, v) not in in_partition)]
    assert not missing, (f"{len(missing)} of {len(prods.acks)} acknowledged messages not at their offset, "
                         f"e.g. {[(m, at.get(m[1:3])) for m in missing[:5]]}")

    for p, records in consumed.items():
        for tag in (b"kp-", b"ck-"):
            nums = [int(v[3:]) for _o, _k, v in records if v.startswith(tag)]
            bad = [(a, b) for a, b in zip(nums, nums[1:]) if b <= a]
            assert not bad, f"partition {p}: {tag.decode()} numbers out of order, e.g. {bad[:5]}"

    acked_values = {v for _tag, _p, _o, v, _t in prods.acks}
    streams = {v for v in at.values() if v[:3] in (b"kp-", b"ck-")}
    sent = {b"kp-%08d" % n for n in range(prods.sent["kp"])} | {b"ck-%08d" % n for n in range(prods.sent["ck"])}
    assert streams <= sent, f"numbered values nobody sent: {sorted(streams - sent)[:5]}"
    if not prods.errors:
        assert streams == acked_values, (f"{len(streams - acked_values)} values in the log never acknowledged, "
                                         f"e.g. {sorted(streams - acked_values)[:5]}")
    others = set(at.values()) - streams
    assert others <= extras.all(), f"unknown values in the log: {sorted(others - extras.all())[:5]}"
    where = {v: po for po, v in at.items()}
    for v, po in extras.present.items():
        assert where.get(v) == po, f"{v!r} acknowledged at {po}, found at {where.get(v)}"
    assert not (extras.absent & others), f"refused writes in the log: {sorted(extras.absent & others)}"


def consume_and_check(cluster: Cluster, topic: str, prods: NumberedProducers,
                      extras: Optional[Extras] = None, partitions: int = PARTITIONS,
                      voters: list[int] = VOTERS) -> dict[int, list]:
    got = ck_consume_all(",".join(cluster.bootstrap(i) for i in cluster.running(voters)), topic, partitions,
                         timeout=60)
    check_log(got, prods, extras)
    per_partition = {p: len(r) for p, r in got.items()}
    assert sum(per_partition[p] for p in prods.partitions) >= len(prods.acks) > 0, per_partition
    return got


def pick_victim(cluster: Cluster, voters: list[int] = VOTERS) -> int:
    """A node that leads partitions but not the Raft group, so the test sees partition failover
    and not a Raft election as well."""
    raft_leader = cluster.wait_for_leader(15, ids=voters, voters=voters)
    return max(i for i in voters if i != raft_leader)


def wait_new_leaders(cluster: Cluster, topic: str, layout: Layout, victim: int, ids: list[int],
                     epochs: dict[int, int], timeout: float) -> dict[int, int]:
    """Waits until, on every node of `ids`, each partition `victim` led has another leader from its
    ISR, a higher leader epoch and `victim` out of the ISR (Metadata, /admin/partitions,
    confluent list_topics). Returns partition -> new leader."""
    led = [p for p, (leader, _r) in layout.items() if leader == victim]

    def check():
        new: dict[int, int] = {}
        for i in ids:
            adm = admin_view(cluster, i, topic)
            raw = raw_view(cluster, i, topic)
            for p in led:
                e = adm[p]
                if e["leader"] == victim or e["leader"] not in layout[p][1] or victim in e["isr"]:
                    raise NotAgreed(f"node {i} /admin/partitions {topic}/{p}: {e}")
                if e["leader_epoch"] <= epochs[p]:
                    raise NotAgreed(f"node {i}: {topic}/{p} epoch {e['leader_epoch']} not above {epochs[p]}")
                if raw[p] != (e["leader"], sorted(e["isr"])):
                    raise NotAgreed(f"node {i}: Metadata {raw[p]} vs /admin/partitions {e}")
                if new.setdefault(p, e["leader"]) != e["leader"]:
                    raise NotAgreed(f"{topic}/{p}: leader {new[p]} on one node, {e['leader']} on node {i}")
        ck = ck_view(",".join(cluster.bootstrap(i) for i in ids), topic)
        if any(ck[p][0] != new[p] for p in led):
            raise NotAgreed(f"confluent list_topics: {ck}")
        return new

    return wait_until(check, timeout, f"new leaders for the partitions node {victim} led", interval=0.1)
