"""One bad partition never takes a node down: a replica whose segment cannot be opened fails its
restarts, is taken offline alone (shown with its reason in /admin/partitions and /metrics), its
leadership moves to an in-sync replica, and the node keeps serving every other partition. Once the
cause is fixed, `POST /admin/partitions/online` brings it back and it rejoins the ISR.
"""

from __future__ import annotations

import shutil
import time

import pytest
import requests

from cluster import Cluster, NotAgreed, started
from harness import unique_topic, wait_until
from metrics_helpers import matching, scrape, value
from replication_helpers import PARTITIONS, VOTERS, NumberedProducers, admin_view, consume_and_check, create_topic


@pytest.fixture
def ocluster(tmp_path) -> Cluster:
    c = Cluster(tmp_path / "offline", size=3, spare=0, name="onode", replication_factor=3, min_insync_replicas=2,
                fsync="always", replication={"replica_lag_max_ms": 3000})
    with started(c, clean_stop=True):
        yield c


def offline_metric(c: Cluster, i: int, topic: str, partition: int) -> list:
    samples = scrape(c.admin_url(i))
    return matching(samples, "chronik_partition_offline", topic=topic, partition=str(partition))


def test_a_partition_that_cannot_open_goes_offline_alone_and_comes_back(ocluster):
    c = ocluster
    raft_leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    node = max(i for i in VOTERS if i != raft_leader)
    topic = unique_topic("offline")
    layout = create_topic(c, topic)
    broken, healthy = [p for p, (leader, _r) in layout.items() if leader == node]
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(50, what="before the fault")
        assert c.stop(node) == 0
        pdir = c.node(node).data_dir / "topics" / f"{topic}-{broken}"
        segment = sorted(pdir.glob("*.log"))[0]
        aside = pdir.parent / "aside.log"
        shutil.move(segment, aside)
        segment.mkdir()  # a directory where the segment file was: opening it fails every time
        c.restart(node)

        def offline():
            entry = admin_view(c, node, topic)[broken]
            if not entry.get("offline"):
                raise NotAgreed(f"{entry}")
            return entry

        entry = wait_until(offline, 60, f"{topic}-{broken} offline on node {node}")
        assert "directory" in entry["offline"]["reason"].lower(), entry["offline"]
        assert offline_metric(c, node, topic, broken), "no chronik_partition_offline sample"
        assert value(scrape(c.admin_url(node)), "chronik_offline_partitions") == 1
        assert c.node(node).is_running(), "the node must keep running"

        def moved():
            p = admin_view(c, raft_leader, topic)[broken]
            if p["leader"] == node or node in p["isr"]:
                raise NotAgreed(f"{p}")
            return p

        wait_until(moved, 30, f"{topic}-{broken}'s leadership moved off node {node}")
        # The node still leads and serves its healthy partition.
        wait_until(lambda: admin_view(c, node, topic)[healthy]["leader"] == node or None, 30,
                   f"node {node} leading {topic}-{healthy}")
        t = time.monotonic()
        prods.wait_acks(30, since=t, timeout=30, what="on every partition, one replica offline")

        segment.rmdir()
        shutil.move(aside, segment)
        r = requests.post(f"{c.admin_url(node)}/admin/partitions/online",
                          json={"topic": topic, "partition": broken}, timeout=30)
        assert r.status_code == 200 and r.json()["success"], r.text
        again = requests.post(f"{c.admin_url(node)}/admin/partitions/online",
                              json={"topic": topic, "partition": broken}, timeout=30)
        assert again.status_code == 409, again.text

        def back_in_sync():
            p = admin_view(c, node, topic)[broken]
            if p.get("offline") or node not in p["isr"]:
                raise NotAgreed(f"{p}")
            return p

        wait_until(back_in_sync, 60, f"node {node}'s replica of {topic}-{broken} back in the ISR")
        assert not offline_metric(c, node, topic, broken)
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after bringing it back")
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    consume_and_check(c, topic, prods)
