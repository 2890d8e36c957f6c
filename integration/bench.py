#!/usr/bin/env python3
"""Produce/consume benchmark through librdkafka.

    python3 integration/bench.py [--bootstrap HOST:PORT] [--scale 0.1] [--client python]
    python3 integration/bench.py --cluster 3 [--scale 0.3]

The client is `integration/loadgen` (chronik-loadgen, Rust on the rdkafka crate, built here on
first use; it takes every message's latency and reads each topic back itself), or with
`--client python` confluent-kafka driven from this process, which tops out below the broker.

Without --bootstrap it starts its own release broker (target/release/chronik-server)
on free ports with a temporary data dir and fsync = "always", and stops it after.
With --cluster N it starts N release brokers instead, as one Raft cluster (integration/cluster.py,
fsync = "always", min_insync_replicas 2), creates every topic with replication factor
min(3, N) and runs only the acks=all runs: an ack then means the batch is on every in-sync
replica (the leader's disk and each follower's log).

Runs (each to a fresh topic with 3 partitions, compression none):
  1,000,000 x 100 B with acks=1, then acks=all
    200,000 x 1 KiB with acks=1, then acks=all
With --cluster it first sends 1,500 messages one at a time (acks=all, 1 partition) and prints
their latency p50/p90/p99: the cost of one ack with nothing else in flight.
For each run it prints msg/s, MB/s (10^6 bytes of values), produce latency
p50/p99/p99.9, the error count and, for the brokers it started, the CPU seconds each used
during the run; then it reads each topic back and prints consume msg/s and MB/s.

Latency is measured from the produce() call to the delivery report, on every 100th
message: a Python callback per message costs about as much as the broker's whole work
and would make this a benchmark of the callback. A message counts as acknowledged unless
a delivery report said it failed or it was still queued after flush(); the run then
demands that the topic holds exactly that many messages, so a failure nobody reported
shows up as a MISMATCH rather than hiding. Exits 1 and prints MISMATCH in that case.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from pathlib import Path
from typing import Optional

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import Cluster  # noqa: E402
from harness import Broker  # noqa: E402

PARTITIONS = 3
CLIENT = "loadgen"  # set from --client
RUNS = [  # (label, messages, value bytes, acks)
    ("100B acks=1", 1_000_000, 100, "1"),
    ("100B acks=all", 1_000_000, 100, "all"),
    ("1KiB acks=1", 200_000, 1024, "1"),
    ("1KiB acks=all", 200_000, 1024, "all"),
]


def create_topic(bootstrap: str, topic: str, replication_factor: int = 1, partitions: int = PARTITIONS) -> None:
    """Creates the topic and waits until every partition has a leader and a full ISR."""
    a = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)
    a.create_topics([new])[topic].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        t = a.list_topics(topic, timeout=5).topics.get(topic)
        if (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 and len(p.isrs) == replication_factor for p in t.partitions.values())):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic} not visible with {partitions} partitions and full ISRs")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from Linux's procfs)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Every LATENCY_SAMPLE-th message carries a delivery callback (see the module doc).
LATENCY_SAMPLE = 100


def percentile(sorted_values, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class DeliveryStats:
    def __init__(self, n: int):
        self.sent_at = array("d", bytes(8 * (n // LATENCY_SAMPLE + 1)))
        self.latencies = array("d")
        self.errors = 0
        self.first_error = None

    def on_delivery(self, idx: int, err, _msg) -> None:
        if err is not None:
            self.errors += 1
            self.first_error = self.first_error or str(err)
            return
        self.latencies.append(time.perf_counter() - self.sent_at[idx])


def produce_run(bootstrap: str, topic: str, n: int, size: int, acks: str) -> dict:
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "chronik-bench",
        "acks": acks,
        "enable.idempotence": False,
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 262_144,
        "compression.type": "none",
    })
    value = os.urandom(size)
    stats = DeliveryStats(n)
    cb = stats.on_delivery
    produce, poll, now = producer.produce, producer.poll, time.perf_counter
    start = now()
    for i in range(n):
        sampled = i % LATENCY_SAMPLE == 0
        while True:
            try:
                if sampled:
                    stats.sent_at[i // LATENCY_SAMPLE] = now()
                    produce(topic, value, on_delivery=functools.partial(cb, i // LATENCY_SAMPLE))
                else:
                    produce(topic, value)
                break
            except BufferError:
                poll(0.001)
        if sampled:
            poll(0)
    left = producer.flush(300)
    wall = now() - start
    lat = sorted(stats.latencies)
    stats.latencies = None
    acked = n - stats.errors - left
    return dict(acked=acked, errors=stats.errors + left, first_error=stats.first_error, wall=wall,
                msg_s=acked / wall, mb_s=acked * size / wall / 1e6,
                p50=percentile(lat, 0.50) * 1e3, p99=percentile(lat, 0.99) * 1e3,
                p999=percentile(lat, 0.999) * 1e3)


def consume_all(bootstrap: str, topic: str, size: int) -> dict:
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "chronik-bench",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "log_level": 3,
    })
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in range(PARTITIONS)}
        total = sum(ends.values())
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        count = nbytes = errors = 0
        start = last_progress = time.perf_counter()
        while count < total and time.perf_counter() - last_progress < 15:
            msgs = c.consume(num_messages=10_000, timeout=1.0)
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        errors += 1
                    continue
                count += 1
                nbytes += len(m.value())
            if msgs:
                last_progress = time.perf_counter()
        wall = time.perf_counter() - start
    finally:
        c.close()
    return dict(count=count, high_watermarks=total, errors=errors, wall=wall,
                msg_s=count / wall, mb_s=nbytes / wall / 1e6, bytes_ok=nbytes == count * size)


LOADGEN_DIR = Path(__file__).resolve().parent / "loadgen"
LOADGEN = LOADGEN_DIR / "target" / "release" / "chronik-loadgen"
LOADGEN_LINE = re.compile(r"^(produce|consume|verify) (.*)$")


def build_loadgen() -> None:
    """Builds the Rust load generator (its own package: librdkafka compiled from source once)."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path", str(LOADGEN_DIR / "Cargo.toml")],
                   check=True)


def loadgen_run(bootstrap: str, topic: str, n: int, size: int, acks: str, replication_factor: int) -> dict:
    """One run with chronik-loadgen: produce, read back, check the counts; its parsed lines."""
    done = subprocess.run([str(LOADGEN), "--bootstrap", bootstrap, "--topic", topic, "--messages", str(n),
                           "--size", str(size), "--acks", acks, "--partitions", str(PARTITIONS),
                           "--replication-factor", str(replication_factor)],
                          capture_output=True, text=True, timeout=900)
    parsed = {}
    for line in done.stdout.splitlines():
        if m := LOADGEN_LINE.match(line):
            parsed[m.group(1)] = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
            parsed[m.group(1)]["ok"] = line.endswith(" ok")
    if done.returncode not in (0, 1) or "produce" not in parsed:
        raise RuntimeError(f"chronik-loadgen exited {done.returncode}: {done.stdout}{done.stderr}")
    return parsed


def run_all_loadgen(bootstrap: str, scale: float, runs=RUNS, replication_factor: int = 1,
                    pids: Optional[dict[str, int]] = None) -> int:
    """Every run through chronik-loadgen, which reads each topic back right after producing it."""
    failed = False
    pids = pids or {}
    for label, n, size, acks in runs:
        n = max(1, int(n * scale))
        topic = f"bench-{label.replace(' ', '-').replace('=', '')}-{uuid.uuid4().hex[:6]}"
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        r = loadgen_run(bootstrap, topic, n, size, acks, replication_factor)
        cpu = "".join(f"  {name} cpu {cpu_seconds(pid) - cpu0[name]:.1f} s" for name, pid in pids.items())
        p, c, v = r["produce"], r.get("consume", {}), r.get("verify", {})
        print(f"produce {label:<14} {n:>9} msgs  {float(p['seconds']):7.2f} s  {float(p['msg_per_s']):>10,.0f} msg/s  "
              f"{float(p['mb_per_s']):7.2f} MB/s  latency ms p50 {float(p['p50_ms']):7.2f}  "
              f"p99 {float(p['p99_ms']):7.2f}  p99.9 {float(p['p999_ms']):7.2f}  errors {p['errors']}{cpu}", flush=True)
        print(f"consume {label:<14} {c.get('messages', '?'):>9} msgs  {float(c.get('seconds', 0)):7.2f} s  "
              f"{float(c.get('msg_per_s', 0)):>10,.0f} msg/s  {float(c.get('mb_per_s', 0)):7.2f} MB/s", flush=True)
        if not v.get("ok") or p["errors"] != "0":
            failed = True
            print(f"MISMATCH {label}: {v}", flush=True)
    return 1 if failed else 0


def run_all(bootstrap: str, scale: float, runs=RUNS, replication_factor: int = 1,
            pids: Optional[dict[str, int]] = None) -> int:
    """`pids`: name -> pid of the brokers whose CPU time each produce run reports."""
    if CLIENT == "loadgen":
        return run_all_loadgen(bootstrap, scale, runs, replication_factor, pids)
    failed = False
    results = []
    pids = pids or {}
    for label, n, size, acks in runs:
        n = max(1, int(n * scale))
        topic = f"bench-{label.replace(' ', '-').replace('=', '')}-{uuid.uuid4().hex[:6]}"
        create_topic(bootstrap, topic, replication_factor)
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        p = produce_run(bootstrap, topic, n, size, acks)
        cpu = "".join(f"  {name} cpu {cpu_seconds(pid) - cpu0[name]:.1f} s" for name, pid in pids.items())
        print(f"produce {label:<14} {n:>9} msgs  {p['wall']:7.2f} s  {p['msg_s']:>10,.0f} msg/s  "
              f"{p['mb_s']:7.2f} MB/s  latency ms p50 {p['p50']:7.2f}  p99 {p['p99']:7.2f}  "
              f"p99.9 {p['p999']:7.2f}  errors {p['errors']}"
              + (f" (first: {p['first_error']})" if p["first_error"] else "") + cpu, flush=True)
        results.append((label, n, size, topic, p))
    for label, n, size, topic, p in results:
        c = consume_all(bootstrap, topic, size)
        print(f"consume {label:<14} {c['count']:>9} msgs  {c['wall']:7.2f} s  {c['msg_s']:>10,.0f} msg/s  "
              f"{c['mb_s']:7.2f} MB/s  errors {c['errors']}", flush=True)
        if c["count"] != p["acked"] or c["high_watermarks"] != p["acked"] or not c["bytes_ok"]:
            failed = True
            print(f"MISMATCH {label}: acknowledged {p['acked']}, consumed {c['count']}, "
                  f"high watermarks sum {c['high_watermarks']}, value sizes ok: {c['bytes_ok']}", flush=True)
    return 1 if failed else 0


def sequential_latency(bootstrap: str, rf: int, count: int = 1500) -> None:
    """One message at a time (acks=all, idempotent, linger 0) to a 1-partition topic: the latency
    of one ack with nothing else in flight, which pipelining hides in the throughput runs."""
    topic = f"bench-sequential-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, rf, partitions=1)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0})
    samples = []
    for _ in range(count):
        t = time.perf_counter()
        p.produce(topic, b"x" * 100, partition=0)
        if p.flush(10) != 0:
            raise RuntimeError("a sequential send was not acknowledged within 10 s")
        samples.append((time.perf_counter() - t) * 1000)
    lat = sorted(samples[count // 10:])  # the first sends include connecting and warm-up
    q = lambda f: lat[min(len(lat) - 1, int(len(lat) * f))]  # noqa: E731 - a percentile
    print(f"sequential 100B acks=all {len(lat):>6} msgs  latency ms p50 {q(0.5):7.2f}  p90 {q(0.9):7.2f}  "
          f"p99 {q(0.99):7.2f}", flush=True)


def run_cluster(size: int, scale: float) -> int:
    """Starts `size` nodes as one cluster, runs the acks=all runs at RF min(3, size), stops them."""
    rf = min(3, size)
    with tempfile.TemporaryDirectory(prefix="chronik-bench-cluster-") as tmp:
        cluster = Cluster(Path(tmp), size=size, spare=0, name="bench-node", replication_factor=rf,
                          min_insync_replicas=min(2, rf), fsync="always", num_partitions=PARTITIONS)
        try:
            leader = cluster.start()
        except BaseException:
            cluster.kill_all()
            raise
        bootstrap = ",".join(cluster.bootstrap(i) for i in cluster.members)
        pids = {f"node{i}": cluster.node(i).pid for i in cluster.members}
        print(f"{size}-node cluster on {bootstrap} (Raft leader node {leader}, RF {rf}, min.insync {min(2, rf)}, "
              f"fsync=always, data under {tmp}); pids {pids}", flush=True)
        try:
            sequential_latency(bootstrap, rf)
            return run_all(bootstrap, scale, [r for r in RUNS if r[3] == "all"], rf, pids)
        except BaseException:
            for i in cluster.members:
                print(f"--- node {i} log tail ---\n{cluster.node(i).log_tail(40)}", file=sys.stderr)
            raise
        finally:
            codes = cluster.stop_all()
            if any(codes.values()):
                print(f"cluster nodes exited with {codes}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="an already running broker; default: start a release broker")
    ap.add_argument("--cluster", type=int, metavar="N",
                    help="start N release brokers as one cluster and run the acks=all runs at RF min(3, N)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every message count (e.g. 0.1)")
    ap.add_argument("--client", choices=["loadgen", "python"], default="loadgen",
                    help="chronik-loadgen (Rust, librdkafka; default) or confluent-kafka from this process")
    args = ap.parse_args()
    global CLIENT
    CLIENT = args.client
    if CLIENT == "loadgen":
        build_loadgen()
    if args.bootstrap:
        return run_all(args.bootstrap, args.scale)
    if args.cluster:
        return run_cluster(args.cluster, args.scale)
    with tempfile.TemporaryDirectory(prefix="chronik-bench-") as tmp:
        broker = Broker(Path(tmp), name="bench-broker", fsync="always", num_partitions=PARTITIONS)
        broker.start()
        print(f"broker pid {broker.pid} on {broker.bootstrap} (fsync=always, data {broker.data_dir})", flush=True)
        try:
            rc = run_all(broker.bootstrap, args.scale, pids={"broker": broker.pid})
        except BaseException:
            print(f"--- broker log tail ---\n{broker.log_tail(80)}", file=sys.stderr)
            raise
        finally:
            code = broker.stop()
            if code != 0:
                print(f"broker exited with {code}; log tail:\n{broker.log_tail(80)}", file=sys.stderr)
        return rc


if __name__ == "__main__":
    sys.exit(main())
