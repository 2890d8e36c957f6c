"""Idle followers at the default lag bound (`replica_lag_max_ms` 10 s), where a follower that is
caught up asks its leader to hold its fetch up to 5 s (half the bound) instead of 500 ms:

- the followers of partitions nobody writes to stay in every ISR, at every poll, for two and a
  half lag bounds, and the first acks=all writes after that are acknowledged within 2 s;
- a follower frozen (SIGSTOP) while its fetch is held does not hold acks=all writes for long:
  the controller fences it once it has not answered the Raft leader for a session (6 s) and,
  as KRaft does (KIP-841), drops it from the ISR of every partition it follows, written to or
  idle (where, being at the leader's log end, it would otherwise count as in sync however long
  ago it fetched); the write is then acknowledged by the other two (min.insync.replicas 2);
- continued, it fetches again, catches up and is back in every ISR.
"""

from __future__ import annotations

import time
from typing import Optional

import pytest
from confluent_kafka import Producer

from cluster import Cluster, hold_for, started
from harness import unique_topic, wait_until
from replication_helpers import PARTITIONS, RF, VOTERS, admin_view, create_topic

LAG_S = 10.0  # the default `[replication] replica_lag_max_ms`
HOLD_S = 5.0  # how long a leader holds an idle follower's fetch (half the lag bound)
SESSION_S = 6.0  # the default `[replication] session_timeout_ms`


@pytest.fixture(scope="module")
def icluster(tmp_path_factory) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("idle-isr"), size=3, spare=0, name="inode",
                replication_factor=RF, min_insync_replicas=2)
    with started(c, clean_stop=True):
        yield c
        for i in VOTERS:
            c.resume(i)


def isrs(c: Cluster, via: int, topic: str) -> dict[int, list[int]]:
    return {p: sorted(e["isr"]) for p, e in admin_view(c, via, topic).items()}


def produce_all(bootstrap: str, topic: str, value: bytes, partitions=range(PARTITIONS),
                since: Optional[float] = None, timeout: float = 30) -> float:
    """One acks=all record to each of `partitions`, once the producer is connected; fails on any
    delivery error and returns the slowest ack's latency in seconds, counted from `since`
    (default: the first send)."""
    errors: list = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "log_level": 3})
    p.list_topics(topic, timeout=10)
    start = time.monotonic() if since is None else since
    latencies: list[float] = []

    def delivered(err, _msg):
        if err:
            errors.append(err)
        latencies.append(time.monotonic() - start)
    for partition in partitions:
        p.produce(topic, value, partition=partition, on_delivery=delivered)
    assert p.flush(timeout) == 0 and not errors, errors
    return max(latencies)


def test_idle_followers_stay_in_sync_and_a_frozen_one_leaves_after_the_lag_bound(icluster):
    c = icluster
    raft_leader = c.wait_for_leader(30, ids=VOTERS, voters=VOTERS)
    topic = unique_topic("idle-isr")
    layout = create_topic(c, topic)
    produce_all(c.bootstrap(raft_leader), topic, b"before")
    full = {p: sorted(VOTERS) for p in range(PARTITIONS)}
    wait_until(lambda: isrs(c, raft_leader, topic) == full, 15, "every ISR full after the writes")

    # Idle: every follower's fetch is now held at its leader for up to 5 s at a time, the holds
    # starting about a second after the write. Idle for a whole number of holds, the next write
    # would land as one ends and a leader that never answered a held fetch early would pass.
    hold_for(lambda: isrs(c, raft_leader, topic) == full, 2.5 * LAG_S + HOLD_S / 2, "every ISR full while idle",
             interval=0.5)
    slowest = produce_all(c.bootstrap(raft_leader), topic, b"after-idle")
    assert slowest < 2.0, f"an acks=all write after the idle period took {slowest:.2f}s"
    assert isrs(c, raft_leader, topic) == full

    # Freeze a node that is not the Raft leader; write to one partition it follows (not leads)
    # and leave the other idle.
    victim = next(i for i in VOTERS if i != raft_leader)
    followed = [p for p, (leader, _r) in layout.items() if leader != victim]
    written, idle = followed[:1], followed[1:]
    others = sorted(i for i in VOTERS if i != victim)
    t_pause = time.monotonic()
    c.pause(victim)
    try:
        slowest = produce_all(c.bootstrap(raft_leader), topic, b"while-frozen", written, since=t_pause,
                              timeout=LAG_S + 20)
        # Fenced a session after its last answer; the controller checks every 500 ms.
        assert slowest <= SESSION_S + 3, f"acks=all writes held {slowest:.1f}s by a frozen follower"
        wait_until(lambda: all(v == others for v in isrs(c, raft_leader, topic).values()), 5,
                   f"node {victim} out of every ISR while frozen, idle partitions {idle} too")
    finally:
        c.resume(victim)
    wait_until(lambda: isrs(c, raft_leader, topic) == full, 30, f"node {victim} back in every ISR")
    produce_all(c.bootstrap(raft_leader), topic, b"after")
