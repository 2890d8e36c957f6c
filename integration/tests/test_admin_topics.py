"""Topic administration through the real clients: CreateTopics, DeleteTopics,
CreatePartitions, Metadata (auto-creation, invalid names), DescribeConfigs."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource as CkConfigResource, NewTopic, ResourceType
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError
from kafka.structs import TopicPartition

import kproto
from client_helpers import admin, create_topic, kp_consumer
from harness import find_actor, wait_until

ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_INVALID_TOPIC = 17


def describe_partitions(a, topic: str) -> list[int]:
    for t in a.describe_topics([topic]):
        if t["name"] == topic and t.get("error_code", 0) == 0:
            return sorted(p["partition_index"] for p in t["partitions"])
    return []


def admin_partitions(broker, topic: str) -> list[int]:
    return sorted(p["partition"] for p in broker.partitions() if p["topic"] == topic)


def test_kafka_python_create_describe_delete(broker, topic):
    a = admin(broker.bootstrap)
    try:
        a.create_topics({topic: {"num_partitions": 6, "replication_factor": 1}})
        wait_until(lambda: describe_partitions(a, topic) == list(range(6)), 15, "6 partitions in describe_topics")
        assert topic in a.list_topics()
        for t in a.describe_topics([topic]):
            for p in t["partitions"]:
                assert p["leader_id"] == 1 and p["error_code"] == 0, p
        assert admin_partitions(broker, topic) == list(range(6)), "/admin/partitions"

        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics({topic: {"num_partitions": 6, "replication_factor": 1}})

        # Some data, then delete: the topic, its replicas and its data are gone.
        p = KafkaProducer(bootstrap_servers=broker.bootstrap)
        for i in range(10):
            p.send(topic, b"before-delete-%d" % i, partition=i % 6)
        p.flush(30)
        p.close()
        a.delete_topics([topic])
        wait_until(lambda: topic not in a.list_topics(), 15, "deleted topic gone from list_topics")
        wait_until(lambda: admin_partitions(broker, topic) == [], 15, "deleted topic gone from /admin/partitions")
        wait_until(lambda: find_actor(broker.actors(), f"replica:{topic}-0") is None, 15,
                   f"replica:{topic}-0 actor stopped after delete")

        with pytest.raises(UnknownTopicOrPartitionError):
            a.delete_topics([topic])

        # Same name again: a new, empty topic.
        a.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
        wait_until(lambda: describe_partitions(a, topic) == [0, 1], 15, "re-created topic with 2 partitions")
        c = kp_consumer(broker.bootstrap)
        try:
            tps = [TopicPartition(topic, i) for i in range(2)]
            assert set(c.end_offsets(tps).values()) == {0}, "re-created topic still has the old data"
        finally:
            c.close()
    finally:
        a.close()


def test_kafka_python_create_partitions(broker, topic):
    create_topic(broker.bootstrap, topic, 2)
    a = admin(broker.bootstrap)
    try:
        a.create_partitions({topic: 4})
        wait_until(lambda: describe_partitions(a, topic) == [0, 1, 2, 3], 15, "4 partitions after CreatePartitions")
    finally:
        a.close()
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        meta = p.send(topic, b"to-new-partition", partition=3).get(timeout=30)
        assert (meta.partition, meta.offset) == (3, 0)
    finally:
        p.close()


def test_confluent_create_describe_delete(broker, topic):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)], operation_timeout=10)
    assert futures[topic].result(timeout=30) is None  # the future resolves (librdkafka admin)
    wait_until(lambda: topic in a.list_topics(timeout=5).topics
               and sorted(a.list_topics(timeout=5).topics[topic].partitions) == [0, 1, 2],
               15, "3 partitions in confluent list_topics")

    dup = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    with pytest.raises(Exception) as exc:
        dup[topic].result(timeout=30)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    futures = a.delete_topics([topic], operation_timeout=10)
    assert futures[topic].result(timeout=30) is None
    wait_until(lambda: topic not in a.list_topics(timeout=5).topics, 15, "deleted topic gone (confluent)")


def test_auto_create_on_produce_uses_default_partition_count(broker, topic):
    # The shared broker runs with [kafka] num_partitions = 2.
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        meta = p.send(topic, b"hello").get(timeout=30)
        assert meta.offset == 0
    finally:
        p.close()
    a = admin(broker.bootstrap)
    try:
        assert describe_partitions(a, topic) == [0, 1]
    finally:
        a.close()
    assert admin_partitions(broker, topic) == [0, 1]
    for part in broker.partitions():
        if part["topic"] == topic:
            assert part["leader"] == 1 and part["isr"] == [1] and part["replicas"] == [1], part


def test_metadata_without_auto_create_does_not_create(broker, topic):
    _, body = kproto.call(broker.bootstrap, kproto.metadata_v4(7, [topic], allow_auto_create=False))
    md = kproto.parse_metadata_v4(body)
    assert [(t["name"], t["error_code"]) for t in md["topics"]] == [(topic, ERR_UNKNOWN_TOPIC_OR_PARTITION)]
    assert admin_partitions(broker, topic) == []


def test_auto_create_disabled(make_broker, topic):
    b = make_broker("no-autocreate", auto_create_topics=False)
    _, body = kproto.call(b.bootstrap, kproto.metadata_v4(1, [topic], allow_auto_create=True))
    md = kproto.parse_metadata_v4(body)
    assert [(t["name"], t["error_code"]) for t in md["topics"]] == [(topic, ERR_UNKNOWN_TOPIC_OR_PARTITION)]
    _, body = kproto.call(b.bootstrap, kproto.produce_v3(2, topic, 0, kproto.record_batch([b"x"]), acks=1))
    [res] = kproto.parse_produce_v3(body)
    assert res["error_code"] == ERR_UNKNOWN_TOPIC_OR_PARTITION, res
    # Only the internal offsets topic exists: nothing was auto-created.
    assert [p for p in b.partitions() if p["topic"] != "__consumer_offsets"] == []


@pytest.mark.parametrize("name", ["bad topic!", "a" * 250, "..", "tab\tname"])
def test_invalid_topic_name_raw(broker, name):
    _, body = kproto.call(broker.bootstrap, kproto.metadata_v4(1, [name], allow_auto_create=True))
    md = kproto.parse_metadata_v4(body)
    assert [(t["name"], t["error_code"]) for t in md["topics"]] == [(name, ERR_INVALID_TOPIC)]
    _, body = kproto.call(broker.bootstrap, kproto.produce_v3(2, name, 0, kproto.record_batch([b"x"]), acks=1))
    [res] = kproto.parse_produce_v3(body)
    assert res["error_code"] == ERR_INVALID_TOPIC, res
    assert all(p["topic"] != name for p in broker.partitions())


def test_invalid_topic_name_confluent(broker):
    name = "bad topic!"
    # confluent-kafka: the delivery report carries the broker's INVALID_TOPIC_EXCEPTION.
    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 15000})
    p.produce(name, b"x", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION, f"{errors[0]} (code {errors[0].code()})"

    # (kafka-python rejects such names itself, before asking the broker.)
    a = admin(broker.bootstrap)
    try:
        assert name not in a.list_topics()
    finally:
        a.close()


TOPIC_KEYS = {"retention.ms", "retention.bytes", "cleanup.policy"}


def test_describe_configs_kafka_python(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    a = admin(broker.bootstrap)
    try:
        res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
        cfg = res["topic"][topic]
        assert TOPIC_KEYS <= set(cfg), f"missing {TOPIC_KEYS - set(cfg)} in {sorted(cfg)}"
        assert cfg["cleanup.policy"]["value"] == "delete"
        int(cfg["retention.ms"]["value"])
        int(cfg["retention.bytes"]["value"])

        res = a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
        bcfg = res["broker"]["1"]
        assert "advertised.listeners" in bcfg, sorted(bcfg)
        assert f"127.0.0.1:{broker.kafka_port}" in bcfg["advertised.listeners"]["value"]

        # Only the keys asked for.
        res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, ["retention.ms"])],
                                 config_filter="all")
        assert set(res["topic"][topic]) == {"retention.ms"}
    finally:
        a.close()


def test_describe_configs_confluent(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = CkConfigResource(ResourceType.TOPIC, topic)
    cfg = a.describe_configs([res])[res].result(timeout=30)
    assert TOPIC_KEYS <= set(cfg), f"missing {TOPIC_KEYS - set(cfg)} in {sorted(cfg)}"
    assert cfg["cleanup.policy"].value == "delete"

    bres = CkConfigResource(ResourceType.BROKER, "1")
    bcfg = a.describe_configs([bres])[bres].result(timeout=30)
    assert f"127.0.0.1:{broker.kafka_port}" in bcfg["advertised.listeners"].value


def test_describe_configs_unknown_topic(broker, topic):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = CkConfigResource(ResourceType.TOPIC, topic)
    with pytest.raises(Exception) as exc:
        a.describe_configs([res])[res].result(timeout=30)
    assert exc.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, exc.value
