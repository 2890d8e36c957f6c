"""Broker configs changed at run time (issue 15): the cluster-wide default entity and one
broker's entity, through kafka-python's and confluent-kafka's admin clients. The new values
reach running partitions (retention trims a topic that has no overrides), DescribeConfigs
reports them with Kafka's sources and synonyms, and they survive a restart."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry
from confluent_kafka.admin import ConfigResource as CkResource
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType

import kproto
from client_helpers import admin, create_topic, fill_and_wait_for_retention
from harness import wait_until

API_INCREMENTAL_ALTER_CONFIGS = 44
BROKER = 4
SET, DELETE = 0, 1
INVALID_REQUEST = 42
INVALID_CONFIG = 40
DYNAMIC_BROKER = 2
DYNAMIC_DEFAULT_BROKER = 3
DEFAULT = 5


def topic_config(bootstrap: str, topic: str, key: str) -> tuple[str, int]:
    res = CkResource("topic", topic)
    ac = AdminClient({"bootstrap.servers": bootstrap})
    entry = ac.describe_configs([res])[res].result(15)[key]
    return entry.value, int(entry.source)


def broker_config(bootstrap: str, key: str) -> tuple[str, int, bool]:
    res = CkResource("broker", "1")
    ac = AdminClient({"bootstrap.servers": bootstrap})
    entry = ac.describe_configs([res])[res].result(15)[key]
    return entry.value, int(entry.source), entry.is_read_only


def set_broker(bootstrap: str, entity: str, op: AlterConfigOpType, **configs: str | None) -> None:
    entries = [ConfigEntry(k.replace("_", "."), v, incremental_operation=op) for k, v in configs.items()]
    res = CkResource("broker", entity, incremental_configs=entries)
    ac = AdminClient({"bootstrap.servers": bootstrap})
    for f in ac.incremental_alter_configs([res]).values():
        f.result(15)


def raw_alter_broker(bootstrap: str, name: str, op: int, configs: dict[str, str | None]) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v0 on broker `name`, sent to `bootstrap`. For "" (the
    cluster-wide default): kafka-python and confluent-kafka refuse an empty broker name before
    sending, while Java's admin client (`kafka-configs --entity-type brokers --entity-default`)
    sends exactly this request; for an id that is no member, the clients would wait for a
    broker that does not exist."""
    entries = [kproto.string(k) + kproto.i8(op) + kproto.string(v) for k, v in configs.items()]
    resource = kproto.i8(BROKER) + kproto.string(name) + kproto.array(entries)
    body = kproto.array([resource]) + kproto.i8(0)
    _, resp = kproto.call(bootstrap, kproto.frame(API_INCREMENTAL_ALTER_CONFIGS, 0, 7, body))
    r = kproto.Reader(resp)
    r.i32()  # throttle
    [(code, message)] = r.array(lambda r: (r.i16(), r.string(), r.i8(), r.string())[:2])
    return code, message


def test_run_time_broker_configs_reach_running_partitions_and_survive_a_restart(make_broker):
    b = make_broker("dynamic-configs", fsync="interval",
                    extra_env={"CHRONIK_STORAGE__RETENTION_CHECK_INTERVAL_MS": "300"})
    topic = "no-overrides"
    create_topic(b.bootstrap, topic, 1)
    assert topic_config(b.bootstrap, topic, "retention.bytes")[1] == DEFAULT

    assert raw_alter_broker(b.bootstrap, "", SET, {"log.segment.bytes": "2048", "log.retention.bytes": "8192"}) == (0, None)
    # (confluent-kafka keys synonyms by name, so the two log.retention.bytes synonyms, dynamic
    # and default, show as one: their order is checked by the unit tests.)
    assert topic_config(b.bootstrap, topic, "retention.bytes") == ("8192", DYNAMIC_DEFAULT_BROKER)

    # The running partition rolls 2 KiB segments and deletes the oldest past 8 KiB.
    fill_and_wait_for_retention(b, topic, "retention by the run-time broker default")

    # This broker's own entity wins over the default; kafka-python 3 (IncrementalAlterConfigs).
    a = admin(b.bootstrap)
    try:
        a.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1", configs={"log.retention.bytes": "16384"})])
    finally:
        a.close()
    assert topic_config(b.bootstrap, topic, "retention.bytes") == ("16384", DYNAMIC_BROKER)
    assert broker_config(b.bootstrap, "log.retention.bytes") == ("16384", DYNAMIC_BROKER, False)
    assert broker_config(b.bootstrap, "num.partitions")[2] is True, "static keys stay read-only"

    b.restart()
    assert topic_config(b.bootstrap, topic, "retention.bytes") == ("16384", DYNAMIC_BROKER)
    assert topic_config(b.bootstrap, topic, "segment.bytes") == ("2048", DYNAMIC_DEFAULT_BROKER)

    # DELETE removes them again: the file's (here default) value is back.
    set_broker(b.bootstrap, "1", AlterConfigOpType.DELETE, log_retention_bytes=None)
    assert raw_alter_broker(b.bootstrap, "", DELETE, {"log.retention.bytes": None, "log.segment.bytes": None}) == (0, None)
    assert topic_config(b.bootstrap, topic, "retention.bytes") == ("-1", DEFAULT)
    assert broker_config(b.bootstrap, "log.segment.bytes")[1] == DEFAULT


def test_bad_broker_alterations_are_refused_and_change_nothing(make_broker):
    b = make_broker("dynamic-configs-bad", fsync="interval")
    cases = [
        ("1", {"num_partitions": "3"}, "cannot be changed at run time"),
        ("1", {"log_retention_ms": "soon"}, "invalid value"),
        ("1", {"log_segment_bytes": "10"}, "invalid value"),
    ]
    for entity, configs, why in cases:
        with pytest.raises(KafkaException) as e:
            set_broker(b.bootstrap, entity, AlterConfigOpType.SET, **configs)
        assert why in str(e.value), (entity, configs, e.value)
    code, message = raw_alter_broker(b.bootstrap, "", SET, {"log.retention.bytes": "lots"})
    assert (code, "invalid value" in (message or "")) == (INVALID_CONFIG, True), message
    code, message = raw_alter_broker(b.bootstrap, "9", SET, {"log.retention.ms": "1000"})
    assert (code, "not a member" in (message or "")) == (INVALID_REQUEST, True), message
    assert broker_config(b.bootstrap, "log.retention.ms")[1] == DEFAULT
    assert broker_config(b.bootstrap, "log.segment.bytes")[1] == DEFAULT
    assert broker_config(b.bootstrap, "log.retention.bytes")[1] == DEFAULT


def connection_debug_lines(b) -> int:
    return b.log_path.read_text(errors="replace").count("chronik_actors::connection: client connected")


def connect_once(bootstrap: str) -> None:
    with kproto.connect(bootstrap):
        pass


def test_log_levels_change_at_run_time_through_broker_logger(make_broker):
    """kafka-python's BROKER_LOGGER configs: a logger (a tracing target) raised to DEBUG logs
    what it did not before, DELETE returns it to the level the process started with, and
    DescribeConfigs lists the loggers with their levels."""
    b = make_broker("loggers", fsync="interval", extra_env={"RUST_LOG": "info,openraft=warn"})
    connect_once(b.bootstrap)
    assert connection_debug_lines(b) == 0, "connections are not logged at info"
    logger = "chronik_actors::connection"
    resource = lambda configs: ConfigResource(ConfigResourceType.BROKER_LOGGER, "1", configs=configs)  # noqa: E731
    a = admin(b.bootstrap)
    try:
        assert a.alter_configs([resource({logger: "DEBUG"})], raise_on_unknown=False) == {"broker_logger": {"1": "OK"}}
        described = a.describe_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "1")], config_filter="all")
        loggers = {k: v["value"] for k, v in described["broker_logger"]["1"].items()}
        assert loggers == {"root": "INFO", "openraft": "WARN", logger: "DEBUG"}, loggers

        connect_once(b.bootstrap)
        wait_until(lambda: connection_debug_lines(b) >= 1, 10, "a connection logged at DEBUG")

        # A level log4j does not know is INVALID_CONFIG and changes nothing.
        refused = a.alter_configs([resource({"openraft": "LOUD"})], raise_on_unknown=False)["broker_logger"]["1"]
        assert "[Error 40]" in refused and "invalid log level" in refused, refused
        # DELETE: back to the started level (info for this target), so no more debug lines.
        deleted = a.alter_configs([resource({logger: (AlterConfigOp.DELETE, None)})], raise_on_unknown=False)
        assert deleted == {"broker_logger": {"1": "OK"}}
    finally:
        a.close()
    seen = connection_debug_lines(b)
    connect_once(b.bootstrap)
    # The admin client's own connections came and went meanwhile; a new one is not logged.
    assert admin_describe_loggers(b) == {"root": "INFO", "openraft": "WARN"}
    assert connection_debug_lines(b) == seen


def admin_describe_loggers(b) -> dict[str, str]:
    a = admin(b.bootstrap)
    try:
        described = a.describe_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "1")], config_filter="all")
        return {k: v["value"] for k, v in described["broker_logger"]["1"].items()}
    finally:
        a.close()
