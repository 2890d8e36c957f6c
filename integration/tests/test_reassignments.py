"""Placement through Kafka's admin APIs (issue 17 item 3):
- CreatePartitions with a manual replica assignment (kafka-python and confluent-kafka) puts each
  new partition on the brokers named, first one leading, with Kafka's checks for bad ones;
- ListPartitionReassignments: while node 4 joins, kafka-python's admin client lists exactly the
  moves the rebalancer has not finished, in Kafka's terms (replicas now, adding, removing),
  filtered as asked; a node that is not the controller says so, and the list is empty once every
  move is done;
- AlterPartitionReassignments: kafka-python's admin client moves a partition under load, its
  leader leaving (handed over gracefully); the move is listed at once and shown in
  /admin/rebalance as the operator's; it ends with exactly the replicas asked for, nothing lost or
  doubled, no producer error; Kafka's refusals per partition; a move cancelled before it started
  changes nothing; the rebalancer's next plan and the leadership spread leave the partition where
  it was put.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from confluent_kafka.admin import AdminClient, NewPartitions as CkNewPartitions, NewTopic
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewPartitions
from kafka.errors import (InvalidReplicationAssignmentError, NoReassignmentInProgressError,
                          UnknownTopicOrPartitionError)
from kafka.protocol.admin import (AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
                                  ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse)

from cluster import Cluster, started
from harness import unique_topic, wait_until
from replication_helpers import NumberedProducers, admin_view, consume_and_check, create_topic
from test_api_version_matrix import roundtrip

VOTERS = [1, 2, 3]
NOT_CONTROLLER = 41
INVALID_REPLICATION_FACTOR = 38


@pytest.fixture(scope="module")
def rcluster(tmp_path_factory):
    with started(Cluster(tmp_path_factory.mktemp("reassign"), size=3, spare=1, name="reasnode",
                         min_insync_replicas=2)) as c:
        c.wait_for_leader(voters=VOTERS)
        yield c


def rebalance(cluster: Cluster, leader: int) -> dict:
    return cluster.node(leader).get("/admin/rebalance").json()


def listed(bootstrap: str, topic: str, topic_partitions=None) -> dict[int, tuple[list, list, list]]:
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        got = a.list_partition_reassignments(topic_partitions)
    finally:
        a.close()
    return {tp.partition: (sorted(r["replicas"]), sorted(r["adding_replicas"]), sorted(r["removing_replicas"]))
            for tp, r in got.items() if tp.topic == topic}


def test_new_partitions_go_where_a_manual_assignment_puts_them(rcluster):
    topic = unique_topic("assign")
    create_topic(rcluster, topic, partitions=2)
    a = KafkaAdminClient(bootstrap_servers=rcluster.bootstrap(1), request_timeout_ms=30000)
    try:
        for bad, why in (([[3, 1]], "2 partition(s) would be added, but 1 assignment(s)"),
                         ([[3, 1, 2], [2]], "has 1 replica(s), but the other partitions have 3"),
                         ([[3, 1, 1], [2, 3, 1]], "names broker 1 more than once"),
                         ([[3, 1, 9], [2, 3, 1]], "names broker 9, which is not an active member")):
            with pytest.raises(InvalidReplicationAssignmentError, match=re.escape(why)):
                a.create_partitions({topic: NewPartitions(total_count=4, new_assignments=bad)})
        assert len(admin_view(rcluster, 1, topic)) == 2, "nothing refused was created"
        a.create_partitions({topic: NewPartitions(total_count=4, new_assignments=[[3, 1, 2], [2, 3, 1]])})
    finally:
        a.close()
    ck = AdminClient({"bootstrap.servers": rcluster.bootstrap(2)})
    ck.create_partitions([CkNewPartitions(topic, 5, replica_assignment=[[1, 3, 2]])])[topic].result(30)

    def placed():
        views = {i: admin_view(rcluster, i, topic) for i in VOTERS}
        return all(len(v) == 5 and all(p.get("replica") or i not in p["replicas"] for p in v.values())
                   for i, v in views.items()) and views[1]
    view = wait_until(placed, 30, f"partitions 2-4 of {topic} created and hosted")
    got = {p: (view[p]["leader"], view[p]["replicas"], sorted(view[p]["isr"])) for p in (2, 3, 4)}
    assert got == {2: (3, [3, 1, 2], [1, 2, 3]), 3: (2, [2, 3, 1], [1, 2, 3]), 4: (1, [1, 3, 2], [1, 2, 3])}, got


def test_moves_under_way_are_listed_until_done(rcluster):
    topic = unique_topic("reassign")
    create_topic(rcluster, topic)
    leader = rcluster.wait_for_leader(voters=VOTERS)
    follower = next(i for i in VOTERS if i != leader)
    admin = rcluster.admin_url(leader)
    assert requests.post(f"{admin}/admin/rebalance/pause", timeout=10).status_code == 200
    assert listed(rcluster.bootstrap(follower), topic) == {}, "nothing moves before node 4 joins"

    rcluster.node(4).start(wait=False)
    rcluster.node(4).wait_ready(30)
    r = rcluster.post_add_node(4, via=leader)
    assert r.status_code == 200, r.text
    try:
        moves = wait_until(lambda: [m for m in rebalance(rcluster, leader)["moves"] if m["topic"] == topic], 45,
                           f"moves planned for {topic} while paused")
        assert {m["phase"] for m in moves} == {"queued"}, moves
        now = admin_view(rcluster, leader, topic)
        want = {m["partition"]: (sorted(now[m["partition"]]["replicas"]),
                                 sorted(set(m["to"]) - set(m["from"])), sorted(set(m["from"]) - set(m["to"])))
                for m in moves}
        assert all(4 in adding for _, adding, _ in want.values()), want
        # Asked through a broker that is not the controller: the client finds the controller.
        assert listed(rcluster.bootstrap(follower), topic) == want
        one = min(want)
        assert listed(rcluster.bootstrap(follower), topic, {topic: [one]}) == {one: want[one]}
        assert listed(rcluster.bootstrap(follower), topic, [TopicPartition(topic, 99)]) == {}

        # Sent straight to a node that does not drive the moves: NOT_CONTROLLER, nothing listed.
        resp = roundtrip(rcluster.bootstrap(follower), ListPartitionReassignmentsRequest(timeout_ms=10000, topics=None),
                         ListPartitionReassignmentsResponse, 0, 460)
        assert (resp["error_code"], resp["topics"]) == (NOT_CONTROLLER, []), resp
    finally:
        assert requests.post(f"{admin}/admin/rebalance/resume", timeout=10).status_code == 200
    wait_until(lambda: rebalance(rcluster, leader)["complete"], 90, "every move done")
    assert listed(rcluster.bootstrap(1), topic) == {}


def test_an_operator_reassignment_moves_a_partition_under_load_and_it_stays_there(rcluster):
    c = rcluster
    voters = VOTERS + [4]
    if not c.node(4).is_running():  # run on its own: node 4 joins first
        c.node(4).start(wait=False)
        c.node(4).wait_ready(30)
        assert c.post_add_node(4, via=c.wait_for_leader(voters=VOTERS)).status_code == 200
    leader = c.wait_for_leader(voters=voters)
    follower = next(i for i in voters if i != leader)
    wait_until(lambda: rebalance(c, leader)["complete"], 90, "node 4's moves done")
    topic = unique_topic("alter")
    ck = AdminClient({"bootstrap.servers": c.bootstrap(leader)})
    ck.create_topics([NewTopic(topic, num_partitions=4, replication_factor=3)])[topic].result(30)
    wait_until(lambda: all(len(v) == 4 and all(len(p["isr"]) == 3 and (p.get("replica") or i not in p["replicas"])
                                               for p in v.values())
                           for i, v in ((i, admin_view(c, i, topic)) for i in voters)),
               30, f"{topic} created and hosted")
    current = admin_view(c, leader, topic)[0]["replicas"]
    old_leader = current[0]
    newcomer = next(i for i in voters if i not in current)
    target = [newcomer] + [i for i in current if i != old_leader]
    tp = TopicPartition(topic, 0)
    admin = c.admin_url(leader)
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap(follower), request_timeout_ms=30000)
    with NumberedProducers(",".join(c.bootstrap(i) for i in voters), topic, [0, 1, 2, 3]) as prods:
        prods.wait_acks(20, what="before the reassignment")
        assert requests.post(f"{admin}/admin/rebalance/pause", timeout=10).status_code == 200
        try:
            assert a.alter_partition_reassignments({tp: target}) == {tp: None}
            refused = a.alter_partition_reassignments({TopicPartition(topic, 1): None,
                                                       TopicPartition(topic, 2): [1, 1, 2],
                                                       TopicPartition(topic, 3): [1, 2, 99],
                                                       TopicPartition(topic, 99): [1, 2, 3]})
            assert refused == {TopicPartition(topic, 1): NoReassignmentInProgressError,
                               TopicPartition(topic, 2): InvalidReplicationAssignmentError,
                               TopicPartition(topic, 3): InvalidReplicationAssignmentError,
                               TopicPartition(topic, 99): UnknownTopicOrPartitionError}, refused
            # Partition 1 is sent elsewhere and called back before anything moved (the
            # rebalancer, paused, has queued the move): it stays.
            tp1 = TopicPartition(topic, 1)
            before = admin_view(c, leader, topic)[1]["replicas"]
            elsewhere = [next(i for i in voters if i not in before)] + before[1:]
            assert a.alter_partition_reassignments({tp1: elsewhere}) == {tp1: None}
            assert listed(c.bootstrap(follower), topic)[1] == (sorted(before), elsewhere[:1], before[:1])
            wait_until(lambda: any(m["topic"] == topic and m["partition"] == 1 and m["phase"] == "queued"
                                   for m in rebalance(c, leader)["moves"]), 15, "partition 1's move queued")
            assert a.alter_partition_reassignments({tp1: None}) == {tp1: None}
            # Listed from the moment it is accepted, in Kafka's terms, and shown as the operator's.
            assert listed(c.bootstrap(follower), topic) == {0: (sorted(current), [newcomer], [old_leader])}

            def operator_moves():
                moves = [m for m in rebalance(c, leader)["moves"] if m["topic"] == topic]
                return moves if [(m["partition"], m["to"], m["origin"]) for m in moves] == [(0, target, "operator")] else None

            wait_until(operator_moves, 15, "only partition 0's move, the operator's, in /admin/rebalance")
        finally:
            assert requests.post(f"{admin}/admin/rebalance/resume", timeout=10).status_code == 200

        def moved():
            views = [admin_view(c, i, topic)[0] for i in voters]
            return all(v["replicas"] == target and v["leader"] == target[0] and sorted(v["isr"]) == sorted(target)
                       and (v.get("replica") is not None) == (i in target) for i, v in zip(voters, views))
        wait_until(moved, 60, f"{topic}-0 on exactly {target}, {newcomer} leading")
        assert admin_view(c, leader, topic)[1]["replicas"] == before, "the cancelled move left partition 1 alone"
        wait_until(lambda: listed(c.bootstrap(follower), topic) == {}, 30, "the reassignment no longer listed")
        prods.wait_acks(20, partitions=[0], since=time.monotonic(), what="on partition 0 after the move")
    a.close()
    assert not prods.errors, prods.errors[:5]
    consume_and_check(c, topic, prods, partitions=4, voters=voters)

    # It stays: the rebalancer plans again (and spreads leaders after a finished move) around it.
    plans = rebalance(c, leader)["plans"]
    wait_until(lambda: rebalance(c, leader)["plans"] > plans and rebalance(c, leader)["complete"], 90,
               "the rebalancer's next plan")
    p0 = admin_view(c, leader, topic)[0]
    assert (p0["replicas"], p0["leader"]) == (target, newcomer), p0
    assert not [m for m in rebalance(c, leader)["moves"] if (m["topic"], m["partition"]) == (topic, 0)]


def test_a_reassignment_may_change_the_replication_factor_only_when_allowed(rcluster):
    """KIP-860 (AlterPartitionReassignments v1): with `allow_replication_factor_change` false, a
    target of another size than the partition's replicas is refused as INVALID_REPLICATION_FACTOR
    and nothing is recorded; the same size passes. kafka-python's admin client sends v1 with the
    flag's default (true) and grows the partition."""
    c = rcluster
    leader = c.wait_for_leader()
    voters = sorted(c.health(leader)["cluster_nodes"])
    topic = unique_topic("keeprf")
    ck = AdminClient({"bootstrap.servers": c.bootstrap(leader)})
    ck.create_topics([NewTopic(topic, num_partitions=2, replication_factor=2)])[topic].result(30)
    wait_until(lambda: len(admin_view(c, leader, topic)) == 2, 30, f"{topic} created")
    p0, p1 = (admin_view(c, leader, topic)[i]["replicas"] for i in (0, 1))
    grown = p0 + [next(i for i in voters if i not in p0)]
    Topic = AlterPartitionReassignmentsRequest.ReassignableTopic
    request = AlterPartitionReassignmentsRequest(
        timeout_ms=30000, allow_replication_factor_change=False,
        topics=[Topic(name=topic, partitions=[Topic.ReassignablePartition(partition_index=0, replicas=grown),
                                              Topic.ReassignablePartition(partition_index=1,
                                                                          replicas=list(reversed(p1)))])])
    resp = roundtrip(c.bootstrap(leader), request, AlterPartitionReassignmentsResponse, 1, 7)
    assert resp["error_code"] == 0 and resp["allow_replication_factor_change"] is False, resp
    rows = {p["partition_index"]: p for t in resp["responses"] for p in t["partitions"]}
    assert rows[0]["error_code"] == INVALID_REPLICATION_FACTOR, rows
    assert "from 2 to 3" in rows[0]["error_message"] and "allow_replication_factor_change" in rows[0]["error_message"]
    assert rows[1]["error_code"] == 0, rows
    assert listed(c.bootstrap(leader), topic) == {}, "the refused target is not recorded"
    wait_until(lambda: admin_view(c, leader, topic)[1]["replicas"] == list(reversed(p1)), 15, "the reorder applied")

    a = KafkaAdminClient(bootstrap_servers=c.bootstrap(leader), request_timeout_ms=30000)
    try:
        assert a.alter_partition_reassignments({TopicPartition(topic, 0): grown}) == {TopicPartition(topic, 0): None}
    finally:
        a.close()
    wait_until(lambda: admin_view(c, leader, topic)[0]["replicas"] == grown
               and sorted(admin_view(c, leader, topic)[0]["isr"]) == sorted(grown), 60, f"{topic}-0 on {grown}")
