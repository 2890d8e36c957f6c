"""`chronik-server cluster verify`: replicas compared batch for batch up to the high watermark.

Three nodes, RF 3, acks=all. verify agrees; then one follower's segment gets one record's value
rewritten (with the batch's CRC-32C recomputed, so the broker loads it) while it is stopped, and
verify names the partition, the replica and the exact offset; with a node down it says so with
its own exit status.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import NewTopic
from kafka.record.util import calc_crc32c

from client_helpers import admin, kp_consume_all
from cluster import Cluster, started
from harness import unique_topic, wait_until

PARTITIONS = 2
RECORDS = 1000
# The first SMALL messages go out two at a time (one single-record batch per partition each), so
# a partition holds more batches than verify lists at once and it must narrow by chunks first;
# the rest go out together, in multi-record batches.
SMALL = 600


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with started(Cluster(tmp_path_factory.mktemp("verify"), size=3, spare=0, replication_factor=3,
                         min_insync_replicas=2, fsync="always")) as c:
        yield c


def replica_end(node, topic: str, partition: int):
    p = node.partition(topic, partition)
    return p and p["replica"] and p["replica"]["log_end_offset"]


def produce(c: Cluster, topic: str) -> None:
    a = admin(c.bootstrap())
    try:
        a.create_topics([NewTopic(topic, PARTITIONS, 3)])
    finally:
        a.close()
    for i in c.members:
        wait_until(lambda: all(replica_end(c.node(i), topic, p) is not None for p in range(PARTITIONS)), 30,
                   f"{topic}'s replicas on node {i}")
    p = KafkaProducer(bootstrap_servers=c.bootstrap(), acks="all", linger_ms=5)
    try:
        futs = []
        for n in range(RECORDS):
            futs.append(p.send(topic, b"msg-%05d" % n, partition=n % PARTITIONS))
            if n < SMALL and n % PARTITIONS == PARTITIONS - 1:
                p.flush(60)
        p.flush(60)
        for f in futs:
            f.get(timeout=0)
    finally:
        p.close()
    per_partition = RECORDS // PARTITIONS
    for i in c.members:
        wait_until(lambda: all(replica_end(c.node(i), topic, q) == per_partition for q in range(PARTITIONS)), 30,
                   f"node {i} to hold all {per_partition} records of every partition")


def verify(c: Cluster, via: int):
    r = c.cli("cluster", "verify", "--config", str(c.config_path(via)), timeout=120)
    print(f"$ cluster verify (exit {r.returncode})\n{r.stdout}{r.stderr}")  # shown when a test fails
    return r.returncode, r.stdout + r.stderr


def batches(data: bytes):
    """(position, base offset, length) of each record batch in a segment file."""
    pos = 0
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        yield pos, base, 12 + length
        pos += 12 + length


def corrupt_record(segment_dir: Path, value: bytes) -> None:
    """Rewrites `value`'s first byte inside its batch and recomputes the batch's CRC-32C."""
    for seg in sorted(segment_dir.glob("*.log")):
        data = bytearray(seg.read_bytes())
        at = data.find(value)
        if at < 0:
            continue
        pos, _base, length = next((p, b, n) for p, b, n in batches(bytes(data)) if p <= at < p + n)
        data[at] = ord("X")
        crc = calc_crc32c(bytes(data[pos + 21:pos + length]))
        struct.pack_into(">I", data, pos + 17, crc)
        seg.write_bytes(bytes(data))
        return
    raise AssertionError(f"{value!r} not found in {segment_dir}")


def test_verify_agrees_then_names_a_rewritten_record_and_an_unreachable_node(cluster):
    c = cluster
    topic = unique_topic("verify")
    produce(c, topic)
    rc, out = verify(c, 1)
    assert rc == 0, out
    assert f"✓ All {PARTITIONS} partitions agree" in out, out
    for p in range(PARTITIONS):
        assert f"✓ {topic}-{p}: replicas" in out, out

    parts = {p: c.node(1).partition(topic, p) for p in range(PARTITIONS)}
    leaders = {parts[p]["leader"] for p in parts}
    followers = [n for n in parts[0]["replicas"] if n != parts[0]["leader"]]
    victim = next((n for n in followers if n not in leaders), followers[0])
    # The offset of the record to damage, as a consumer reads it from the leader.
    records = kp_consume_all(c.bootstrap(parts[0]["leader"]), topic, PARTITIONS)[0]
    target = b"msg-%05d" % 800  # inside a multi-record batch, after 300 single-record ones
    offset = next(o for o, _k, v in records if v == target)

    assert c.stop(victim) == 0
    corrupt_record(c.node(victim).data_dir / "topics" / f"{topic}-0", target)
    c.restart(victim)
    wait_until(lambda: replica_end(c.node(victim), topic, 0) == RECORDS // PARTITIONS, 60,
               f"node {victim} serving {topic}-0 again")
    via = next(i for i in c.members if i != victim)
    rc, out = verify(c, via)
    assert rc == 1, out
    line = next((ln for ln in out.splitlines() if ln.startswith(f"✗ {topic}-0: replica {victim} diverges")), None)
    assert line, out
    assert f"first differing offset {offset}," in line, line
    assert f"record {offset} of batch" in line and f"batch {offset}..=" not in line, line
    assert f"✓ {topic}-1: replicas" in out, out
    assert f"Replicas diverge in 1 of {PARTITIONS} partitions" in out, out

    assert c.stop(victim) == 0
    rc, out = verify(c, via)
    assert rc == 2, out
    assert f"node {victim} unreachable" in out, out
    assert "Cannot verify" in out, out
