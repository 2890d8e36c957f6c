"""Adding a node to a running 3-node cluster (the user's test plan, steps 1.5-1.7): node 4 starts
outside the membership, `chronik-server cluster add-node` makes it a voter through the Raft
leader, and the leader and term never change. Also the refusals the plan fixes: a duplicate id,
a malformed address, a follower asked, a node that is not running.

While node 4 joins, two producers (kafka-python defaults, confluent-kafka acks=all idempotent)
write a numbered stream to a 6-partition RF-3 topic; the rebalancer then moves replicas onto
node 4 (copy, catch up, join the ISR, only then drop the old one). Every acknowledged message
must be read back exactly once, in order, and no producer may see an error.
"""

from __future__ import annotations

import time

import pytest
import requests

from cluster import Cluster, LeaderTermSampler, started
from harness import unique_topic, wait_until
from replication_helpers import NumberedProducers, check_log
from client_helpers import ck_consume_all
from confluent_kafka.admin import AdminClient, NewTopic

VOTERS = [1, 2, 3]


@pytest.fixture(scope="module")
def grow(tmp_path_factory) -> Cluster:
    """Nodes 1-3 running; slots 4 (configured with 4 peers) and 5 spare."""
    with started(Cluster(tmp_path_factory.mktemp("add-node"), size=3, spare=2, name="node",
                         min_insync_replicas=2)) as c:
        yield c


def add_node_args(c: Cluster, i: int, config_of: int = 1) -> list[str]:
    s = c.slots[i]
    return ["cluster", "add-node", str(i), "--kafka", s.addr(s.kafka), "--wal", s.addr(s.wal),
            "--raft", s.addr(s.raft), "--config", str(c.node(config_of).config_path)]


def test_unreachable_node_is_refused_before_anything_is_proposed(grow):
    leader = grow.wait_for_leader(voters=VOTERS)
    term = grow.health(leader)["term"]
    out = grow.cli(*add_node_args(grow, 5))
    assert out.returncode != 0, out.stdout
    assert "✗ Failed to add node: Node 5 is not reachable" in out.stdout, out.stdout
    now, hs = grow.agreement(VOTERS, voters=VOTERS)
    assert now == leader and all(h["term"] == term and h["learners"] == [] for h in hs.values()), hs


def test_refusals_name_the_reason(grow):
    leader = grow.wait_for_leader(voters=VOTERS)
    dup = grow.cli(*add_node_args(grow, 4)[:2], "1", *add_node_args(grow, 4)[3:])
    assert dup.returncode != 0 and "✗ Failed to add node: Node 1 already exists in cluster" in dup.stdout, dup.stdout

    bad = grow.cli("cluster", "add-node", "4", "--kafka", "localhost", "--wal", "localhost:1", "--raft",
                   "localhost:2", "--config", str(grow.node(1).config_path))
    assert bad.returncode != 0 and "✗ Failed to add node: Invalid address format" in bad.stdout, bad.stdout

    follower = next(i for i in VOTERS if i != leader)
    s = grow.slots[4]
    body = {"node_id": 4, "kafka_addr": s.addr(s.kafka), "wal_addr": s.addr(s.wal), "raft_addr": s.addr(s.raft)}
    r = requests.post(f"{grow.node(follower).admin_url}/admin/add-node", json=body, timeout=10)
    assert r.status_code == 421, r.text
    assert r.json() == {"success": False, "message": "Cannot add node: this node is not the leader"}

    r = requests.post(f"{grow.node(leader).admin_url}/admin/add-node", data="{not json", timeout=10)
    assert 400 <= r.status_code < 500 and r.json()["success"] is False, r.text


def test_add_node_keeps_leader_and_term_and_rebalances_under_load(grow):
    leader = grow.wait_for_leader(voters=VOTERS)
    term = grow.health(leader)["term"]
    topic = unique_topic("grow")
    admin = AdminClient({"bootstrap.servers": grow.bootstrap(1)})
    for f in admin.create_topics([NewTopic(topic, 6, 3)]).values():
        f.result(30)
    n4 = grow.node(4)
    n4.start(wait=False)
    wait_until(lambda: n4.health()["status"] == "not_member", 30, "node 4 running outside the membership")

    def rebalanced():
        status = grow.node(leader).get("/admin/rebalance").json()
        parts = [q for q in grow.node(leader).get("/admin/partitions").json()["partitions"] if q["topic"] == topic]
        on4 = sum(4 in q["replicas"] for q in parts)
        if not (status["voters"] == [1, 2, 3, 4] and status["moves"] == [] and 4 <= on4 <= 5):
            raise AssertionError(f"rebalance {status}, node 4 holds {on4} replicas")
        if any(sorted(q["isr"]) != sorted(q["replicas"]) or len(set(q["replicas"])) != 3 for q in parts):
            raise AssertionError(f"not settled: {[(q['replicas'], q['isr']) for q in parts]}")
        return parts

    marks = {i: grow.node(i).log_size() for i in VOTERS}
    # Leader and term on every node every 50 ms for the whole addition and rebalance.
    sampler = LeaderTermSampler(grow, VOTERS)
    with NumberedProducers(grow.bootstrap(1), topic, list(range(6))) as prods:
        prods.wait_acks(20, timeout=30, what="before the addition")
        with sampler:
            out = grow.cli(*add_node_args(grow, 4), timeout=120)
            assert out.returncode == 0, out.stdout + out.stderr
            wait_until(rebalanced, 120, f"{topic} rebalanced onto node 4", interval=0.5)
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after the rebalance")
    assert prods.errors == [], prods.errors[:5]
    check_log(ck_consume_all(grow.bootstrap(1), topic, 6, timeout=60), prods)

    port = grow.node(leader).admin_port
    for line in ["Discovering cluster leader...", f"✓ Found leader: node {leader} (port {port})",
                 "Sending add-node request to leader...", "✓ Node 4 addition proposed. Waiting for Raft consensus...",
                 "Node Details:", "  ID:    4", f"  Raft:  {grow.slots[4].addr(grow.slots[4].raft)}"]:
        assert line in out.stdout.splitlines(), f"missing {line!r} in:\n{out.stdout}"

    assert sampler.samples, "no health samples were taken"
    moved = sampler.changes(leader, term)
    assert not moved, f"leader/term changed during the addition (was {leader}/{term}): {moved[:5]}"
    everyone = VOTERS + [4]
    now, hs = grow.agreement(everyone, voters=everyone)
    assert now == leader and all(h["term"] == term for h in hs.values()), hs
    for i in everyone:
        assert grow.node(i).log_lines(r"ConfChange applied"), f"node {i} logged no ConfChange"
    for i in VOTERS:
        # Leader changes (ours) and candidacies (openraft's) would show here.
        campaign = grow.node(i).log_lines(r"Raft leader: node|new candidate|become leader", marks[i])
        assert not campaign, f"node {i} logged an election during the addition: {campaign}"
    log = grow.node(leader).log_text()
    for line in ["Cluster membership changed: 3 → 4 nodes - triggering rebalance",
                 f"Rebalancing topic '{topic}' across 4 nodes", "Proposed new assignment", "✓ Rebalancing complete"]:
        assert line in log, f"the leader's log lacks {line!r}"
