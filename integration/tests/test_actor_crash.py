"""A node actor that crashes is restarted by its supervisor and the node keeps serving.

The `actor_crash` fail point stops one of the node supervisor's children at once, wherever it
is (mid-message included), with its state and its own children: what a panic does, but at any
await point rather than only where the code can panic.

- Every node actor, one after the other, crashes on a node that leads partitions (but not Raft)
  while two producers (kafka-python and confluent-kafka, acks=all, idempotent for the latter)
  write: each comes back (`/admin/actors` shows it running, restarted once), the producers see no
  error, every acknowledged record is read back exactly once, and a topic created through that
  node afterwards gets its replicas there (its restarted Raft forwards and receives entries: a
  peer's connection to the old Raft server must not outlive it).
- While a replica move is under way (each rebalance step held a second), the Raft, rebalancer
  or replication actor crashes on the Raft leader, or the replica supervisor or WAL flusher on
  the node the replicas move to: the rebalance finishes, the node's replicas are left alone
  unless they were the crashed actor's children (none restarted: the restarted state machine
  re-applies entries its replicas already saw), and every acknowledged record is read back
  exactly once.
- The Raft actor crashes on every node at once: they elect a leader again and serve.
- A node's Raft database fails every write for half a second: its Raft actor restarts over the
  reopened database and the node takes every later metadata change.
- The transaction coordinator actor crashes with a transaction open (before or during the
  commit): the transaction commits or aborts as a whole and the producer commits the next one.
- The group coordinator actor crashes on every node under a consumer group that commits after
  each batch: the restarted coordinator reads the group's membership back, so no commit fails
  and nothing is lost.

Every cluster here is three voters with a spare slot, RF 3, min.insync.replicas 2, and the
default `fsync = "always"`, so a crashed flusher drops the fsync requests waiting on it.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import Cluster, NotAgreed, started
from harness import flatten_actors, unique_topic, wait_until
from replication_helpers import NumberedProducers, check_log
from client_helpers import ck_consume_all
from group_helpers import check_exactly_once, number, produce_numbered
from test_grow_shrink import PARTITIONS, create_topic, preload, settled, topic_view
from test_move_safety import moving, start_and_add_node_4
from txn_helpers import (GROUP_ENV, READ_COMMITTED, TXN_CALL_TIMEOUT, Delivered, consume_all, find_txn_coordinator,
                         finish_txn, group_committed, numbered, produce_items, produce_txn, txn_producer)

VOTERS = [1, 2, 3]
STEP_DELAY_MS = 1000       # [debug] rebalance_step_delay_ms: each phase of a move lasts a second
RATE = 1_000_000           # [replication] rebalance_max_bytes_per_sec: copies take seconds
PRELOAD = 1_500_000        # bytes over the partitions, so a copy is still running when the crash hits

# The node supervisor's children, in its start order, but the admin server (which answers the
# fail point).
NODE_ACTORS = ["wal-flusher", "raft", "membership", "metadata", "controller", "rebalancer", "replica-supervisor",
               "log-cleaner", "replication", "group-coordinator", "txn-coordinator", "kafka-listener"]


@pytest.fixture(scope="module")
def crashing(tmp_path_factory) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("actor-crash"), size=3, spare=1, name="cnode", replication_factor=3,
                min_insync_replicas=2, fail_points=True, fsync="always", extra_env=GROUP_ENV)
    with started(c):
        yield c


def crash(c: Cluster, i: int, actor: str) -> None:
    r = c.node(i).fail_point("actor_crash", actor=actor)
    assert r.status_code == 200 and r.json()["success"], r.text


def node_actors(c: Cluster, i: int) -> dict[str, dict]:
    """The node supervisor's children on node i, by name."""
    return {a["name"]: a for a in c.node(i).actors()["children"]}


def replica_restarts(c: Cluster, i: int) -> dict[str, int]:
    """Every replica actor of node i and its restarts."""
    return {a["name"]: a["restarts"] for a in flatten_actors(c.node(i).actors()) if a["role"] == "ReplicaActor"}


def back(c: Cluster, i: int, actor: str, restarts: int) -> dict:
    """Raises NotAgreed until node i's `actor` runs again, restarted `restarts` times."""
    a = node_actors(c, i).get(actor)
    if a is None or a["status"] != "running" or a["restarts"] != restarts:
        raise NotAgreed(f"node {i}'s {actor}: {a and {k: a[k] for k in ('status', 'restarts')}}")
    return a


def test_every_node_actor_crashes_and_comes_back_while_producers_write(crashing):
    c = crashing
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    # A node that leads partitions (every founding node leads a third) but not Raft; the Raft
    # leader's own crash is tested below.
    victim = next(i for i in VOTERS if i != leader)
    topic = unique_topic("crashes")
    create_topic(c, topic)
    before = replica_restarts(c, victim)
    r = c.node(victim).fail_point("actor_crash", actor="nobody")
    assert r.status_code == 404 and "no running node actor" in r.json()["message"], r.text
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(20, what="before the crashes")
        for actor in NODE_ACTORS:
            restarts = node_actors(c, victim)[actor]["restarts"]
            crash(c, victim, actor)
            wait_until(lambda: back(c, victim, actor, restarts + 1), 30, f"node {victim}'s {actor} restarted",
                       interval=0.05)
            prods.wait_acks(20, since=time.monotonic(), timeout=30, what=f"after {actor} crashed on node {victim}")
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    # The replica supervisor's crash took its replicas with it; they came back.
    assert set(replica_restarts(c, victim)) >= set(before), "a replica did not come back"
    got = ck_consume_all(",".join(c.bootstrap(i) for i in VOTERS), topic, PARTITIONS, timeout=90)
    check_log(got, prods)
    later = unique_topic("after-crashes")
    admin = AdminClient({"bootstrap.servers": c.bootstrap(victim)})
    admin.create_topics([NewTopic(later, PARTITIONS, 3)])[later].result(30)

    def hosts_all():
        view = topic_view(c, victim, later)
        return len(view) == PARTITIONS and all(e["replica"] is not None for e in view.values())
    wait_until(hosts_all, 30, f"node {victim} hosting every partition of {later}")


def test_every_raft_actor_crashing_at_once_the_cluster_elects_and_serves(crashing):
    """The Raft actor crashes on every node at the same moment while producers write: the nodes
    elect a leader among themselves again, the producers see no error, and metadata changes
    (a new topic) reach every node."""
    c = crashing
    c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    topic = unique_topic("all-raft")
    create_topic(c, topic)
    restarts = {i: node_actors(c, i)["raft"]["restarts"] for i in VOTERS}
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(20, what="before the crashes")
        for i in VOTERS:
            crash(c, i, "raft")
        for i in VOTERS:
            wait_until(lambda: back(c, i, "raft", restarts[i] + 1), 30, f"node {i}'s raft actor restarted")
        leader = c.wait_for_leader(30, ids=VOTERS, voters=VOTERS)
        later = unique_topic("after-all-raft")
        admin = AdminClient({"bootstrap.servers": c.bootstrap(leader)})
        admin.create_topics([NewTopic(later, 3, 3)])[later].result(30)
        for i in VOTERS:
            wait_until(lambda: len(topic_view(c, i, later)) == 3, 30, f"node {i} knowing {later}")
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after every Raft actor restarted")
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    check_log(ck_consume_all(",".join(c.bootstrap(i) for i in VOTERS), topic, PARTITIONS, timeout=90), prods)


def test_a_raft_disk_error_restarts_the_raft_actor_over_a_reopened_database(crashing):
    """Every write and fsync of one node's Raft database fails for half a second (the
    `raft_disk_error` fail point) while a topic is created: openraft stops on the storage error,
    the RaftActor fails, and its restarts reopen the database once the disk works again (redb
    refuses every write after a failed one until it is reopened). The node then takes every
    later metadata change, and the producers see no error."""
    c = crashing
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    victim = next(i for i in VOTERS if i != leader)
    for bad in ({"ms": 0}, {"ms": 60_001}, {}, {"ms": 500, "actor": "raft"}):
        r = c.node(victim).fail_point("raft_disk_error", **bad)
        assert r.status_code == 400 and not r.json()["success"], (bad, r.text)
    topic = unique_topic("disk-error")
    create_topic(c, topic)
    restarts = node_actors(c, victim)["raft"]["restarts"]
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(20, what="before the disk error")
        r = c.node(victim).fail_point("raft_disk_error", ms=500)
        assert r.status_code == 200 and r.json()["success"], r.text
        # An entry the victim must write while its disk fails.
        during = unique_topic("during-disk-error")
        admin = AdminClient({"bootstrap.servers": c.bootstrap(leader)})
        admin.create_topics([NewTopic(during, 3, 3)])[during].result(30)
        wait_until(lambda: node_actors(c, victim)["raft"]["restarts"] > restarts, 30,
                   f"node {victim}'s raft actor restarted after the disk error")
        wait_until(lambda: node_actors(c, victim)["raft"]["status"] == "running", 30, f"node {victim}'s raft running")
        later = unique_topic("after-disk-error")
        admin = AdminClient({"bootstrap.servers": c.bootstrap(victim)})
        admin.create_topics([NewTopic(later, 3, 3)])[later].result(30)
        for i in VOTERS:
            for name in (during, later):
                wait_until(lambda: len(topic_view(c, i, name)) == 3, 30, f"node {i} knowing {name}")
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after the disk error")
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    check_log(ck_consume_all(",".join(c.bootstrap(i) for i in VOTERS), topic, PARTITIONS, timeout=90), prods)


@pytest.mark.parametrize("moment", ["before-commit", "during-commit"])
def test_the_transaction_coordinator_crashing_mid_transaction_is_all_or_nothing(crashing, moment):
    """The transaction coordinator actor of a transactional.id crashes with a transaction open
    (before the commit is asked, or while it runs): the commit succeeds or the transaction is
    aborted, as a whole, and the same producer then commits another one."""
    c = crashing
    bs = ",".join(c.bootstrap(i) for i in VOTERS)
    topic = unique_topic(f"txn-crash-{moment}")
    create_topic(c, topic, 3)
    tid = unique_topic(f"tid-crash-{moment}")
    prod = txn_producer(bs, tid)
    prod.init_transactions(TXN_CALL_TIMEOUT)
    d = Delivered()
    earlier, doomed, later = (numbered(f"crash-{name}", k * 100, 60, 3)
                              for k, name in enumerate(["earlier", "doomed", "later"]))
    produce_txn(prod, topic, earlier, True, d)
    victim = find_txn_coordinator(bs, tid)
    restarts = node_actors(c, victim)["txn-coordinator"]["restarts"]
    prod.begin_transaction()
    produce_items(prod, topic, doomed, d)
    result: dict = {}
    if moment == "before-commit":
        crash(c, victim, "txn-coordinator")
        result["outcome"], result["errors"] = finish_txn(prod)
    else:
        t = threading.Thread(target=lambda: result.update(zip(("outcome", "errors"), finish_txn(prod))), daemon=True)
        t.start()
        crash(c, victim, "txn-coordinator")
        t.join(4 * TXN_CALL_TIMEOUT + 30)
        assert not t.is_alive(), "commit_transaction did not return"
    wait_until(lambda: back(c, victim, "txn-coordinator", restarts + 1), 30, f"node {victim}'s txn-coordinator back")
    assert result["outcome"] in ("committed", "aborted"), result
    produce_txn(prod, topic, later, True, d)
    visible = {v for recs in consume_all(bs, topic, 3, READ_COMMITTED).values() for _o, v in recs}
    seen = {name: sum(v in visible for _p, v in items) for name, items in
            [("earlier", earlier), ("doomed", doomed), ("later", later)]}
    want = {"earlier": 60, "doomed": 60 if result["outcome"] == "committed" else 0, "later": 60}
    assert seen == want, f"{result}: records visible per transaction {seen}, expected {want}"


def test_the_group_coordinator_crashing_keeps_a_consumer_group_going(crashing):
    """A consumer group commits after every batch while the group coordinator actor crashes on
    every node (the group's coordinator among them). The restarted coordinator reads the group's
    settled membership back (docs/architecture.md), so the member goes on in its generation: no
    commit fails with a rebalance error, every record is read exactly once, and the committed
    offsets end at the log end."""
    c = crashing
    bs = ",".join(c.bootstrap(i) for i in VOTERS)
    topic, group, total = unique_topic("group-crash"), unique_topic("group-crash"), 600
    create_topic(c, topic, 3)
    produce_numbered(bs, topic, 0, total, partitions=3)
    consumer = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen: list[int] = []
    crashed = False
    deadline = time.monotonic() + 90
    try:
        while len(set(seen)) < total and time.monotonic() < deadline:
            batch = consumer.consume(50, timeout=0.5)
            errors = [m.error() for m in batch if m.error()]
            assert not errors, errors
            if not batch:
                continue
            seen.extend(number(m.value()) for m in batch)
            # A member that lost its generation would fail here (ILLEGAL_GENERATION,
            # UNKNOWN_MEMBER_ID); retriable coordinator errors are retried by librdkafka.
            consumer.commit(asynchronous=False)
            if not crashed and len(seen) >= total // 3:
                for i in VOTERS:
                    restarts = node_actors(c, i)["group-coordinator"]["restarts"]
                    crash(c, i, "group-coordinator")
                    wait_until(lambda: back(c, i, "group-coordinator", restarts + 1), 30,
                               f"node {i}'s group-coordinator back")
                crashed = True
    finally:
        consumer.close()
    assert crashed, f"only {len(set(seen))} records read before the deadline"
    check_exactly_once(seen, set(range(total)), set(), what="across the group coordinator crashes")
    assert group_committed(bs, group, topic) == {p: total // 3 for p in range(3)}


@pytest.fixture
def adding(tmp_path) -> Cluster:
    """Three voters and a spare; every rebalance step is held a second (a fail point)."""
    c = Cluster(tmp_path / "mid-move", size=3, spare=1, name="mnode", replication_factor=3, min_insync_replicas=2,
                fail_points=True, fsync="always", debug={"rebalance_step_delay_ms": STEP_DELAY_MS},
                replication={"rebalance_max_bytes_per_sec": RATE, "replica_lag_max_ms": 3000})
    with started(c):
        yield c


@pytest.mark.parametrize("actor, on", [("raft", "raft leader"), ("rebalancer", "raft leader"),
                                       ("replication", "raft leader"), ("replica-supervisor", "node 4"),
                                       ("wal-flusher", "node 4")])
def test_a_node_actor_crashing_mid_move_loses_nothing(adding, actor, on):
    """Node 4 joins under load; while a move catches up, `actor` crashes on the Raft leader
    (which plans the moves and leads a third of the partitions) or on node 4 (which copies).
    The rebalance finishes (after an election, if Raft's own actor crashed on its leader), the
    crashed node's replicas run on untouched unless they were the crashed actor's children, and
    every acknowledged record is read back once."""
    c = adding
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    victim = leader if on == "raft leader" else 4
    topic = unique_topic("mid-move")
    create_topic(c, topic)
    extras = preload(c.bootstrap(leader), topic, PRELOAD)
    voters = sorted(VOTERS + [4])
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(20, what="before the addition")
        assert start_and_add_node_4(c, leader).status_code == 200
        wait_until(lambda: moving(c, leader), 30, "a move catching up on the Raft leader", interval=0.05)
        replicas = replica_restarts(c, victim)
        restarts = node_actors(c, victim)[actor]["restarts"]
        crash(c, victim, actor)
        wait_until(lambda: back(c, victim, actor, restarts + 1), 30, f"node {victim}'s {actor} restarted",
                   interval=0.05)
        # Whoever leads Raft now finishes the rebalance.
        wait_until(lambda: settled(c, topic, voters, c.agreement(voters, voters=voters)[0]), 120,
                   f"the rebalance finished after {actor} crashed, {topic} evenly on {voters}", interval=0.5)
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after the rebalance")
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    if actor != "replica-supervisor":
        after = replica_restarts(c, victim)
        kept = {tp: n for tp, n in replicas.items() if tp in after}
        assert kept and all(after[tp] == n for tp, n in kept.items()), \
            f"replicas restarted by {actor}'s crash: {sorted(tp for tp in kept if after[tp] != kept[tp])}"
    got = ck_consume_all(",".join(c.bootstrap(i) for i in voters), topic, PARTITIONS, timeout=90)
    check_log(got, prods, extras)
