"""Partition replication on three nodes: ISR shrink and expand, min.insync.replicas, and
partition leader failover (kill -9 and SIGSTOP of a partition leader).

One cluster per module: RF 3, min_insync_replicas 2, `[replication] replica_lag_max_ms` 3000.
Every scenario creates its own 6-partition RF-3 topic (round robin: partitions 0, 3 led by node 1;
1, 4 by node 2; 2, 5 by node 3) and runs two producers at once, each a numbered stream paced
round-robin over the partitions the scenario writes: kafka-python with its defaults (idempotent,
acks=all) and confluent-kafka (acks=all, enable.idempotence). Every acknowledged
(partition, offset, value) is recorded; at the end the topic is read back with confluent-kafka and
`check_log` asserts: every ack is there, nothing twice, offsets contiguous from 0, each producer's
numbers increasing within a partition, nothing nobody sent.

The follower scenarios (kill -9 node 3; min.insync.replicas 3 with node 3 dead) write only to the
partitions node 3 does not lead, so they judge the followers' side alone (a killed leader's
partitions move after the session timeout, which the failover scenarios test). The failover scenarios (kill -9 / SIGSTOP of a
node that leads two partitions but not the Raft group) write to all six. ISR and leaders are read
three ways, all of which must agree: confluent-kafka `list_topics`, each node's own Metadata v1
answer, and each node's `GET /admin/partitions`.

Tests run in file order; each one leaves nodes 1-3 running with every ISR full.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

import kproto
from cluster import Cluster, started
from harness import unique_topic, wait_until
from replication_helpers import (
    CLIENT_REQUEST_TIMEOUT_MS, PARTITIONS, RF, VOTERS, Extras, NumberedProducers, admin_view, ck_probe,
    consume_and_check, create_topic, isr_without, pick_victim, raw_produce, wait_new_leaders, wait_replicas_equal,
    wait_views,
)

MIN_INSYNC = 2
LAG_MS = 3000  # [replication] replica_lag_max_ms
# Kill (or SIGSTOP) to new leaders serving acks: the broker session timeout (`[replication]
# session_timeout_ms`, default 6000) + the election + the clients' metadata refresh. Generous.
FAILOVER_BUDGET_S = 30.0

ERR_NONE = 0
ERR_NOT_LEADER_OR_FOLLOWER = 6
ERR_NOT_ENOUGH_REPLICAS = 19
ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20


@pytest.fixture(scope="module")
def rcluster(tmp_path_factory) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("replication"), size=3, spare=0, name="rnode",
                replication_factor=RF, min_insync_replicas=MIN_INSYNC,
                replication={"replica_lag_max_ms": LAG_MS})
    with started(c, clean_stop=True):
        yield c
        for i in VOTERS:
            c.resume(i)  # a failed SIGSTOP scenario must not leave a stopped process behind


@pytest.fixture
def cluster(rcluster) -> Cluster:
    """The module's cluster, all three nodes running and agreed (a node an earlier failed test left
    stopped or dead is continued or restarted first)."""
    for i in VOTERS:
        rcluster.resume(i)
        if not rcluster.node(i).is_running():
            rcluster.restart(i)
    rcluster.wait_for_leader(30, ids=VOTERS, voters=VOTERS)
    return rcluster


# ---- a. a follower dies and comes back --------------------------------------------------------


def test_follower_kill_shrinks_isr_and_restart_rejoins(cluster):
    victim = 3
    survivors = [i for i in VOTERS if i != victim]
    topic = unique_topic("isr-follower")
    layout = create_topic(cluster, topic)
    judged = [p for p, (leader, _r) in layout.items() if leader != victim]
    assert judged == [0, 1, 3, 4]
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in survivors), topic, judged) as prods:
        prods.wait_acks(50, what="before the kill")

        t_kill = time.monotonic()
        cluster.kill(victim)
        shrunk = isr_without(layout, judged, [victim])
        t_shrunk = wait_views(cluster, topic, shrunk, survivors, LAG_MS / 1000 + 20,
                              f"node {victim} out of the ISR after the kill")
        took = t_shrunk - t_kill
        # Driven by replica_lag_max_ms: not at once (minus the follower's last fetch before the
        # kill and the ISR check interval of lag/4), and not long after.
        assert LAG_MS / 1000 * 0.5 <= took <= LAG_MS / 1000 + 15, f"ISR shrank {took:.1f}s after the kill"
        # ISR 2 >= min_insync 2: acks=all keeps being answered without node 3.
        prods.wait_acks(50, since=t_shrunk, timeout=20, what="with node 3 out of the ISR")
        assert not prods.errors, f"producer errors with a follower down: {prods.errors[:5]}"

        cluster.restart(victim)
        full = isr_without(layout, judged, [])
        t_back = wait_views(cluster, topic, full, VOTERS, 30, f"node {victim} back in the ISR")
        # acks=all now waits for node 3 as well, and keeps flowing.
        prods.wait_acks(50, since=t_back, timeout=20, what="with node 3 back in the ISR")
    assert not prods.errors, f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    views = wait_replicas_equal(cluster, topic, VOTERS)
    assert all(views[victim][p]["replica"]["log_end_offset"] > 0 for p in judged), views[victim]
    consume_and_check(cluster, topic, prods)


# ---- b. min.insync.replicas ------------------------------------------------------------------


def test_min_insync_replicas_refuses_acks_all_until_follower_returns(cluster):
    """Topic min.insync.replicas 3: with one follower dead and out of the ISR, acks=all is refused
    (NOT_ENOUGH_REPLICAS) while acks=1 is served; once it is back in the ISR acks=all works and
    the idempotent producers' retried messages land exactly once."""
    victim = 3
    survivors = [i for i in VOTERS if i != victim]
    topic = unique_topic("min-insync")
    layout = create_topic(cluster, topic, {"min.insync.replicas": "3"})
    judged = [p for p, (leader, _r) in layout.items() if leader != victim]
    probe_p = judged[0]
    leader_boot = cluster.bootstrap(layout[probe_p][0])
    extras = Extras()
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in survivors), topic, judged) as prods:
        prods.wait_acks(50, what="before the kill")
        cluster.kill(victim)
        t_shrunk = wait_views(cluster, topic, isr_without(layout, judged, [victim]), survivors,
                              LAG_MS / 1000 + 20, f"node {victim} out of the ISR")
        stalled = len(prods.acks)

        # acks=all: refused before the append. Until the leader's replica has applied the new
        # ISR a probe may still be appended and refused after (code 20).
        codes: list[int] = []

        def refused():
            v = b"raw-all-down-%03d" % len(codes)
            res = raw_produce(leader_boot, topic, probe_p, v, acks=-1)
            codes.append(res["error_code"])
            if res["error_code"] == ERR_NOT_ENOUGH_REPLICAS:
                extras.absent.add(v)
                return True
            assert res["error_code"] == ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, res
            extras.maybe.add(v)
            return False

        wait_until(refused, 10, "acks=all Produce refused with NOT_ENOUGH_REPLICAS", interval=0.1)
        err, _off = ck_probe(leader_boot, topic, probe_p, b"probe-ck-all-down", "all")
        assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, \
            f"confluent acks=all with ISR 2 < min.insync 3: {err}"
        extras.absent.add(b"probe-ck-all-down")

        # acks=1 needs the leader only.
        res = raw_produce(leader_boot, topic, probe_p, b"raw-one-down", acks=1)
        assert res["error_code"] == ERR_NONE, res
        extras.present[b"raw-one-down"] = (probe_p, res["base_offset"])
        err, off = ck_probe(leader_boot, topic, probe_p, b"probe-ck-one-down", "1")
        assert err is None, f"confluent acks=1 with ISR 2: {err}"
        extras.present[b"probe-ck-one-down"] = (probe_p, off)

        # The streaming acks=all producers got nothing acknowledged while the ISR was short; they
        # retry, and must not have failed either.
        assert len(prods.acks) == stalled, \
            f"{len(prods.acks) - stalled} acks=all acks with ISR 2 < min.insync 3 (since {t_shrunk:.1f})"
        assert not prods.errors, f"producer errors while refused (retriable): {prods.errors[:5]}"

        cluster.restart(victim)
        t_back = wait_views(cluster, topic, isr_without(layout, judged, []), VOTERS, 30,
                            f"node {victim} back in the ISR")
        n_probe = 0

        def accepted():
            nonlocal n_probe
            v = b"raw-all-up-%03d" % n_probe
            n_probe += 1
            res = raw_produce(leader_boot, topic, probe_p, v, acks=-1)
            if res["error_code"] == ERR_NONE:
                extras.present[v] = (probe_p, res["base_offset"])
                return True
            assert res["error_code"] == ERR_NOT_ENOUGH_REPLICAS, res  # the new ISR not applied yet
            extras.absent.add(v)
            return False

        wait_until(accepted, 10, "acks=all Produce accepted with the ISR full again", interval=0.1)
        err, off = ck_probe(leader_boot, topic, probe_p, b"probe-ck-all-up", "all")
        assert err is None, f"confluent acks=all with the ISR full: {err}"
        extras.present[b"probe-ck-all-up"] = (probe_p, off)
        prods.wait_acks(50, since=t_back, timeout=30, what="after node 3 rejoined")
    assert not prods.errors, f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    wait_replicas_equal(cluster, topic, VOTERS)
    consume_and_check(cluster, topic, prods, extras)


# ---- c. leader failover ----------------------------------------------------


def test_kill_partition_leader_fails_over(cluster):
    victim = pick_victim(cluster)
    survivors = [i for i in VOTERS if i != victim]
    topic = unique_topic("failover-kill")
    layout = create_topic(cluster, topic)
    led = [p for p, (leader, _r) in layout.items() if leader == victim]
    assert len(led) == 2, layout
    epochs = {p: e["leader_epoch"] for p, e in admin_view(cluster, victim, topic).items()}
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in VOTERS), topic,
                           list(range(PARTITIONS))) as prods:
        prods.wait_acks(50, what="before the kill")
        t_kill = time.monotonic()
        cluster.kill(victim)
        new = wait_new_leaders(cluster, topic, layout, victim, survivors, epochs, FAILOVER_BUDGET_S)
        # Producers find the new leaders (election + metadata refresh) and are acknowledged again
        # on every partition the dead node led, with no delivery error.
        t_recovered = prods.wait_acks(20, led, since=t_kill, timeout=FAILOVER_BUDGET_S,
                                      what=f"on the partitions node {victim} led, after the kill")
        assert t_recovered - t_kill <= FAILOVER_BUDGET_S
        # min ISR 2 holds on every partition with two live replicas: all partitions flow.
        wait_views(cluster, topic, {p: (new.get(p, layout[p][0]), survivors) for p in range(PARTITIONS)},
                   survivors, LAG_MS / 1000 + 20, f"node {victim} out of every ISR")
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="on every partition after the failover")
        assert not prods.errors, f"producer errors across the failover: {prods.errors[:5]}"

        # The old leader comes back as a follower of every partition and catches up.
        cluster.restart(victim)
        leaders = {p: new.get(p, layout[p][0]) for p in range(PARTITIONS)}
        t_back = wait_views(cluster, topic, {p: (leaders[p], sorted(VOTERS)) for p in range(PARTITIONS)},
                            VOTERS, 30, f"node {victim} back in every ISR as a follower")
        prods.wait_acks(20, since=t_back, timeout=30, what=f"with node {victim} back")
    assert not prods.errors, f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    wait_replicas_equal(cluster, topic, VOTERS)
    consume_and_check(cluster, topic, prods)


def test_paused_leader_is_fenced_and_rejoins_as_follower(cluster):
    """SIGSTOP a partition leader until the cluster has elected new leaders for its partitions and
    they have taken writes, send it a Produce while it is still stopped, then SIGCONT: it must not
    acknowledge that Produce (it was fenced), it truncates whatever it appended, rejoins as a
    follower, and every ack of the run is in the log exactly once, in order."""
    victim = pick_victim(cluster)
    survivors = [i for i in VOTERS if i != victim]
    topic = unique_topic("failover-pause")
    layout = create_topic(cluster, topic)
    led = [p for p, (leader, _r) in layout.items() if leader == victim]
    epochs = {p: e["leader_epoch"] for p, e in admin_view(cluster, victim, topic).items()}
    extras = Extras()
    zombie = None
    with NumberedProducers(",".join(cluster.bootstrap(i) for i in VOTERS), topic,
                           list(range(PARTITIONS))) as prods:
        try:
            prods.wait_acks(50, what="before the pause")
            t_pause = time.monotonic()
            cluster.pause(victim)
            new = wait_new_leaders(cluster, topic, layout, victim, survivors, epochs, FAILOVER_BUDGET_S)
            # The clients' requests to the stopped node time out before they look elsewhere.
            prods.wait_acks(20, led, since=t_pause, timeout=FAILOVER_BUDGET_S + CLIENT_REQUEST_TIMEOUT_MS / 1000,
                            what=f"from the new leaders of the partitions node {victim} led")
            t_moved = time.monotonic()

            # A client with stale metadata: its Produce reaches the old leader before it runs again.
            zombie = kproto.connect(cluster.bootstrap(victim))
            zombie.sendall(kproto.produce_v3(61, topic, led[0], kproto.record_batch([b"to-fenced-leader"]),
                                             acks=-1, timeout_ms=5000))
            extras.absent.add(b"to-fenced-leader")
            cluster.resume(victim)
            zombie.settimeout(30)
            _cid, body = kproto.read_response(zombie)
            [res] = kproto.parse_produce_v3(body)
            assert res["error_code"] != ERR_NONE, f"the fenced leader acknowledged a Produce: {res}"

            # It follows the new leaders (truncating its own tail) and rejoins every ISR.
            leaders = {p: new.get(p, layout[p][0]) for p in range(PARTITIONS)}
            t_back = wait_views(cluster, topic, {p: (leaders[p], sorted(VOTERS)) for p in range(PARTITIONS)},
                                VOTERS, 30, f"node {victim} back in every ISR as a follower")
            prods.wait_acks(20, since=max(t_back, t_moved), timeout=30, what=f"with node {victim} back")
            for p in led:
                _cid, body = kproto.call(cluster.bootstrap(victim), kproto.produce_v3(
                    62, topic, p, kproto.record_batch([b"to-old-leader-%d" % p]), acks=-1))
                [res] = kproto.parse_produce_v3(body)
                assert res["error_code"] == ERR_NOT_LEADER_OR_FOLLOWER, f"Produce {topic}/{p} on node {victim}: {res}"
                extras.absent.add(b"to-old-leader-%d" % p)
        finally:
            cluster.resume(victim)
            if zombie is not None:
                zombie.close()
    assert not prods.errors, f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    views = wait_replicas_equal(cluster, topic, VOTERS)
    assert all(views[victim][p]["leader"] != victim for p in led), views[victim]
    consume_and_check(cluster, topic, prods, extras)
