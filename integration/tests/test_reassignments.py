"""ListPartitionReassignments (issue 17 item 3): while node 4 joins, kafka-python's admin client
lists exactly the moves the rebalancer has not finished, in Kafka's terms (replicas now, adding,
removing), filtered as asked; a node that is not the controller says so, and the list is empty
once every move is done.
"""

from __future__ import annotations

import pytest
import requests
from kafka import KafkaAdminClient, TopicPartition
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
    s = rcluster.slots[4]
    body = {"node_id": 4, "kafka_addr": s.addr(s.kafka), "wal_addr": s.addr(s.wal), "raft_addr": s.addr(s.raft)}
    r = requests.post(f"{admin}/admin/add-node", json=body, timeout=90)
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
