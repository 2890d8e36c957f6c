"""Placement through Kafka's admin APIs (issue 17 item 3):
- CreatePartitions with a manual replica assignment (kafka-python and confluent-kafka) puts each
  new partition on the brokers named, first one leading, with Kafka's checks for bad ones;
- ListPartitionReassignments: while node 4 joins, kafka-python's admin client lists exactly the
  moves the rebalancer has not finished, in Kafka's terms (replicas now, adding, removing),
  filtered as asked; a node that is not the controller says so, and the list is empty once every
  move is done.
"""

from __future__ import annotations

import re

import pytest
import requests
from confluent_kafka.admin import AdminClient, NewPartitions as CkNewPartitions
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewPartitions
from kafka.errors import InvalidReplicationAssignmentError
from kafka.protocol.admin import ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse

from cluster import Cluster, started
from harness import unique_topic, wait_until
from replication_helpers import admin_view, create_topic
from test_api_version_matrix import roundtrip

VOTERS = [1, 2, 3]
NOT_CONTROLLER = 41


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
