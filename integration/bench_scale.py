"""Scale-out benchmark: a 3-node cluster holding `partitions` × RF 3 over `topics` empty topics
takes node 4 in; prints how long until every replica move is done, the moves per second, and,
once the leadership spread (`rebalance_leaders_delay_ms` later) is done, how many replicas and
leaders node 4 ends with.

    python3 integration/bench_scale.py [partitions] [topics] [replication_key=value ...]

e.g. `python3 integration/bench_scale.py 10000 10` or `... 1200 4 rebalance_max_concurrent_moves=16`.
Uses the release binary (target/release/chronik-server or $BROKER_BIN).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).parent))
from cluster import Cluster, started  # noqa: E402
from harness import wait_until  # noqa: E402


def main() -> None:
    partitions = int(sys.argv[1]) if len(sys.argv) > 1 else 1200
    topics = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    replication = {k: int(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
    names = [f"t{i}" for i in range(topics)]
    with tempfile.TemporaryDirectory(prefix="bench-scale") as wd, \
            started(Cluster(Path(wd), size=3, spare=1, name="sc", min_insync_replicas=2, replication=replication)) as c:
        leader = c.wait_for_leader(voters=[1, 2, 3])
        empty_kb = {i: c.node(i).rss_kb() for i in (1, 2, 3)}
        created = time.monotonic()
        admin = AdminClient({"bootstrap.servers": c.bootstrap(1)})
        for t in names:  # one topic per request: each commits as one Raft entry
            admin.create_topics([NewTopic(t, num_partitions=partitions // topics, replication_factor=3)])[t].result(120)

        def hosted():
            ps = [p for i in (1, 2, 3) for p in c.node(i).partitions() if p["topic"] in names]
            return len(ps) == 3 * partitions and all(p["replica"] is not None and len(p["isr"]) == 3 for p in ps)
        wait_until(hosted, 1800, "every partition hosted", interval=0.5)
        # What a replica costs in memory: each node hosts `partitions` replicas (RF 3 on 3 nodes).
        per_replica = [(c.node(i).rss_kb() - empty_kb[i]) / partitions for i in (1, 2, 3)]
        print(f"hosted {3 * partitions} replicas in {time.monotonic() - created:.1f}s; memory per replica "
              f"{', '.join(f'{kb:.1f}' for kb in per_replica)} KiB (nodes 1-3, RSS growth / replicas)", flush=True)
        c.node(4).start(wait=False)
        c.node(4).wait_ready(30)
        t0 = time.monotonic()
        r = c.post_add_node(4, via=leader)
        assert r.status_code == 200, r.text
        status = lambda: c.node(leader).get("/admin/rebalance").json()  # noqa: E731
        moves = len(wait_until(lambda: status()["moves"], 60, "the plan made"))
        wait_until(lambda: status()["moves"] == [], 3600, "every move done", interval=0.2)
        took = time.monotonic() - t0
        wait_until(lambda: status()["leaders"], 600, "the leadership spread planned", interval=0.2)
        spreading = time.monotonic()
        wait_until(lambda: status()["leaders"] == [], 600, "the leadership spread done", interval=0.2)
        spread = time.monotonic() - spreading
        ps = [p for p in c.node(leader).partitions() if p["topic"] in names]
        print(f"partitions={partitions} topics={topics} moves={moves} converged={took:.1f}s "
              f"moves/s={moves / took:.1f} spread={spread:.1f}s node4_replicas={sum(4 in p['replicas'] for p in ps)} "
              f"node4_leads={sum(p['leader'] == 4 for p in ps)}")


if __name__ == "__main__":
    main()
