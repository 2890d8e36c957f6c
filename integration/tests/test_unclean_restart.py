"""Restarts and leader epochs: a broker that restarts gets a new leader epoch before it leads again,
and one that comes back from an unclean shutdown (kill -9, power loss, a lost disk tail) leaves
every ISR and the leadership of its partitions until it has caught up, so it is never elected
while an in-sync replica holds the data.

One cluster per module: three nodes, RF 3, min.insync.replicas 2, fsync "always" (an ack means
fsynced on every in-sync replica), `replica_lag_max_ms` 3000, small segments (so a lost tail can
span several). Each test writes with two idempotent acks=all producers throughout and ends with
`check_log`: every acknowledged record read back exactly once, at its offset, in order.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cluster import Cluster, NotAgreed, started
from harness import unique_topic, wait_until
from test_cluster_verify import verify
from replication_helpers import (
    PARTITIONS, VOTERS, NumberedProducers, admin_view, consume_and_check, create_topic, pick_victim,
)

LAG_MS = 3000
SEGMENT_BYTES = 64 * 1024
# Long enough for a frozen leader to be fenced (session 6 s) and its partitions to move.
FENCE_BUDGET_S = 40.0


@pytest.fixture(scope="module")
def ucluster(tmp_path_factory) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("unclean"), size=3, spare=0, name="unode", replication_factor=3,
                min_insync_replicas=2, fsync="always", replication={"replica_lag_max_ms": LAG_MS},
                storage={"segment_bytes": SEGMENT_BYTES})
    with started(c, clean_stop=True):
        yield c
        for i in VOTERS:
            c.resume(i)


@pytest.fixture
def cluster(ucluster) -> Cluster:
    for i in VOTERS:
        ucluster.resume(i)
        if not ucluster.node(i).is_running():
            ucluster.restart(i)
    ucluster.wait_for_leader(30, ids=VOTERS, voters=VOTERS)
    return ucluster


def epochs_and_leaders(cluster: Cluster, i: int, topic: str) -> dict[int, tuple[int, int, list[int]]]:
    """partition -> (leader, leader epoch, sorted ISR) as node i's metadata has them."""
    return {p: (e["leader"], e["leader_epoch"], sorted(e["isr"])) for p, e in admin_view(cluster, i, topic).items()}


def full_isr(cluster: Cluster, topic: str, timeout: float = 60.0) -> dict[int, tuple[int, int, list[int]]]:
    """Waits until every partition's ISR holds all three nodes again; returns the view."""
    def check():
        view = epochs_and_leaders(cluster, VOTERS[0], topic)
        if any(isr != VOTERS for _l, _e, isr in view.values()):
            raise NotAgreed(f"{view}")
        return view

    return wait_until(check, timeout, f"every ISR of {topic} full again", interval=0.2)


def loops(cluster: Cluster, marks: dict[int, int]) -> dict[int, int]:
    """Per node, how many fetches its leaders refused as out of range since `marks` (each one
    makes the follower reconcile its log with the leader's; a looping follower logs it forever)."""
    return {i: len(cluster.node(i).log_lines(r"the leader refused the fetch offset", marks[i])) for i in VOTERS}


def restart_scenario(cluster: Cluster, name: str) -> tuple[int, str, list[int], dict]:
    """A node that leads partitions but not Raft, a new topic, the partitions the node leads,
    and every partition's (leader, epoch, ISR) before the restart."""
    victim = pick_victim(cluster)
    topic = unique_topic(name)
    layout = create_topic(cluster, topic)
    led = [p for p, (leader, _r) in layout.items() if leader == victim]
    return victim, topic, led, epochs_and_leaders(cluster, victim, topic)


def test_a_clean_restart_leads_again_in_a_new_epoch(cluster):
    victim, topic, led, before = restart_scenario(cluster, "clean-restart")
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(30, what="before the restart")
        assert cluster.stop(victim) == 0
        mark = cluster.node(victim).log_size()
        cluster.restart(victim)
        assert cluster.node(victim).log_lines(r"clean_start=true", mark), "the restart was not seen as clean"

        def new_epochs():
            now = epochs_and_leaders(cluster, victim, topic)
            for p in led:
                leader, epoch, _isr = now[p]
                if leader != victim or epoch <= before[p][1]:
                    raise NotAgreed(f"{topic}/{p}: {now[p]}, before {before[p]}")
            return now

        wait_until(new_epochs, 30, f"node {victim} leading its partitions again, each in a new epoch")
        full_isr(cluster, topic)
        prods.wait_acks(30, since=time.monotonic(), timeout=30, what="after the restart")
    assert not prods.errors, f"producer errors across a clean restart: {prods.errors[:5]}"
    consume_and_check(cluster, topic, prods)


def test_an_unclean_restart_leaves_every_isr_until_caught_up(cluster):
    victim, topic, led, before = restart_scenario(cluster, "unclean-restart")
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(30, what="before the kill")
        cluster.kill(victim)
        mark = cluster.node(victim).log_size()
        # Back well inside the session timeout: no fencing, only its own registration moves things.
        cluster.restart(victim)
        others = [i for i in VOTERS if i != victim]

        def moved():
            now = epochs_and_leaders(cluster, others[0], topic)
            for p in led:
                leader, epoch, isr = now[p]
                if leader == victim or leader not in others or epoch <= before[p][1]:
                    raise NotAgreed(f"{topic}/{p}: {now[p]}, before {before[p]}")
            return now

        wait_until(moved, 30, f"node {victim}'s partitions led by an in-sync replica in a new epoch")
        log = cluster.node(victim).log_text(mark)
        assert "clean_start=false" in log, "a killed broker must register as unclean"
        full_isr(cluster, topic)
        prods.wait_acks(30, since=time.monotonic(), timeout=30, what="with the victim back in sync")
    assert not prods.errors, f"producer errors across an unclean restart: {prods.errors[:5]}"
    consume_and_check(cluster, topic, prods)


def cut_newest_segments(data_dir: Path, topic: str, count: int = 2) -> dict[str, int]:
    """Cuts each of the `count` newest segment files of every partition of `topic` to half its
    length (a lost disk tail); returns the bytes cut per file."""
    cut = {}
    for pdir in sorted((data_dir / "topics").glob(f"{topic}-*")):
        for seg in sorted(pdir.glob("*.log"))[-count:]:
            size = seg.stat().st_size
            with open(seg, "r+b") as f:
                f.truncate(size // 2)
            cut[str(seg)] = size - size // 2
    return cut


def test_a_lost_disk_tail_never_leads_and_nothing_acknowledged_is_lost(cluster):
    """The fault campaign's case: a follower restarts with its newest segments cut to half while
    the leader of its partitions is frozen; then that leader is fenced. The follower must not be
    elected (it lacks acknowledged records), nothing acknowledged is lost, and no replica loops
    on out-of-range fetches."""
    raft_leader = cluster.wait_for_leader(15, ids=VOTERS, voters=VOTERS)
    leader = max(i for i in VOTERS if i != raft_leader)  # frozen: not the Raft leader
    cut_node = next(i for i in VOTERS if i not in (leader, raft_leader))
    topic = unique_topic("lost-tail")
    layout = create_topic(cluster, topic)
    led = [p for p, (lead, _r) in layout.items() if lead == leader]
    marks = {i: cluster.node(i).log_size() for i in VOTERS}
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        # Enough data for several segments per partition.
        prods.wait_acks(600, timeout=120, what="before the fault")
        cluster.kill(cut_node)
        cut = cut_newest_segments(cluster.node(cut_node).data_dir, topic)
        assert cut, "no segment was cut"
        cluster.pause(leader)
        cluster.restart(cut_node)
        # The frozen leader is fenced; its partitions go to the in-sync replica with the data,
        # never to the node that lost its tail.
        new = wait_until(lambda: _new_leaders(cluster, topic, led, leader, raft_leader), FENCE_BUDGET_S,
                         f"node {leader}'s partitions led by node {raft_leader}")
        assert set(new.values()) == {raft_leader}, new
        cluster.resume(leader)
        full_isr(cluster, topic, timeout=90)
        prods.wait_acks(30, since=time.monotonic(), timeout=60, what="with every node back")
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    consume_and_check(cluster, topic, prods)
    refused = loops(cluster, marks)
    assert all(n <= 2 * PARTITIONS for n in refused.values()), f"replicas looped on refused fetches: {refused}"
    rc, out = verify(cluster, VOTERS[0])
    assert rc == 0, f"the replicas differ after the lost tail:\n{out}"


def _new_leaders(cluster: Cluster, topic: str, led: list[int], old: int, expected: int) -> dict[int, int]:
    view = epochs_and_leaders(cluster, expected, topic)
    new = {p: view[p][0] for p in led}
    if any(leader == old for leader in new.values()):
        raise NotAgreed(f"{view}")
    return new
