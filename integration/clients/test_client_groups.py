"""Consumer groups with the other clients: aiokafka, kcat (librdkafka, -G), kafkajs.

Each test: create a 4-partition topic, produce numbered messages (idempotent where the client
can), consume them in a group of two members that commit, restart the group's consumers and
check they resume from the committed offsets (nothing read twice), then delete the topic.
Messages are `msg-<n>` with n on partition n % 4; "exactly once" is checked by number. A
duplicate is accepted only for a message whose commit the client reported as failed.

The module's broker has `initial_rebalance_delay_ms = 300`. kcat / node + kafkajs missing ->
those tests skip (integration/clients/install.sh installs them).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from harness import Broker, unique_topic, wait_until

HERE = Path(__file__).resolve().parent
PARTS = 4
GROUP_ENV = {"CHRONIK_GROUPS__INITIAL_REBALANCE_DELAY_MS": "300",
             "RUST_LOG": "info,chronik_actors::connection=debug"}


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory) -> Broker:
    b = Broker(tmp_path_factory.mktemp("client-groups-broker"), name="client-groups-broker",
               fsync="interval", num_partitions=1, auto_create_topics=False, extra_env=GROUP_ENV)
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"client-groups broker exited with {rc} on SIGTERM"


def kp_admin(b: Broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="client-groups-admin", request_timeout_ms=15000)


def create_topic(b: Broker, topic: str, partitions: int = PARTS) -> None:
    a = kp_admin(b)
    try:
        a.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        a.close()
    wait_until(lambda: all(b.partition(topic, p) for p in range(partitions)), 15,
               f"{topic}: {partitions} partitions in /admin/partitions")


def delete_topic(b: Broker, topic: str) -> None:
    a = kp_admin(b)
    try:
        a.delete_topics([topic])
    finally:
        a.close()
    wait_until(lambda: b.partition(topic, 0) is None, 15, f"{topic} gone from /admin/partitions")


def hws(b: Broker, topic: str) -> dict[int, int]:
    return {p: b.partition(topic, p)["high_watermark"] for p in range(PARTS)}


def group_offsets(b: Broker, group: str) -> dict[int, int]:
    a = kp_admin(b)
    try:
        got = a.list_group_offsets({group: None})[group]
    finally:
        a.close()
    return {tp.partition: om.offset for tp, om in got.items()}


def admin_group(b: Broker, group: str):
    for g in b.get("/admin/groups").json()["groups"]:
        if g["group_id"] == group:
            return g
    return None


def value(n: int) -> str:
    return f"msg-{n:08d}"


def number(v) -> int:
    if isinstance(v, bytes):
        v = v.decode()
    assert v.startswith("msg-"), f"unexpected value {v!r}"
    return int(v[4:])


def check_exactly_once(numbers, expected: set[int], may_repeat=frozenset(), what: str = "") -> list[int]:
    counts = Counter(numbers)
    dups = sorted(n for n, c in counts.items() if c > 1)
    bad = [n for n in dups if n not in may_repeat]
    assert not bad, f"{what}: {len(bad)} messages read twice although committed, e.g. {bad[:10]}"
    missing = sorted(expected - set(counts))
    assert not missing, f"{what}: {len(missing)} messages never read, e.g. {missing[:10]}"
    unknown = sorted(set(counts) - expected)
    assert not unknown, f"{what}: read messages it should not have: {unknown[:10]}"
    return dups


def disjoint_cover(assignments) -> bool:
    assignments = [set(a) for a in assignments]
    if any(not a for a in assignments):
        return False
    union = set().union(*assignments)
    return sum(len(a) for a in assignments) == len(union) and union == set(range(PARTS))


def check_admin_lag(b: Broker, group: str, topic: str) -> None:
    g = admin_group(b, group)
    assert g is not None, f"{group} not in /admin/groups"
    ends = hws(b, topic)
    rows = {x["partition"]: x for x in g["partitions"] if x["topic"] == topic}
    assert {p: (x["committed_offset"], x["high_watermark"], x["lag"]) for p, x in rows.items()} == {
        p: (ends[p], ends[p], 0) for p in range(PARTS)}
    assert g["total_lag"] == 0


# ---- aiokafka ---------------------------------------------------------------------------

aiokafka = pytest.importorskip("aiokafka")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

AIO_N = 1000


class AioMember:
    """An AIOKafkaConsumer group member: getmany, record, commit() (the consumed positions)
    before the next getmany."""

    def __init__(self, b: Broker, group: str, topic: str, name: str):
        self.name = name
        self.c = AIOKafkaConsumer(topic, bootstrap_servers=b.bootstrap, group_id=group, client_id=name,
                                  enable_auto_commit=False, auto_offset_reset="earliest",
                                  session_timeout_ms=6000, heartbeat_interval_ms=1000)
        self.records: list[tuple[int, int, int]] = []
        self.commit_failed: set[int] = set()
        self.commit_errors: list[str] = []
        self.stopping = False
        self.stop_when = None  # checked after each committed batch: stop reading at once

    async def run(self):
        await self.c.start()
        try:
            while not self.stopping:
                batch = await self.c.getmany(timeout_ms=100, max_records=50)
                got = [(m.partition, m.offset, number(m.value)) for msgs in batch.values() for m in msgs]
                if not got:
                    continue
                self.records.extend(got)
                try:
                    await self.c.commit()
                except Exception as exc:  # noqa: BLE001 - recorded; the test decides
                    self.commit_failed.update(n for _p, _o, n in got)
                    self.commit_errors.append(repr(exc))
                if self.stop_when is not None and self.stop_when():
                    self.stopping = True
        finally:
            await self.c.stop()

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.c.assignment()}


async def aio_group_run(b: Broker, group: str, topic: str, names: list[str], until, timeout: float,
                        what: str, stop_early: bool = False) -> list[AioMember]:
    """Runs members until `until(members)`; with stop_early each member also stops reading as soon
    as it sees `until` true after a commit (so a run can end half way through the topic)."""
    members = [AioMember(b, group, topic, n) for n in names]
    if stop_early:
        for m in members:
            m.stop_when = lambda: until(members)
    tasks = [asyncio.create_task(m.run()) for m in members]
    try:
        deadline = time.monotonic() + timeout
        while not until(members):
            for t in tasks:
                if t.done():
                    t.result()  # raises its error
                    raise AssertionError("an aiokafka member stopped early")
            assert time.monotonic() < deadline, (
                f"timed out after {timeout}s waiting for {what}: read {[len(m.records) for m in members]}, "
                f"assignments {[sorted(m.assignment()) for m in members]}")
            await asyncio.sleep(0.05)
    finally:
        for m in members:
            m.stopping = True
        await asyncio.gather(*tasks)
    return members


def test_aiokafka_group_of_two_commit_restart_resume(gbroker):
    topic, group = unique_topic("aio-group"), unique_topic("aio-g")
    create_topic(gbroker, topic)

    async def produce(start: int, count: int):
        p = AIOKafkaProducer(bootstrap_servers=gbroker.bootstrap, enable_idempotence=True, acks="all")
        await p.start()
        try:
            futs = [await p.send(topic, value(n).encode(), partition=n % PARTS) for n in range(start, start + count)]
            await asyncio.gather(*futs)
        finally:
            await p.stop()

    def nums(ms):
        return [n for m in ms for _p, _o, n in m.records]

    async def scenario():
        await produce(0, AIO_N)
        # run 1: two members, stopped once 3/8 of the topic was read (and committed)
        run1 = await aio_group_run(gbroker, group, topic, ["aio1-a", "aio1-b"],
                                   lambda ms: len(set(nums(ms))) >= AIO_N * 3 // 8, 60, "3/8 of the topic",
                                   stop_early=True)
        committed1 = group_offsets(gbroker, group)
        # run 2: a new pair reads the rest, ends Stable with disjoint assignments
        read1 = set(nums(run1))

        def done(ms):
            return (len(read1 | set(nums(ms))) >= AIO_N and disjoint_cover([m.assignment() for m in ms])
                    and group_offsets(gbroker, group) == hws(gbroker, topic))
        run2 = await aio_group_run(gbroker, group, topic, ["aio2-a", "aio2-b"], done, 60,
                                   "the rest, split between both, committed")
        await produce(AIO_N, 200)
        # run 3: one restarted member reads exactly the 200 new ones
        read12 = read1 | set(nums(run2))
        run3 = await aio_group_run(gbroker, group, topic, ["aio3"],
                                   lambda ms: len(read12 | set(nums(ms))) >= AIO_N + 200
                                   and group_offsets(gbroker, group) == hws(gbroker, topic), 40, "200 new")
        return run1, committed1, run2, run3

    run1, committed1, run2, run3 = asyncio.run(asyncio.wait_for(scenario(), 150))
    failed = set().union(*(m.commit_failed for m in run1 + run2 + run3))
    read1 = [n for m in run1 for _p, _o, n in m.records]
    assert len(set(read1)) < AIO_N
    dups = check_exactly_once([n for m in run1 + run2 + run3 for _p, _o, n in m.records], set(range(AIO_N + 200)),
                              failed, what="aiokafka runs 1-3")
    # run 2 started each partition at run 1's commit
    for p in range(PARTS):
        offs = [o for m in run2 for q, o, _n in m.records if q == p]
        c = committed1.get(p, 0)
        if c < AIO_N // PARTS:
            assert offs and min(offs) == c, f"partition {p}: committed {c}, run 2 started at {min(offs, default=None)}"
        else:
            assert not offs, f"partition {p} was fully read and committed, run 2 read it again"
    run3_first = {p: min(o for q, o, _n in run3[0].records if q == p) for p in range(PARTS)}
    assert run3_first == {p: AIO_N // PARTS for p in range(PARTS)}
    if dups:
        print(f"aiokafka: re-read after failed commits: {dups} {[m.commit_errors for m in run1 + run2 + run3]}")
    check_admin_lag(gbroker, group, topic)
    delete_topic(gbroker, topic)


# ---- kcat (librdkafka) -G ------------------------------------------------------------------

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
needs_kcat = pytest.mark.skipif(KCAT is None, reason="kcat not installed (integration/clients/install.sh)")


def kcat_group_cmd(b: Broker, group: str, topic: str, name: str) -> list[str]:
    """Balanced consumer (-G): auto commit (librdkafka's default) every 100 ms and at close;
    -e: exit once every assigned partition is at its end."""
    return [KCAT, "-b", b.bootstrap, "-G", group, "-e", "-q", "-f", "%p %o %s\\n",
            "-X", f"client.id={name}", "-X", "auto.offset.reset=earliest",
            "-X", "auto.commit.interval.ms=100", "-X", "session.timeout.ms=6000",
            "-X", "heartbeat.interval.ms=1000", topic]


def kcat_group_consume(b: Broker, group: str, topic: str, names: list[str], timeout: float = 60):
    procs = [subprocess.Popen(kcat_group_cmd(b, group, topic, n), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for n in names]
    out = []
    try:
        for n, p in zip(names, procs):
            stdout, stderr = p.communicate(timeout=timeout)
            assert p.returncode == 0, f"kcat {n} -> rc {p.returncode}\nstderr: {stderr[-3000:]}"
            rows = [line.split(" ", 2) for line in stdout.splitlines() if line]
            out.append([(int(pt), int(o), number(v)) for pt, o, v in rows])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    return out


@needs_kcat
def test_kcat_group_consume_commit_rerun(gbroker):
    topic, group = unique_topic("kcat-group"), unique_topic("kcat-g")
    create_topic(gbroker, topic)

    def produce(start: int, count: int):
        for p in range(PARTS):
            lines = "".join(value(n) + "\n" for n in range(start, start + count) if n % PARTS == p)
            r = subprocess.run([KCAT, "-b", gbroker.bootstrap, "-P", "-t", topic, "-p", str(p),
                                "-X", "enable.idempotence=true", "-X", "linger.ms=20"],
                               input=lines, capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr[-2000:]

    produce(0, 1000)
    assert hws(gbroker, topic) == {p: 250 for p in range(PARTS)}
    # two kcat members of one group: everything once between them
    run1 = kcat_group_consume(gbroker, group, topic, ["kcat-a", "kcat-b"])
    print("kcat run 1 per member:", [sorted(Counter(p for p, _o, _n in r).items()) for r in run1])
    check_exactly_once([n for r in run1 for _p, _o, n in r], set(range(1000)), what="two kcat members")
    for p in range(PARTS):
        assert sorted(o for r in run1 for q, o, _n in r if q == p) == list(range(250))
    wait_until(lambda: group_offsets(gbroker, group) == hws(gbroker, topic), 15,
               "kcat's commits at the high watermarks")

    # re-run both: nothing new, nothing again
    run2 = kcat_group_consume(gbroker, group, topic, ["kcat-c", "kcat-d"])
    assert run2 == [[], []], f"kcat re-read committed messages: {[r[:5] for r in run2]}"

    produce(1000, 200)
    run3 = kcat_group_consume(gbroker, group, topic, ["kcat-e", "kcat-f"])
    check_exactly_once([n for r in run3 for _p, _o, n in r], set(range(1000, 1200)), what="kcat after 200 more")
    first = {p: min(o for r in run3 for q, o, _n in r if q == p) for p in range(PARTS)}
    assert first == {p: 250 for p in range(PARTS)}
    wait_until(lambda: group_offsets(gbroker, group) == hws(gbroker, topic), 15, "commits at the high watermarks")
    check_admin_lag(gbroker, group, topic)
    delete_topic(gbroker, topic)


# ---- kafkajs ------------------------------------------------------------------------------

NODE = shutil.which("node")
KAFKAJS = HERE / "node_modules" / "kafkajs" / "package.json"
needs_kafkajs = pytest.mark.skipif(NODE is None or not KAFKAJS.exists(),
                                   reason="node or kafkajs not installed (integration/clients/install.sh)")


def kafkajs_group(b: Broker, **spec) -> dict:
    p = subprocess.run([NODE, str(HERE / "kafkajs_check.js"), "group", b.bootstrap, json.dumps(spec)],
                       capture_output=True, text=True, timeout=100, cwd=HERE,
                       env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    assert p.returncode == 0, f"kafkajs_check.js group -> rc {p.returncode}\nstdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}"
    [line] = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line[len("RESULT "):])


@needs_kafkajs
def test_kafkajs_group_of_two_then_restarted_consumer_resumes(gbroker):
    topic, group = unique_topic("kjs-group"), unique_topic("kjs-g")
    create_topic(gbroker, topic)

    r1 = kafkajs_group(gbroker, topic=topic, groupId=group, members=2, partitions=PARTS, start=0, count=1000)
    assert disjoint_cover(r1["assignments"]), r1["assignments"]
    [d] = r1["described"]
    assert (d["groupId"], d["state"], d["protocolType"]) == (group, "Stable", "consumer"), d
    assert len(d["members"]) == 2, d
    assert {"groupId": group, "protocolType": "consumer"} in r1["listed"], r1["listed"]
    failed = set(r1["commitFailed"])
    check_exactly_once([n for _m, _p, _o, n in r1["consumed"]], set(range(1000)), failed, what="kafkajs, two members")
    for member, p, _o, n in r1["consumed"]:
        assert p == n % PARTS
        assert p in r1["assignments"][member], f"member {member} read partition {p}, assigned {r1['assignments']}"
    assert r1["committed"] == {str(p): 250 for p in range(PARTS)}

    # restart: one new consumer of the same group reads only what was produced since
    r2 = kafkajs_group(gbroker, topic=topic, groupId=group, members=1, partitions=PARTS, start=1000, count=500)
    assert r2["assignments"] == [list(range(PARTS))]
    check_exactly_once([n for _m, _p, _o, n in r2["consumed"]], set(range(1000, 1500)), set(r2["commitFailed"]),
                       what="kafkajs, restarted consumer")
    first = {p: min(o for _m, q, o, _n in r2["consumed"] if q == p) for p in range(PARTS)}
    assert first == {p: 250 for p in range(PARTS)}, f"restarted consumer began at {first}"
    assert r2["committed"] == {str(p): 375 for p in range(PARTS)}
    if r1["errors"] or r2["errors"]:
        print("kafkajs errors:", r1["errors"][:5], r2["errors"][:5])
    check_admin_lag(gbroker, group, topic)
    delete_topic(gbroker, topic)


# ---- five members, one generation (issue 15) --------------------------------------------

FIVE = 5
FIVE_PARTS = 10


def covers(assignments, partitions: int = FIVE_PARTS) -> bool:
    """Every member has partitions, none twice, all of them taken."""
    sets = [set(a) for a in assignments]
    return all(sets) and sum(map(len, sets)) == len(set().union(*sets)) == partitions


def assert_first_generation(b: Broker, group: str) -> None:
    """The broker's view once the members settled: Stable, all five, and generation 1, i.e. one
    rebalance took every member (the joins arrived within the initial rebalance delay of each
    other)."""
    g = admin_group(b, group)
    assert g is not None and g["state"] == "Stable", g
    assert (len(g["members"]), g["generation"]) == (FIVE, 1), g


def test_five_confluent_consumers_settle_in_one_generation(gbroker):
    from confluent_kafka import Consumer

    topic, group = unique_topic("ck-five"), unique_topic("ck-five-g")
    create_topic(gbroker, topic, FIVE_PARTS)
    members = [Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": group, "client.id": f"ck-five-{i}",
                         "partition.assignment.strategy": "range", "session.timeout.ms": 6000})
               for i in range(FIVE)]
    try:
        for c in members:
            c.subscribe([topic])
        deadline = time.monotonic() + 30
        while not covers([{tp.partition for tp in c.assignment()} for c in members]):
            assert time.monotonic() < deadline, [c.assignment() for c in members]
            for c in members:
                c.poll(0.02)
        assert_first_generation(gbroker, group)
    finally:
        for c in members:
            c.close()


def test_five_aiokafka_consumers_settle_in_one_generation(gbroker):
    topic, group = unique_topic("aio-five"), unique_topic("aio-five-g")
    create_topic(gbroker, topic, FIVE_PARTS)

    def settled(members):
        # Checked while the members still run: the group is Stable in generation 1.
        if not covers([m.assignment() for m in members]):
            return False
        assert_first_generation(gbroker, group)
        return True

    asyncio.run(aio_group_run(gbroker, group, topic, [f"aio-five-{i}" for i in range(FIVE)], settled, 30,
                              "5 aiokafka members to split 10 partitions"))


@needs_kafkajs
def test_five_kafkajs_consumers_settle_in_one_generation(gbroker):
    topic, group = unique_topic("kjs-five"), unique_topic("kjs-five-g")
    create_topic(gbroker, topic, FIVE_PARTS)
    r = kafkajs_group(gbroker, topic=topic, groupId=group, members=FIVE, partitions=FIVE_PARTS, start=0, count=100)
    assert covers(r["assignments"]), r["assignments"]
    # kafkajs reports a GROUP_JOIN per member per generation: one each means one rebalance.
    assert sorted(j["member"] for j in r["joins"]) == list(range(FIVE)), r["joins"]
    check_exactly_once([n for _m, _p, _o, n in r["consumed"]], set(range(100)), set(r["commitFailed"]),
                       what="kafkajs, five members")
