"""Moves and membership changes stay safe when leaders fail in the middle of them.

- A Raft leader frozen mid-rebalance (longer than its election timeout) wakes up unable to apply
  its old plan: every step carries the term it was planned in. The new leader's plan converges.
- A Raft leader frozen while it spreads leadership: its successor spreads what is left.
- A partition leader fenced away mid-move (its leadership may land outside the move's target):
  the next step is decided from the metadata as it is, and `remove-node` still completes.
- `add-node` asks who answers at the given address: another member's addresses, a node with
  another id, or a node of another cluster are refused, and nothing changes.
- A Raft leader killed between `add_learner` and the promotion leaves a learner; retrying
  `add-node` continues from it.

Every cluster here is three voters with spare slots, RF 3, min.insync.replicas 2; producers write
throughout where data is involved, and everything acknowledged is read back exactly once.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from cluster import Cluster, NotAgreed, hold_for, started
from harness import unique_topic, wait_until
from replication_helpers import NumberedProducers, check_log
from client_helpers import ck_consume_all
from test_add_node import add_node_args
from test_grow_shrink import PARTITIONS, create_topic, preload, rebalance, topic_view, wait_settled

VOTERS = [1, 2, 3]
RATE = 1_000_000           # [replication] rebalance_max_bytes_per_sec: copies take seconds
PRELOAD = 6_000_000        # bytes over the 6 partitions: about 1 MB per replica to copy
FREEZE_S = 6.0             # past the election timeout (1.5-3 s) and the session timeout (6 s)
CONVERGE_S = 10.0          # the new leader's plan converges within this (the bound)
STEP_DELAY_MS = 1000       # [debug] rebalance_step_delay_ms: each phase visible for a second


@pytest.fixture(scope="module")
def moves(tmp_path_factory) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("move-safety"), size=3, spare=1, name="mnode", replication_factor=3,
                min_insync_replicas=2, replication={"rebalance_max_bytes_per_sec": RATE,
                                                    "replica_lag_max_ms": 3000})
    with started(c):
        yield c
        for i in c.nodes:
            c.resume(i)


def moving(c: Cluster, leader: int, phases: tuple[str, ...] = ("catching_up",)) -> list[dict]:
    """The leader's moves currently in one of `phases`; raises NotAgreed while there are none."""
    found = [m for m in rebalance(c, leader)["moves"] if m["phase"] in phases]
    if not found:
        raise NotAgreed(f"no move in {phases}: {rebalance(c, leader)}")
    return found


def read_back(c: Cluster, topic: str, prods: NumberedProducers, extras, ids: list[int]) -> None:
    got = ck_consume_all(",".join(c.bootstrap(i) for i in ids), topic, PARTITIONS, timeout=90)
    check_log(got, prods, extras)


def test_a_raft_leader_frozen_mid_rebalance_cannot_apply_its_old_plan(moves):
    c = moves
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    topic = unique_topic("frozen-planner")
    create_topic(c, topic)
    extras = preload(c.bootstrap(1), topic, PRELOAD)
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(20, what="before the addition")
        # The admin API answers once node 4 votes; the moves then run in the background.
        r = start_and_add_node_4(c, leader)
        assert r.status_code == 200, r.text
        wait_until(lambda: moving(c, leader), 30, "a move catching up on the Raft leader", interval=0.05)
        marks = {i: c.node(i).log_size() for i in c.nodes}
        t_freeze = time.monotonic()
        c.pause(leader)
        others = [i for i in VOTERS + [4] if i != leader]
        new = c.wait_for_leader(15, ids=others)
        t_plan = wait_until(lambda: rebalance(c, new)["active"] and time.monotonic(), 15,
                            f"node {new}'s rebalancer taking over")
        # Frozen for longer than an election timeout; the new leader keeps leading meanwhile.
        hold_for(lambda: c.health(new)["is_leader"], max(0.1, t_freeze + FREEZE_S - time.monotonic()),
                 f"node {new} leading while node {leader} is frozen")
        c.resume(leader)
        t_resume = time.monotonic()
        voters = sorted(VOTERS + [4])
        wait_settled(c, topic, voters, new, CONVERGE_S + 20, "after the frozen leader woke up")
        # The frozen node holds replicas the plan needs in sync: the plan can finish only once it
        # is back, so the clock starts at the later of the new plan and the wake-up.
        took = time.monotonic() - max(t_plan, t_resume)
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after the rebalance")
    assert took <= CONVERGE_S, f"the new leader's plan took {took:.1f}s to converge"
    retries = len(c.node(new).log_lines(r"rebalance step not applied", marks[new]))
    assert retries <= 3, f"node {new} retried refused steps {retries} times"
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    read_back(c, topic, prods, extras, voters)


@pytest.fixture
def spreading(tmp_path) -> Cluster:
    """Three voters and a spare; the leadership spread starts a second after the replica moves
    and hands one partition over at a time, each step held STEP_DELAY_MS (a fail point)."""
    c = Cluster(tmp_path / "spread", size=3, spare=1, name="snode", replication_factor=3, min_insync_replicas=2,
                fail_points=True, debug={"rebalance_step_delay_ms": STEP_DELAY_MS},
                replication={"rebalance_leaders_delay_ms": 1000, "rebalance_max_concurrent_leader_moves": 1})
    with started(c):
        yield c
        for i in c.nodes:
            c.resume(i)


def test_a_raft_leader_frozen_mid_spread_leaves_the_rest_to_its_successor(spreading):
    """Node 4 joins a cluster with 12 partitions; while the Raft leader spreads leadership (one
    handover under way, the others queued) it is frozen past an election. The plan dies with its
    leadership; the new Raft leader finds the leadership uneven and spreads it: node 4 leads its
    three partitions, each in sync and first in its replica list, with every acknowledged record
    read back once."""
    c = spreading
    partitions = 12
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    topic = unique_topic("frozen-spread")
    create_topic(c, topic, partitions)
    voters = sorted(VOTERS + [4])
    with NumberedProducers(",".join(c.bootstrap(i) for i in voters), topic, list(range(partitions))) as prods:
        prods.wait_acks(20, what="before the addition")
        assert start_and_add_node_4(c, leader).status_code == 200

        def queued():
            phases = [entry["phase"] for entry in rebalance(c, leader)["leaders"]]
            if "queued" not in phases:
                raise NotAgreed(f"no leadership change queued yet: {phases}")
            return phases
        wait_until(queued, 60, "leadership changes queued on the Raft leader", interval=0.05)
        t_freeze = time.monotonic()
        c.pause(leader)
        others = [i for i in voters if i != leader]
        new = c.wait_for_leader(15, ids=others)
        hold_for(lambda: c.health(new)["is_leader"], max(0.1, t_freeze + FREEZE_S - time.monotonic()),
                 f"node {new} leading while node {leader} is frozen")
        c.resume(leader)

        def spread():
            view = topic_view(c, new, topic)
            led = sorted(p for p, e in view.items() if e["leader"] == 4)
            if len(led) != partitions // 4:
                raise NotAgreed(f"node 4 leads {led}")
            wrong = {p: e for p, e in view.items() if e["leader"] not in e["isr"] or e["replicas"][0] != e["leader"]}
            if wrong:
                raise NotAgreed(f"leaders out of sync or not first: {wrong}")
            return led
        wait_until(spread, 60, "node 4 leading its share after the Raft leader changed", interval=0.25)
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after the spread")
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    got = ck_consume_all(",".join(c.bootstrap(i) for i in voters), topic, partitions, timeout=90)
    check_log(got, prods)


@pytest.fixture
def held(tmp_path) -> Cluster:
    """Three voters and a spare; every rebalance step is held STEP_DELAY_MS before it is
    proposed (a fail point), so each phase of a move lasts long enough to fail a node in."""
    c = Cluster(tmp_path / "held-steps", size=3, spare=1, name="hnode", replication_factor=3, min_insync_replicas=2,
                fail_points=True, debug={"rebalance_step_delay_ms": STEP_DELAY_MS},
                replication={"rebalance_max_bytes_per_sec": RATE, "replica_lag_max_ms": 3000})
    with started(c):
        yield c
        for i in c.nodes:
            c.resume(i)


@pytest.mark.parametrize("phase", ["adding", "catching_up", "moving_leader", "removing"])
def test_a_partition_leader_fenced_mid_move_then_remove_node_completes(held, phase):
    """Node 4 joins, then a founding node (one that leads partitions) drains; the leader of a
    partition whose move is in `phase` is frozen until the controller fences it (its leadership
    may land outside the move's target, even on the draining node); then it wakes up. The held step, decided before, may have become unsafe: the
    state machine refuses it, the rebalancer decides again from the metadata, and `remove-node`
    completes with every acknowledged record in place."""
    c = held
    raft_leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    topic = unique_topic(f"fenced-{phase}")
    create_topic(c, topic)
    extras = preload(c.bootstrap(1), topic, PRELOAD // 4)
    voters = sorted(VOTERS + [4])
    with NumberedProducers(",".join(c.bootstrap(i) for i in voters), topic, list(range(PARTITIONS))) as prods:
        prods.wait_acks(20, what="before the addition")
        assert start_and_add_node_4(c, raft_leader).status_code == 200
        wait_settled(c, topic, voters, raft_leader, 120, "node 4 added")
        drained = max(i for i in VOTERS if i != raft_leader)
        remaining = [i for i in voters if i != drained]
        result: dict = {}
        cli = threading.Thread(target=lambda: result.setdefault(
            "out", c.cli("cluster", "remove-node", str(drained), "--config", str(c.node(raft_leader).config_path),
                         timeout=300)), daemon=True)
        cli.start()

        def in_phase():
            for m in moving(c, raft_leader, (phase,)):
                p = topic_view(c, raft_leader, topic).get(m["partition"]) if m["topic"] == topic else None
                if p and p["leader"] != raft_leader:
                    return p["leader"], m["partition"]
            raise NotAgreed(f"no {phase} move of a partition led outside the Raft leader")

        victim, partition = wait_until(in_phase, 120, f"a move in phase {phase}", interval=0.05)
        c.pause(victim)

        def fenced():
            p = topic_view(c, raft_leader, topic)[partition]
            if p["leader"] == victim:
                raise NotAgreed(f"{topic}/{partition} still led by {victim}: {p}")
            return p

        wait_until(fenced, 30, f"node {victim} fenced away from {topic}/{partition}")
        c.resume(victim)
        cli.join(300)
        out = result.get("out")
        assert out is not None and out.returncode == 0, getattr(out, "stdout", "remove-node did not finish")
        assert f"✓ Node {drained} removed from the cluster" in out.stdout, out.stdout
        wait_settled(c, topic, remaining, raft_leader, 60, "after the removal")
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after the removal")
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    read_back(c, topic, prods, extras, remaining)


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> tuple[Cluster, Cluster]:
    """Nodes 1-3 with spare slots 4 and 5; and a second, one-node cluster (node 7)."""
    base = tmp_path_factory.mktemp("identity")
    with started(Cluster(base / "ours", size=3, spare=2, name="inode")) as ours:
        with started(Cluster(base / "theirs", size=1, spare=0, name="other", first_id=7, replication_factor=1)) as theirs:
            yield ours, theirs


def start_and_add_node_4(c: Cluster, leader: int) -> requests.Response:
    """Starts the spare node 4 and asks `leader` to add it."""
    c.node(4).start(wait=False)
    c.node(4).wait_ready(30)
    return add_node(c, leader, 4, c.slots[4])


def add_node(c: Cluster, leader: int, node_id: int, slot) -> requests.Response:
    body = {"node_id": node_id, "kafka_addr": slot.addr(slot.kafka), "wal_addr": slot.addr(slot.wal),
            "raft_addr": slot.addr(slot.raft)}
    return requests.post(f"{c.admin_url(leader)}/admin/add-node", json=body, timeout=60)


def test_add_node_refuses_a_node_that_is_not_who_the_request_says(identity):
    ours, theirs = identity
    leader = ours.wait_for_leader(ids=VOTERS, voters=VOTERS)
    term = ours.health(leader)["term"]
    # The Raft leader gives a new cluster its id within a tick of forming.
    ids = wait_until(lambda: {ours.health(i)["cluster_id"] for i in VOTERS} - {None} and
                     {ours.health(i)["cluster_id"] for i in VOTERS}, 15, "one cluster id on every node")
    assert len(ids) == 1, ids
    cluster_id = ids.pop()
    theirs_id = wait_until(lambda: theirs.health(7)["cluster_id"], 15, "the other cluster's id")
    assert theirs_id != cluster_id

    r = add_node(ours, leader, 8, ours.slots[2])
    assert r.status_code == 409, r.text
    assert "belongs to node 2" in r.json()["message"], r.text

    ours.node(5).start(wait=False)
    ours.node(5).wait_ready(30)
    r = add_node(ours, leader, 9, ours.slots[5])
    assert r.status_code == 409, r.text
    assert r.json()["message"] == f"Cannot add node 9: the node at {ours.slots[5].addr(ours.slots[5].raft)} is node 5"

    r = add_node(ours, leader, 7, theirs.slots[7])
    assert r.status_code == 409, r.text
    assert "belongs to another cluster" in r.json()["message"], r.text

    now, hs = ours.agreement(VOTERS, voters=VOTERS)
    assert now == leader and all(h["term"] == term and h["learners"] == [] for h in hs.values()), hs
    _t, theirs_view = theirs.agreement([7], voters=[7])
    assert theirs_view[7]["cluster_nodes"] == [7], "the other cluster is untouched"
    ours.node(5).kill()


@pytest.fixture
def pausing(tmp_path) -> Cluster:
    c = Cluster(tmp_path / "stranded", size=3, spare=1, name="snode", fail_points=True,
                debug={"pause_after_add_learner_ms": 20_000})
    with started(c):
        yield c


def test_a_learner_stranded_by_a_dead_leader_is_added_by_a_retry(pausing):
    c = pausing
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    c.node(4).start(wait=False)
    c.node(4).wait_ready(30)
    first = threading.Thread(target=lambda: _ignore(lambda: add_node(c, leader, 4, c.slots[4])), daemon=True)
    first.start()
    others = [i for i in VOTERS if i != leader]
    wait_until(lambda: all(4 in c.health(i)["learners"] for i in others), 30, "node 4 a learner everywhere")
    c.kill(leader)
    new = c.wait_for_leader(20, ids=others)
    out = c.cli(*add_node_args(c, 4, config_of=new))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "✓ Node 4 is a voting member" in out.stdout, out.stdout
    voters = sorted(VOTERS + [4])
    wait_until(lambda: c.agreement(others + [4], voters=voters), 30, "node 4 a voter on every live node")
    assert any(c.node(new).log_lines(r"node 4 is already a learner; continuing its addition")), \
        "the retry did not continue from the learner"
    c.restart(leader)
    c.wait_for_leader(30, ids=voters, voters=voters)


def _ignore(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - the first attempt dies with its leader
        pass
