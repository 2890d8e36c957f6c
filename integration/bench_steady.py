"""Steady-state replication benchmark: a 3-node cluster holding `partitions` × RF 3 over four
topics, an idempotent acks=all producer writing `rate` messages a second round-robin over every
partition; prints, over `seconds`, the ack latency (p50, p99), each broker's CPU (user + system
time, in cores) and its context switches a second.

    python3 integration/bench_steady.py [rate] [seconds] [partitions]

e.g. `python3 integration/bench_steady.py 6000 15`. Uses the release binary
(target/release/chronik-server or $BROKER_BIN), so two builds can be compared alternately.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).parent))
from bench import cpu_seconds  # noqa: E402
from client_helpers import PacedProducer  # noqa: E402
from cluster import Cluster, started  # noqa: E402
from harness import wait_until  # noqa: E402

NODES = (1, 2, 3)
TOPICS = [f"steady-{i}" for i in range(4)]


def usage(pid: int) -> tuple[float, int]:
    """The process's CPU seconds (user + system) and context switches (all threads) so far."""
    switches = sum(int(line.split()[1])
                   for task in Path(f"/proc/{pid}/task").iterdir()
                   for line in (task / "status").read_text().splitlines() if "ctxt_switches" in line)
    return cpu_seconds(pid), switches


def main() -> None:
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    per_topic = (int(sys.argv[3]) if len(sys.argv) > 3 else 1200) // len(TOPICS)
    with tempfile.TemporaryDirectory(prefix="bench-steady") as wd, \
            started(Cluster(Path(wd), size=3, spare=0, name="steady", min_insync_replicas=2)) as c:
        admin = AdminClient({"bootstrap.servers": c.bootstrap(1)})
        for f in admin.create_topics([NewTopic(t, num_partitions=per_topic, replication_factor=3)
                                      for t in TOPICS]).values():
            f.result(120)

        def in_sync() -> bool:
            ps = [p for p in c.node(1).get("/admin/partitions").json()["partitions"] if p["topic"] in TOPICS]
            return len(ps) == per_topic * len(TOPICS) and all(len(p["isr"]) == 3 for p in ps)

        wait_until(in_sync, 120, "every partition with three in-sync replicas", interval=0.5)
        everyone = ",".join(c.bootstrap(i) for i in NODES)
        load = PacedProducer(everyone, TOPICS, per_topic, rate, b"steady-", acks="all",
                             **{"enable.idempotence": True}).start()
        try:
            # Every partition acknowledged at least three times: every producer connection is warm.
            wait_until(lambda: len(load.acked) >= 3 * per_topic * len(TOPICS), 120, "the producer warmed up")
            pids = [c.node(i).proc.pid for i in NODES]
            before, since = [usage(p) for p in pids], time.monotonic()
            wait_until(lambda: time.monotonic() - since >= seconds, seconds + 5, "the measured window")
            after, until = [usage(p) for p in pids], time.monotonic()
        finally:
            load.stop()
        assert not load.errors, load.errors[:5]
        q = statistics.quantiles(sorted(ms for t, ms in load.latencies if since <= t < until), n=100)
        span = until - since
        cores = " ".join(f"{(b[0] - a[0]) / span:.3f}" for a, b in zip(before, after))
        switches = " ".join(f"{(b[1] - a[1]) / span:,.0f}" for a, b in zip(before, after))
        print(f"{rate} msg/s over {per_topic * len(TOPICS)} partitions, {span:.0f} s: ack p50 {q[49]:.1f} ms, "
              f"p99 {q[98]:.1f} ms; cores per broker {cores}; context switches/s {switches}")


if __name__ == "__main__":
    main()
