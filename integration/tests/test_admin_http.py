"""The admin HTTP API (/admin/health, /admin/actors, /admin/partitions, fail points)
and process-level behaviour (config validation, env overrides, embedded defaults)."""

from __future__ import annotations

import gc
import subprocess

import requests
from kafka import KafkaProducer

import kproto
from client_helpers import admin, create_topic
from harness import Broker, broker_binary, find_actor, flatten_actors, unique_topic, wait_until
from metrics_helpers import scrape, value

ROLES = {"NodeSupervisor", "ReplicaSupervisor", "WalFlusher", "KafkaListener", "AdminServer", "MetadataActor"}


def connection_actors(broker) -> int:
    return sum(1 for n in flatten_actors(broker.actors()) if n["role"] == "ConnectionActor")


def test_health(broker):
    h = broker.health()
    assert h["node_id"] == 1
    assert h["is_leader"] is True and h["leader_id"] == 1
    assert h["cluster_nodes"] == [1] and h["learners"] == []
    assert h["status"] == "healthy"
    assert isinstance(h["term"], int)


def test_actor_tree(broker, topic):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        p.send(topic, b"x", partition=1).get(timeout=30)  # auto-created with 2 partitions
    finally:
        p.close()
    tree = broker.actors()
    assert tree["role"] == "NodeSupervisor"
    nodes = flatten_actors(tree)
    for n in nodes:
        assert {"name", "role", "status", "restarts", "mailbox_len", "children"} <= set(n), n
        assert isinstance(n["restarts"], int) and isinstance(n["mailbox_len"], int), n
    roles = {n["role"] for n in nodes}
    assert ROLES <= roles, f"missing roles {ROLES - roles}"
    for part in (0, 1):
        replica = find_actor(tree, f"replica:{topic}-{part}")
        assert replica is not None and replica["role"] == "ReplicaActor", replica
        assert str(replica["status"]).lower() == "running"
    supervisors = [n for n in nodes if n["role"] == "ReplicaSupervisor"]
    assert any(find_actor(s, f"replica:{topic}-0") for s in supervisors), "replica not under a ReplicaSupervisor"


def test_connection_actors_follow_connections(broker):
    gc.collect()  # close any client a previous test left for the garbage collector
    before = connection_actors(broker)
    socks = []
    try:
        for i in range(3):
            s = kproto.connect(broker.bootstrap)
            s.sendall(kproto.api_versions_v0(i))
            assert kproto.read_response(s)[0] == i
            socks.append(s)
        during = wait_until(lambda: (c := connection_actors(broker)) >= before + 3 and c, 10,
                            f"≥ {before + 3} ConnectionActors with 3 extra sockets open")
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: connection_actors(broker) <= during - 3, 10,
               "ConnectionActors to stop after their sockets closed")


def test_partitions_endpoint(broker, topic):
    a = admin(broker.bootstrap)
    try:
        a.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})
    finally:
        a.close()
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        for i in range(7):
            p.send(topic, b"m%d" % i, partition=2)
        p.flush(30)
    finally:
        p.close()
    parts = {x["partition"]: x for x in broker.partitions() if x["topic"] == topic}
    assert sorted(parts) == [0, 1, 2]
    for n, x in parts.items():
        assert x["replicas"] == [1] and x["leader"] == 1 and x["isr"] == [1], x
        assert x["leader_epoch"] >= 0 and x["log_start_offset"] == 0, x
        want = 7 if n == 2 else 0
        assert x["log_end_offset"] == x["high_watermark"] == want, x


def test_fail_points_disabled_by_default(broker, topic):
    r = broker.fail_point("replica_panic", topic, 0)
    assert r.status_code == 403, (r.status_code, r.text)
    body = r.json()
    assert body["success"] is False and body["message"], body


def test_unknown_config_key_is_rejected(make_broker):
    b = make_broker("bad-config", start=False)
    b.config_path.write_text(b.config_toml().replace("[kafka]\n", "[kafka]\nbogus_key = 1\n"))
    b.start(wait=False)
    rc = b.proc.wait(15)
    assert rc != 0, "broker started with an unknown config key"
    log = b.log_text()
    assert "bogus_key" in log, f"error does not name the key:\n{log[-2000:]}"


def test_env_overrides_config(make_broker, topic):
    b = make_broker("env", extra_env={"CHRONIK_KAFKA__NUM_PARTITIONS": "4"})
    p = KafkaProducer(bootstrap_servers=b.bootstrap)
    try:
        p.send(topic, b"x").get(timeout=30)
    finally:
        p.close()
    assert sorted(x["partition"] for x in b.partitions() if x["topic"] == topic) == [0, 1, 2, 3]


class NoConfigBroker(Broker):
    """`chronik-server start` with no arguments: embedded defaults, ports from the environment."""

    def command(self):
        return [str(broker_binary()), "start"]


def test_start_with_embedded_defaults(tmp_path):
    nb = NoConfigBroker(tmp_path / "noconfig", name="noconfig-broker")
    nb.config_path.unlink()
    nb.extra_env = {
        "CHRONIK_BIND__KAFKA": f"127.0.0.1:{nb.kafka_port}",
        "CHRONIK_BIND__ADMIN": f"127.0.0.1:{nb.admin_port}",
        "CHRONIK_ADVERTISE__KAFKA": f"127.0.0.1:{nb.kafka_port}",
    }
    try:
        nb.start()
        corr, body = kproto.call(nb.bootstrap, kproto.metadata_v1(1, None))
        assert kproto.parse_metadata_v1(body)["brokers"][0]["port"] == nb.kafka_port
        assert (nb.workdir / "data").is_dir(), "default data dir ./data not created in the working directory"
        assert nb.stop() == 0
    finally:
        nb.kill()


def test_start_help():
    r = subprocess.run([str(broker_binary()), "start", "--help"], capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r.stderr
    for flag in ("--config", "--data-dir", "--node-id"):
        assert flag in r.stdout, f"{flag} missing from help:\n{r.stdout}"


def test_admin_unknown_route_is_404(broker):
    r = requests.get(f"{broker.admin_url}/admin/no-such-thing", timeout=5)
    assert r.status_code == 404


def test_sigterm_exits_zero_promptly(make_broker):
    b = make_broker("sigterm")
    kproto.call(b.bootstrap, kproto.api_versions_v0(1))
    idle = kproto.connect(b.bootstrap)  # an open client connection must not hold up shutdown
    try:
        assert b.stop(timeout=15) == 0
    finally:
        idle.close()


def test_metrics_in_prometheus_format(broker):
    """GET /metrics: requests per API, partition offsets, group lag, actor restarts."""
    from kafka import KafkaConsumer

    topic, group = unique_topic("metrics"), unique_topic("metrics-g")
    create_topic(broker.bootstrap, topic, 1)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(30):
        p.send(topic, b"m%d" % i, partition=0)
    p.flush()
    p.close()
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=10000, max_poll_records=10)
    read = 0
    for _ in c:
        read += 1
        if read == 10:
            break
    c.commit()
    c.close()

    def lagging():
        samples = scrape(broker.admin_url)  # parsed by prometheus_client: a format error fails here
        return samples if value(samples, "chronik_group_lag_offsets", group=group, partition="0") == 20 else None

    samples = wait_until(lagging, 15, "group lag of 20 in /metrics")
    text = requests.get(f"{broker.admin_url}/metrics", timeout=5).text
    assert "# TYPE chronik_requests_total counter" in text
    assert value(samples, "chronik_requests_total", api="Produce") >= 1
    assert value(samples, "chronik_requests_total", api="OffsetCommit") >= 1
    assert value(samples, "chronik_partition_high_watermark_offset", topic=topic, partition="0") == 30
    assert value(samples, "chronik_partition_log_end_offset", topic=topic, partition="0") == 30
    assert value(samples, "chronik_actor_restarts_total", name="node-1", role="NodeSupervisor") == 0
