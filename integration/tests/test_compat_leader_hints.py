"""Produce v10–11 and Fetch v13–17 (issue 15 item 5): Fetch names topics by id from v13, and a
partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH names its current leader and
that leader's address (KIP-951), so a client goes straight there. librdkafka negotiates these
versions on its own and keeps working while leadership moves under it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.consumer import FetchRequest, FetchResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse

import kproto
from client_helpers import AckedProducer
from cluster import Cluster, started
from harness import unique_topic, wait_until
from replication_helpers import admin_view
from test_api_version_matrix import ZERO_UUID, metadata_topic_id, roundtrip

NOT_LEADER_OR_FOLLOWER = 6
FENCED_LEADER_EPOCH = 74
UNKNOWN_TOPIC_ID = 100


@pytest.fixture(scope="module")
def hcluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("hints-cluster"), size=3, spare=0, name="hintnode",
                replication_factor=3, min_insync_replicas=2)
    with started(c, clean_stop=True):
        yield c


def create(cluster: Cluster, topic: str, partitions: int, rf: int) -> dict[int, dict]:
    """Creates the topic and waits until every node's metadata shows every partition led."""
    ac = AdminClient({"bootstrap.servers": cluster.bootstrap(1)})
    ac.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf)])[topic].result(30)

    def led():
        views = [admin_view(cluster, i, topic) for i in (1, 2, 3)]
        return all(len(v) == partitions and all(p.get("replica") or i + 1 not in p["replicas"]
                                                 for p in v.values()) for i, v in enumerate(views)) and views[0]
    return wait_until(led, 30, f"{topic} created and hosted everywhere")


def port_of(cluster: Cluster, node: int) -> int:
    return int(cluster.bootstrap(node).rsplit(":", 1)[1])


def produce(bootstrap: str, topic: str, version: int, partition: int = 0, value: bytes = b"hint",
            acks: int = 1) -> dict:
    P = ProduceRequest
    part = P.TopicProduceData.PartitionProduceData(index=partition, records=kproto.record_batch([value]))
    req = P(transactional_id=None, acks=acks, timeout_ms=10000,
            topic_data=[P.TopicProduceData(name=topic, partition_data=[part])])
    return roundtrip(bootstrap, req, ProduceResponse, version, 300 + version)


def fetch(bootstrap: str, topic: str, tid: uuid.UUID, version: int, epoch: int = -1, wait_ms: int = 100) -> dict:
    F = FetchRequest
    part = F.FetchTopic.FetchPartition(partition=0, current_leader_epoch=epoch, fetch_offset=0,
                                       log_start_offset=-1, partition_max_bytes=1 << 20)
    topic_row = F.FetchTopic(topic=topic, topic_id=tid if version >= 13 else ZERO_UUID, partitions=[part])
    req = F(replica_id=-1, max_wait_ms=wait_ms, min_bytes=1, max_bytes=1 << 20, isolation_level=0, session_id=0,
            session_epoch=-1, topics=[topic_row], forgotten_topics_data=[], rack_id="")
    return roundtrip(bootstrap, req, FetchResponse, version, 400 + version)


def leader_hint(partition: dict) -> tuple[int, int] | None:
    cl = partition.get("current_leader")
    return None if cl is None or cl["leader_id"] == -1 else (cl["leader_id"], cl["leader_epoch"])


def endpoints(resp: dict) -> list[tuple[int, int]]:
    return [(e["node_id"], e["port"]) for e in resp.get("node_endpoints") or []]


def test_a_non_leader_names_the_leader_and_its_address(hcluster):
    topic = unique_topic("hint")
    view = create(hcluster, topic, 1, 1)[0]
    leader, epoch = view["leader"], view["leader_epoch"]
    other = next(i for i in (1, 2, 3) if i != leader)
    tid = metadata_topic_id(hcluster.bootstrap(1), topic)
    want_hint, want_endpoints = (leader, epoch), [(leader, port_of(hcluster, leader))]

    for v in (10, 11):
        resp = produce(hcluster.bootstrap(other), topic, v)
        [p] = resp["responses"][0]["partition_responses"]
        assert (p["error_code"], leader_hint(p), endpoints(resp)) == (NOT_LEADER_OR_FOLLOWER, want_hint,
                                                                     want_endpoints), (v, resp)
    for v in (16, 17):
        resp = fetch(hcluster.bootstrap(other), topic, tid, v)
        [t] = resp["responses"]
        [p] = t["partitions"]
        assert t["topic_id"] == tid
        assert (p["error_code"], leader_hint(p), endpoints(resp)) == (NOT_LEADER_OR_FOLLOWER, want_hint,
                                                                     want_endpoints), (v, resp)
    # Before KIP-951 the answer is the bare error.
    [p] = produce(hcluster.bootstrap(other), topic, 9)["responses"][0]["partition_responses"]
    assert (p["error_code"], leader_hint(p)) == (NOT_LEADER_OR_FOLLOWER, None)
    [p] = fetch(hcluster.bootstrap(other), topic, tid, 15)["responses"][0]["partitions"]
    assert (p["error_code"], leader_hint(p)) == (NOT_LEADER_OR_FOLLOWER, None)

    # The leader itself answers: records for a good fetch, a hint to itself for a stale epoch.
    [p] = produce(hcluster.bootstrap(leader), topic, 11)["responses"][0]["partition_responses"]
    assert (p["error_code"], p["base_offset"], leader_hint(p)) == (0, 0, None), p
    resp = fetch(hcluster.bootstrap(leader), topic, tid, 17, epoch=epoch)
    [p] = resp["responses"][0]["partitions"]
    assert (p["error_code"], p["high_watermark"], endpoints(resp)) == (0, 1, []), resp
    if epoch > 0:
        resp = fetch(hcluster.bootstrap(leader), topic, tid, 16, epoch=epoch - 1)
        [p] = resp["responses"][0]["partitions"]
        assert (p["error_code"], leader_hint(p), endpoints(resp)) == (FENCED_LEADER_EPOCH, want_hint,
                                                                     want_endpoints), resp


def test_an_unknown_topic_id_is_answered_at_once(hcluster):
    topic = unique_topic("noid")
    create(hcluster, topic, 1, 1)
    stranger = uuid.uuid4()
    started_at = time.monotonic()
    resp = fetch(hcluster.bootstrap(1), topic, stranger, 13, wait_ms=10_000)
    took = time.monotonic() - started_at
    [t] = resp["responses"]
    [p] = t["partitions"]
    assert (t["topic_id"], p["error_code"]) == (stranger, UNKNOWN_TOPIC_ID), resp
    assert took < 5, f"an unknown topic id waited {took:.1f} s of the fetch's 10 s"


class Sent(logging.Handler):
    """Collects the request versions librdkafka logs as `Sent XRequest (vN, ...`."""

    def __init__(self):
        super().__init__()
        self.versions: dict[str, set[int]] = {}
        self.guard = threading.Lock()  # not `lock`: logging.Handler holds that one around emit

    def emit(self, record):
        msg = record.getMessage()
        i = msg.find("Sent ")
        if i < 0 or " (v" not in msg[i:]:
            return
        name, rest = msg[i + 5:].split(" (v", 1)
        with self.guard:
            self.versions.setdefault(name, set()).add(int(rest.split(",", 1)[0]))


def logger(handler: Sent) -> logging.Logger:
    log = logging.getLogger(f"rdkafka-{uuid.uuid4().hex[:6]}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    return log


def test_librdkafka_produces_and_fetches_by_topic_id_while_leadership_moves(hcluster):
    """librdkafka sends Produce v10, Fetch v16 (topic ids) and OffsetCommit v9 and keeps every
    acknowledged record while the leader of one partition is stopped and started again."""
    topic = unique_topic("hint-rdk")
    views = create(hcluster, topic, 3, 3)
    sent = Sent()
    everyone = ",".join(hcluster.bootstrap(i) for i in (1, 2, 3))
    p = AckedProducer(everyone, topic, 3, b"r", debug="protocol", logger=logger(sent))
    p.send(300, 0)
    moved = views[0]["leader"]
    hcluster.stop(moved)
    p.send(300, 300)
    hcluster.restart(moved)
    p.send(300, 600)
    assert p.flush(60) == 0
    assert not p.failed, p.failed[:5]
    acked = p.acked

    c = Consumer({"bootstrap.servers": everyone, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "debug": "protocol", "logger": logger(sent)})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < len(acked) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.commit(asynchronous=False)
    c.close()
    assert sorted(got) == sorted(acked) and len(set(got)) == len(got) == 900, (len(got), len(acked))
    with sent.guard:
        assert max(sent.versions["ProduceRequest"]) >= 10, sent.versions
        assert max(sent.versions["FetchRequest"]) >= 13, sent.versions
        assert max(sent.versions["OffsetCommitRequest"]) == 9, sent.versions
