"""The API versions advertised last (issue 15 item 5) answer as a Kafka 3.9 broker does:
ListOffsets v0 (the legacy list of offsets) and v9 (-5, latest tiered), FindCoordinator v4+ and
OffsetFetch v8+ (several groups per request, KIP-699 / KIP-709), with kafka-python 3's admin
client negotiating the new versions on its own.
"""

from __future__ import annotations

import time
import uuid

from kafka import KafkaAdminClient, TopicPartition
from kafka.protocol.consumer import ListOffsetsRequest, ListOffsetsResponse, OffsetFetchRequest, OffsetFetchResponse
from kafka.protocol.metadata import FindCoordinatorRequest, FindCoordinatorResponse
from kafka.structs import OffsetAndMetadata

import kproto
from client_helpers import create_topic
from harness import wait_until
from test_api_version_matrix import roundtrip

LIST_OFFSETS = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
UNSUPPORTED_VERSION = 35


def list_offsets_v0(bootstrap: str, topic: str, partitions: list[tuple[int, int, int]]) -> dict[int, tuple]:
    """ListOffsets v0 for `(partition, timestamp, max_num_offsets)`: {partition: (error, offsets)}."""
    parts = [kproto.i32(p) + kproto.i64(ts) + kproto.i32(n) for p, ts, n in partitions]
    body = kproto.i32(-1) + kproto.array([kproto.string(topic) + kproto.array(parts)])
    _, resp = kproto.call(bootstrap, kproto.frame(LIST_OFFSETS, 0, 11, body))
    r = kproto.Reader(resp)
    [(name, answers)] = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16(), r.array(lambda r: r.i64())))))
    assert name == topic
    return {p: (err, offsets) for p, err, offsets in answers}


def test_list_offsets_v0_answers_the_legacy_offset_list(broker):
    topic = f"lo-v0-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    _, body = kproto.call(broker.bootstrap, kproto.produce_v3(1, topic, 0, kproto.record_batch([b"a", b"b", b"c"]),
                                                              acks=-1))
    assert kproto.parse_produce_v3(body)[0]["error_code"] == 0
    hour_ahead = int(time.time() * 1000) + 3_600_000

    got = list_offsets_v0(broker.bootstrap, topic, [(0, -1, 1)])
    assert got == {0: (0, [3])}, "latest, one offset: the high watermark"
    # One segment based at 0 holding records: entries are its base and the log end, newest first.
    assert list_offsets_v0(broker.bootstrap, topic, [(0, -1, 10)]) == {0: (0, [3, 0])}
    assert list_offsets_v0(broker.bootstrap, topic, [(0, -2, 10)]) == {0: (0, [0])}
    assert list_offsets_v0(broker.bootstrap, topic, [(0, hour_ahead, 10)]) == {0: (0, [3, 0])}
    assert list_offsets_v0(broker.bootstrap, topic, [(0, 0, 10)]) == {0: (0, [])}, "nothing written before 1970"
    assert list_offsets_v0(broker.bootstrap, topic, [(7, -1, 1)]) == {7: (UNKNOWN_TOPIC_OR_PARTITION, [])}

    # A truncated v0 request closes only its own connection: the next one is served.
    with kproto.connect(broker.bootstrap) as s:
        s.sendall(kproto.frame(LIST_OFFSETS, 0, 12, kproto.i32(-1) + kproto.i32(5)))
        assert s.recv(64) == b"", "a malformed v0 body closes the connection"
    assert list_offsets_v0(broker.bootstrap, topic, [(0, -1, 1)]) == {0: (0, [3])}


def test_list_offsets_latest_tiered_is_v9s_and_answers_none(broker):
    topic = f"lo-v9-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    L = ListOffsetsRequest

    def ask(version):
        part = L.ListOffsetsTopic.ListOffsetsPartition(partition_index=0, current_leader_epoch=-1, timestamp=-5)
        req = L(replica_id=-1, isolation_level=0, topics=[L.ListOffsetsTopic(name=topic, partitions=[part])])
        [t] = roundtrip(broker.bootstrap, req, ListOffsetsResponse, version, 900 + version)["topics"]
        [p] = t["partitions"]
        return p["error_code"], p["offset"], p["timestamp"], p["leader_epoch"]

    assert ask(8)[0] == UNSUPPORTED_VERSION
    # Without tiered storage Kafka answers no offset, no timestamp, no epoch, and no error.
    assert ask(9) == (0, -1, -1, -1)


def commit(a: KafkaAdminClient, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commits `offsets`, retrying while the coordinator is still loading (a fresh broker's
    offsets topic was just created)."""
    def committed():
        result = a.alter_group_offsets(group, {tp: OffsetAndMetadata(o, "m", -1) for tp, o in offsets.items()})
        failed = {tp: e for tp, e in result.items() if e is not None and getattr(e, "errno", 0) != 0}
        assert all(getattr(e, "retriable", False) for e in failed.values()), result
        return not failed
    wait_until(committed, 30, f"offsets of {group} committed")


def test_kafka_python_fetches_several_groups_offsets_in_one_request(broker):
    topic = f"of-v8-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 2)
    g1, g2, empty = (f"g{i}-{uuid.uuid4().hex[:6]}" for i in range(3))
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        versions = a._manager.broker_version_data  # noqa: SLF001 - the negotiated versions
        assert versions.api_version(FindCoordinatorRequest) == 5
        assert versions.api_version(OffsetFetchRequest) == 9
        commit(a, g1, {tp0: 5, tp1: 7})
        commit(a, g2, {tp1: 11})
        # One FindCoordinator v5 for the three keys, one OffsetFetch v8 for the three groups.
        got = a.list_group_offsets({g1: None, g2: [tp1, tp0], empty: None})
        assert {tp: m.offset for tp, m in got[g1].items()} == {tp0: 5, tp1: 7}
        assert got[g1][tp0].metadata == "m"
        assert {tp: m.offset for tp, m in got[g2].items() if m.offset >= 0} == {tp1: 11}
        assert got[g2][tp0].offset == -1, "asked for, never committed"
        assert got[empty] == {}
    finally:
        a.close()


def test_find_coordinator_and_offset_fetch_at_every_batched_version(broker):
    topic = f"of-raw-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    group = f"raw-{uuid.uuid4().hex[:6]}"
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        commit(a, group, {TopicPartition(topic, 0): 42})
    finally:
        a.close()

    for v in (4, 5):
        resp = roundtrip(broker.bootstrap, FindCoordinatorRequest(key_type=0, coordinator_keys=[group, "other"]),
                         FindCoordinatorResponse, v, 700 + v)
        rows = {c["key"]: c for c in resp["coordinators"]}
        assert set(rows) == {group, "other"}, resp
        for c in rows.values():
            assert (c["error_code"], c["node_id"], c["port"]) == (0, 1, broker.kafka_port), c
    # A transactional id's coordinator is the leader of its __transaction_state partition:
    # the only node here (the first lookup creates the topic and may have to be repeated).
    def txn_coordinator():
        resp = roundtrip(broker.bootstrap, FindCoordinatorRequest(key_type=1, coordinator_keys=["txn"]),
                         FindCoordinatorResponse, 5, 706)
        row = resp["coordinators"][0]
        return row if row["error_code"] == 0 else None
    row = wait_until(txn_coordinator, 30, "a transaction coordinator")
    assert (row["key"], row["node_id"], row["port"]) == ("txn", 1, broker.kafka_port), row

    G = OffsetFetchRequest.OffsetFetchRequestGroup
    for v in (8, 9):
        named = G.OffsetFetchRequestTopics(name=topic, partition_indexes=[0])
        groups = [G(group_id=group, member_id=None, member_epoch=-1, topics=[named]),
                  G(group_id="never-used", member_id=None, member_epoch=-1, topics=None)]
        resp = roundtrip(broker.bootstrap, OffsetFetchRequest(groups=groups, require_stable=False),
                         OffsetFetchResponse, v, 800 + v)
        by_group = {g["group_id"]: g for g in resp["groups"]}
        [t] = by_group[group]["topics"]
        [p] = t["partitions"]
        assert (by_group[group]["error_code"], p["committed_offset"], p["metadata"]) == (0, 42, "m"), resp
        assert by_group["never-used"] == {**by_group["never-used"], "error_code": 0, "topics": []}, resp
