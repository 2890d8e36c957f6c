"""A node that was down while the metadata log moved past what the leader keeps catches up from
the leader's snapshot; every node restarts from its own persisted state or snapshot.

The cluster snapshots its metadata every 20 Raft entries (`[raft] snapshot_every_entries`) and
purges the log up to 20 entries before the snapshot. While node 3 is stopped, a topic it hosts
is deleted and 40 more are created and deleted one at a time (each its own entry). Node 3 then
restarts: it installs the leader's snapshot (its log says so), deletes the deleted topic's data,
hosts its replicas of a topic created meanwhile, in the ISR, and holds the same metadata as the
others. Finally every node restarts at once and they still agree, with every acknowledged
record of the new topic readable.
"""

from __future__ import annotations

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from client_helpers import ck_consume_all
from cluster import Cluster, NotAgreed, started
from harness import unique_topic, wait_until

VOTERS = [1, 2, 3]
EVERY = 20
CHURN = 2 * EVERY  # topics created and deleted while node 3 is down: 80 entries
PARTITIONS = 6


def layout(c: Cluster, i: int) -> set[tuple[str, int, tuple[int, ...]]]:
    """Node i's metadata: every partition's replicas."""
    return {(p["topic"], p["partition"], tuple(p["replicas"])) for p in c.node(i).partitions()}


def agreed(c: Cluster) -> set:
    views = {i: layout(c, i) for i in VOTERS}
    if any(v != views[1] for v in views.values()):
        raise NotAgreed(f"metadata differs: {[sorted(v ^ views[1])[:4] for v in views.values()]}")
    return views[1]


def produce(bootstrap: str, topic: str, n: int) -> set[bytes]:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    acked: set[bytes] = set()
    failed: list[str] = []
    for k in range(n):
        value = b"%s-%06d" % (topic.encode(), k)
        p.produce(topic, value, partition=k % PARTITIONS,
                  on_delivery=lambda err, msg: failed.append(str(err)) if err else acked.add(msg.value()))
    assert p.flush(60) == 0 and not failed, failed[:3]
    return acked


def test_a_node_behind_the_purged_log_catches_up_from_the_snapshot(tmp_path):
    c = Cluster(tmp_path / "snapshot", size=3, spare=0, name="snode", raft={"snapshot_every_entries": EVERY})
    with started(c):
        leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
        admin = AdminClient({"bootstrap.servers": c.bootstrap(leader)})
        gone = unique_topic("gone")
        admin.create_topics([NewTopic(gone, PARTITIONS, 3)])[gone].result(30)
        produce(c.bootstrap(leader), gone, 60)
        gone_dirs = lambda: [d for d in (c.node(3).data_dir).rglob(f"{gone}-*") if d.is_dir()]  # noqa: E731
        assert gone_dirs(), "node 3 holds no data of the topic to delete"
        c.stop(3)
        mark = c.node(3).log_size()

        admin.delete_topics([gone])[gone].result(30)
        for k in range(CHURN):
            churn = f"{gone}-churn-{k}"
            admin.create_topics([NewTopic(churn, 1, 1)])[churn].result(30)
            admin.delete_topics([churn])[churn].result(30)
        kept = unique_topic("kept")
        admin.create_topics([NewTopic(kept, PARTITIONS, 2)])[kept].result(30)
        acked = produce(c.bootstrap(leader), kept, 300)

        c.restart(3)
        wait_until(lambda: c.node(3).log_lines(r"installing a metadata snapshot from the leader", mark), 30,
                   "node 3 installing the leader's snapshot")
        wait_until(lambda: not gone_dirs(), 30, f"node 3 deleting the data of {gone}")

        def in_sync():
            mine = [p for p in c.node(3).partitions() if p["topic"] == kept and 3 in p["replicas"]]
            if not mine or any(p["replica"] is None or 3 not in p["isr"] for p in mine):
                raise NotAgreed(f"node 3's replicas of {kept}: {mine}")
            return mine
        wait_until(in_sync, 60, f"node 3 hosting its replicas of {kept}, in the ISR")
        before = wait_until(lambda: agreed(c), 30, "every node holding the same metadata")
        assert not [t for t, _, _ in before if t.startswith(gone)], "a deleted topic is still listed"

        c.stop_all()
        c.start()
        after = wait_until(lambda: agreed(c), 30, "every node holding the same metadata after a full restart")
        assert after == before, f"the metadata changed across the restart: {sorted(after ^ before)[:4]}"
        got = ck_consume_all(c.bootstrap(), kept, PARTITIONS, timeout=60)
        values = [v for records in got.values() for _o, _k, v in records]
        assert sorted(values) == sorted(acked), f"{len(values)} records read, {len(acked)} acknowledged"
