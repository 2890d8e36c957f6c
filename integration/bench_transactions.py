#!/usr/bin/env python3
"""Transaction throughput on a 3-node cluster with confluent-kafka (librdkafka):

    python3 integration/bench_transactions.py [--seconds 15] [--size 100] [--sizes 100,1000]

Starts its own 3-node release cluster (target/release/chronik-server or $BROKER_BIN), one topic
of 6 partitions × RF 3 (min ISR 2), and runs, each for --seconds:
- for every transaction size N in --sizes: one transactional producer committing transactions of
  N records (--size bytes each) spread over the partitions, back to back: transactions/s, msg/s,
  MB/s and the commit latency (begin to commit returned) p50/p99;
- the same records with an idempotent acks=all producer and no transaction: msg/s, MB/s.
Then a read_committed consumer reads the topic back and must find every committed record
exactly once (else MISMATCH and exit 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import percentile  # noqa: E402
from cluster import Cluster, started  # noqa: E402

PARTITIONS = 6
PRODUCER = {"linger.ms": 5, "batch.size": 1_000_000, "compression.type": "none",
            "queue.buffering.max.messages": 500_000, "queue.buffering.max.kbytes": 262_144}


def transactional(bootstrap: str, topic: str, per_txn: int, size: int, seconds: float) -> dict:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{per_txn}-{os.getpid()}",
                  **PRODUCER})
    p.init_transactions(60)
    value = os.urandom(size)
    commits, sent = [], 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        p.begin_transaction()
        for i in range(per_txn):
            while True:
                try:
                    p.produce(topic, value, partition=i % PARTITIONS)
                    break
                except BufferError:
                    p.poll(0.01)
        p.commit_transaction(60)
        commits.append(time.perf_counter() - t0)
        sent += per_txn
    took = time.perf_counter() - start
    return {"txns": len(commits), "msgs": sent, "took": took, "p50": percentile(sorted(commits), 0.5),
            "p99": percentile(sorted(commits), 0.99)}


def plain(bootstrap: str, topic: str, size: int, seconds: float) -> dict:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, **PRODUCER})
    value = os.urandom(size)
    sent, i = 0, 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        try:
            p.produce(topic, value, partition=i % PARTITIONS)
            i += 1
            sent += 1
        except BufferError:
            p.poll(0.01)
        if i % 10_000 == 0:
            p.poll(0)
    p.flush(120)
    return {"msgs": sent, "took": time.perf_counter() - start}


def committed_count(bootstrap: str, topic: str) -> int:
    """Records a read_committed consumer reads from the whole topic."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-verify-{os.getpid()}",
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800})
    c.assign([TopicPartition(topic, q, 0) for q in range(PARTITIONS)])
    ends = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=10)[1] for q in range(PARTITIONS)}
    seen, done, quiet = 0, set(), time.monotonic()
    while len(done) < PARTITIONS and time.monotonic() - quiet < 20:
        batch = c.consume(10_000, 1.0)
        for m in batch:
            if m.error():
                continue
            seen += 1
            if m.offset() + 2 >= ends[m.partition()]:
                done.add(m.partition())
        if batch:
            quiet = time.monotonic()
    c.close()
    return seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--sizes", default="100,1000")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-txn") as wd, \
            started(Cluster(Path(wd), size=3, name="bt", min_insync_replicas=2)) as c:
        c.wait_for_leader(voters=[1, 2, 3])
        bootstrap = ",".join(c.bootstrap(i) for i in (1, 2, 3))
        admin = AdminClient({"bootstrap.servers": bootstrap})
        rows, expected = [], 0
        for per_txn in (int(s) for s in args.sizes.split(",")):
            topic = f"txn-{per_txn}"
            admin.create_topics([NewTopic(topic, PARTITIONS, 3)])[topic].result(60)
            r = transactional(bootstrap, topic, per_txn, args.size, args.seconds)
            got = committed_count(bootstrap, topic)
            if got != r["msgs"]:
                print(f"MISMATCH on {topic}: committed {r['msgs']} records, read_committed read {got}")
                sys.exit(1)
            expected += got
            mb = r["msgs"] * args.size / r["took"] / 1e6
            rows.append((f"transactions of {per_txn}", f"{r['txns'] / r['took']:,.0f}",
                         f"{r['msgs'] / r['took']:,.0f}", f"{mb:.1f}",
                         f"{r['p50'] * 1e3:.1f} / {r['p99'] * 1e3:.1f}"))
        admin.create_topics([NewTopic("plain", PARTITIONS, 3)])["plain"].result(60)
        r = plain(bootstrap, "plain", args.size, args.seconds)
        rows.append(("no transaction (idempotent, acks=all)", "-", f"{r['msgs'] / r['took']:,.0f}",
                     f"{r['msgs'] * args.size / r['took'] / 1e6:.1f}", "-"))
        print(f"\n3 nodes, RF 3, min ISR 2, {PARTITIONS} partitions, {args.size} B records, "
              f"{args.seconds:.0f} s each, one confluent-kafka producer")
        print(f"| load | transactions/s | msg/s | MB/s | commit p50 / p99 (ms) |")
        print("|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"\nread_committed read back every committed record exactly once ({expected} records)")


if __name__ == "__main__":
    main()
