"""ElectLeaders (issue 17 item 3) from the admin clients an operator uses: after a failover the
preferred replica takes its leadership back in a new epoch, only while it is in sync, with
Kafka's per-partition codes for everything else, and an idempotent acks=all producer running
throughout loses and duplicates nothing.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import ElectionType, KafkaError, TopicPartition as CkTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient
from kafka.errors import KafkaConnectionError
from kafka.protocol.admin import ElectLeadersRequest, ElectLeadersResponse

from client_helpers import AckedProducer, kp_consumer
from cluster import Cluster, started
from harness import unique_topic, wait_until
from replication_helpers import admin_view
from test_api_version_matrix import roundtrip

VOTERS = [1, 2, 3]
UNKNOWN_TOPIC_OR_PARTITION = 3
PREFERRED_LEADER_NOT_AVAILABLE = 80
ELECTION_NOT_NEEDED = 84
INVALID_REQUEST = 42


@pytest.fixture(scope="module")
def ecluster(tmp_path_factory):
    # A short replica lag: a stopped follower leaves the ISR quickly.
    c = Cluster(tmp_path_factory.mktemp("elect-cluster"), size=3, spare=0, name="electnode",
                replication_factor=3, min_insync_replicas=2, replication={"replica_lag_max_ms": 3000})
    with started(c, clean_stop=True):
        yield c


def views(cluster: Cluster, topic: str, node: int) -> dict[int, dict]:
    return admin_view(cluster, node, topic)


def kp_elect(cluster: Cluster, node: int, topic_partitions) -> dict[tuple[str, int], int]:
    """kafka-python's preferred election: {(topic, partition): error code} as answered."""
    def once():
        a = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(node), request_timeout_ms=30000)
        try:
            return a.elect_leaders(0, topic_partitions, raise_errors=False)
        except KafkaConnectionError:
            # The client may pick a stopped broker (still listed) for a metadata refresh and
            # give up on the first refusal; a user retries.
            return None
        finally:
            a.close()
    resp = wait_until(once, 60, "kafka-python's ElectLeaders answered", interval=0.5)
    return {(t.topic, p.partition_id): p.error_code
            for t in resp.replica_election_results for p in t.partition_result}


def test_the_preferred_replica_takes_its_leadership_back_under_load(ecluster):
    topic = unique_topic("elect")
    everyone = ",".join(ecluster.bootstrap(i) for i in VOTERS)
    ac = AdminClient({"bootstrap.servers": everyone})
    ac.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])[topic].result(30)
    wait_until(lambda: all(len(views(ecluster, topic, i)) == 3 and all(v.get("replica") for v in
                                                                         views(ecluster, topic, i).values())
                           for i in VOTERS), 30, f"{topic} hosted everywhere")
    before = views(ecluster, topic, 1)
    preferred = before[0]["replicas"][0]
    assert before[0]["leader"] == preferred

    # Nothing to do yet. Asked for every partition (a null list; kafka-python lists them all
    # itself), only partitions that needed an election are answered.
    assert kp_elect(ecluster, 1, None)[(topic, 1)] == ELECTION_NOT_NEEDED
    resp = roundtrip(ecluster.bootstrap(1), ElectLeadersRequest(election_type=0, topic_partitions=None,
                                                               timeout_ms=10000), ElectLeadersResponse, 2, 501)
    rows = {t["topic"]: t["partition_result"] for t in resp["replica_election_results"]}
    assert resp["error_code"] == 0 and rows[topic] == [], resp
    assert kp_elect(ecluster, 1, {topic: [0, 7]}) == {(topic, 0): ELECTION_NOT_NEEDED,
                                                      (topic, 7): UNKNOWN_TOPIC_OR_PARTITION}

    p = AckedProducer(everyone, topic, 3, b"e", **{"linger.ms": 5})
    p.send(200, 0)
    # A failover: the preferred replica stops, another in-sync replica leads partition 0.
    ecluster.stop(preferred)
    survivor = next(i for i in VOTERS if i != preferred)
    moved = wait_until(lambda: (v := views(ecluster, topic, survivor)[0])["leader"] != preferred and v, 30,
                       f"partition 0 led by another node than {preferred}")
    p.send(200, 200)
    # The admin client asks the controller (the Raft leader): one of the running nodes by now.
    ecluster.wait_for_leader(30, ids=[i for i in VOTERS if i != preferred])
    # While it is down (out of the ISR), it cannot take leadership back.
    wait_until(lambda: preferred not in views(ecluster, topic, survivor)[0]["isr"], 30,
               f"node {preferred} out of the ISR")
    assert kp_elect(ecluster, survivor, {topic: [0]}) == {(topic, 0): PREFERRED_LEADER_NOT_AVAILABLE}

    ecluster.restart(preferred)
    wait_until(lambda: preferred in views(ecluster, topic, survivor)[0]["isr"], 60,
               f"node {preferred} back in the ISR of partition 0")
    p.send(200, 400)
    assert kp_elect(ecluster, survivor, {topic: [0]}) == {(topic, 0): 0}
    after = wait_until(lambda: all((v := views(ecluster, topic, i)[0])["leader"] == preferred for i in VOTERS) and v,
                       15, f"every node sees node {preferred} leading partition 0 again")
    assert after["leader_epoch"] > moved["leader_epoch"], (moved, after)

    # confluent-kafka asks again: not needed any more.
    result = ac.elect_leaders(ElectionType.PREFERRED, [CkTopicPartition(topic, 0)]).result(30)
    [(tp, err)] = result.items()
    assert (tp.topic, tp.partition) == (topic, 0)
    assert err is not None and err.code() == KafkaError.ELECTION_NOT_NEEDED, err

    p.send(200, 600)
    assert p.flush(60) == 0
    assert not p.failed, p.failed[:5]
    acked = p.acked
    c = kp_consumer(everyone)
    c.subscribe([topic])
    got_values = []
    deadline = time.monotonic() + 60
    while len(got_values) < len(acked) and time.monotonic() < deadline:
        for records in c.poll(timeout_ms=500).values():
            got_values.extend(r.value for r in records)
    c.close()
    assert sorted(got_values) == sorted(acked) and len(acked) == 800, (len(got_values), len(acked))


def test_an_unclean_election_is_not_needed_while_the_leader_answers_and_unknown_types_are_refused(ecluster):
    topic = unique_topic("elect-unclean")
    ac = AdminClient({"bootstrap.servers": ecluster.bootstrap(1)})
    ac.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(30)
    before = wait_until(lambda: views(ecluster, topic, 1).get(0), 30, f"{topic} created")
    result = ac.elect_leaders(ElectionType.UNCLEAN, [CkTopicPartition(topic, 0)]).result(30)
    [err] = result.values()
    assert err is not None and err.code() == KafkaError.ELECTION_NOT_NEEDED, "its leader is in sync"

    # Only 0 (preferred) and 1 (unclean) exist: anything else fails the request and each partition.
    for v in (1, 2):
        req = ElectLeadersRequest(election_type=5, timeout_ms=10000, topic_partitions=[
            ElectLeadersRequest.TopicPartitions(topic=topic, partitions=[0])])
        resp = roundtrip(ecluster.bootstrap(1), req, ElectLeadersResponse, v, 500 + v)
        [t] = resp["replica_election_results"]
        [row] = t["partition_result"]
        assert (resp["error_code"], row["error_code"]) == (INVALID_REQUEST, INVALID_REQUEST), resp
        assert "election type 5" in row["error_message"]
    after = views(ecluster, topic, 1)[0]
    assert (after["leader"], after["leader_epoch"]) == (before["leader"], before["leader_epoch"]), "nothing elected"
