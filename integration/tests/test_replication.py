"""Partition replication on three nodes: ISR shrink and expand, min.insync.replicas, and
partition leader failover (kill -9 and SIGSTOP of a partition leader).

One cluster per module: RF 3, min_insync_replicas 2, `[replication] replica_lag_max_ms` 3000.
Every scenario creates its own 6-partition RF-3 topic (round robin: partitions 0, 3 led by node 1;
1, 4 by node 2; 2, 5 by node 3) and runs two producers at once, each a numbered stream paced
round-robin over the partitions the scenario writes: kafka-python with its defaults (idempotent,
acks=all) and confluent-kafka (acks=all, enable.idempotence). Every acknowledged
(partition, offset, value) is recorded; at the end the topic is read back with confluent-kafka and
`check_log` asserts: every ack is there, nothing twice, offsets contiguous from 0, each producer's
numbers increasing within a partition, nothing nobody sent.

The follower scenarios (kill -9 node 3; min.insync.replicas 3 with node 3 dead) write only to the
partitions node 3 does not lead, so they judge the followers' side alone (a killed leader's
partitions move after the session timeout, which the failover scenarios test). The failover scenarios (kill -9 / SIGSTOP of a
node that leads two partitions but not the Raft group) write to all six. ISR and leaders are read
three ways, all of which must agree: confluent-kafka `list_topics`, each node's own Metadata v1
answer, and each node's `GET /admin/partitions`.

Tests run in file order; each one leaves nodes 1-3 running with every ISR full.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Iterable, Optional

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

import kproto
from client_helpers import ck_consume_all
from cluster import Cluster, NotAgreed, round_robin, started
from harness import unique_topic, wait_until

VOTERS = [1, 2, 3]
PARTITIONS = 6
RF = 3
MIN_INSYNC = 2
LAG_MS = 3000  # [replication] replica_lag_max_ms
# Produce requests to a dead or stopped broker time out after this; short enough that the
# clients move on within a scenario.
CLIENT_REQUEST_TIMEOUT_MS = 10_000
PACE_S = 0.004  # per producer, between sends: ~250 msg/s each
# Kill (or SIGSTOP) to new leaders serving acks: the broker session timeout (`[replication]
# session_timeout_ms`, default 6000) + the election + the clients' metadata refresh. Generous.
FAILOVER_BUDGET_S = 30.0

ERR_NONE = 0
ERR_NOT_LEADER_OR_FOLLOWER = 6
ERR_NOT_ENOUGH_REPLICAS = 19
ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20

Layout = dict[int, tuple[int, list[int]]]  # partition -> (leader, replicas)


@pytest.fixture(scope="module")
def rcluster(tmp_path_factory) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("replication"), size=3, spare=0, name="rnode",
                replication_factor=RF, min_insync_replicas=MIN_INSYNC,
                replication={"replica_lag_max_ms": LAG_MS})
    with started(c, clean_stop=True):
        yield c
        for i in VOTERS:
            c.resume(i)  # a failed SIGSTOP scenario must not leave a stopped process behind


@pytest.fixture
def cluster(rcluster) -> Cluster:
    """The module's cluster, all three nodes running and agreed (a node an earlier failed test left
    stopped or dead is continued or restarted first)."""
    for i in VOTERS:
        rcluster.resume(i)
        if not rcluster.node(i).is_running():
            rcluster.restart(i)
    rcluster.wait_for_leader(30, ids=VOTERS, voters=VOTERS)
    return rcluster


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


def wait_replicas_equal(cluster: Cluster, topic: str, ids: Iterable[int], timeout: float = 30.0) -> dict:
    """Waits until every partition's replica on each of `ids` has its leader's log end offset and
    high watermark, and the leader's high watermark is its log end (producers stopped)."""
    ids = list(ids)

    def check():
        views = {i: admin_view(cluster, i, topic) for i in ids}
        for p in range(PARTITIONS):
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


def create_topic(cluster: Cluster, topic: str, configs: Optional[dict[str, str]] = None) -> Layout:
    """confluent-kafka CreateTopics (6 partitions, RF 3); returns once every node's Metadata and
    /admin/partitions show the round-robin table with full ISRs and every node hosts its replicas."""
    a = AdminClient({"bootstrap.servers": cluster.bootstrap(1)})
    a.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=RF,
                              config=dict(configs or {}))])[topic].result(30)
    layout = {p: (r[0], r) for p, r in round_robin(VOTERS, PARTITIONS, RF).items()}
    wait_views(cluster, topic, isr_without(layout, range(PARTITIONS), []), VOTERS, 15, f"{topic} created")
    wait_until(lambda: all(e["replica"] is not None for i in VOTERS for e in admin_view(cluster, i, topic).values()),
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
        ck = Producer({"bootstrap.servers": self.bootstrap, "client.id": "chronik-it-repl-ck",
                       "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                       "request.timeout.ms": CLIENT_REQUEST_TIMEOUT_MS})

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

    missing = [(tag, p, o, v) for tag, p, o, v, _t in prods.acks if at.get((p, o)) != v]
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
                      extras: Optional[Extras] = None) -> dict[int, list]:
    got = ck_consume_all(",".join(cluster.bootstrap(i) for i in cluster.running(VOTERS)), topic, PARTITIONS,
                         timeout=60)
    check_log(got, prods, extras)
    per_partition = {p: len(r) for p, r in got.items()}
    assert sum(per_partition[p] for p in prods.partitions) >= len(prods.acks) > 0, per_partition
    return got


# ---- a. a follower dies and comes back --------------------------------------------------------


def test_follower_kill_shrinks_isr_and_restart_rejoins(cluster):
    victim = 3
    survivors = [i for i in VOTERS if i != victim]
    topic = unique_topic("isr-follower")
    layout = create_topic(cluster, topic)
    judged = [p for p, (leader, _r) in layout.items() if leader != victim]
    assert judged == [0, 1, 3, 4]
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in survivors), topic, judged) as prods:
        prods.wait_acks(50, what="before the kill")

        t_kill = time.monotonic()
        cluster.kill(victim)
        shrunk = isr_without(layout, judged, [victim])
        t_shrunk = wait_views(cluster, topic, shrunk, survivors, LAG_MS / 1000 + 20,
                              f"node {victim} out of the ISR after the kill")
        took = t_shrunk - t_kill
        # Driven by replica_lag_max_ms: not at once (minus the follower's last fetch before the
        # kill and the ISR check interval of lag/4), and not long after.
        assert LAG_MS / 1000 * 0.5 <= took <= LAG_MS / 1000 + 15, f"ISR shrank {took:.1f}s after the kill"
        # ISR 2 >= min_insync 2: acks=all keeps being answered without node 3.
        prods.wait_acks(50, since=t_shrunk, timeout=20, what="with node 3 out of the ISR")
        assert not prods.errors, f"producer errors with a follower down: {prods.errors[:5]}"

        cluster.restart(victim)
        full = isr_without(layout, judged, [])
        t_back = wait_views(cluster, topic, full, VOTERS, 30, f"node {victim} back in the ISR")
        # acks=all now waits for node 3 as well, and keeps flowing.
        prods.wait_acks(50, since=t_back, timeout=20, what="with node 3 back in the ISR")
    assert not prods.errors, f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    views = wait_replicas_equal(cluster, topic, VOTERS)
    assert all(views[victim][p]["replica"]["log_end_offset"] > 0 for p in judged), views[victim]
    consume_and_check(cluster, topic, prods)


# ---- b. min.insync.replicas ------------------------------------------------------------------


def test_min_insync_replicas_refuses_acks_all_until_follower_returns(cluster):
    """Topic min.insync.replicas 3: with one follower dead and out of the ISR, acks=all is refused
    (NOT_ENOUGH_REPLICAS) while acks=1 is served; once it is back in the ISR acks=all works and
    the idempotent producers' retried messages land exactly once."""
    victim = 3
    survivors = [i for i in VOTERS if i != victim]
    topic = unique_topic("min-insync")
    layout = create_topic(cluster, topic, {"min.insync.replicas": "3"})
    judged = [p for p, (leader, _r) in layout.items() if leader != victim]
    probe_p = judged[0]
    leader_boot = cluster.bootstrap(layout[probe_p][0])
    extras = Extras()
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in survivors), topic, judged) as prods:
        prods.wait_acks(50, what="before the kill")
        cluster.kill(victim)
        t_shrunk = wait_views(cluster, topic, isr_without(layout, judged, [victim]), survivors,
                              LAG_MS / 1000 + 20, f"node {victim} out of the ISR")
        stalled = len(prods.acks)

        # acks=all: refused before the append. Until the leader's replica has applied the new
        # ISR a probe may still be appended and refused after (code 20).
        codes: list[int] = []

        def refused():
            v = b"raw-all-down-%03d" % len(codes)
            res = raw_produce(leader_boot, topic, probe_p, v, acks=-1)
            codes.append(res["error_code"])
            if res["error_code"] == ERR_NOT_ENOUGH_REPLICAS:
                extras.absent.add(v)
                return True
            assert res["error_code"] == ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, res
            extras.maybe.add(v)
            return False

        wait_until(refused, 10, "acks=all Produce refused with NOT_ENOUGH_REPLICAS", interval=0.1)
        err, _off = ck_probe(leader_boot, topic, probe_p, b"probe-ck-all-down", "all")
        assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, \
            f"confluent acks=all with ISR 2 < min.insync 3: {err}"
        extras.absent.add(b"probe-ck-all-down")

        # acks=1 needs the leader only.
        res = raw_produce(leader_boot, topic, probe_p, b"raw-one-down", acks=1)
        assert res["error_code"] == ERR_NONE, res
        extras.present[b"raw-one-down"] = (probe_p, res["base_offset"])
        err, off = ck_probe(leader_boot, topic, probe_p, b"probe-ck-one-down", "1")
        assert err is None, f"confluent acks=1 with ISR 2: {err}"
        extras.present[b"probe-ck-one-down"] = (probe_p, off)

        # The streaming acks=all producers got nothing acknowledged while the ISR was short; they
        # retry, and must not have failed either.
        assert len(prods.acks) == stalled, \
            f"{len(prods.acks) - stalled} acks=all acks with ISR 2 < min.insync 3 (since {t_shrunk:.1f})"
        assert not prods.errors, f"producer errors while refused (retriable): {prods.errors[:5]}"

        cluster.restart(victim)
        t_back = wait_views(cluster, topic, isr_without(layout, judged, []), VOTERS, 30,
                            f"node {victim} back in the ISR")
        n_probe = 0

        def accepted():
            nonlocal n_probe
            v = b"raw-all-up-%03d" % n_probe
            n_probe += 1
            res = raw_produce(leader_boot, topic, probe_p, v, acks=-1)
            if res["error_code"] == ERR_NONE:
                extras.present[v] = (probe_p, res["base_offset"])
                return True
            assert res["error_code"] == ERR_NOT_ENOUGH_REPLICAS, res  # the new ISR not applied yet
            extras.absent.add(v)
            return False

        wait_until(accepted, 10, "acks=all Produce accepted with the ISR full again", interval=0.1)
        err, off = ck_probe(leader_boot, topic, probe_p, b"probe-ck-all-up", "all")
        assert err is None, f"confluent acks=all with the ISR full: {err}"
        extras.present[b"probe-ck-all-up"] = (probe_p, off)
        prods.wait_acks(50, since=t_back, timeout=30, what="after node 3 rejoined")
    assert not prods.errors, f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    wait_replicas_equal(cluster, topic, VOTERS)
    consume_and_check(cluster, topic, prods, extras)


# ---- c. leader failover ----------------------------------------------------


def pick_victim(cluster: Cluster) -> int:
    """A node that leads partitions but not the Raft group, so the test sees partition failover
    and not a Raft election as well."""
    raft_leader = cluster.wait_for_leader(15, ids=VOTERS, voters=VOTERS)
    return max(i for i in VOTERS if i != raft_leader)


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


def test_kill_partition_leader_fails_over(cluster):
    victim = pick_victim(cluster)
    survivors = [i for i in VOTERS if i != victim]
    topic = unique_topic("failover-kill")
    layout = create_topic(cluster, topic)
    led = [p for p, (leader, _r) in layout.items() if leader == victim]
    assert len(led) == 2, layout
    epochs = {p: e["leader_epoch"] for p, e in admin_view(cluster, victim, topic).items()}
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in VOTERS), topic,
                           list(range(PARTITIONS))) as prods:
        prods.wait_acks(50, what="before the kill")
        t_kill = time.monotonic()
        cluster.kill(victim)
        new = wait_new_leaders(cluster, topic, layout, victim, survivors, epochs, FAILOVER_BUDGET_S)
        # Producers find the new leaders (election + metadata refresh) and are acknowledged again
        # on every partition the dead node led, with no delivery error.
        t_recovered = prods.wait_acks(20, led, since=t_kill, timeout=FAILOVER_BUDGET_S,
                                      what=f"on the partitions node {victim} led, after the kill")
        assert t_recovered - t_kill <= FAILOVER_BUDGET_S
        # min ISR 2 holds on every partition with two live replicas: all partitions flow.
        wait_views(cluster, topic, {p: (new.get(p, layout[p][0]), survivors) for p in range(PARTITIONS)},
                   survivors, LAG_MS / 1000 + 20, f"node {victim} out of every ISR")
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="on every partition after the failover")
        assert not prods.errors, f"producer errors across the failover: {prods.errors[:5]}"

        # The old leader comes back as a follower of every partition and catches up.
        cluster.restart(victim)
        leaders = {p: new.get(p, layout[p][0]) for p in range(PARTITIONS)}
        t_back = wait_views(cluster, topic, {p: (leaders[p], sorted(VOTERS)) for p in range(PARTITIONS)},
                            VOTERS, 30, f"node {victim} back in every ISR as a follower")
        prods.wait_acks(20, since=t_back, timeout=30, what=f"with node {victim} back")
    assert not prods.errors, f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    wait_replicas_equal(cluster, topic, VOTERS)
    consume_and_check(cluster, topic, prods)


def test_paused_leader_is_fenced_and_rejoins_as_follower(cluster):
    """SIGSTOP a partition leader until the cluster has elected new leaders for its partitions and
    they have taken writes, send it a Produce while it is still stopped, then SIGCONT: it must not
    acknowledge that Produce (it was fenced), it truncates whatever it appended, rejoins as a
    follower, and every ack of the run is in the log exactly once, in order."""
    victim = pick_victim(cluster)
    survivors = [i for i in VOTERS if i != victim]
    topic = unique_topic("failover-pause")
    layout = create_topic(cluster, topic)
    led = [p for p, (leader, _r) in layout.items() if leader == victim]
    epochs = {p: e["leader_epoch"] for p, e in admin_view(cluster, victim, topic).items()}
    extras = Extras()
    zombie = None
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in VOTERS), topic,
                           list(range(PARTITIONS))) as prods:
        try:
            prods.wait_acks(50, what="before the pause")
            t_pause = time.monotonic()
            cluster.pause(victim)
            new = wait_new_leaders(cluster, topic, layout, victim, survivors, epochs, FAILOVER_BUDGET_S)
            # The clients' requests to the stopped node time out before they look elsewhere.
            prods.wait_acks(20, led, since=t_pause, timeout=FAILOVER_BUDGET_S + CLIENT_REQUEST_TIMEOUT_MS / 1000,
                            what=f"from the new leaders of the partitions node {victim} led")
            t_moved = time.monotonic()

            # A client with stale metadata: its Produce reaches the old leader before it runs again.
            zombie = kproto.connect(cluster.bootstrap(victim))
            zombie.sendall(kproto.produce_v3(61, topic, led[0], kproto.record_batch([b"to-fenced-leader"]),
                                             acks=-1, timeout_ms=5000))
            extras.absent.add(b"to-fenced-leader")
            cluster.resume(victim)
            zombie.settimeout(30)
            _cid, body = kproto.read_response(zombie)
            [res] = kproto.parse_produce_v3(body)
            assert res["error_code"] != ERR_NONE, f"the fenced leader acknowledged a Produce: {res}"

            # It follows the new leaders (truncating its own tail) and rejoins every ISR.
            leaders = {p: new.get(p, layout[p][0]) for p in range(PARTITIONS)}
            t_back = wait_views(cluster, topic, {p: (leaders[p], sorted(VOTERS)) for p in range(PARTITIONS)},
                                VOTERS, 30, f"node {victim} back in every ISR as a follower")
            prods.wait_acks(20, since=max(t_back, t_moved), timeout=30, what=f"with node {victim} back")
            for p in led:
                _cid, body = kproto.call(cluster.bootstrap(victim), kproto.produce_v3(
                    62, topic, p, kproto.record_batch([b"to-old-leader-%d" % p]), acks=-1))
                [res] = kproto.parse_produce_v3(body)
                assert res["error_code"] == ERR_NOT_LEADER_OR_FOLLOWER, f"Produce {topic}/{p} on node {victim}: {res}"
                extras.absent.add(b"to-old-leader-%d" % p)
        finally:
            cluster.resume(victim)
            if zombie is not None:
                zombie.close()
    assert not prods.errors, f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    views = wait_replicas_equal(cluster, topic, VOTERS)
    assert all(views[victim][p]["leader"] != victim for p in led), views[victim]
    consume_and_check(cluster, topic, prods, extras)
