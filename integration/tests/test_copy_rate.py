"""Elasticity at scale (issue 17): bytes move at disk speed when the copy throttle is off.

Three nodes hold 1 GiB in a 12-partition RF-3 topic; node 4 joins with
`rebalance_max_bytes_per_sec = 0` and takes its quarter of the replicas (9 of 36, about 768 MiB)
while an idempotent acks=all producer writes to another topic. Checked:
- node 4 copies at 100 MB/s or more, measured on its own disk usage from its first hosted replica
  of the bulk topic until it holds the whole of them;
- `cluster verify` finds every replica identical to its leader's up to the high watermark;
- the producer sees no error and every acknowledged record is read back exactly once.
"""

from __future__ import annotations

import random
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from client_helpers import PacedProducer, ck_consume_all, ck_produce_waiting
from cluster import Cluster, started
from harness import wait_until

BULK = "copy-bulk"
LOAD = "copy-load"
PARTITIONS = 12
TOTAL_BYTES = 1 << 30
VALUE_BYTES = 128 * 1024
# Messages per second of the steady producer, over the partitions of LOAD.
RATE = 300
MIN_COPY_RATE = 100_000_000  # bytes per second


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "copy", size=3, spare=1, name="copynode", min_insync_replicas=2,
                replication={"rebalance_max_bytes_per_sec": 0})
    with started(c):
        yield c


def preload(bootstrap: str) -> None:
    """TOTAL_BYTES of incompressible values over the partitions of BULK, acks=all."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "compression.type": "none", "log_level": 3})
    pool = random.Random(BULK).randbytes(16 << 20)
    failed: list[str] = []

    def done(err, _msg):
        if err is not None:
            failed.append(str(err))

    for n in range(TOTAL_BYTES // VALUE_BYTES):
        at = (n * 40_961) % (len(pool) - VALUE_BYTES)
        value = b"bulk-%06d-" % n + pool[at:at + VALUE_BYTES - 12]
        ck_produce_waiting(p, BULK, value, n % PARTITIONS, done)
        p.poll(0)
    assert p.flush(180) == 0, "preload still queued after 180 s"
    assert not failed, f"preload failures: {failed[:5]}"


def bulk_on(c: Cluster, node: int) -> tuple[int, int]:
    """(replicas of BULK node `node` hosts, their bytes on disk)."""
    reps = [p["replica"] for p in c.node(node).partitions() if p["topic"] == BULK and p["replica"] is not None]
    return len(reps), sum(r["size_bytes"] for r in reps)


def test_node_4_copies_its_share_of_a_gigabyte_at_100_mb_per_second(cluster):
    c = cluster
    admin = AdminClient({"bootstrap.servers": c.bootstrap(1)})
    for f in admin.create_topics([NewTopic(t, num_partitions=PARTITIONS, replication_factor=3)
                                  for t in (BULK, LOAD)]).values():
        f.result(60)
    everyone = ",".join(c.bootstrap(i) for i in (1, 2, 3))
    started_at = time.monotonic()
    preload(everyone)
    print(f"preloaded {TOTAL_BYTES >> 20} MiB in {time.monotonic() - started_at:.1f} s")
    raft_leader = c.wait_for_leader(voters=[1, 2, 3])

    load = PacedProducer(everyone, [LOAD], PARTITIONS, RATE, b"load-", acks="all",
                         **{"enable.idempotence": True}).start()
    samples: list[tuple[float, int, int]] = []  # (time, replicas, bytes) of BULK on node 4
    try:
        wait_until(lambda: len(load.acked) >= 2 * PARTITIONS, 60, "the producer warmed up", interval=0.1)
        c.node(4).start(wait=False)
        c.node(4).wait_ready(30)
        r = c.post_add_node(4, via=raft_leader)
        assert r.status_code == 200, r.text

        def moved():
            samples.append((time.monotonic(), *bulk_on(c, 4)))
            st = c.node(raft_leader).get("/admin/rebalance").json()
            return st["voters"] == [1, 2, 3, 4] and not st["moves"] and samples[-1][1] > 0
        wait_until(moved, 120, "node 4's replicas copied", interval=0.1)
    finally:
        outstanding = load.stop()

    first = next(s for s in samples if s[1] > 0)
    final = samples[-1][2]
    done = next(s for s in samples if s[2] >= final)
    secs = done[0] - first[0]
    rate = final / secs if secs > 0 else float("inf")
    print(f"node 4 copied {final / 1e6:.0f} MB into {done[1]} replicas in {secs:.2f} s: {rate / 1e6:.0f} MB/s")
    assert done[1] == 3 * PARTITIONS // 4, done
    assert final >= 0.7 * TOTAL_BYTES, f"node 4 holds only {final} bytes of the bulk topic"
    assert rate >= MIN_COPY_RATE, f"copy ran at {rate / 1e6:.0f} MB/s"

    # Node 4's file lists all four nodes.
    out = c.cli("cluster", "verify", "--config", str(c.config_path(4)), timeout=180)
    print(f"$ cluster verify (exit {out.returncode})\n{out.stdout}{out.stderr}")
    assert out.returncode == 0 and f"✓ All {2 * PARTITIONS} partitions agree" in out.stdout, out.stdout

    assert outstanding == 0 and load.errors == [], (outstanding, load.errors[:5])
    read = ck_consume_all(c.bootstrap(4), LOAD, PARTITIONS, timeout=60)
    values = [v for records in read.values() for _o, _k, v in records]
    assert len(values) == len(set(values)), "a record was stored twice"
    assert len(values) == len(load.acked), "a record stored that was never acknowledged"
    stored = {(LOAD, p, o, v) for p, records in read.items() for o, _k, v in records}
    missing = [a for a in load.acked if a not in stored]
    assert not missing, f"{len(missing)} acknowledged records missing, e.g. {missing[:3]}"
