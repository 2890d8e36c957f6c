"""Throttles changed at run time (issue 15): Kafka's dynamic broker configs
`follower.replication.throttled.rate`, `leader.replication.throttled.rate` and
`log.cleaner.io.max.bytes.per.second`, set with confluent-kafka's IncrementalAlterConfigs on a
broker entity, reported by DescribeConfigs as DYNAMIC_BROKER_CONFIG, and acting on running work:

- the log cleaner holds a cleaning's disk traffic (bytes read plus written, as its `log cleaned`
  line reports them) to the rate set at run time, while the file leaves it unlimited;
- a follower catching up after a restart copies at most at the follower rate set for its node,
  while the file leaves copies unlimited (a 6 MB catch-up that takes well under a second
  unthrottled takes several seconds at 1 MB/s).
"""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, AlterConfigOpType, NewTopic
from kafka import KafkaProducer

from cluster import Cluster, NotAgreed, started
from compaction_helpers import CLEANER_ENV, cleaned_lines, fillers, produce, versions
from harness import unique_topic, wait_until
from replication_helpers import admin_view
from test_broker_configs import DYNAMIC_BROKER, INVALID_CONFIG, SET, broker_config, raw_alter_broker, set_broker

CLEANER_RATE = 200_000  # bytes per second
FOLLOWER_RATE = 1_000_000
CATCH_UP_BYTES = 6_000_000


def test_rates_are_dynamic_broker_configs_and_zero_is_refused(make_broker):
    b = make_broker("rates")
    for key in ("leader.replication.throttled.rate", "follower.replication.throttled.rate",
                "log.cleaner.io.max.bytes.per.second"):
        value, source, read_only = broker_config(b.bootstrap, key)
        assert not read_only, f"{key} is a run-time config"
        set_broker(b.bootstrap, "1", AlterConfigOpType.SET, **{key.replace(".", "_"): "3000000"})
        assert broker_config(b.bootstrap, key)[:2] == ("3000000", DYNAMIC_BROKER), key
        code, message = raw_alter_broker(b.bootstrap, "1", SET, {key: "0"})
        assert code == INVALID_CONFIG and "at least 1" in (message or ""), (key, code, message)
        assert broker_config(b.bootstrap, key)[0] == "3000000", "a refused value changes nothing"


def test_the_cleaner_keeps_to_the_rate_set_at_run_time(make_broker):
    env = dict(CLEANER_ENV, CHRONIK_STORAGE__CLEANER_IO_MAX_BYTES_PER_SEC="0")  # unlimited in the file
    b = make_broker("cleaner-rate", extra_env=env)
    topic = unique_topic("cleaner-rate")
    ac = AdminClient({"bootstrap.servers": b.bootstrap})
    configs = {"cleanup.policy": "delete", "segment.bytes": "16384", "retention.ms": "-1"}
    ac.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(30)
    produce(b.bootstrap, topic, versions(100, 20, pad=150) + fillers("rate", 120))
    set_broker(b.bootstrap, "1", AlterConfigOpType.SET, log_cleaner_io_max_bytes_per_second=str(CLEANER_RATE))
    # Compaction starts only now: one cleaning of the whole log, at the run-time rate.
    ac.incremental_alter_configs([_topic_set(topic, {"cleanup.policy": "compact",
                                                     "min.cleanable.dirty.ratio": "0.01"})])[_key(topic)].result(30)
    lines = wait_until(lambda: [f for f in cleaned_lines(b.log_text(), topic) if f["applied"] == "true"], 60,
                       "the first cleaning")
    first = lines[0]
    traffic = int(first["bytes_read"]) + int(first["bytes_written"])
    assert traffic > 4 * CLEANER_RATE, f"enough to measure: {first}"
    floor_ms = 1000 * traffic / CLEANER_RATE * 0.8
    assert int(first["ms"]) >= floor_ms, f"{traffic} bytes in {first['ms']} ms, faster than {CLEANER_RATE} B/s"


def _broker_value(bootstrap: str, node: int, key: str) -> str:
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource("broker", str(node))
    ac = AdminClient({"bootstrap.servers": bootstrap})  # held: a collected client cancels its futures
    return ac.describe_configs([res])[res].result(15)[key].value


def _key(topic: str):
    from confluent_kafka.admin import ConfigResource
    return ConfigResource("topic", topic)


def _topic_set(topic: str, configs: dict[str, str]):
    from confluent_kafka.admin import ConfigEntry, ConfigResource
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()]
    return ConfigResource("topic", topic, incremental_configs=entries)


def test_a_follower_catches_up_at_the_follower_rate_set_for_its_node(tmp_path):
    c = Cluster(tmp_path / "throttle", size=3, spare=0, name="thrnode", replication_factor=3,
                replication={"replica_lag_max_ms": 3000, "rebalance_max_bytes_per_sec": 0})
    with started(c):
        topic = unique_topic("throttle")
        ac = AdminClient({"bootstrap.servers": c.bootstrap(1)})
        ac.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(30)
        wait_until(lambda: all(admin_view(c, i, topic).get(0, {}).get("replica") for i in (1, 2, 3)), 20,
                   f"every node hosting {topic}")
        leader = admin_view(c, 1, topic)[0]["leader"]
        absent = max(i for i in (1, 2, 3) if i != leader)
        # Set while the node runs, so it knows the rate from its own metadata as it restarts.
        rate = {"follower.replication.throttled.rate": str(FOLLOWER_RATE)}
        assert raw_alter_broker(c.bootstrap(leader), str(absent), SET, rate) == (0, None)
        # Committed is not yet applied everywhere: the node must hold the rate before it dies.
        wait_until(lambda: _broker_value(c.bootstrap(absent), absent, "follower.replication.throttled.rate")
                   == str(FOLLOWER_RATE), 20, f"node {absent} knowing its follower rate")
        c.kill(absent)
        p = KafkaProducer(bootstrap_servers=c.bootstrap(leader), acks=1, linger_ms=20, batch_size=256 * 1024)
        value = b"t" * 4000
        for _ in range(CATCH_UP_BYTES // len(value)):
            p.send(topic, value=value, partition=0)
        p.flush(60)
        p.close(10)
        wait_until(lambda: absent not in admin_view(c, leader, topic)[0]["isr"], 30, f"node {absent} out of the ISR")
        target = admin_view(c, leader, topic)[0]["replica"]["log_end_offset"]

        c.nodes[absent].start(wait=False)

        def copying():
            r = admin_view(c, absent, topic).get(0, {}).get("replica")
            if not r:
                raise NotAgreed(f"node {absent} does not host {topic} yet")
            return r["log_end_offset"]

        began, start_end = time.monotonic(), wait_until(copying, 60, f"node {absent} hosting {topic} again")
        wait_until(lambda: copying() >= target, 120, f"node {absent} caught up to {target}", interval=0.1)
        took = time.monotonic() - began
        assert start_end < target / 2, f"node {absent} had most of the log already ({start_end} of {target})"
        # At most 1 MB/s after a burst of 100 ms: 6 MB need more than 4 s.
        assert took > 0.7 * CATCH_UP_BYTES / FOLLOWER_RATE, f"caught up in {took:.1f} s, faster than the rate"
