"""A cluster's identity (issue 12 item 6): each cluster gets its own id when it forms, reported
alike by /admin/health, Metadata (kafka-python's describe_cluster) and DescribeCluster
(confluent-kafka); a node started on the data directory of another cluster's node refuses to
start, naming both clusters, and the cluster it was pointed at keeps serving without it.
"""

from __future__ import annotations

import shutil

from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient, KafkaProducer

from cluster import Cluster, started
from harness import unique_topic, wait_until


def reported_ids(c: Cluster) -> set[str]:
    health = {c.health(i)["cluster_id"] for i in c.members}
    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap(1), request_timeout_ms=30000)
    try:
        metadata = kp.describe_cluster()["cluster_id"]
    finally:
        kp.close()
    ck = AdminClient({"bootstrap.servers": c.bootstrap(2)})
    described = ck.describe_cluster().result(30).cluster_id
    return health | {metadata, described}


def test_a_node_on_another_clusters_data_directory_refuses_to_start(tmp_path_factory):
    with started(Cluster(tmp_path_factory.mktemp("ida"), size=3, spare=0, name="ida")) as a, \
            started(Cluster(tmp_path_factory.mktemp("idb"), size=3, spare=0, name="idb")) as b:
        ids = {}
        for name, c in (("a", a), ("b", b)):
            c.wait_for_leader()
            wait_until(lambda c=c: all(c.health(i)["cluster_id"] for i in c.members), 30, f"cluster {name}'s id")
            reported = reported_ids(c)
            assert len(reported) == 1, reported
            ids[name] = reported.pop()
        assert ids["a"] != ids["b"], ids

        # Node 3 of A starts on a copy of B's node 3's data directory.
        assert a.node(3).stop() == 0 and b.node(3).stop() == 0
        shutil.rmtree(a.node(3).data_dir)
        shutil.copytree(b.node(3).data_dir, a.node(3).data_dir)
        a.node(3).start(wait=False)
        rc = a.node(3).proc.wait(timeout=60)
        assert rc != 0, "node 3 started in a cluster its data does not belong to"
        log = a.node(3).log_text()
        assert f"belongs to cluster {ids['b']}" in log and f"is a member of cluster {ids['a']}" in log, \
            a.node(3).log_tail(20)

        # A serves on without it: its other two nodes are a majority.
        leader = a.wait_for_leader(ids=[1, 2])
        topic = unique_topic("identity")
        ck = AdminClient({"bootstrap.servers": a.bootstrap(leader)})
        ck.create_topics([NewTopic(topic, num_partitions=1, replication_factor=2)])[topic].result(30)
        producer = KafkaProducer(bootstrap_servers=[a.bootstrap(1), a.bootstrap(2)], request_timeout_ms=30000)
        try:
            meta = wait_until(lambda: producer.send(topic, b"still serving").get(timeout=30), 60, "a produce to A")
        finally:
            producer.close()
        assert meta.offset == 0
