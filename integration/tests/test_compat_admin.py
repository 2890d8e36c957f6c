"""Admin APIs behaving as a Kafka broker's do, for what real admin clients read and send
(issue 15's smaller Metadata/config differences), with kafka-python and confluent-kafka:

- success answers carry a null error message, not "" (CreateTopics, DescribeConfigs, AlterConfigs);
- DescribeConfigs lists every Kafka topic config (compression.type among them), the source of
  each value (DEFAULT_CONFIG for a default), and synonyms when asked;
- Kafka's standard topic configs (message.timestamp.*, message.format.version, ...) are accepted
  with Kafka's validation, at creation and by (Incremental)AlterConfigs;
- IncrementalAlterConfigs APPEND/SUBTRACT on a list config (cleanup.policy);
- CreateTopics with a manual replica assignment;
- a broker with node id 0.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from kafka.admin import ConfigResource as KpConfigResource, ConfigResourceType, NewTopic as KpNewTopic

from client_helpers import admin, kp_consume_all
from harness import Broker, unique_topic, wait_until

TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5


@pytest.fixture(scope="module")
def cbroker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("compat-admin"), name="compat-admin", fsync="interval")
    b.start()
    yield b
    assert b.stop() == 0


def ck(b: Broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": b.bootstrap})


def ck_describe(b: Broker, rtype: str, name: str) -> dict:
    """librdkafka always asks for synonyms (include_synonyms)."""
    res = ConfigResource(rtype, name)
    ac = ck(b)  # must outlive its futures
    return ac.describe_configs([res])[res].result(15)


def ck_incremental(b: Broker, topic: str, *entries: ConfigEntry) -> None:
    ac = ck(b)
    for f in ac.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=list(entries))]).values():
        f.result(15)


def ck_create(b: Broker, *topics: NewTopic) -> dict:
    """topic -> None when created, else the KafkaError."""
    ac = ck(b)
    out = {}
    for name, f in ac.create_topics(list(topics), operation_timeout=15).items():
        try:
            f.result(15)
            out[name] = None
        except KafkaException as e:
            out[name] = e.args[0]
    return out


def test_create_topics_success_carries_a_null_error_message(cbroker):
    """kafka-python hands back the CreateTopics answer as it came: Kafka sends null where there
    is no error. (DescribeConfigs' null is checked with kafkajs, which shows it.)"""
    topic = unique_topic("nullmsg")
    a = admin(cbroker.bootstrap)
    try:
        created = a.create_topics([KpNewTopic(topic, 1, 1)])
        [t] = created["topics"]
        # v7 also describes the topic (partitions, configs, id): test_compat_topic_versions.py.
        assert (t["name"], t["error_code"], t["error_message"]) == (topic, 0, None), created
    finally:
        a.close()


def test_describe_configs_lists_kafka_topic_configs_with_sources(cbroker):
    topic = unique_topic("describe")
    assert ck_create(cbroker, NewTopic(topic, 1, 1, config={"retention.ms": "3600000"})) == {topic: None}
    cfg = ck_describe(cbroker, "topic", topic)
    for key in ("compression.type", "message.timestamp.type", "max.message.bytes", "unclean.leader.election.enable"):
        assert key in cfg, f"{key} missing from {sorted(cfg)}"
    assert (cfg["compression.type"].value, int(cfg["compression.type"].source)) == ("producer", DEFAULT_CONFIG)
    assert (cfg["message.timestamp.type"].value, int(cfg["message.timestamp.type"].source)) == ("CreateTime", DEFAULT_CONFIG)
    retention = cfg["retention.ms"]
    assert (retention.value, int(retention.source)) == ("3600000", TOPIC_CONFIG)
    assert [(s.name, s.value, int(s.source)) for s in retention.synonyms.values()] == [
        ("retention.ms", "3600000", TOPIC_CONFIG), ("log.retention.ms", "604800000", DEFAULT_CONFIG)]

    # The broker's own defaults are DEFAULT_CONFIG, with themselves as synonym.
    bcfg = ck_describe(cbroker, "broker", "1")
    assert int(bcfg["log.retention.ms"].source) == DEFAULT_CONFIG
    assert [(s.name, int(s.source)) for s in bcfg["log.retention.ms"].synonyms.values()] == [
        ("log.retention.ms", DEFAULT_CONFIG)]
    assert (bcfg["compression.type"].value, int(bcfg["compression.type"].source)) == ("producer", DEFAULT_CONFIG)


def test_kafka_timestamp_and_format_configs_are_accepted_and_validated(cbroker):
    topic = unique_topic("ts")
    # Creation with message.timestamp.difference.max.ms (failed before: "unknown topic config").
    assert ck_create(cbroker, NewTopic(topic, 1, 1, config={"message.timestamp.difference.max.ms": "3600000"})) == {
        topic: None}
    ck_incremental(cbroker, topic,
                   ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET),
                   ConfigEntry("message.timestamp.before.max.ms", "60000", incremental_operation=AlterConfigOpType.SET),
                   ConfigEntry("message.timestamp.after.max.ms", "1000", incremental_operation=AlterConfigOpType.SET),
                   ConfigEntry("message.format.version", "2.8", incremental_operation=AlterConfigOpType.SET))
    cfg = ck_describe(cbroker, "topic", topic)
    got = {k: (cfg[k].value, int(cfg[k].source)) for k in (
        "message.timestamp.difference.max.ms", "message.timestamp.type", "message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms", "message.format.version")}
    assert got == {
        "message.timestamp.difference.max.ms": ("3600000", TOPIC_CONFIG),
        "message.timestamp.type": ("LogAppendTime", TOPIC_CONFIG),
        "message.timestamp.before.max.ms": ("60000", TOPIC_CONFIG),
        "message.timestamp.after.max.ms": ("1000", TOPIC_CONFIG),
        "message.format.version": ("2.8", TOPIC_CONFIG),
    }
    # kafka-python's plain AlterConfigs too.
    a = admin(cbroker.bootstrap)
    try:
        a.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, topic, configs={"message.timestamp.type": "CreateTime"})])
    finally:
        a.close()
    assert ck_describe(cbroker, "topic", topic)["message.timestamp.type"].value == "CreateTime"

    # Kafka's validation: type, range, allowed values.
    for key, bad in [("message.timestamp.type", "WallClock"), ("message.timestamp.difference.max.ms", "-5"),
                     ("message.timestamp.after.max.ms", "soon"), ("message.format.version", "9.9")]:
        with pytest.raises(KafkaException) as e:
            ck_incremental(cbroker, topic, ConfigEntry(key, bad, incremental_operation=AlterConfigOpType.SET))
        assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, (key, bad, e.value)
    bad_topic = unique_topic("ts-bad")
    err = ck_create(cbroker, NewTopic(bad_topic, 1, 1, config={"message.timestamp.type": "Now"}))[bad_topic]
    assert err is not None and err.code() == KafkaError.INVALID_CONFIG, err


def test_incremental_append_and_subtract_on_cleanup_policy(cbroker):
    topic = unique_topic("listops")
    assert ck_create(cbroker, NewTopic(topic, 1, 1)) == {topic: None}

    def policy():
        e = ck_describe(cbroker, "topic", topic)["cleanup.policy"]
        return e.value, int(e.source)

    ck_incremental(cbroker, topic, ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT))
    assert policy() == ("", TOPIC_CONFIG)
    ck_incremental(cbroker, topic, ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND))
    assert policy() == ("delete", TOPIC_CONFIG)
    ck_incremental(cbroker, topic, ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND))
    assert policy() == ("delete", TOPIC_CONFIG), "APPEND adds only values not yet present"
    # APPEND on a config that is not a list is refused, as in Kafka.
    with pytest.raises(KafkaException) as e:
        ck_incremental(cbroker, topic, ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.APPEND))
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, e.value


def test_create_topics_with_a_manual_replica_assignment(cbroker):
    topic = unique_topic("assigned")
    assert ck_create(cbroker, NewTopic(topic, 3, replica_assignment=[[1], [1], [1]])) == {topic: None}
    md = ck(cbroker).list_topics(topic, timeout=15).topics[topic]
    assert sorted((p.id, p.leader, list(p.replicas)) for p in md.partitions.values()) == [
        (0, 1, [1]), (1, 1, [1]), (2, 1, [1])]

    # kafka-python sends the assignment as a map.
    kp_topic = unique_topic("assigned-kp")
    a = admin(cbroker.bootstrap)
    try:
        resp = a.create_topics([KpNewTopic(kp_topic, -1, -1, replica_assignments={0: [1], 1: [1]})])
        assert [(t["name"], t["error_code"]) for t in resp["topics"]] == [(kp_topic, 0)], resp
    finally:
        a.close()
    wait_until(lambda: cbroker.partition(kp_topic, 1), 15, f"{kp_topic}-1 in /admin/partitions")

    # Kafka's refusals: an unknown broker, a broker twice, uneven replica counts.
    bad = {unique_topic("assign-unknown"): [[1], [9]], unique_topic("assign-twice"): [[1, 1]],
           unique_topic("assign-uneven"): [[1], [1, 1]]}
    errors = ck_create(cbroker, *[NewTopic(t, len(r), replica_assignment=r) for t, r in bad.items()])
    for t in bad:
        assert errors[t] is not None and errors[t].code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, (t, errors[t])


def test_a_broker_with_node_id_zero(tmp_path):
    b = Broker(tmp_path, name="node-zero", node_id=0, fsync="interval")
    b.start()
    try:
        assert b.health()["node_id"] == 0
        ac = ck(b)
        desc = ac.describe_cluster().result(15)
        assert desc.controller.id == 0 and [n.id for n in desc.nodes] == [0]
        topic = unique_topic("zero")
        assert ck_create(b, NewTopic(topic, 2, 1)) == {topic: None}
        md = ac.list_topics(topic, timeout=15).topics[topic]
        assert sorted((p.id, p.leader) for p in md.partitions.values()) == [(0, 0), (1, 0)]
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all")
        for i in range(6):
            p.send(topic, f"v{i}".encode(), partition=i % 2).get(15)
        p.close()
        got = kp_consume_all(b.bootstrap, topic, 2)
        assert {part: [r[2] for r in recs] for part, recs in got.items()} == {
            0: [b"v0", b"v2", b"v4"], 1: [b"v1", b"v3", b"v5"]}
    finally:
        assert b.stop() == 0
