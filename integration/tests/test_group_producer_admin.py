"""OffsetDelete and DescribeProducers (issue 15) through real clients: kafka-python's
`KafkaAdminClient.delete_group_offsets` and `describe_producers`, with offsets committed by
kafka-python consumers and records written by idempotent kafka-python and confluent-kafka
producers. Deleted offsets must stay deleted after a restart (tombstones in
`__consumer_offsets`), and the producer state must read the same after one (rebuilt from the
log)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from kafka import KafkaConsumer, KafkaProducer
from kafka import errors as kerrors
from kafka.structs import OffsetAndMetadata, TopicPartition

from client_helpers import admin, create_topic
from cluster import Cluster, started
from group_helpers import GROUP_ENV, PARTS, KpMember, produce_numbered
from harness import unique_topic, wait_until


def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets, once its coordinator answers (it may still be loading
    right after a restart)."""
    def fetch():
        a = admin(bootstrap)
        try:
            return {tp: om.offset for tp, om in a.list_group_offsets({group: None})[group].items()}
        except (kerrors.CoordinatorLoadInProgressError, kerrors.CoordinatorNotAvailableError,
                kerrors.NotCoordinatorError):
            return None
        finally:
            a.close()
    return wait_until(lambda: fetch(), 30, f"committed offsets of {group}")


def simple_commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commits `offsets` for `group` without joining it (kafka-python: assign + commit)."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        c.assign(list(offsets))
        c.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    finally:
        c.close(autocommit=False)


def delete_offsets(bootstrap: str, group: str, partitions: list[TopicPartition]) -> dict:
    a = admin(bootstrap)
    try:
        return a.delete_group_offsets(group, partitions)
    finally:
        a.close()


def test_delete_group_offsets_of_an_empty_group_survives_a_restart(make_broker):
    b = make_broker("offdel", auto_create_topics=False, extra_env=GROUP_ENV)
    topic, group = unique_topic("offdel"), unique_topic("offdel-g")
    create_topic(b.bootstrap, topic, 2)
    keep, drop = TopicPartition(topic, 0), TopicPartition(topic, 1)
    simple_commit(b.bootstrap, group, {keep: 5, drop: 7})
    assert committed(b.bootstrap, group) == {keep: 5, drop: 7}

    ghost = TopicPartition(topic, 9)
    result = delete_offsets(b.bootstrap, group, [drop, ghost])
    assert result == {drop: kerrors.NoError, ghost: kerrors.UnknownTopicOrPartitionError}, result
    assert committed(b.bootstrap, group) == {keep: 5}

    b.restart()
    assert committed(b.bootstrap, group) == {keep: 5}, "the deleted offset came back after a restart"

    # Deleting an offset that is not there is no error (Kafka's answer too).
    assert delete_offsets(b.bootstrap, group, [drop]) == {drop: kerrors.NoError}
    with pytest.raises(kerrors.GroupIdNotFoundError):
        delete_offsets(b.bootstrap, unique_topic("no-such-group"), [keep])


def test_delete_group_offsets_refuses_topics_an_active_member_subscribes_to(gbroker):
    topic, other, group = unique_topic("offdel-sub"), unique_topic("offdel-other"), unique_topic("offdel-sg")
    create_topic(gbroker.bootstrap, topic, PARTS)
    create_topic(gbroker.bootstrap, other, 1)
    produce_numbered(gbroker.bootstrap, topic, 0, 40)
    member = KpMember(gbroker.bootstrap, group, topic, "offdel-m0")
    member.start()
    try:
        wait_until(lambda: member.error is None and len(member.numbers()) >= 40
                   and len(committed(gbroker.bootstrap, group)) == PARTS, 30,
                   f"the member read and committed all 40 messages (error: {member.error!r})")
        before = committed(gbroker.bootstrap, group)
        subscribed, unsubscribed = TopicPartition(topic, 0), TopicPartition(other, 0)
        result = delete_offsets(gbroker.bootstrap, group, [subscribed, unsubscribed])
        assert result == {subscribed: kerrors.GroupSubscribedToTopicError, unsubscribed: kerrors.NoError}, result
        assert committed(gbroker.bootstrap, group) == before, "an offset of a subscribed topic was deleted"
    finally:
        member.stop()
    assert member.error is None, repr(member.error)


def producers(bootstrap: str, tp: TopicPartition, broker_id=None) -> dict[int, tuple]:
    """DescribeProducers through kafka-python: producer id -> the rest of its row."""
    a = admin(bootstrap)
    try:
        state = a.describe_producers([tp], broker_id=broker_id)[tp]
    finally:
        a.close()
    return {p.producer_id: (p.producer_epoch, p.last_sequence, p.last_timestamp, p.coordinator_epoch,
                            p.current_transaction_start_offset) for p in state.active_producers}


def test_describe_producers_shows_idempotent_producers_and_survives_a_restart(make_broker):
    b = make_broker("producers", auto_create_topics=False)
    topic = unique_topic("producers")
    create_topic(b.bootstrap, topic, 2)
    tp = TopicPartition(topic, 0)
    assert producers(b.bootstrap, tp) == {}

    started_ms = int(time.time() * 1000)
    kp = KafkaProducer(bootstrap_servers=b.bootstrap, enable_idempotence=True, acks="all")
    try:
        for i in range(7):
            kp.send(topic, value=b"kp-%d" % i, partition=0).get(timeout=30)
        kp_id = kp._transaction_manager.producer_id_and_epoch.producer_id
        kp_epoch = kp._transaction_manager.producer_id_and_epoch.epoch
    finally:
        kp.close()
    ck = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(12):
        ck.produce(topic, value=b"ck-%d" % i, partition=0)
    assert ck.flush(30) == 0
    done_ms = int(time.time() * 1000)

    seen = producers(b.bootstrap, tp)
    assert kp_id in seen and len(seen) == 2, f"kafka-python's producer {kp_id} and one more expected: {seen}"
    (ck_id,) = set(seen) - {kp_id}
    assert seen[kp_id][:2] == (kp_epoch, 6), seen
    assert seen[ck_id][:2] == (0, 11), seen
    for pid, (_, _, ts, coordinator_epoch, txn_start) in seen.items():
        assert started_ms - 1000 <= ts <= done_ms + 1000, f"producer {pid}: last timestamp {ts}"
        assert (coordinator_epoch, txn_start) == (-1, -1), seen
    assert producers(b.bootstrap, TopicPartition(topic, 1)) == {}, "partition 1 got no records"

    b.restart()
    assert producers(b.bootstrap, tp) == seen, "producer state differs once rebuilt from the log"

    with pytest.raises(kerrors.UnknownTopicOrPartitionError):
        producers(b.bootstrap, TopicPartition(topic, 5), broker_id=b.node_id)


def test_describe_producers_on_a_replica_that_does_not_lead(tmp_path):
    with started(Cluster(tmp_path / "c", size=2, spare=0, replication_factor=1)) as c:
        topic = unique_topic("producers-nl")
        create_topic(c.bootstrap(), topic, 2)
        a = admin(c.bootstrap())
        try:
            (described,) = [t for t in a.describe_topics([topic]) if t["name"] == topic]
        finally:
            a.close()
        leaders = {p["partition_index"]: p["leader_id"] for p in described["partitions"]}
        tp = TopicPartition(topic, 0)
        leader = leaders[0]
        follower = next(i for i in c.members if i != leader)
        p = KafkaProducer(bootstrap_servers=c.bootstrap(leader), enable_idempotence=True)
        try:
            p.send(topic, value=b"x", partition=0).get(timeout=30)
        finally:
            p.close()
        assert [row[1] for row in producers(c.bootstrap(), tp).values()] == [0], "routed to the leader"
        with pytest.raises(kerrors.NotLeaderForPartitionError):
            producers(c.bootstrap(), tp, broker_id=follower)
