"""The power_cut fail point: a simulated power loss on one broker with fsync = "always".

The broker cuts every partition file back to what its last fsync made durable (plus garbage
bytes where a torn write could land) and SIGKILLs itself. On one node acks=all means fsynced on
the leader, so every acknowledged record must be read back, exactly once, after the restart.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
import requests
from kafka import KafkaProducer
from kafka.admin import NewTopic

from client_helpers import BackgroundProducer, PacedProducer, admin, check_numbered, kp_consume_all
from harness import Broker, wait_until

PARTITIONS = 2
# Small segments, so the cut meets sealed segments as well as the active one.
SEGMENT_BYTES = 8192
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CUT_LINE = re.compile(r'power cut: file cut to its durable length file=(\S+) before=(\S+) after=(\S+) garbage=(\d+)')


def create_topic(b: Broker, topic: str) -> None:
    a = admin(b.bootstrap)
    try:
        a.create_topics([NewTopic(topic, PARTITIONS, 1, topic_configs={"segment.bytes": str(SEGMENT_BYTES)})])
    finally:
        a.close()
    wait_until(lambda: all(b.partition(topic, p) and b.partition(topic, p)["replica"] for p in range(PARTITIONS)),
               15, f"{topic}'s replicas running")


def partition_files(b: Broker, topic: str) -> dict[Path, int]:
    """Size of every segment and index file of the topic's partitions."""
    out = {}
    for p in range(PARTITIONS):
        for f in (b.data_dir / "topics" / f"{topic}-{p}").iterdir():
            if f.suffix in (".log", ".index", ".timeindex"):
                out[f] = f.stat().st_size
    return out


def produce_acked(b: Broker, topic: str, start: int, n: int) -> dict[int, int]:
    """Sends messages start..start+n with acks=all (kafka-python's idempotent default) and
    waits for every ack; message number -> offset."""
    p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", linger_ms=2)
    try:
        futs = {i: p.send(topic, b"msg-%08d" % i, partition=0) for i in range(start, start + n)}
        p.flush(60)
        return {i: f.get(timeout=0).offset for i, f in futs.items()}
    finally:
        p.close()


def power_cut(b: Broker, garbage: int, seed: int = 7) -> list[tuple[str, str, str, int]]:
    """Triggers the fail point, waits for the process to die of SIGKILL; the cut's log lines
    (file, length before, length after, garbage bytes)."""
    mark = b.log_size()
    body = {"name": "power_cut", "garbage_bytes": garbage, "seed": seed}
    try:
        r = requests.post(f"{b.admin_url}/admin/fail-points", data=json.dumps(body),
                          headers={"content-type": "application/json"}, timeout=5)
        assert r.status_code == 202, r.text
    except requests.ConnectionError:
        pass  # the process may die before the answer leaves
    rc = b.proc.wait(30)
    assert rc == -signal.SIGKILL, f"expected death by SIGKILL, got exit code {rc}"
    text = ANSI.sub("", b.log_text(mark))
    assert "power cut: killing the process (SIGKILL)" in text, text[-3000:]
    return [(m[1], m[2], m[3], int(m[4])) for m in CUT_LINE.finditer(text)]


@pytest.mark.parametrize("garbage", [0, 64])
def test_power_cut_when_idle_keeps_every_ack_and_grows_no_file(make_broker, topic, garbage):
    b = make_broker("powercut", fsync="always", fail_points=True)
    create_topic(b, topic)
    acked = produce_acked(b, topic, 0, 3000)
    assert sorted(acked.values()) == list(range(3000))
    before = partition_files(b, topic)
    assert sum(1 for f in before if f.suffix == ".log" and f.parent.name.endswith("-0")) > 3, before

    cuts = power_cut(b, garbage)
    after = partition_files(b, topic)
    assert set(after) == set(before), "no partition file appeared or vanished"
    garbled = {Path(f) for f, _b, _a, g in cuts if g > 0}
    for f, size in after.items():
        allowed = before[f] + (garbage if f in garbled else 0)
        assert size <= allowed, f"{f} grew from {before[f]} to {size} bytes"
    for f, _was, now, _g in cuts:
        assert now == "None" or Path(f).stat().st_size == int(now.strip("Some()")), (f, now)
    if garbage:
        logs = {f for f in garbled if f.suffix == ".log"}
        assert {f.parent.name for f in logs} == {f"{topic}-{p}" for p in range(PARTITIONS)}, cuts
        assert all(f.name == max(g.name for g in after if g.parent == f.parent and g.suffix == ".log")
                   for f in logs), "only active segments get garbage"

    mark = b.log_size()
    b.start()
    recovered = ANSI.sub("", b.log_text(mark))
    for f in (f for f in garbled if f.suffix == ".log"):
        assert re.search(rf"truncated a torn or corrupt segment tail segment=\S*{f.name}.*bytes={garbage}\b",
                         recovered), f"no truncation of {f} in the log:\n{recovered[-4000:]}"
    records = kp_consume_all(b.bootstrap, topic, PARTITIONS)[0]
    check_numbered(records, set(acked), 3000)
    assert len(records) == 3000
    # Appends continue after the recovered end.
    assert produce_acked(b, topic, 3000, 10) == {3000 + i: 3000 + i for i in range(10)}


def test_power_cut_under_load_loses_no_acknowledged_record(make_broker, topic):
    b = make_broker("powercut-load", fsync="always", fail_points=True)
    create_topic(b, topic)
    total = 12_000
    bg = BackgroundProducer(b.bootstrap, topic, partition=0, pace_s=0.0002, limit=total)
    bg.start()
    bg.wait_acked(3000, timeout=60)
    power_cut(b, 64)
    acked_at_cut = dict(bg.tracker.acked)
    b.start()
    wait_until(lambda: bg.sent >= total, 120, f"all {total} messages handed to the producer")
    tracker = bg.finish(flush_timeout=120)

    records = kp_consume_all(b.bootstrap, topic, PARTITIONS)[0]
    numbers = {int(v[4:]): o for o, _k, v in records}
    lost = sorted(n for n in acked_at_cut if n not in numbers)
    assert not lost, f"{len(lost)} records acknowledged before the power cut are gone, e.g. {lost[:10]}"
    moved = [(n, o, numbers[n]) for n, o in acked_at_cut.items() if numbers[n] != o]
    assert not moved, f"acknowledged records at other offsets (n, acked, now): {moved[:5]}"
    # The idempotent producer retried what was in flight: exactly once, in order.
    check_numbered(records, set(tracker.acked), bg.sent)
    assert not tracker.errors, tracker.errors[:5]
    assert len(tracker.acked) == total and len(records) == total


def test_power_cut_with_many_partitions_written_at_once_loses_no_acknowledged_record(make_broker, topic):
    """Rounds that fsync many partition files together (one `syncfs` from 4 files on) make each
    of them durable: every record acknowledged before the cut is read back at its offset."""
    b = make_broker("powercut-many", fsync="always", fail_points=True)
    partitions = 48
    a = admin(b.bootstrap)
    try:
        a.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        a.close()
    wait_until(lambda: all(b.partition(topic, p) and b.partition(topic, p)["replica"] for p in range(partitions)),
               30, f"{topic}'s replicas running")
    load = PacedProducer(b.bootstrap, [topic], partitions, 4000, b"many-", acks="all",
                         **{"enable.idempotence": True, "message.timeout.ms": 60000}).start()
    try:
        wait_until(lambda: len(load.acked) >= 4000, 60, "4,000 acknowledged records", interval=0.1)
        power_cut(b, 64)
        acked_at_cut = list(load.acked)
        b.start()
    finally:
        load.stop()
    stored = {(p, o): v for p, records in kp_consume_all(b.bootstrap, topic, partitions).items()
              for o, _k, v in records}
    lost = [(p, o, v) for _t, p, o, v in acked_at_cut if stored.get((p, o)) != v]
    assert not lost, f"{len(lost)} of {len(acked_at_cut)} acknowledged records gone or changed, e.g. {lost[:5]}"
    assert len({p for _t, p, _o, _v in acked_at_cut}) == partitions


# The node's high-watermark checkpoint (one file per node, written every 5 s when a mark moved).
HW_FILE = "replication-offset-checkpoint"


def checkpointed_high_watermarks(b: Broker) -> dict[int, int]:
    """Partition -> high watermark in the node's checkpoint (one topic on this broker)."""
    lines = (b.data_dir / HW_FILE).read_text().splitlines()
    assert lines[0] == "0" and int(lines[1]) == len(lines) - 2, lines
    return {int(p): int(hw) for _topic_id, p, hw in (line.split() for line in lines[2:])}


def test_power_cut_while_the_high_watermark_checkpoint_is_written_restores_it_and_loses_no_ack(
        make_broker, topic):
    b = make_broker("powercut-hw", fsync="always", fail_points=True)
    create_topic(b, topic)
    acked = produce_acked(b, topic, 0, 500)
    # Right after the writer put 500 down, so its next write (5 s later) is the one armed below.
    wait_until(lambda: checkpointed_high_watermarks(b).get(0) == 500, 20, "the checkpoint at 500", interval=0.02)
    before = (b.data_dir / HW_FILE).read_bytes()
    mark = b.log_size()
    r = post_fail_point(b, {"name": "power_cut", "during": HW_FILE, "seed": 11})
    assert r.status_code == 200, r.text
    acked |= produce_acked(b, topic, 500, 300)

    # The new marks are renamed into place, then the power goes before the directory fsync.
    rc = b.proc.wait(30)
    assert rc == -signal.SIGKILL, f"expected death by SIGKILL, got exit code {rc}"
    text = ANSI.sub("", b.log_text(mark))
    assert re.search(rf"power cut armed for this file's write.*file=\S*{HW_FILE}\b", text), text[-3000:]
    assert (b.data_dir / HW_FILE).read_bytes() == before, "the cut did not bring the previous checkpoint back"

    b.start()
    records = kp_consume_all(b.bootstrap, topic, PARTITIONS)[0]
    check_numbered(records, set(acked), 800)
    assert len(records) == 800
    wait_until(lambda: checkpointed_high_watermarks(b).get(0) == 800, 20, "the checkpoint written again, at 800")


def post_fail_point(b: Broker, body: dict) -> requests.Response:
    return requests.post(f"{b.admin_url}/admin/fail-points", data=json.dumps(body),
                         headers={"content-type": "application/json"}, timeout=5)


def test_power_cut_is_refused_when_fail_points_are_off(broker):
    r = post_fail_point(broker, {"name": "power_cut"})
    assert r.status_code == 403, r.text
    assert r.json()["success"] is False
    broker.check_alive()


@pytest.mark.parametrize("body, reason", [
    ({"name": "power_cut", "garbage_bytes": 2_000_000}, "exceeds the maximum"),
    ({"name": "power_cut", "topic": "t", "partition": 0}, "no topic or partition"),
    ({"name": "power_cut", "garbage_bytes": -1}, "invalid request body"),
    ({"name": "replica_panic"}, "needs topic and partition"),
    ({"name": "replica_panic", "topic": "t", "partition": 0, "seed": 1}, "apply only to power_cut"),
    ({"name": "replica_panic", "topic": "t", "partition": 0, "during": HW_FILE}, "apply only to power_cut"),
    ({"name": "power_cut", "during": "../" + HW_FILE}, "must be a file name"),
    ({"name": "power_cut", "during": ""}, "must be a file name"),
    ({"name": "actor_crash"}, "needs actor"),
    ({"name": "actor_crash", "actor": "admin-server"}, "cannot crash itself"),
    ({"name": "actor_crash", "actor": "raft", "topic": "t"}, "takes only actor"),
    ({"name": "replica_panic", "topic": "t", "partition": 0, "actor": "raft"}, "only to actor_crash"),
    ({"name": "brownout"}, "unknown fail point"),
    ({"name": "power_cut", "volts": 0}, "unknown field"),
])
def test_bad_fail_point_requests_are_400_and_harmless(make_broker, body, reason):
    b = make_broker("failpoint-input", fail_points=True)
    r = post_fail_point(b, body)
    assert r.status_code == 400, r.text
    assert reason in r.json()["message"], r.text
    b.check_alive()
    assert b.health()["status"] == "healthy"
