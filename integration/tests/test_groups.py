"""Consumer groups end to end with kafka-python 3.x and confluent-kafka (librdkafka).

Every test runs real group members against the release binary: FindCoordinator, JoinGroup,
SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups and
DeleteGroups as the clients send them, plus `GET /admin/groups`.

Messages are numbered (`msg-00000042`, message n on partition n % partitions), so "exactly once"
is checked by number: every message read, none twice. Where a rebalance can race a commit,
a member records every commit the client reported as failed, and a duplicate is only accepted
for a message whose commit failed (that is the at-least-once contract); everything else must
be read exactly once.

The module's broker has `initial_rebalance_delay_ms = 300` (Kafka's 3 s default would make each
first join slow); the restart / kill -9 tests start their own brokers with the same setting.

Broker bugs these tests found (the tests fail until they are fixed):
- test_offsets_of_a_deleted_topic_are_removed: deleting a topic leaves the groups' committed
  offsets for it; a topic re-created under the same name is then read from the old offsets
  (messages before them are skipped). Kafka deletes those offsets with the topic.
- test_group_with_only_committed_offsets_is_described_like_it_is_listed: a group with committed
  offsets but no live group state (simple commits, or any group after a restart) is "Empty" in
  ListGroups and /admin/groups but "Dead" in DescribeGroups.
"""

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

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as CkTopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import errors as kerrors
from kafka.structs import OffsetAndMetadata, TopicPartition

import kproto
from client_helpers import admin, create_topic
from harness import Broker, WaitTimeout, unique_topic, wait_until

GROUP_ENV = {"CHRONIK_GROUPS__INITIAL_REBALANCE_DELAY_MS": "300"}
PARTS = 4
N = 2000

API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory) -> Broker:
    b = Broker(tmp_path_factory.mktemp("groups-broker"), name="groups-broker", fsync="interval",
               num_partitions=1, auto_create_topics=False, extra_env=GROUP_ENV)
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"groups broker exited with {rc} on SIGTERM"


# ---- numbered messages ------------------------------------------------------------------


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


# ---- kafka-python members (threads) -------------------------------------------------------


class KpMember(threading.Thread):
    """A kafka-python group member in its own thread: subscribe, poll, record, commit
    synchronously after every batch, before the next poll (so a rebalance, which happens
    inside poll, never hands over an uncommitted message)."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str, limit: Optional[int] = None, **cfg):
        super().__init__(name=name, daemon=True)
        self.limit = limit  # stop (and close) once this many records were read and committed
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.cfg = dict(session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_records=100)
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
                              enable_auto_commit=False, auto_offset_reset="earliest",
                              request_timeout_ms=30000, **self.cfg)
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


# ---- 1. kafka-python: two members, exactly once, a fresh member resumes --------------------


def test_kafka_python_group_of_two_reads_each_message_once_then_fresh_member_resumes(gbroker):
    topic, group = unique_topic("kp-group"), unique_topic("kp-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    members = [KpMember(gbroker.bootstrap, group, topic, f"kp-m{i}") for i in range(2)]
    for m in members:
        m.start()
    try:
        wait_split(members, "two kafka-python members")
        d = describe(gbroker.bootstrap, group)
        assert d["group_state"] == "Stable" and len(d["members"]) == 2, d
        stable = [m.generations[-1] for m in members]
        assert stable[0][0] == stable[1][0], f"members in different generations: {stable}"

        produce_numbered(gbroker.bootstrap, topic, 0, N)
        wait_until(lambda: distinct(members) >= N, 60, f"{N} distinct messages (have {distinct(members)})",
                   interval=0.1)
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == {p: N // PARTS for p in range(PARTS)},
                   20, "every partition committed at its end offset")
    finally:
        for m in members:
            m.stop()
    for m in members:
        assert m.error is None, f"{m.name}: {m.error!r}"
        assert not m.commit_errors, f"{m.name}: commits failed in a stable group: {m.commit_errors[:3]}"
        # no rebalance after the split was reached
        assert m.generations[-1] == stable[members.index(m)], f"{m.name} rebalanced: {m.generations}"

    check_exactly_once([n for m in members for n in m.numbers()], set(range(N)), what="two members")
    readers = defaultdict(set)
    for m in members:
        for p, o, n in m.records:
            assert p == n % PARTS, f"message {n} read from partition {p}"
            readers[p].add(m.name)
        assert {p for p, _o, _n in m.records} == set(stable[members.index(m)][1])
    assert sorted(readers) == list(range(PARTS))
    assert all(len(r) == 1 for r in readers.values()), f"a partition read by both members: {dict(readers)}"
    for p in range(PARTS):
        offs = sorted(o for m in members for q, o, _n in m.records if q == p)
        assert offs == list(range(N // PARTS)), f"partition {p}: offsets not 0..{N // PARTS - 1}"

    # both closed (LeaveGroup): the group is Empty, its offsets stay
    wait_until(lambda: describe(gbroker.bootstrap, group)["group_state"] == "Empty", 10, "group Empty")

    produce_numbered(gbroker.bootstrap, topic, N, 500)
    fresh = KpMember(gbroker.bootstrap, group, topic, "kp-fresh")
    fresh.start()
    try:
        wait_until(lambda: distinct([fresh]) >= 500, 30, f"500 new messages (have {distinct([fresh])})", interval=0.1)
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == hw(gbroker, topic), 20,
                   "fresh member committed up to the high watermarks")
    finally:
        fresh.stop()
    assert fresh.error is None, repr(fresh.error)
    assert fresh.snapshot() == set(range(PARTS))
    check_exactly_once(fresh.numbers(), set(range(N, N + 500)), what="fresh member")
    first = {p: min(o for q, o, _n in fresh.records if q == p) for p in range(PARTS)}
    assert first == {p: N // PARTS for p in range(PARTS)}, f"fresh member did not start at the committed offsets: {first}"


# ---- 2. confluent-kafka: two members, stop half way, restart, resume ------------------------


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


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_confluent_group_stop_half_way_restart_resumes(gbroker, strategy):
    topic, group = unique_topic(f"ck-{strategy}"), unique_topic(f"ck-g-{strategy}")
    create_topic(gbroker.bootstrap, topic, PARTS)
    produce_numbered(gbroker.bootstrap, topic, 0, N)

    def nums(ms):
        return [n for m in ms for _p, _o, n in m.records]

    # run 1: two members until at least half is read and committed, then both close
    first = [CkMember(gbroker.bootstrap, group, topic, f"ck1-{i}", strategy) for i in range(2)]
    try:
        ck_run(first, lambda: len(set(nums(first))) >= N * 3 // 8, 60, f"{N * 3 // 8} messages")
        committed = first[0].committed()
    finally:
        for m in first:
            m.close()
    read1 = nums(first)
    assert len(set(read1)) < N, "run 1 read everything: nothing left to resume"
    failed1 = set().union(*(m.commit_failed for m in first))
    check_exactly_once(read1, set(read1), failed1, what="run 1")
    # what was committed is exactly what was read, per partition (offsets 0..k-1)
    per_part = Counter(n % PARTS for n in set(read1))
    assert {p: o for p, o in committed.items() if o >= 0} == {p: c for p, c in per_part.items()}, (
        f"committed {committed} vs read per partition {dict(per_part)}")

    # run 2: two new members of the same group read the rest, from the committed offsets
    second = [CkMember(gbroker.bootstrap, group, topic, f"ck2-{i}", strategy) for i in range(2)]
    try:
        ck_run(second, lambda: len(set(read1) | set(nums(second))) >= N, 60, "the rest")
        ck_run(second, lambda: disjoint_cover([m.assignment() for m in second]), 30,
               "disjoint assignments covering all partitions")
        ck_run(second, lambda: second[0].committed() == {p: N // PARTS for p in range(PARTS)}, 20,
               "commits at the end offsets")
        final = [m.assignment() for m in second]
    finally:
        for m in second:
            m.close()
    failed2 = set().union(*(m.commit_failed for m in second))
    read2 = nums(second)
    dups = check_exactly_once(read1 + read2, set(range(N)), failed1 | failed2, what=f"{strategy}, runs 1+2")
    resumed_at = {p: min((o for m in second for q, o, _n in m.records if q == p), default=None)
                  for p in range(PARTS)}
    # (a partition run 1 read to its end has nothing left for run 2)
    want = {p: None if committed.get(p) == N // PARTS else max(committed.get(p, -1), 0) for p in range(PARTS)}
    assert resumed_at == want, f"run 2 did not start at the committed offsets: {resumed_at} != {want}"
    assert disjoint_cover(final), final
    if dups:
        print(f"{strategy}: {len(dups)} re-read after failed commits: "
              f"{[m.commit_errors[:2] for m in first + second]}")


# ---- 3. a member killed with SIGKILL: the survivor takes over from the commits ------------------

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


def test_member_killed_survivor_takes_over_from_committed_offsets(gbroker, tmp_path):
    topic, group = unique_topic("kill-member"), unique_topic("kill-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    script = tmp_path / "member.py"
    script.write_text(MEMBER_SCRIPT)
    procs = [MemberProcess(script, gbroker.bootstrap, group, topic, f"kill-m{i}") for i in range(2)]
    try:
        def split():
            for p in procs:
                p.check_alive()
            return disjoint_cover([p.assignment() for p in procs])
        wait_until(split, 45, "two member processes with disjoint assignments covering all partitions",
                   interval=0.1)

        produce_numbered(gbroker.bootstrap, topic, 0, N)
        victim, survivor = procs
        wait_until(lambda: (victim.check_alive(), len(victim.msgs()) >= 100)[1], 30,
                   "the victim reading 100 messages", interval=0.02)
        victim.kill()
        killed_at = time.monotonic()
        victim_parts = victim.assignment()
        victim_msgs = victim.msgs()
        assert len(victim_msgs) < N // 2, "victim read all its partitions before the kill: nothing to take over"

        def took_over():
            survivor.check_alive()
            return [t for t, a, _g in survivor.assigned() if a == set(range(PARTS)) and t > killed_at]
        t_over = wait_until(took_over, 6 + 15, "the survivor owning all partitions "
                            "(session timeout 6 s + 15 s)", interval=0.1)[0]
        took = t_over - killed_at

        def everything():
            survivor.check_alive()
            return len({n for _p, _o, n in victim_msgs + survivor.msgs()}) >= N
        wait_until(everything, 60, "all messages read by the two members", interval=0.1)
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == {p: N // PARTS for p in range(PARTS)},
                   20, "every partition committed at its end offset")
        survivor_msgs = survivor.msgs()
        failed = survivor.commit_failures()
    finally:
        for p in procs:
            p.terminate()

    # the survivor re-reads at most the last message the victim read on each of its partitions:
    # the one whose commit may not have completed when it was killed
    last_victim = {}
    for p, o, n in victim_msgs:
        last_victim[p] = max(last_victim.get(p, -1), o)
    may_repeat = {n for p, o, n in victim_msgs if last_victim.get(p) == o}
    failed_numbers = {n for p, o, n in survivor_msgs if (p, o) in failed}
    numbers = [n for _p, _o, n in victim_msgs + survivor_msgs]
    dups = check_exactly_once(numbers, set(range(N)), may_repeat | failed_numbers, what="victim + survivor")
    victim_dups = [n for n in dups if n in may_repeat]
    assert len(victim_dups) <= len(victim_parts), (victim_dups, victim_parts)

    # the survivor continued each taken-over partition at the victim's commit
    for p in victim_parts:
        after = [o for q, o, _n in survivor_msgs if q == p]
        assert after, f"survivor read nothing of partition {p}"
        start = min(after)
        if p in last_victim:
            assert start in (last_victim[p], last_victim[p] + 1), (
                f"partition {p}: victim read up to offset {last_victim[p]}, survivor resumed at {start}")
        else:
            assert start == 0, f"partition {p}: nothing read by the victim, survivor resumed at {start}"
    print(f"kill: takeover after {took:.1f}s, victim owned {sorted(victim_parts)}, duplicates {dups}, "
          f"survivor commit failures {failed}")


def test_paused_member_is_fenced_and_cannot_rewind_commits(gbroker, tmp_path):
    """A member stops (SIGSTOP, like a long GC pause) between reading a message and committing
    it. Its session expires, the survivor takes its partitions and reads everything. When the
    zombie wakes up, its commit must be refused (its member id / generation are gone), so the
    group's offsets are not rewound; it rejoins and the two split the partitions again."""
    topic, group = unique_topic("zombie"), unique_topic("zombie-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    script = tmp_path / "member.py"
    script.write_text(MEMBER_SCRIPT)
    zombie = MemberProcess(script, gbroker.bootstrap, group, topic, "zombie", pause_after=100)
    survivor = MemberProcess(script, gbroker.bootstrap, group, topic, "survivor")
    procs = [zombie, survivor]
    try:
        wait_until(lambda: [p.check_alive() for p in procs] and disjoint_cover([p.assignment() for p in procs]),
                   45, "two member processes with disjoint assignments covering all partitions", interval=0.1)
        produce_numbered(gbroker.bootstrap, topic, 0, N)
        wait_until(zombie.paused, 30, "the zombie pausing itself", interval=0.02)
        paused_at = time.monotonic()
        [(_t, (zp, zo))] = zombie._kind("PAUSED")
        zp, zo = int(zp), int(zo)
        zombie_parts, zombie_gen = zombie.assignment(), zombie.generation()

        wait_until(lambda: survivor.check_alive() or [t for t, a, _g in survivor.assigned()
                                                       if a == set(range(PARTS)) and t > paused_at],
                   6 + 15, "the survivor owning all partitions", interval=0.1)
        wait_until(lambda: survivor.check_alive() or len({n for _p, _o, n in zombie.msgs() + survivor.msgs()}) >= N,
                   60, "all messages read", interval=0.1)
        end = {p: N // PARTS for p in range(PARTS)}
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == end, 20, "commits at the end offsets")

        os.kill(zombie.proc.pid, signal.SIGCONT)
        wait_until(lambda: zombie.check_alive() or zombie._kind("RESUMED"), 10, "the zombie resuming")
        wait_detail(lambda: [p.check_alive() for p in procs]
                   and zombie.generation() > zombie_gen and zombie.generation() == survivor.generation()
                   and disjoint_cover([p.assignment() for p in procs]), 30,
                   "the zombie rejoined: disjoint assignments covering all partitions again", interval=0.1,
                   detail=lambda: f"zombie:\n{zombie.output_tail()}\nsurvivor:\n{survivor.output_tail()}")
        committed = group_offsets(gbroker.bootstrap, group, topic)
        print(f"zombie:\n{zombie.output_tail()}\nsurvivor:\n{survivor.output_tail()}")
        zombie_failed = zombie.commit_failures()
        zombie_msgs, survivor_msgs = zombie.msgs(), survivor.msgs()
    finally:
        for p in procs:
            p.terminate()
    assert (zp, zo) in zombie_failed, (
        f"the zombie's commit of {topic}/{zp}@{zo + 1} after its session expired was accepted "
        f"(commit failures {zombie_failed})")
    assert committed == end, f"offsets rewound by the zombie: {committed} != {end}"
    assert zp in zombie_parts
    failed_numbers = {n for p, o, n in zombie_msgs if (p, o) in zombie_failed}
    failed_numbers |= {n for p, o, n in survivor_msgs if (p, o) in survivor.commit_failures()}
    check_exactly_once([n for _p, _o, n in zombie_msgs + survivor_msgs], set(range(N)), failed_numbers,
                       what="zombie + survivor")


# ---- 4. broker restart: committed offsets survive, members rejoin -------------------------


def test_committed_offsets_survive_broker_restart(make_broker):
    b = make_broker("groups-restart", extra_env=GROUP_ENV, num_partitions=1, auto_create_topics=False)
    topic, group, doomed = unique_topic("restart"), unique_topic("restart-g"), unique_topic("restart-del")
    parts, total = 2, 400
    create_topic(b.bootstrap, topic, parts)
    produce_numbered(b.bootstrap, topic, 0, total, partitions=parts)

    m = KpMember(b.bootstrap, group, topic, "restart-m1", limit=130, max_poll_records=10)
    m.start()
    try:
        wait_until(lambda: not m.is_alive(), 30, "130 records read (the member stops by itself)")
    finally:
        m.stop()
    assert m.error is None and not m.commit_errors, (m.error, m.commit_errors)
    read1 = m.numbers()
    check_exactly_once(read1, set(read1), what="before the restart")
    per_part = Counter(n % parts for n in read1)
    committed = group_offsets(b.bootstrap, group, topic)
    # (kafka-python also commits position 0 of a partition it has not read yet)
    assert set(per_part) <= set(committed) and all(o == per_part.get(p, 0) for p, o in committed.items()), (
        f"committed {committed} vs read per partition {dict(per_part)}")
    assert any(0 < o < total // parts for o in committed.values()), f"no partition committed half way: {committed}"

    # a second group, deleted before the restart: it must stay deleted
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=doomed, enable_auto_commit=False)
    try:
        c.commit({TopicPartition(topic, 0): OffsetAndMetadata(7, "", -1)})
    finally:
        c.close(autocommit=False)
    a = admin(b.bootstrap)
    try:
        assert a.delete_groups([doomed]) == {doomed: "OK"}
    finally:
        a.close()

    rc = b.stop()
    assert rc == 0, f"broker exited with {rc} on SIGTERM"
    b.start()

    assert group_offsets(b.bootstrap, group, topic) == committed, "OffsetFetch after the restart"
    g = admin_group(b, group)
    assert g is not None, "group missing from /admin/groups after the restart"
    assert {x["partition"]: (x["committed_offset"], x["lag"]) for x in g["partitions"]} == {
        p: (committed[p], total // parts - committed[p]) for p in committed}
    a = admin(b.bootstrap)
    try:
        listed = {x["group_id"] for x in a.list_groups()}
        assert group in listed and doomed not in listed, listed
        assert a.list_group_offsets({doomed: None})[doomed] == {}, "deleted group's offsets came back"
    finally:
        a.close()

    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        assert {p: c.committed(TopicPartition(topic, p)) for p in range(parts)} == {
            p: committed.get(p) for p in range(parts)}
    finally:
        c.close(autocommit=False)

    m2 = KpMember(b.bootstrap, group, topic, "restart-m2")
    m2.start()
    try:
        wait_until(lambda: len(set(read1) | set(m2.numbers())) >= total, 30, "the rest after the restart",
                   interval=0.05)
        wait_until(lambda: group_offsets(b.bootstrap, group, topic) == {p: total // parts for p in range(parts)},
                   15, "commits at the end offsets")
    finally:
        m2.stop()
    assert m2.error is None and not m2.commit_errors, (m2.error, m2.commit_errors)
    check_exactly_once(read1 + m2.numbers(), set(range(total)), what="before + after the restart")
    first = {p: min((o for q, o, _n in m2.records if q == p), default=None) for p in range(parts)}
    want = {p: None if committed.get(p) == total // parts else committed.get(p, 0) for p in range(parts)}
    assert first == want, (
        f"resumed at {first}, committed before the restart {committed}")


def test_running_member_rejoins_after_broker_restart(make_broker):
    """Membership is not persisted: a member running across a restart must rejoin (its heartbeat
    or commit gets UNKNOWN_MEMBER_ID / COORDINATOR_NOT_AVAILABLE) and continue from its commits."""
    b = make_broker("groups-rejoin", extra_env=GROUP_ENV, num_partitions=1, auto_create_topics=False)
    topic, group = unique_topic("rejoin"), unique_topic("rejoin-g")
    parts = 2
    create_topic(b.bootstrap, topic, parts)
    produce_numbered(b.bootstrap, topic, 0, 100, partitions=parts)
    m = KpMember(b.bootstrap, group, topic, "rejoin-m", reconnect_backoff_max_ms=500)
    m.start()
    try:
        wait_until(lambda: distinct([m]) >= 100, 30, "the first 100 messages", interval=0.05)
        wait_until(lambda: group_offsets(b.bootstrap, group, topic) == {0: 50, 1: 50}, 15, "first commits")
        gen_before = m.generations[-1][0]
        assert b.stop() == 0
        b.start()
        produce_numbered(b.bootstrap, topic, 100, 100, partitions=parts)
        wait_until(lambda: distinct([m]) >= 200, 60, f"100 more after the restart (have {distinct([m])})",
                   interval=0.1)
        wait_until(lambda: group_offsets(b.bootstrap, group, topic) == {0: 100, 1: 100}, 20,
                   "commits after the restart")
        wait_until(lambda: describe(b.bootstrap, group)["group_state"] == "Stable", 15, "group Stable again")
    finally:
        m.stop()
    assert m.error is None, repr(m.error)
    check_exactly_once(m.numbers(), set(range(200)), m.commit_failed, what="across the restart")
    print(f"rejoin: generations {m.generations} (before restart {gen_before}), commit errors {m.commit_errors}")


def test_acknowledged_commits_survive_broker_sigkill(make_broker):
    """fsync = always: a commit is answered once durable. kill -9 the broker while a member
    commits after every 5 messages; after the restart no acknowledged commit is lost: the stored
    offsets are at least the acknowledged ones, and the member, rejoining, re-reads nothing whose
    commit was acknowledged."""
    b = make_broker("groups-sigkill", extra_env=GROUP_ENV, fsync="always", num_partitions=1,
                    auto_create_topics=False)
    topic, group = unique_topic("sigkill"), unique_topic("sigkill-g")
    parts, total = 2, 3000
    create_topic(b.bootstrap, topic, parts)
    produce_numbered(b.bootstrap, topic, 0, total, partitions=parts)
    m = KpMember(b.bootstrap, group, topic, "sigkill-m", max_poll_records=5)
    m.start()
    try:
        wait_until(lambda: distinct([m]) >= 500, 30, "500 messages read", interval=0.01)
        b.kill()
        with m.lock:
            acked = dict(m.acked)
            read_before = len(m.records)
        assert read_before < total, "everything was read before the kill"
        b.start()
        stored = group_offsets(b.bootstrap, group, topic)
        lost = {p: (o, stored.get(p)) for p, o in acked.items() if stored.get(p, -1) < o}
        assert not lost, f"acknowledged commits lost by kill -9 (partition: (acked, stored)): {lost}"
        wait_until(lambda: distinct([m]) >= total, 60, f"the rest after the restart (have {distinct([m])})",
                   interval=0.1)
        wait_until(lambda: group_offsets(b.bootstrap, group, topic) == {p: total // parts for p in range(parts)},
                   20, "commits at the end offsets")
    finally:
        m.stop()
    assert m.error is None, repr(m.error)
    check_exactly_once(m.numbers(), set(range(total)), m.commit_failed, what="across kill -9")
    print(f"sigkill: acked at kill {acked}, commit errors {m.commit_errors[:3]}")


def test_static_member_restart_keeps_assignment_without_rebalance(gbroker):
    """KIP-345: a static member (group.instance.id) that closes and comes back within the session
    timeout takes its old place: same partitions, no new generation for the other member; static
    members send no LeaveGroup, so the group only empties when their sessions expire."""
    topic, group = unique_topic("static"), unique_topic("static-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    members = [KpMember(gbroker.bootstrap, group, topic, f"static-{i}", group_instance_id=f"inst-{i}")
               for i in range(2)]
    for m in members:
        m.start()
    again = None
    try:
        wait_split(members, "two static members")
        a, other = members
        a_parts, gen = a.snapshot(), other.generations[-1]
        d = describe(gbroker.bootstrap, group)
        assert sorted(x["group_instance_id"] for x in d["members"]) == ["inst-0", "inst-1"], d["members"]
        ids_before = {x["group_instance_id"]: x["member_id"] for x in d["members"]}
        a.stop()
        d = describe(gbroker.bootstrap, group)
        assert d["group_state"] == "Stable" and len(d["members"]) == 2, d

        again = KpMember(gbroker.bootstrap, group, topic, "static-0b", group_instance_id="inst-0")
        again.start()
        wait_until(lambda: again.snapshot(), 20, "the restarted static member assigned")
        assert again.snapshot() == a_parts
        produce_numbered(gbroker.bootstrap, topic, 0, 200)
        wait_until(lambda: distinct([again, other]) >= 200, 30, "200 messages read")
        assert other.generations[-1] == gen, f"the other member rebalanced: {other.generations}"
        d = describe(gbroker.bootstrap, group)
        assert d["group_state"] == "Stable", d
        # the returning instance got a new member id (Kafka keeps the member's other metadata,
        # client id included, from its first join)
        ids = {x["group_instance_id"]: x["member_id"] for x in d["members"]}
        assert ids["inst-1"] == ids_before["inst-1"], (ids_before, ids)
        assert ids["inst-0"] != ids_before["inst-0"] and ids["inst-0"].startswith("inst-0"), (ids_before, ids)
    finally:
        for m in members + ([again] if again else []):
            m.stop()
    check_exactly_once(again.numbers() + other.numbers(), set(range(200)), what="static members")
    # no LeaveGroup from static members: they stay until their 6 s sessions expire
    d = describe(gbroker.bootstrap, group)
    assert len(d["members"]) == 2, d
    wait_until(lambda: describe(gbroker.bootstrap, group)["group_state"] == "Empty", 6 + 10,
               "the static members' sessions to expire")


def test_session_timeout_below_minimum_is_refused(gbroker):
    topic = unique_topic("short-session")
    create_topic(gbroker.bootstrap, topic, 1)
    c = KafkaConsumer(topic, bootstrap_servers=gbroker.bootstrap, group_id=unique_topic("short-g"),
                      session_timeout_ms=3000, heartbeat_interval_ms=1000)
    try:
        with pytest.raises(kerrors.InvalidSessionTimeoutError):
            c.poll(timeout_ms=5000)
    finally:
        c.close(autocommit=False)


# ---- 5. admin: list / describe / delete, unknown topics, /admin/groups ------------------------


def test_admin_list_describe_delete_groups(gbroker):
    topic, group = unique_topic("adm-groups"), unique_topic("adm-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    produce_numbered(gbroker.bootstrap, topic, 0, 40)
    members = [KpMember(gbroker.bootstrap, group, topic, f"adm-m{i}") for i in range(2)]
    for m in members:
        m.start()
    a = admin(gbroker.bootstrap)
    try:
        wait_split(members, "two members")
        wait_until(lambda: distinct(members) >= 40 and group_offsets(gbroker.bootstrap, group, topic)
                   == {p: 10 for p in range(PARTS)}, 30, "40 messages read and committed")

        listed = {x["group_id"]: x for x in a.list_groups()}
        assert group in listed, f"{group} not in ListGroups: {sorted(listed)}"
        assert listed[group]["protocol_type"] == "consumer"
        if "group_state" in listed[group]:  # ListGroups v4+
            assert listed[group]["group_state"] == "Stable"
        only_stable = {x["group_id"] for x in a.list_groups(states_filter=["Stable"])}
        assert group in only_stable
        assert group not in {x["group_id"] for x in a.list_groups(states_filter=["Empty"])}

        d = a.describe_groups([group])[group]
        assert d["error"] is None, d
        assert (d["group_state"], d["protocol_type"], d["protocol_data"]) == ("Stable", "consumer", "range"), d
        assert sorted(x["client_id"] for x in d["members"]) == ["adm-m0", "adm-m1"], d["members"]
        by_client = {x["client_id"]: x for x in d["members"]}
        for m in members:
            x = by_client[m.name]
            assert x["member_id"].startswith(m.name), x["member_id"]
            assigned = {p for t in x["member_assignment"]["assigned_partitions"] for p in t["partitions"]
                        if t["topic"] == topic}
            assert assigned == m.snapshot(), f"{m.name}: DescribeGroups says {assigned}, client has {m.snapshot()}"
            assert x["member_metadata"]["topics"] == [topic]
        g = admin_group(gbroker, group)
        assert g["state"] == "Stable" and g["protocol_type"] == "consumer", g

        # members active: NON_EMPTY_GROUP, and nothing is deleted
        assert a.delete_groups([group]) == {group: "NonEmptyGroupError"}
        assert group_offsets(gbroker.bootstrap, group, topic) == {p: 10 for p in range(PARTS)}
    finally:
        for m in members:
            m.stop()
    for m in members:
        assert m.error is None, repr(m.error)
    try:
        wait_until(lambda: describe(gbroker.bootstrap, group)["group_state"] == "Empty", 10, "group Empty")
        d = a.describe_groups([group])[group]
        assert d["members"] == [] and d["error"] is None, d
        assert group in {x["group_id"] for x in a.list_groups(states_filter=["Empty"])}

        assert a.delete_groups([group]) == {group: "OK"}
        assert group not in {x["group_id"] for x in a.list_groups()}
        assert a.list_group_offsets({group: None})[group] == {}
        assert admin_group(gbroker, group) is None
        d = a.describe_groups([group])[group]
        assert d["group_state"] == "Dead" and d["members"] == [], d
        assert a.delete_groups([group]) == {group: "GroupIdNotFoundError"}
    finally:
        a.close()
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        assert [c.committed(TopicPartition(topic, p)) for p in range(PARTS)] == [None] * PARTS
    finally:
        c.close(autocommit=False)


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


def test_commit_for_unknown_topic_is_refused(gbroker):
    topic, group = unique_topic("unk-commit"), unique_topic("unk-g")
    create_topic(gbroker.bootstrap, topic, 2)
    ghost = unique_topic("no-such-topic")

    # raw OffsetCommit v2, simple (no generation): per-partition codes, the good one applied
    _, body = kproto.call(gbroker.bootstrap, offset_commit_v2(
        1, group, [(topic, 0, 5), (topic, 7, 5), (ghost, 0, 5)]))
    assert parse_offset_commit_v2(body) == {(topic, 0): 0, (topic, 7): 3, (ghost, 0): 3}
    assert group_offsets(gbroker.bootstrap, group) == {0: 5}
    _, body = kproto.call(gbroker.bootstrap, offset_fetch_v1(2, group, [(topic, 0), (topic, 1), (ghost, 0)]))
    got = parse_offset_fetch_v1(body)
    assert got[(topic, 0)] == (5, "", 0) and got[(topic, 1)][:2] == (-1, "") and got[(ghost, 0)][0] == -1, got

    # kafka-python surfaces UNKNOWN_TOPIC_OR_PARTITION (retriable, so commit() itself would only
    # retry until its timeout: the async commit's callback shows the error)
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        # an OffsetFetch first, so the coordinator is known and commit_async's future is the commit's
        assert c.committed(TopicPartition(topic, 0)) == 5
        got = []
        fut = c.commit_async({TopicPartition(ghost, 0): OffsetAndMetadata(9, "", -1)},
                             callback=lambda offsets, exc: got.append(exc))
        wait_until(lambda: fut.is_done, 15, "the async commit to complete")
        assert isinstance(fut.exception, kerrors.UnknownTopicOrPartitionError), repr(fut.exception)
        with pytest.raises(kerrors.KafkaTimeoutError):
            c.commit({TopicPartition(ghost, 0): OffsetAndMetadata(9, "", -1)}, timeout_ms=1500)
        c.commit({TopicPartition(topic, 1): OffsetAndMetadata(3, "", -1)})
        # (callbacks of completed async commits run at the next commit)
        assert len(got) == 1 and isinstance(got[0], kerrors.UnknownTopicOrPartitionError), got
        assert c.committed(TopicPartition(topic, 1)) == 3
        assert c.committed(TopicPartition(ghost, 0)) is None
    finally:
        c.close(autocommit=False)
    assert group_offsets(gbroker.bootstrap, group) == {0: 5, 1: 3}


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


def test_commit_checks_generation_and_member(gbroker):
    """OffsetCommit against a live group: only its current generation's members may commit."""
    topic, group = unique_topic("gen-check"), unique_topic("gen-g")
    create_topic(gbroker.bootstrap, topic, 1)
    m = KpMember(gbroker.bootstrap, group, topic, "gen-m")
    m.start()
    try:
        wait_until(lambda: m.snapshot() == {0}, 20, "the member assigned")
        gen = m.generations[-1][0]
        [member] = describe(gbroker.bootstrap, group)["members"]
        mid = member["member_id"]
        cases = [
            ((gen, mid), 0),
            ((gen + 1, mid), 22),        # ILLEGAL_GENERATION
            ((gen - 1, mid), 22),
            ((gen, "no-such-member"), 25),  # UNKNOWN_MEMBER_ID
            ((-1, ""), 25),              # a "simple" commit to a group with members
        ]
        for i, ((g, who), want) in enumerate(cases):
            _, body = kproto.call(gbroker.bootstrap, offset_commit_v2(10 + i, group, [(topic, 0, 100 + i)], g, who))
            assert parse_offset_commit_v2(body) == {(topic, 0): want}, f"commit as generation {g} member {who!r}"
        # only the first was applied; OffsetFetch v1 (no top-level error field) returns it
        _, body = kproto.call(gbroker.bootstrap, offset_fetch_v1(20, group, [(topic, 0)]))
        assert parse_offset_fetch_v1(body) == {(topic, 0): (100, "", 0)}
    finally:
        m.stop()
    assert m.error is None, repr(m.error)


def test_offsets_of_a_deleted_topic_are_removed(gbroker):
    """Kafka drops a group's committed offsets for a topic when the topic is deleted (so a topic
    re-created under the same name is read from its start, not from the old topic's offsets)."""
    topic, group = unique_topic("deleted-topic"), unique_topic("deleted-topic-g")
    create_topic(gbroker.bootstrap, topic, 1)
    produce_numbered(gbroker.bootstrap, topic, 0, 10, partitions=1)
    m = KpMember(gbroker.bootstrap, group, topic, "deltopic-m")
    m.start()
    try:
        wait_until(lambda: distinct([m]) >= 10 and group_offsets(gbroker.bootstrap, group) == {0: 10}, 20,
                   "10 read and committed")
    finally:
        m.stop()
    a = admin(gbroker.bootstrap)
    try:
        a.delete_topics([topic])
    finally:
        a.close()
    wait_until(lambda: gbroker.partition(topic, 0) is None, 15, "topic deleted")

    stored = group_offsets(gbroker.bootstrap, group, topic)
    g = admin_group(gbroker, group)

    # the same name again, 15 messages: the group must read all of them
    create_topic(gbroker.bootstrap, topic, 1)
    produce_numbered(gbroker.bootstrap, topic, 100, 15, partitions=1)
    fresh = KpMember(gbroker.bootstrap, group, topic, "deltopic-fresh")
    fresh.start()
    try:
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == {0: 15}, 20,
                   "the fresh member caught up")
    finally:
        fresh.stop()
    assert stored == {}, (f"offsets of the deleted topic survived its deletion: OffsetFetch {stored}, "
                          f"/admin/groups {g}; the group then read {sorted(fresh.numbers())} of the "
                          f"re-created topic's messages 100..114")
    assert sorted(fresh.numbers()) == list(range(100, 115)), (
        f"re-created topic: the group read {sorted(fresh.numbers())}, not its 15 messages")


def test_group_with_only_committed_offsets_is_described_like_it_is_listed(gbroker):
    """A group that has committed offsets but no members (simple commits here; after a broker
    restart every group is in this situation, since membership is not persisted) is listed
    by ListGroups as Empty and can be deleted; DescribeGroups must agree and say Empty, not
    Dead (Kafka's tools print "Consumer group ... does not exist" for a Dead group)."""
    topic, group = unique_topic("offsets-only"), unique_topic("offsets-only-g")
    create_topic(gbroker.bootstrap, topic, 1)
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        c.commit({TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1)})
    finally:
        c.close(autocommit=False)
    a = admin(gbroker.bootstrap)
    try:
        listed = {x["group_id"]: x for x in a.list_groups()}
        assert listed[group]["group_state"] == "Empty", listed[group]
        assert admin_group(gbroker, group)["state"] == "Empty"
        d = a.describe_groups([group])[group]
        assert (d["error"], d["group_state"], d["members"]) == (None, "Empty", []), (
            f"ListGroups and /admin/groups say Empty, DescribeGroups says {d['group_state']!r}: {d}")
    finally:
        a.close()


def test_admin_groups_endpoint_shows_committed_offsets_and_lag(gbroker):
    topic, group = unique_topic("lag"), unique_topic("lag-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    produce_numbered(gbroker.bootstrap, topic, 0, 400)  # 100 per partition
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        # a simple (group-less) commit through kafka-python: assign + commit explicit offsets
        c.assign([TopicPartition(topic, p) for p in range(PARTS)])
        want = {0: 100, 1: 60, 2: 1, 3: 0}
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, f"meta-{p}", -1) for p, o in want.items()})
        assert {p: c.committed(TopicPartition(topic, p)) for p in range(PARTS)} == want
        om = c.committed(TopicPartition(topic, 1), metadata=True)
        assert om.metadata == "meta-1"
    finally:
        c.close(autocommit=False)

    g = admin_group(gbroker, group)
    assert g is not None
    assert g["state"] == "Empty", g
    rows = {x["partition"]: x for x in g["partitions"]}
    assert all(x["topic"] == topic for x in g["partitions"])
    assert {p: (x["committed_offset"], x["high_watermark"], x["lag"]) for p, x in rows.items()} == {
        p: (o, 100, 100 - o) for p, o in want.items()}
    assert g["total_lag"] == sum(100 - o for o in want.values())

    produce_numbered(gbroker.bootstrap, topic, 400, 40)  # 10 more per partition
    g = admin_group(gbroker, group)
    assert {x["partition"]: x["lag"] for x in g["partitions"]} == {p: 110 - o for p, o in want.items()}
    assert g["total_lag"] == sum(110 - o for o in want.values())
