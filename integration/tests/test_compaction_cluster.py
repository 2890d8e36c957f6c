"""Log compaction on three nodes, RF 3 (one cluster for the module; single-broker scenarios are in
test_compaction.py): every replica stores exactly the compacted records, compared per record
through the digest endpoint (each node runs its own cleaner).

- After the leader is killed, the new leader serves the compacted view (kafka-python,
  confluent-kafka, kcat); the old leader comes back with the same records and rejoins the ISR.
- A follower whose partition directory was wiped copies the compacted leader's batches (offset
  gaps inside and between them), keeps them across a restart and, elected once the leader is
  killed, serves the same view.
"""

from __future__ import annotations

import shutil

import pytest

from cluster import Cluster, NotAgreed, started
from compaction_helpers import (
    CLEAN_TIMEOUT_S, CLEANER_INTERVAL_MS, KCAT, Record, ck_view, compacted, create_compacted, fillers, kcat_view,
    produce, stored_records, versions, wait_view,
)
from harness import unique_topic, wait_until
from replication_helpers import admin_view

VOTERS = [1, 2, 3]
FILLERS = 30  # records with fresh keys after the versions: they seal the versions' segments


@pytest.fixture(scope="module")
def ccluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("compaction-cluster"), size=3, spare=0, name="cnode",
                replication_factor=3, min_insync_replicas=2,
                storage={"cleaner_interval_ms": CLEANER_INTERVAL_MS}, replication={"replica_lag_max_ms": 3000})
    with started(c):
        yield c


def partition_dir(node, topic: str):
    d = node.data_dir / "topics" / f"{topic}-0"
    assert d.is_dir(), f"{d} missing: {sorted(p.name for p in (node.data_dir / 'topics').iterdir())}"
    return d


def cleaned_on(c: Cluster, topic: str, want: list[Record], ids: list[int]) -> list[tuple[int, str]]:
    """The records stored on `ids` once each node holds exactly `want`'s offsets and all hold the
    same records (raises NotAgreed before)."""
    want_offsets = [o for o, _, _ in want]
    stored = {i: stored_records(c.admin_url(i), topic) for i in ids}
    offsets = {i: [o for o, _ in s] for i, s in stored.items()}
    if any(o != want_offsets for o in offsets.values()):
        raise NotAgreed("stored offsets per node: " + "; ".join(
            f"node {i}: {len(o)} records, first {o[:3]}" for i, o in offsets.items()))
    if len({tuple(s) for s in stored.values()}) != 1:
        raise NotAgreed(f"the nodes' records differ: {stored}")
    return stored[ids[0]]


def compacted_rf3_topic(c: Cluster, name: str) -> tuple[str, list[Record], list[tuple[int, str]]]:
    """A compacted RF-3 topic with 30 keys x 10 versions and fillers, once every replica has
    cleaned it: (topic, the compacted view, the records every replica stores)."""
    topic = unique_topic(name)
    create_compacted(c.bootstrap(1), topic, replication_factor=3)
    wait_until(lambda: all(admin_view(c, i, topic).get(0, {}).get("replica") for i in VOTERS), 30,
               f"every node hosting {topic}")
    everyone = ",".join(c.bootstrap(i) for i in VOTERS)
    written = produce(everyone, topic, versions(30, 10)) + produce(everyone, topic, fillers("d", FILLERS))
    want = compacted(written)
    stored = wait_until(lambda: cleaned_on(c, topic, want, VOTERS), CLEAN_TIMEOUT_S,
                        f"every replica of {topic} compacted")
    return topic, want, stored


def agreed_leader(c: Cluster, topic: str, ids: list[int]) -> int | None:
    """The leader of partition 0 once every node of `ids` names the same one, among `ids`."""
    leaders = {admin_view(c, i, topic)[0]["leader"] for i in ids}
    return leaders.pop() if len(leaders) == 1 and leaders <= set(ids) else None


def check_served(c: Cluster, up: list[int], leader: int, topic: str, want: list[Record]) -> None:
    running = ",".join(c.bootstrap(i) for i in up)
    wait_view(running, topic, want, f"node {leader}, the new leader, serving the compacted {topic}", timeout=30)
    assert ck_view(running, topic) == want, "confluent-kafka"
    if KCAT:
        assert kcat_view(c.bootstrap(leader), topic) == want, "kcat"


def test_new_leader_serves_the_compacted_log(ccluster):
    c = ccluster
    topic, want, stored = compacted_rf3_topic(c, "compact-failover")
    leader = admin_view(c, 1, topic)[0]["leader"]
    c.kill(leader)
    up = [i for i in VOTERS if i != leader]
    new = wait_until(lambda: agreed_leader(c, topic, up), 60, f"a new leader of {topic} after node {leader} died")
    check_served(c, up, new, topic, want)
    # The old leader comes back as a follower with the same records and rejoins the ISR.
    c.restart(leader)
    assert wait_until(lambda: cleaned_on(c, topic, want, VOTERS), 30, f"node {leader} back with {topic}") == stored
    wait_until(lambda: sorted(admin_view(c, new, topic)[0]["isr"]) == VOTERS, 30, f"node {leader} in the ISR")


def test_wiped_follower_copies_the_compacted_leader_and_serves_it(ccluster):
    c = ccluster
    topic, want, stored = compacted_rf3_topic(c, "compact-wiped")
    view = admin_view(c, 1, topic)[0]
    leader, replicas = view["leader"], view["replicas"]
    # The first in-sync replica after the leader in replica order is elected when it dies.
    wiped = next(r for r in replicas if r != leader)
    c.kill(wiped)
    shutil.rmtree(partition_dir(c.node(wiped), topic))
    c.restart(wiped)
    # Its fetches from 0 are answered with the leader's cleaned batches: offset gaps between and
    # inside them.
    assert wait_until(lambda: cleaned_on(c, topic, want, [wiped, leader]), 60,
                      f"node {wiped} copied the compacted {topic} from node {leader}") == stored
    wait_until(lambda: wiped in admin_view(c, leader, topic)[0]["isr"], 30, f"node {wiped} back in the ISR")
    # Its copy has the leader's offset gaps without ever having been cleaned here: a restart
    # must not take them for damage.
    assert c.stop(wiped) == 0
    c.restart(wiped)
    assert wait_until(lambda: cleaned_on(c, topic, want, [wiped]), 30, f"node {wiped} reopened its copy") == stored
    wait_until(lambda: wiped in admin_view(c, leader, topic)[0]["isr"], 30, f"node {wiped} in the ISR")

    c.kill(leader)
    up = [i for i in VOTERS if i != leader]
    wait_until(lambda: all(admin_view(c, i, topic)[0]["leader"] == wiped for i in up), 60,
               f"node {wiped} leading {topic} after node {leader} died")
    check_served(c, up, wiped, topic, want)
