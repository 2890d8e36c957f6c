"""Transactions across node crashes (kill -9 by pid, then restart on the same data dir), 3 nodes,
RF 3, min ISR 2; topics of 3 partitions.

- The transaction coordinator (the node FindCoordinator names for the transactional.id) dies
  between produce and commit, or right after commit_transaction was called, or freezes (SIGSTOP)
  between produce and commit and is resumed only once the commit call returned (another node
  took its transactions over meanwhile; woken, it must not decide anything): the transaction ends
  committed or aborted as a whole (never partly visible to read_committed), an acknowledged
  commit is never lost, nothing committed before is lost, and the transactional.id commits again.
- The coordinator freezes with a transaction open and a zombie's requests for it in its sockets
  (AddPartitionsToTxn of a partition already in it, and EndTxn abort); the producer commits
  through the node that took the id over. Woken, the node refuses both requests, and the
  transaction stays committed.
- The leader of a data partition dies mid-transaction: the new leader keeps the transaction open
  (the last stable offset stays at its first offset), more records go to the new leader, and the
  commit either succeeds (all records visible once) or fails abortably (abort, redo the
  transaction, whose records are then visible once); an aborted record is never visible.

Reads use txn_helpers.consume_all (sealed with END markers, read from offset 0); they complete
only once no transaction before the markers is open any more.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import pytest
import requests
from confluent_kafka import Producer

import kproto
from harness import unique_topic, wait_until
from replication_helpers import create_topic, raw_view, wait_replicas_equal
from txn_helpers import (READ_COMMITTED, READ_UNCOMMITTED, TXN_CALL_TIMEOUT, Delivered, Items, assert_exactly,
                         add_partitions_v1, bootstrap_all, by_partition, consume_all, end_txn_v1,
                         find_txn_coordinator, finish_txn, last_stable_offsets, numbered, parse_add_partitions_v1,
                         parse_end_txn_v1, produce_items, produce_txn, txn_cluster, txn_producer, txn_state_partition)

P = 3
VOTERS = [1, 2, 3]


@pytest.fixture(scope="module")
def fcluster(tmp_path_factory):
    with txn_cluster(tmp_path_factory, "txn-faults") as c:
        yield c


def restart_and_settle(cluster, victim: int, topic: str) -> None:
    """Restarts `victim` and waits until the three nodes agree on a Raft leader and every replica of
    `topic` has caught up with its leader (so the next test starts with a whole cluster)."""
    if not cluster.node(victim).is_running():
        cluster.restart(victim, timeout=60)
    cluster.wait_for_leader(60, ids=VOTERS)
    wait_replicas_equal(cluster, topic, VOTERS, timeout=90, partitions=P)


def state_partition_leader(cluster, txn_id: str) -> str:
    """For the report only: the leader of Kafka's __transaction_state partition for `txn_id`."""
    try:
        view = raw_view(cluster, cluster.running(VOTERS)[0], "__transaction_state")
        p = txn_state_partition(txn_id, len(view))
        return f"__transaction_state-{p} led by node {view[p][0]}"
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        return f"(no __transaction_state metadata: {exc!r})"


class OpenTxn(NamedTuple):
    """A topic of P partitions and a transactional producer that committed `earlier` and has
    `pending` acknowledged in a transaction it has not ended."""
    bootstrap: str
    topic: str
    tid: str
    producer: Producer
    delivered: Delivered
    earlier: Items
    pending: Items


def open_transaction(cluster, name: str, **producer_cfg) -> OpenTxn:
    bs = bootstrap_all(cluster)
    topic = unique_topic(f"txn-{name}")
    create_topic(cluster, topic, partitions=P)
    tid = unique_topic(f"tid-{name}")
    prod = txn_producer(bs, tid, **producer_cfg)
    prod.init_transactions(TXN_CALL_TIMEOUT)
    d = Delivered()
    earlier = numbered(f"{name}-earlier", 0, 60, P)
    produce_txn(prod, topic, earlier, True, d)
    pending = numbered(f"{name}-pending", 100, 60, P)
    prod.begin_transaction()
    produce_items(prod, topic, pending, d)
    return OpenTxn(bs, topic, tid, prod, d, earlier, pending)


def commits_again(t: OpenTxn) -> Items:
    """A new producer with the same transactional.id completes whatever is left of the
    transaction (init_transactions), then commits 60 records of its own, returned."""
    prod2 = txn_producer(t.bootstrap, t.tid)
    prod2.init_transactions(TXN_CALL_TIMEOUT)
    later = numbered(f"{t.tid}-later", 200, 60, P)
    produce_txn(prod2, t.topic, later, True, t.delivered)
    return later


@pytest.mark.timeout(600)
@pytest.mark.parametrize("moment", ["before-commit", "during-commit", "frozen-before-commit"])
def test_coordinator_killed_transaction_is_all_or_nothing(fcluster, moment):
    # A frozen coordinator keeps its connections open: the client gives a request up after
    # socket.timeout.ms and looks the coordinator up again.
    frozen = {"socket.timeout.ms": 10000} if moment.startswith("frozen") else {}
    opened = open_transaction(fcluster, f"coord-{moment}", **frozen)
    bs, topic, tid, prod, _d, earlier, doomed = opened
    victim = find_txn_coordinator(bs, tid)
    assert victim in VOTERS, f"FindCoordinator named node {victim}"
    print(f"coordinator of {tid}: node {victim}; {state_partition_leader(fcluster, tid)}")

    result: dict = {}
    try:
        if moment == "before-commit":
            fcluster.kill(victim)
            result["outcome"], result["errors"] = finish_txn(prod, commit=True)
        elif moment == "frozen-before-commit":
            fcluster.node(victim).pause()
            result["outcome"], result["errors"] = finish_txn(prod, commit=True)
            fcluster.node(victim).resume()
        else:
            t = threading.Thread(target=lambda: result.update(zip(("outcome", "errors"), finish_txn(prod))),
                                 name="commit", daemon=True)
            t.start()
            fcluster.kill(victim)
            t.join(4 * TXN_CALL_TIMEOUT + 30)
            assert not t.is_alive(), "commit_transaction did not return"
        print(f"{moment}: commit with node {victim} stopped -> {result}")
        restart_and_settle(fcluster, victim, topic)
        later = commits_again(opened)
    finally:
        fcluster.node(victim).resume()
        if not fcluster.node(victim).is_running():
            fcluster.restart(victim, timeout=60)

    rc = consume_all(bs, topic, P, READ_COMMITTED)
    visible = {v for recs in rc.values() for _o, v in recs}
    doomed_seen = sum(v in visible for _p, v in doomed)
    assert doomed_seen in (0, len(doomed)), f"{doomed_seen} of the {len(doomed)} records of the transaction visible"
    if result["outcome"] == "committed":
        assert doomed_seen == len(doomed), "commit_transaction succeeded but its records are not visible"
    if result["outcome"] == "aborted":
        assert doomed_seen == 0, "abort_transaction succeeded but its records are visible"
    assert_exactly(rc, by_partition(earlier + (doomed if doomed_seen else []) + later, P),
                   f"read_committed after the coordinator crash (outcome {result['outcome']})")
    assert_exactly(consume_all(bs, topic, P, READ_UNCOMMITTED), by_partition(earlier + doomed + later, P),
                   "read_uncommitted: every record once")


@pytest.mark.timeout(600)
def test_a_frozen_coordinator_wakes_up_deciding_nothing(fcluster):
    """SIGSTOP of the coordinator of an open transaction, with a zombie's AddPartitionsToTxn (a
    retry of a partition already in the transaction) and EndTxn(abort) already in its sockets.
    The producer commits through the node that takes the transactional.id over. Woken, out of
    touch with the Raft leader, the frozen node refuses both buffered requests instead of
    deciding from the state it held before the freeze; the transaction stays committed (its
    records visible once to read_committed, no transaction left hanging) and the id commits again."""
    opened = open_transaction(fcluster, "coord-zombie", **{"socket.timeout.ms": 10000})
    bs, topic, tid, prod, _d, earlier, open_txn = opened
    victim = find_txn_coordinator(bs, tid)
    listed = requests.get(f"{fcluster.admin_url(victim)}/admin/transactions", timeout=10).json()["transactions"]
    [txn] = [t for t in listed if t["transactional_id"] == tid]
    assert txn["state_name"] == "Ongoing", txn
    producer = (txn["producer_id"], txn["producer_epoch"])
    print(f"coordinator of {tid} (producer {producer}): node {victim}; {state_partition_leader(fcluster, tid)}")
    adder, ender = (kproto.connect(fcluster.bootstrap(victim)) for _ in range(2))
    fcluster.pause(victim)
    try:
        adder.sendall(add_partitions_v1(1, tid, producer, topic, [0]))
        ender.sendall(end_txn_v1(2, tid, producer, commit=False))
        outcome, errors = finish_txn(prod, commit=True)
    finally:
        fcluster.resume(victim)
    adder.settimeout(30)
    added = parse_add_partitions_v1(kproto.read_response(adder)[1])
    ender.settimeout(30)
    ended = parse_end_txn_v1(kproto.read_response(ender)[1])
    adder.close()
    ender.close()
    print(f"commit with node {victim} frozen: {outcome}, errors {errors}; woken, it answered the zombie's "
          f"AddPartitionsToTxn {added} and EndTxn {ended}")
    restart_and_settle(fcluster, victim, topic)
    later = commits_again(opened)

    assert outcome == "committed", f"the commit through the new coordinator ended {outcome}: {errors}"
    assert set(added) == {(topic, 0)} and added[(topic, 0)] != 0, (
        f"node {victim} accepted the AddPartitionsToTxn it read on waking: {added}")
    assert ended != 0, f"node {victim} accepted the EndTxn(abort) it read on waking"
    assert_exactly(consume_all(bs, topic, P, READ_COMMITTED), by_partition(earlier + open_txn + later, P),
                   "read_committed after the frozen coordinator woke")
    assert_exactly(consume_all(bs, topic, P, READ_UNCOMMITTED), by_partition(earlier + open_txn + later, P),
                   "read_uncommitted: every record once")


@pytest.mark.timeout(600)
def test_partition_leader_killed_mid_transaction(fcluster):
    bs = bootstrap_all(fcluster)
    topic = unique_topic("txn-leader-kill")
    layout = create_topic(fcluster, topic, partitions=P)
    tid = unique_topic("tid-leader-kill")
    prod = txn_producer(bs, tid)
    prod.init_transactions(TXN_CALL_TIMEOUT)
    d = Delivered()
    earlier = numbered("lk-earlier", 0, 60, P)
    produce_txn(prod, topic, earlier, True, d)

    coordinator = find_txn_coordinator(bs, tid)
    raft_leader = fcluster.wait_for_leader(15, ids=VOTERS)
    # a node that leads a partition of the topic but is not the transaction coordinator (and,
    # if possible, not the Raft leader either): a data-leader failover, nothing else
    candidates = [i for i in VOTERS if i != coordinator]
    victim = max(candidates, key=lambda i: (i != raft_leader, i))
    victim_parts = [p for p, (leader, _r) in layout.items() if leader == victim]
    assert victim_parts, f"node {victim} leads no partition of {topic}: {layout}"
    print(f"coordinator node {coordinator}, raft leader {raft_leader}, killing node {victim} "
          f"(leader of partitions {victim_parts})")

    first = numbered("lk-first", 100, 60, P)
    second = numbered("lk-second", 200, 60, P)
    redo_first, redo_second = numbered("lk-redo-first", 300, 60, P), numbered("lk-redo-second", 400, 60, P)
    prod.begin_transaction()
    produce_items(prod, topic, first, d)
    first_offsets = {p: min(o) for p, o in d.offsets(v for _p, v in first).items()}
    try:
        fcluster.kill(victim)
        survivors = [i for i in VOTERS if i != victim]

        def new_leaders():
            view = raw_view(fcluster, survivors[0], topic)
            return all(view[p][0] in survivors for p in victim_parts) and view
        wait_until(new_leaders, 60, f"new leaders for partitions {victim_parts}", interval=0.2)
        # the new leader knows the transaction is open: its last stable offset stays at its start
        wait_until(lambda: last_stable_offsets(bs, topic, P) == first_offsets, 60,
                   f"last stable offsets held at the open transaction's first offsets {first_offsets}",
                   interval=0.5)
        produce_items(prod, topic, second, d)  # to the new leaders too
        outcome, errors = finish_txn(prod, commit=True)
        print(f"commit after killing node {victim}: {outcome}, errors {errors}")
        assert outcome != "failed", f"a partition leader's crash made the transaction fail fatally: {errors}"
        redo = []
        if outcome == "aborted":
            # an abortable error: the application aborted and now redoes the transaction
            redo = redo_first + redo_second
            prod.begin_transaction()
            produce_items(prod, topic, redo, d)
            prod.commit_transaction(TXN_CALL_TIMEOUT)
        restart_and_settle(fcluster, victim, topic)
    finally:
        if not fcluster.node(victim).is_running():
            fcluster.restart(victim, timeout=60)

    committed, aborted = (first + second, []) if outcome == "committed" else (redo, first + second)
    rc = consume_all(bs, topic, P, READ_COMMITTED)
    assert_exactly(rc, by_partition(earlier + committed, P),
                   f"read_committed after the leader crash (commit {outcome})")
    visible = {v for recs in rc.values() for _o, v in recs}
    assert not (visible & {v for _p, v in aborted}), "aborted records visible"
    ru = consume_all(bs, topic, P, READ_UNCOMMITTED)
    assert_exactly(ru, by_partition(earlier + first + second + redo, P),
                   "read_uncommitted: every acknowledged record once")
    for p, recs in ru.items():
        assert all(d.ok[v] == (p, o) for o, v in recs), f"partition {p}: a record not at its acknowledged offset"
