"""GET /metrics against a real 3-node cluster, and the examples built on it: the Grafana
dashboard (examples/grafana/chronik-dashboard.json) and the Prometheus scrape config
(examples/prometheus/prometheus.yml).

One cluster per module (RF 3, min.insync.replicas 2, replica_lag_max_ms 3000), one 3-partition
topic (round robin: partition p led by node p + 1). The `traffic` fixture scrapes every node,
produces with confluent-kafka (acks=all) and consumes in a group with kafka-python, then scrapes
again. Every scrape goes through prometheus_client's parser, so a format error fails the test.

- The request metrics rose: requests, the latency histogram (buckets cumulative, +Inf = count),
  produce and fetch record bytes (at least the payload, less than twice it).
- A SIGSTOPped follower shows up on its leader: replica lag >= what was produced since, the
  partition under-replicated and its ISR smaller; after SIGCONT all of it goes back to zero.
- Every metric a dashboard panel queries is exported by the brokers, with the labels its
  selectors, `by (...)` clauses and legends use (`instance`/`job` come from Prometheus).
- prometheus.yml parses and scrapes the three admin ports of examples/cluster-local-3node.toml.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Producer
from kafka import KafkaConsumer

from cluster import Cluster, NotAgreed, started
from harness import unique_topic, wait_until
from metrics_helpers import matching, scrape, total, value
from replication_helpers import create_topic

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana" / "chronik-dashboard.json"
PROMETHEUS_YML = ROOT / "examples" / "prometheus" / "prometheus.yml"
CLUSTER_TOML = ROOT / "examples" / "cluster-local-3node.toml"

VOTERS = [1, 2, 3]
PARTITIONS = 3
MESSAGES = 300
VALUE_BYTES = 100
# Labels Prometheus adds to every scraped series; the brokers do not export them.
TARGET_LABELS = {"instance", "job"}


@pytest.fixture(scope="module")
def dcluster(tmp_path_factory) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("dashboard"), size=3, spare=0, name="dnode", replication_factor=3,
                min_insync_replicas=2, replication={"replica_lag_max_ms": 3000})
    with started(c):
        yield c
        for i in VOTERS:
            c.resume(i)  # a failed SIGSTOP test must not leave a stopped process behind


@pytest.fixture(scope="module")
def dtopic(dcluster) -> tuple[str, dict]:
    topic = unique_topic("dash")
    return topic, create_topic(dcluster, topic, partitions=PARTITIONS)


def scrape_all(c: Cluster) -> dict[int, list]:
    return {i: scrape(c.admin_url(i)) for i in VOTERS}


def cluster_total(scrapes: dict[int, list], name: str, /, **labels) -> float:
    return sum(total(s, name, **labels) for s in scrapes.values())


@pytest.fixture(scope="module")
def traffic(dcluster, dtopic) -> dict:
    """Produce MESSAGES records of VALUE_BYTES, read them all back in a group and commit; the
    scrapes from before and after."""
    c, (topic, _layout) = dcluster, dtopic
    bootstrap = ",".join(c.bootstrap(i) for i in VOTERS)
    before = scrape_all(c)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for n in range(MESSAGES):
        p.produce(topic, b"%0*d" % (VALUE_BYTES, n), partition=n % PARTITIONS)
    assert p.flush(30) == 0, "not every message was acknowledged"
    group = unique_topic("dash-g")
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=15000)
    read = 0
    for _ in consumer:
        read += 1
        if read == MESSAGES:
            break
    consumer.commit()
    consumer.close()
    assert read == MESSAGES

    def group_lag_exported():
        scrapes = scrape_all(c)
        lags = [s for node in scrapes.values() for s in matching(node, "chronik_group_lag_offsets", group=group)]
        return scrapes if len(lags) >= PARTITIONS else None

    after = wait_until(group_lag_exported, 15, f"group {group}'s lag in /metrics")
    return {"before": before, "after": after, "group": group, "topic": topic}


def test_request_counters_histogram_and_bytes_rise(traffic):
    before, after = traffic["before"], traffic["after"]

    def delta(name, /, **labels):
        return cluster_total(after, name, **labels) - cluster_total(before, name, **labels)

    payload = MESSAGES * VALUE_BYTES
    for api in ("Produce", "Fetch"):
        assert delta("chronik_requests_total", api=api) >= 1, api
        assert delta("chronik_request_duration_seconds_count", api=api) >= 1, api
        assert delta("chronik_request_duration_seconds_sum", api=api) > 0, api
    produced, fetched = delta("chronik_produce_bytes_total"), delta("chronik_fetch_bytes_total")
    assert payload <= produced < 2 * payload, f"produce bytes {produced} for {payload} payload bytes"
    # A group consumer may read some records twice (kafka-python fetches a partition again from
    # its committed position after a rebalance): the bytes answered, not the records kept.
    assert payload <= fetched < 3 * payload, f"fetch bytes {fetched} for {payload} payload bytes"
    for node, samples in after.items():
        for api in ("Produce", "Fetch"):
            count = value(samples, "chronik_request_duration_seconds_count", api=api)
            if count is None:
                continue
            buckets = sorted((float(s.labels["le"]), s.value)
                             for s in matching(samples, "chronik_request_duration_seconds_bucket", api=api))
            bounds = [b for b, _ in buckets]
            assert bounds[0] == 0.0005 and bounds[-2] == 10.0 and bounds[-1] == float("inf"), (node, bounds)
            counts = [n for _, n in buckets]
            assert counts == sorted(counts), f"node {node} {api}: buckets not cumulative: {buckets}"
            assert counts[-1] == count, f"node {node} {api}: +Inf {counts[-1]} != count {count}"
            # Decoded requests are counted first, answered ones when their response is ready.
            assert count <= value(samples, "chronik_requests_total", api=api), (node, api)


def test_replica_lag_of_a_stopped_follower(dcluster, dtopic, traffic):
    c, (topic, layout) = dcluster, dtopic
    raft_leader = c.wait_for_leader()
    follower = next(i for i in VOTERS if i != raft_leader)  # stopping it costs no election
    partition = next(p for p, (leader, _r) in layout.items() if leader not in (follower,))
    leader = layout[partition][0]
    at = {"topic": topic, "partition": str(partition)}

    def on_leader(name, /, **labels):
        return value(scrape(c.admin_url(leader)), name, **at, **labels)

    wait_until(lambda: on_leader("chronik_partition_replica_lag_offsets", replica=str(follower)) == 0, 30,
               f"node {follower} caught up on {topic}-{partition}")
    c.pause(follower)
    try:
        p = Producer({"bootstrap.servers": c.bootstrap(leader), "acks": "1", "enable.idempotence": False})
        for n in range(50):
            p.produce(topic, b"lag-%d" % n, partition=partition)
        assert p.flush(30) == 0

        def lagging():
            samples = scrape(c.admin_url(leader))
            lag = value(samples, "chronik_partition_replica_lag_offsets", **at, replica=str(follower))
            isr = value(samples, "chronik_partition_in_sync_replicas", **at)
            under = value(samples, "chronik_under_replicated_partitions")
            if lag is None or lag < 50 or isr != 2 or under < 1:
                raise NotAgreed(f"lag {lag}, isr {isr}, under-replicated {under}")
            return lag

        wait_until(lagging, 30, f"node {leader} reporting node {follower} behind on {topic}-{partition}")
    finally:
        c.resume(follower)

    def recovered():
        scrapes = scrape_all(c)
        lags = [s for n in scrapes.values() for s in matching(n, "chronik_partition_replica_lag_offsets", topic=topic)]
        under = cluster_total(scrapes, "chronik_under_replicated_partitions")
        isr = [s.value for n in scrapes.values() for s in matching(n, "chronik_partition_in_sync_replicas", topic=topic)]
        if len(lags) != 2 * PARTITIONS or any(s.value for s in lags) or under or isr != [3] * PARTITIONS:
            raise NotAgreed(f"lags {[(s.labels, s.value) for s in lags]}, under-replicated {under}, isr {isr}")
        return True

    wait_until(recovered, 60, f"every follower of {topic} back in sync")


# ---- the Grafana dashboard ---------------------------------------------------------------

METRIC = re.compile(r"\bchronik_[a-z0-9_]+")
SELECTOR = re.compile(r"(chronik_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
# What the dashboard must show (the list).
REQUIRED = {
    "chronik_requests_total", "chronik_produce_bytes_total", "chronik_fetch_bytes_total",
    "chronik_request_duration_seconds_bucket", "chronik_partition_high_watermark_offset",
    "chronik_partition_log_end_offset", "chronik_partition_replica_lag_offsets",
    "chronik_under_replicated_partitions", "chronik_offline_partitions", "chronik_group_lag_offsets",
    "chronik_actor_restarts_total", "chronik_actor_mailbox_messages",
}


def panels(dashboard: dict) -> list[dict]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # a collapsed row keeps its panels inside
    return out


def check_expr(expr: str, exported: dict[str, list], where: str) -> set[str]:
    """Asserts every metric, label and literal label value `expr` uses exists; returns its metrics."""
    names = set(METRIC.findall(expr))
    assert names, f"{where}: no chronik metric in {expr!r}"
    for n in names:
        assert n in exported, f"{where}: {n} is not exported (expr {expr!r})"
    labels = {n: {k for s in exported[n] for k in s.labels} | TARGET_LABELS for n in names}
    for name, body in SELECTOR.findall(expr):
        for label, op, val in MATCHER.findall(body):
            assert label in labels[name], f"{where}: {name} has no label {label}"
            if op == "=" and "$" not in val:
                assert any(s.labels.get(label) == val for s in exported[name]), f"{where}: no {name}{{{label}={val!r}}}"
    available = set().union(*labels.values())
    for group in GROUPING.findall(expr):
        for label in filter(None, (x.strip() for x in group.split(","))):
            assert label in available, f"{where}: `by ({group})` names {label}, which {sorted(names)} lack"
    return names


def test_dashboard_queries_only_exported_metrics(dcluster, traffic):
    exported: dict[str, list] = {}
    for samples in scrape_all(dcluster).values():
        for s in samples:
            exported.setdefault(s.name, []).append(s)
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    node_var = variables["instance"]
    check_expr(node_var["query"]["query"], exported, "variable instance")
    used: set[str] = set()
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for p in panels(dashboard):
        if p["type"] == "row":
            continue
        where = f"panel {p['title']!r}"
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", where
        assert p["targets"], f"{where} has no query"
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", where
            assert 'instance=~"$instance"' in t["expr"], f"{where}: not filtered by the node variable"
            used |= check_expr(t["expr"], exported, where)
            grouped = GROUPING.findall(t["expr"])
            legend = set(LEGEND_LABEL.findall(t.get("legendFormat", "")))
            if grouped:
                kept = {x.strip() for g in grouped for x in g.split(",")}
                assert legend <= kept, f"{where}: legend {legend} uses labels the query aggregates away"
    assert REQUIRED <= used, f"no panel shows {sorted(REQUIRED - used)}"
    exprs = " ".join(t["expr"] for p in panels(dashboard) for t in p.get("targets", []))
    for api in ("Produce", "Fetch"):
        for q in ("0.5", "0.99"):
            assert re.search(rf'histogram_quantile\({q}, [^;]*api="{api}"', exprs), f"no p{q} {api} latency"


# ---- the Prometheus config -----------------------------------------------------------------


def test_prometheus_config_scrapes_the_local_cluster():
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    [job] = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert len(targets) == 3, targets
    cluster = tomllib.loads(CLUSTER_TOML.read_text())
    # A peer without an explicit admin address answers on 10000 + its id (see the TOML's header).
    admin_ports = sorted(int(p["admin"].rsplit(":", 1)[1]) if "admin" in p else 10000 + p["id"]
                         for p in cluster["peers"])
    assert sorted(int(t.rsplit(":", 1)[1]) for t in targets) == admin_ports == [10001, 10002, 10003]
    assert all(t.rsplit(":", 1)[0] == "localhost" for t in targets), targets
