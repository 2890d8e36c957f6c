"""Shared pieces of the consumer-group tests (test_groups.py, test_group_durability.py,
test_group_admin.py): numbered messages, group members driven by kafka-python and
confluent-kafka in threads or subprocesses, and raw OffsetCommit / OffsetFetch frames.

Messages are numbered (`msg-00000042`, message n on partition n % partitions), so "exactly once"
is checked by number: every message read, none twice. Where a rebalance can race a commit, a
member records every commit the client reported as failed, and a duplicate is only accepted for
a message whose commit failed (the at-least-once contract); everything else must be read exactly
once. Each module's broker (`gbroker` in conftest.py) has `initial_rebalance_delay_ms = 300`
(Kafka's 3 s default would make each first join slow)."""

from __future__ import annotations
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Optional
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as CkTopicPartition
from kafka import KafkaConsumer, KafkaProducer
import kproto
from client_helpers import admin
from harness import Broker, WaitTimeout, wait_until

GROUP_ENV = {"CHRONIK_GROUPS__INITIAL_REBALANCE_DELAY_MS": "300"}
PARTS = 4
N = 2000
API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
MEMBER_SCRIPT = r'''
import json, os, signal, sys
from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata

bootstrap, group, topic, name = sys.argv[1:5]
# optional: after reading this many messages, SIGSTOP itself between reading one and committing it
pause_after = int(sys.argv[5]) if len(sys.argv) > 5 else -1
read = 0
c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=name,
                  enable_auto_commit=False, auto_offset_reset="earliest",
                  session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_records=1)
c.subscribe([topic])
print("STARTED", flush=True)
last = None
while True:
    recs = c.poll(timeout_ms=100)
    a = sorted(tp.partition for tp in c.assignment())
    gen = c.group_metadata().generation_id
    if (a, gen) != last:
        print("ASSIGNED", json.dumps(a, separators=(",", ":")), gen, flush=True)
        last = (a, gen)
    for tp, rs in recs.items():
        for r in rs:
            print("MSG", r.partition, r.offset, r.value.decode(), flush=True)
            read += 1
            if read == pause_after:
                print("PAUSED", r.partition, r.offset, flush=True)
                os.kill(os.getpid(), signal.SIGSTOP)
                print("RESUMED", r.partition, r.offset, flush=True)
            try:
                c.commit({tp: OffsetAndMetadata(r.offset + 1, "", -1)})
            except Exception as e:
                print("COMMITFAIL", r.partition, r.offset, type(e).__name__, e, flush=True)
'''


def value(n: int) -> bytes:
    return b"msg-%08d" % n


def number(v: bytes) -> int:
    assert v is not None and v.startswith(b"msg-"), f"unexpected value {v!r}"
    return int(v[4:])


def produce_numbered(bootstrap: str, topic: str, start: int, count: int, partitions: int = PARTS) -> None:
    """Messages start..start+count-1, message n on partition n % partitions, idempotent, acks=all
    (kafka-python 3's defaults); every send acknowledged."""
    p = KafkaProducer(bootstrap_servers=bootstrap, client_id="groups-it-producer", linger_ms=5)
    try:
        futs = [p.send(topic, value(n), partition=n % partitions) for n in range(start, start + count)]
        p.flush(60)
        for f in futs:
            f.get(timeout=0)
    finally:
        p.close()


def check_exactly_once(numbers: list[int], expected: set[int], may_repeat: set[int] = frozenset(),
                       what: str = "") -> list[int]:
    """Every expected number read, nothing else, nothing twice except numbers in `may_repeat`
    (whose commit failed). Returns the duplicates."""
    counts = Counter(numbers)
    dups = sorted(n for n, c in counts.items() if c > 1)
    bad_dups = [n for n in dups if n not in may_repeat]
    assert not bad_dups, (f"{what}: {len(bad_dups)} messages read twice although their commit succeeded, "
                          f"e.g. {bad_dups[:10]} (counts {[counts[n] for n in bad_dups[:10]]})")
    missing = sorted(expected - set(counts))
    assert not missing, f"{what}: {len(missing)} messages never read, e.g. {missing[:10]}"
    unknown = sorted(set(counts) - expected)
    assert not unknown, f"{what}: read messages it should not have: {unknown[:10]}"
    return dups


def hw(b: Broker, topic: str, partitions: int = PARTS) -> dict[int, int]:
    return {p: b.partition(topic, p)["high_watermark"] for p in range(partitions)}


def group_offsets(bootstrap: str, group: str, topic: Optional[str] = None) -> dict[int, int]:
    """The group's committed offsets (OffsetFetch through KafkaAdminClient.list_group_offsets)."""
    a = admin(bootstrap)
    try:
        got = a.list_group_offsets({group: None})[group]
    finally:
        a.close()
    return {tp.partition: om.offset for tp, om in got.items() if topic is None or tp.topic == topic}


def describe(bootstrap: str, group: str) -> dict:
    a = admin(bootstrap)
    try:
        return a.describe_groups([group])[group]
    finally:
        a.close()


def admin_group(b: Broker, group: str) -> Optional[dict]:
    r = b.get("/admin/groups")
    r.raise_for_status()
    for g in r.json()["groups"]:
        if g["group_id"] == group:
            return g
    return None


def wait_detail(cond, timeout: float, what: str, interval: float = 0.05, detail=None):
    """wait_until, with `detail()` (e.g. a member's output) added to the timeout message."""
    try:
        return wait_until(cond, timeout, what, interval)
    except WaitTimeout as exc:
        raise WaitTimeout(f"{exc}\n{detail() if detail else ''}") from None


def disjoint_cover(assignments: list[set[int]], partitions: int = PARTS) -> bool:
    """Each member owns something, no partition twice, all partitions owned."""
    if any(not a for a in assignments):
        return False
    total = sum(len(a) for a in assignments)
    union = set().union(*assignments)
    return total == len(union) and union == set(range(partitions))


class KpMember(threading.Thread):
    """A kafka-python group member in its own thread: subscribe, poll, record, commit
    synchronously after every batch, before the next poll (so a rebalance, which happens
    inside poll, never hands over an uncommitted message)."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str, limit: Optional[int] = None, **cfg):
        super().__init__(name=name, daemon=True)
        self.limit = limit  # stop (and close) once this many records were read and committed
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.cfg = dict(session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_records=100,
                        request_timeout_ms=30000)
        self.cfg.update(cfg)
        self.lock = threading.Lock()
        self.records: list[tuple[int, int, int]] = []   # (partition, offset, number)
        self.assignment: set[int] = set()
        self.generations: list[tuple[int, frozenset]] = []  # (generation, assignment) as they change
        self.commit_failed: set[int] = set()            # numbers whose commit raised
        self.commit_errors: list[str] = []
        self.acked: dict[int, int] = {}                 # partition -> highest offset whose commit succeeded
        self.error: Optional[BaseException] = None
        self.joined = threading.Event()
        self._stop_evt = threading.Event()

    def run(self):
        c = None
        try:
            c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group, client_id=self.name,
                              enable_auto_commit=False, auto_offset_reset="earliest", **self.cfg)
            c.subscribe([self.topic])
            while not self._stop_evt.is_set():
                batch = c.poll(timeout_ms=200)
                gen = c.group_metadata().generation_id
                with self.lock:
                    self.assignment = {tp.partition for tp in c.assignment()}
                    snap = (gen, frozenset(self.assignment))
                    if not self.generations or self.generations[-1] != snap:
                        self.generations.append(snap)
                if self.assignment:
                    self.joined.set()
                got = [(r.partition, r.offset, number(r.value)) for recs in batch.values() for r in recs]
                if not got:
                    continue
                with self.lock:
                    self.records.extend(got)
                try:
                    c.commit()
                    with self.lock:
                        for p, o, _n in got:
                            self.acked[p] = max(self.acked.get(p, -1), o + 1)
                except Exception as exc:  # noqa: BLE001 - recorded; the test decides
                    with self.lock:
                        self.commit_failed.update(n for _p, _o, n in got)
                        self.commit_errors.append(repr(exc))
                if self.limit is not None and len(self.records) >= self.limit:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            if c is not None:
                try:
                    c.close(autocommit=False)
                except Exception as exc:  # noqa: BLE001
                    self.error = self.error or exc

    def stop(self, timeout: float = 30.0):
        self._stop_evt.set()
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} did not stop within {timeout}s"

    def numbers(self) -> list[int]:
        with self.lock:
            return [n for _p, _o, n in self.records]

    def snapshot(self) -> set[int]:
        with self.lock:
            return set(self.assignment)


def distinct(members) -> int:
    return len({n for m in members for n in m.numbers()})


def wait_split(members, what: str, timeout: float = 30.0):
    def ok():
        for m in members:
            if m.error:
                raise AssertionError(f"{m.name} failed: {m.error!r}")
        return disjoint_cover([m.snapshot() for m in members])
    wait_until(ok, timeout, f"{what}: disjoint assignments covering {PARTS} partitions "
               f"(have {[sorted(m.snapshot()) for m in members]})", interval=0.1)


class CkMember:
    """A confluent-kafka group member driven by the test's loop: consume a batch, record it,
    commit its offsets synchronously."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str, strategy: str):
        self.name, self.topic = name, topic
        self.c = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "partition.assignment.strategy": strategy,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
            "log_level": 4,
        })
        self.c.subscribe([topic])
        self.records: list[tuple[int, int, int]] = []
        self.commit_failed: set[int] = set()
        self.commit_errors: list[str] = []

    def step(self):
        msgs = self.c.consume(num_messages=50, timeout=0.05)
        got, ends = [], {}
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"{self.name}: consumer error {m.error()}")
            got.append((m.partition(), m.offset(), number(m.value())))
            ends[m.partition()] = m.offset() + 1
        if not got:
            return
        self.records.extend(got)
        try:
            res = self.c.commit(offsets=[CkTopicPartition(self.topic, p, o) for p, o in ends.items()],
                                asynchronous=False)
            errs = [str(tp.error) for tp in res or [] if tp.error]
            if errs:
                raise KafkaException(errs[0])
        except KafkaException as exc:
            self.commit_failed.update(n for _p, _o, n in got)
            self.commit_errors.append(str(exc))

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.c.assignment()}

    def committed(self) -> dict[int, int]:
        tps = self.c.committed([CkTopicPartition(self.topic, p) for p in range(PARTS)], timeout=15)
        return {tp.partition: tp.offset for tp in tps}

    def close(self):
        self.c.close()


def ck_run(members: list[CkMember], until, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, (
            f"timed out after {timeout}s waiting for {what}: read {[len(m.records) for m in members]}, "
            f"assignments {[sorted(m.assignment()) for m in members]}, commit errors "
            f"{[m.commit_errors[:2] for m in members]}")
        for m in members:
            m.step()


class MemberProcess:
    """The script above in a subprocess; its stdout lines collected by a thread."""

    def __init__(self, script: Path, bootstrap: str, group: str, topic: str, name: str, pause_after: int = -1):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-u", str(script), bootstrap, group, topic, name,
                                      str(pause_after)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lock = threading.Lock()
        self.lines: list[tuple[float, str]] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def _kind(self, kind: str) -> list[tuple[float, list[str]]]:
        with self.lock:
            return [(t, ln.split(" ", 4)[1:]) for t, ln in self.lines if ln.startswith(kind + " ")]

    def msgs(self) -> list[tuple[int, int, int]]:
        return [(int(p), int(o), number(v.encode())) for _t, (p, o, v) in self._kind("MSG")]

    def assigned(self) -> list[tuple[float, set[int], int]]:
        """(when, partitions, generation) each time either changed."""
        return [(t, set(json.loads(a[0])), int(a[1])) for t, a in self._kind("ASSIGNED")]

    def assignment(self) -> set[int]:
        a = self.assigned()
        return a[-1][1] if a else set()

    def generation(self) -> int:
        a = self.assigned()
        return a[-1][2] if a else -1

    def commit_failures(self) -> list[tuple[int, int]]:
        return [(int(f[0]), int(f[1])) for _t, f in self._kind("COMMITFAIL")]

    def check_alive(self):
        if self.proc.poll() is not None:
            with self.lock:
                tail = "\n".join(ln for _t, ln in self.lines[-30:])
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def output_tail(self, n: int = 40) -> str:
        with self.lock:
            return "\n".join(ln for _t, ln in self.lines if not ln.startswith("MSG "))[-4000:]

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def paused(self) -> bool:
        return bool(self._kind("PAUSED"))

    def terminate(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def offset_commit_v2(correlation_id: int, group: str, offsets: list[tuple[str, int, int]],
                     generation: int = -1, member: str = "") -> bytes:
    by_topic: dict[str, list[bytes]] = defaultdict(list)
    for t, p, o in offsets:
        by_topic[t].append(kproto.i32(p) + kproto.i64(o) + kproto.string(""))
    body = (kproto.string(group) + kproto.i32(generation) + kproto.string(member) + kproto.i64(-1)
            + kproto.array([kproto.string(t) + kproto.array(ps) for t, ps in by_topic.items()]))
    return kproto.frame(API_OFFSET_COMMIT, 2, correlation_id, body)


def parse_offset_commit_v2(body: bytes) -> dict[tuple[str, int], int]:
    r = kproto.Reader(body)
    out = {}
    for name, parts in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16())))):
        for p, code in parts:
            out[(name, p)] = code
    assert r.pos == len(body), f"{len(body) - r.pos} bytes left after the OffsetCommit v2 response"
    return out


def offset_fetch_v1(correlation_id: int, group: str, partitions: list[tuple[str, int]]) -> bytes:
    by_topic: dict[str, list[bytes]] = defaultdict(list)
    for t, p in partitions:
        by_topic[t].append(kproto.i32(p))
    body = kproto.string(group) + kproto.array([kproto.string(t) + kproto.array(ps) for t, ps in by_topic.items()])
    return kproto.frame(API_OFFSET_FETCH, 1, correlation_id, body)


def parse_offset_fetch_v1(body: bytes) -> dict[tuple[str, int], tuple[int, str, int]]:
    r = kproto.Reader(body)
    out = {}
    for name, parts in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i64(), r.string(), r.i16())))):
        for p, offset, meta, code in parts:
            out[(name, p)] = (offset, meta, code)
    assert r.pos == len(body), f"{len(body) - r.pos} bytes left after the OffsetFetch v1 response"
    return out


def find_coordinator(bootstrap: str, group: str) -> None:
    """FindCoordinator v0 until the (single) broker coordinates `group`, then an OffsetFetch
    until its offsets partition is loaded (as a client does before committing or joining)."""
    def ready():
        _, body = kproto.call(bootstrap, kproto.frame(kproto.API_FIND_COORDINATOR, 0, 1, kproto.string(group)))
        return kproto.Reader(body).i16() == 0
    wait_until(ready, 30, f"a coordinator for {group}")

    def loaded():
        _, body = kproto.call(bootstrap, offset_fetch_v1(1, group, [("loaded-probe", 0)]))
        return parse_offset_fetch_v1(body)[("loaded-probe", 0)][2] == 0
    wait_until(loaded, 30, f"the offsets of {group} loaded")
