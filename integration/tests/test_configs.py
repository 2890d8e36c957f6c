"""Topic configs changed at run time (AlterConfigs, IncrementalAlterConfigs) and applied to the
running partitions, and DescribeCluster — through kafka-python and confluent-kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource as CkResource
from kafka.admin import ConfigResource, ConfigResourceType

from client_helpers import admin, create_topic, fill_and_wait_for_retention
from harness import wait_until

RETENTION_CHECK_MS = 300


@pytest.fixture(scope="module")
def cbroker(tmp_path_factory):
    from harness import Broker

    # Retention is checked often so a changed limit shows within the test.
    env = {"CHRONIK_STORAGE__RETENTION_CHECK_INTERVAL_MS": str(RETENTION_CHECK_MS)}
    b = Broker(tmp_path_factory.mktemp("configs-broker"), name="configs-broker", fsync="interval", extra_env=env)
    b.start()
    yield b
    assert b.stop() == 0


def topic_configs(bootstrap: str, topic: str) -> dict[str, tuple[str, int]]:
    """name -> (value, source) as confluent-kafka reports them."""
    res = CkResource("topic", topic)
    ac = AdminClient({"bootstrap.servers": bootstrap})  # must outlive its futures
    entries = ac.describe_configs([res])[res].result(15)
    return {name: (e.value, int(e.source)) for name, e in entries.items()}


def test_kafka_python_alter_configs(cbroker):
    topic = "alter-kp"
    create_topic(cbroker.bootstrap, topic, 1)
    a = admin(cbroker.bootstrap)
    # kafka-python 3 sends IncrementalAlterConfigs by default: keys not named are kept.
    a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "123456"})])
    a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.bytes": "1048576"})])
    configs = topic_configs(cbroker.bootstrap, topic)
    assert configs["retention.ms"] == ("123456", 1), configs  # DYNAMIC_TOPIC_CONFIG
    assert configs["segment.bytes"] == ("1048576", 1), configs
    # Plain AlterConfigs replaces the whole set: retention.ms falls back to the default.
    # (kafka-python would merge the other keys in client-side; confluent-kafka sends the set as is.)
    ac = AdminClient({"bootstrap.servers": cbroker.bootstrap})
    res = CkResource("topic", topic, set_config={"segment.bytes": "2097152"})
    for f in ac.alter_configs([res]).values():
        f.result(15)
    configs = topic_configs(cbroker.bootstrap, topic)
    assert configs["segment.bytes"] == ("2097152", 1), configs
    assert configs["retention.ms"][1] == 5, configs  # DEFAULT_CONFIG


def test_confluent_incremental_alter_applies_to_the_running_log(cbroker):
    topic = "alter-ck"
    create_topic(cbroker.bootstrap, topic, 1)
    ac = AdminClient({"bootstrap.servers": cbroker.bootstrap})
    res = CkResource("topic", topic, incremental_configs=[
        ConfigEntry("segment.bytes", "2048", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.bytes", "8192", incremental_operation=AlterConfigOpType.SET),
    ])
    for f in ac.incremental_alter_configs([res]).values():
        f.result(15)
    configs = topic_configs(cbroker.bootstrap, topic)
    assert configs["segment.bytes"][0] == "2048" and configs["retention.bytes"][0] == "8192", configs

    # The running partition rolls small segments and deletes old ones past 8 KiB.
    part = fill_and_wait_for_retention(cbroker, topic, "retention to trim the log to retention.bytes after the config change")
    assert part["replica"]["segments"] > 1, part

    # DELETE drops an override again.
    res = CkResource("topic", topic, incremental_configs=[
        ConfigEntry("retention.bytes", None, incremental_operation=AlterConfigOpType.DELETE)])
    for f in ac.incremental_alter_configs([res]).values():
        f.result(15)
    assert topic_configs(cbroker.bootstrap, topic)["retention.bytes"][1] == 5


def test_bad_alterations_are_refused(cbroker):
    topic = "alter-bad"
    create_topic(cbroker.bootstrap, topic, 1)
    ac = AdminClient({"bootstrap.servers": cbroker.bootstrap})
    cases = [
        CkResource("topic", topic, incremental_configs=[
            ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)]),
        CkResource("topic", topic, incremental_configs=[
            ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)]),
        CkResource("topic", "no-such-topic", incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)]),
        CkResource("broker", "1", incremental_configs=[
            ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET)]),
        CkResource("broker", "1", incremental_configs=[
            ConfigEntry("log.retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)]),
    ]
    for res in cases:
        with pytest.raises(KafkaException):
            for f in ac.incremental_alter_configs([res]).values():
                f.result(15)
    # Nothing changed on the topic.
    assert topic_configs(cbroker.bootstrap, topic)["retention.ms"][1] == 5


def test_confluent_describe_cluster(cbroker):
    ac = AdminClient({"bootstrap.servers": cbroker.bootstrap})
    wait_until(lambda: cbroker.health()["cluster_id"], 30, "the cluster's id")
    desc = ac.describe_cluster().result(15)
    # The cluster's own id, the one /admin/health reports (a UUID set when the cluster formed).
    assert desc.cluster_id == cbroker.health()["cluster_id"] and len(desc.cluster_id) == 36, desc.cluster_id
    assert desc.controller.id == 1
    assert [(n.id, n.port) for n in desc.nodes] == [(1, cbroker.kafka_port)]
