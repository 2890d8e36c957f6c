"""Group and offset behaviours real clients trip on (issue 15): commits applied in the order a
connection sent them, JoinGroup without a rebalance timeout, a 5-member kafka-python group
settling in one generation, and ListOffsets answering bad arguments at once."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as CkTopicPartition
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

import kproto
from client_helpers import create_topic
from group_helpers import (KpMember, find_coordinator, offset_commit_v2, offset_fetch_v1, parse_offset_commit_v2,
                           parse_offset_fetch_v1)
from harness import unique_topic, wait_until

UNKNOWN_TOPIC_OR_PARTITION = 3
UNSUPPORTED_VERSION = 35
ROUNDS = 5
BURST = 50


def group_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# ---- 1. commits apply in the order sent ------------------------------------------------------


@pytest.mark.parametrize("fetch", ["after the answers", "pipelined"])
def test_pipelined_raw_commits_end_at_the_last(gbroker, fetch):
    """Fifty OffsetCommits pipelined on one connection, then an OffsetFetch: sent once the
    commits are answered, or written together with them (no answer awaited in between, which a
    Kafka broker, serving a connection one request at a time, also answers with the last). The
    fetch sees the last commit, every round."""
    topic = unique_topic("rawcommits")
    create_topic(gbroker.bootstrap, topic, 1)
    group = group_id("raw")
    find_coordinator(gbroker.bootstrap, group)
    pipelined = fetch == "pipelined"
    with kproto.connect(gbroker.bootstrap) as s:
        for r in range(ROUNDS):
            base = r * 1000
            frames = b"".join(offset_commit_v2(i, group, [(topic, 0, base + i)]) for i in range(1, BURST + 1))
            fetch_frame = offset_fetch_v1(BURST + 1, group, [(topic, 0)])
            s.sendall(frames + fetch_frame if pipelined else frames)
            for i in range(1, BURST + 1):
                cid, body = kproto.read_response(s)
                assert (cid, parse_offset_commit_v2(body)) == (i, {(topic, 0): 0})
            if not pipelined:
                s.sendall(fetch_frame)
            cid, body = kproto.read_response(s)
            assert cid == BURST + 1
            assert parse_offset_fetch_v1(body)[(topic, 0)][0] == base + BURST, f"round {r}"


def test_kafka_python_async_burst_then_sync_commit_reads_back_the_last(gbroker):
    topic = unique_topic("kpcommits")
    create_topic(gbroker.bootstrap, topic, 1)
    tp = TopicPartition(topic, 0)
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group_id("kp"), enable_auto_commit=False,
                      max_in_flight_requests_per_connection=BURST + 1)
    try:
        c.assign([tp])
        # Learn the coordinator first. kafka-python 3 chains async commits made before it knows
        # the coordinator to the lookup, and its IO thread sends them when the lookup answers,
        # which may be after later commits the caller thread already sent: its own race, not
        # an order the broker could keep.
        assert c.committed(tp) is None
        for r in range(ROUNDS):
            base = r * 1000
            for i in range(1, BURST + 1):
                c.commit_async({tp: OffsetAndMetadata(base + i, "", -1)})
            c.commit({tp: OffsetAndMetadata(base + BURST, "", -1)})
            assert c.committed(tp) == base + BURST, f"round {r}"
    finally:
        c.close(autocommit=False)


def test_confluent_async_burst_then_sync_commit_reads_back_the_last(gbroker):
    topic = unique_topic("ckcommits")
    create_topic(gbroker.bootstrap, topic, 1)
    c = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": group_id("ck"),
                  "enable.auto.commit": False})
    try:
        c.assign([CkTopicPartition(topic, 0)])
        for r in range(ROUNDS):
            base = r * 1000
            for i in range(1, BURST + 1):
                c.commit(offsets=[CkTopicPartition(topic, 0, base + i)], asynchronous=True)
            c.commit(offsets=[CkTopicPartition(topic, 0, base + BURST)], asynchronous=False)
            got = c.committed([CkTopicPartition(topic, 0)], timeout=10)[0]
            assert (got.error, got.offset) == (None, base + BURST), f"round {r}"
    finally:
        c.close()


# ---- 2. JoinGroup without a rebalance timeout -------------------------------------------------


def join_group_v1(cid: int, group: str, topic: str, rebalance_timeout_ms: int) -> bytes:
    """kafkajs' `joinGroup` when `rebalanceTimeout` is left out: it goes on the wire as 0."""
    subscription = kproto.i16(0) + kproto.array([kproto.string(topic)]) + kproto.i32(-1)
    protocols = kproto.array([kproto.string("range") + kproto.i32(len(subscription)) + subscription])
    body = (kproto.string(group) + kproto.i32(30000) + kproto.i32(rebalance_timeout_ms) + kproto.string("")
            + kproto.string("consumer") + protocols)
    return kproto.frame(kproto.API_JOIN_GROUP, 1, cid, body)


def sync_group_v1(cid: int, group: str, generation: int, member: str, assignment: bytes) -> bytes:
    assignments = kproto.array([kproto.string(member) + kproto.i32(len(assignment)) + assignment])
    body = kproto.string(group) + kproto.i32(generation) + kproto.string(member) + assignments
    return kproto.frame(kproto.API_SYNC_GROUP, 1, cid, body)


def test_join_with_zero_rebalance_timeout_then_sync_succeeds(gbroker):
    topic = unique_topic("zerorebalance")
    create_topic(gbroker.bootstrap, topic, 1)
    group = group_id("zero")
    find_coordinator(gbroker.bootstrap, group)
    with kproto.connect(gbroker.bootstrap, timeout=30) as s:
        s.sendall(join_group_v1(1, group, topic, 0))
        _, body = kproto.read_response(s)
        r = kproto.Reader(body)
        error, generation, _protocol, leader, member = r.i16(), r.i32(), r.string(), r.string(), r.string()
        assert (error, leader) == (0, member)
        assignment = b"assignment-bytes"
        s.sendall(sync_group_v1(2, group, generation, member, assignment))
        _, body = kproto.read_response(s)
        r = kproto.Reader(body)
        r.i32()  # throttle_time_ms
        assert (r.i16(), r.bytes_()) == (0, assignment)


# ---- 3. a 5-member kafka-python group --------------------------------------------------------


def test_five_kafka_python_consumers_settle_in_one_generation(gbroker):
    partitions = 10
    topic = unique_topic("five")
    create_topic(gbroker.bootstrap, topic, partitions)
    group = group_id("five")
    members = [KpMember(gbroker.bootstrap, group, topic, f"five-{i}") for i in range(5)]
    started = time.monotonic()
    for m in members:
        m.start()
    try:
        def settled():
            for m in members:
                assert m.error is None, f"{m.name} failed: {m.error!r}"
            snaps = [m.snapshot() for m in members]
            if any(not a for a in snaps):
                return False
            union = set().union(*snaps)
            return sum(len(a) for a in snaps) == len(union) == partitions
        wait_until(settled, 30, "5 non-empty disjoint assignments covering every partition", interval=0.1)
        took = time.monotonic() - started
        finals = {m.name: m.generations[-1][0] for m in members}
        assert len(set(finals.values())) == 1, f"members in different generations: {finals}"
        # All five start together: one generation (the first) takes them all.
        assert set(finals.values()) == {1}, f"more than one rebalance: {[m.generations for m in members]}"
        assert took < 15, f"took {took:.1f}s to settle"
    finally:
        for m in members:
            m.stop()


# ---- 4. ListOffsets --------------------------------------------------------------------------


def test_list_offsets_bad_arguments_answer_at_once(gbroker):
    topic = unique_topic("lobad")
    create_topic(gbroker.bootstrap, topic, 1)
    started = time.monotonic()
    _, body = kproto.call(gbroker.bootstrap, kproto.list_offsets_v1(1, topic, 5, 0))
    assert [p["error_code"] for p in kproto.parse_list_offsets_v1(body)] == [UNKNOWN_TOPIC_OR_PARTITION]
    _, body = kproto.call(gbroker.bootstrap, kproto.list_offsets_v1(2, topic, 0, -7))
    assert [p["error_code"] for p in kproto.parse_list_offsets_v1(body)] == [UNSUPPORTED_VERSION]
    # -3 (max timestamp) exists from v7 on; v1 refuses it as Kafka does.
    _, body = kproto.call(gbroker.bootstrap, kproto.list_offsets_v1(3, topic, 0, -3))
    assert [p["error_code"] for p in kproto.parse_list_offsets_v1(body)] == [UNSUPPORTED_VERSION]
    assert time.monotonic() - started < 5


def test_confluent_offsets_for_times_bad_arguments_fail_fast(gbroker):
    topic = unique_topic("oftbad")
    create_topic(gbroker.bootstrap, topic, 1)
    c = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": group_id("oft")})
    try:
        started = time.monotonic()
        # librdkafka refuses a partition its metadata lacks before asking (raises), or the
        # broker's UNKNOWN_TOPIC_OR_PARTITION comes back on the partition: either way at once.
        try:
            got = c.offsets_for_times([CkTopicPartition(topic, 5, 0)], timeout=20)
            assert got[0].error is not None, got
        except KafkaException as e:
            assert e.args[0].code() == KafkaError._UNKNOWN_PARTITION, e
        # A negative timestamp that is no sentinel: the broker's UNSUPPORTED_VERSION, as Kafka's.
        with pytest.raises(KafkaException) as refused:
            c.offsets_for_times([CkTopicPartition(topic, 0, -7)], timeout=20)
        assert refused.value.args[0].code() == KafkaError.UNSUPPORTED_VERSION
        assert time.monotonic() - started < 10, "bad arguments were not answered at once"
    finally:
        c.close()
