"""The user's acceptance document, run end to end: "Priority 2: Zero-Downtime Node Addition -
Testing Plan" (v2.6.0, kept verbatim in the repository at
`docs/acceptance/zero-downtime-node-addition-test-plan.md`) against real `chronik-server` processes, ending with its "Test Summary Template" filled in.

Tests run in file order on one cluster and share one `Plan` (plan_summary.py): every check is
recorded under the template box it belongs to and never stops the test, so the summary is
complete; each test then fails if one of its own checks failed, and the last one fails naming
every unticked box. conftest.py prints the filled-in template at the end of the pytest run.

    1.1-1.3, 2.1   nodes 1-3 start (startup lines, one leader within 10 s, health), the topic is
                   created with KafkaAdminClient (6 partitions, RF 3): the plan's round-robin table
    Performance    1000 kafka-python sends, timed, on 3 nodes
    1.4-4.3        node 4 starts outside the cluster; a kafka-python producer with default
                   settings sends one numbered message every 20 ms (12 s of baseline first);
                   `cluster add-node 4` while leader and term are sampled every 50 ms on every
                   voter; node 4 joins, the rebalancer moves replicas onto it; logs, layout,
                   leader, term and latency are judged
    Performance    the same 1000 sends on 4 nodes
    4.4            everything is read back: every acknowledged message exactly once
    5.1-5.3        a duplicate node, a follower asked, a malformed address: refused, nothing changes

Departures from the document, forced by running unattended next to other tests:
- ports are the harness's free ports (not 9092 / 10001 / 5001 ...); the TOMLs have the seed's
  shape with those ports, and cluster.py also writes [bind] / [advertise] (and admin) for nodes
  1-3, which the seed's members take from their [[peers]] entry; node 4's TOML is the seed's 1.4;
- the topic has a unique name instead of 'test-topic'; the continuous producer sends b"kp-%08d"
  (numbered, so loss and duplicates can be told apart) instead of "msg-<timestamp>", and the
  performance runs send "perf-before-NNNN" / "perf-after-NNNN" instead of "msg-N" twice;
- the document adds node 4 in Scenarios 1, 3 and 4 alike; here it is added once, with Scenario
  4's producer running and Scenario 3's sampler watching, and that one addition is judged by all
  three scenarios;
- the step 3.4 grep ("became leader\\|election\\|vote") also matches membership lines ("voters=")
  and node 4 taking the leader's existing vote; a match counts as an election message only if it
  shows a candidacy or a vote, leader or term other than the established one (see `is_election`).
"""

from __future__ import annotations

import math
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

import pytest
import requests
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from client_helpers import ck_consume_all, kp_consume_all
from cluster import Cluster, ClusterNode, LeaderTermSampler, NotAgreed, hold_for, round_robin, started
from harness import unique_topic, wait_until
from plan_summary import Plan
from test_add_node import add_node_args
from replication_helpers import Extras, NumberedProducers, admin_view, check_log

VOTERS = [1, 2, 3]
ALL = [1, 2, 3, 4]
PARTITIONS = 6
RF = 3
PACE_S = 0.020        # the continuous producer: one message every 20 ms
BASELINE_S = 12.0     # latency baseline measured before the addition
SAMPLE_S = 0.050      # leader / term sampling period during the addition
P99_LIMIT = 1.5       # p99 during the addition at most this times the baseline p99 ...
P99_SLACK_S = 0.015   # ... or at most this much above it: scheduler noise on 2 cores and 5 processes
PERF_MESSAGES = 1000  # the plan's throughput script

# Step 1.1's expected lines; the bootstrap line is written by the one node that formed the cluster.
STARTUP_LINES = ["✓ Raft gRPC server started", "✓ Raft message loop started", "✓ Partition Rebalancer started"]
BOOTSTRAPPED = "✓ Raft cluster bootstrapped successfully"
# tracing's format: "<RFC 3339 time>  ERROR target: message"; a panic is an error too.
ERROR_RX = r"^\S+\s+ERROR\s|panicked at"
# The step 3.4 grep (its "vote" as a word, so "voters=" does not match) and openraft's and our
# own words for a campaign or a leader change.
ELECTION_RX = r"became leader|election|\bvote\b|new candidate|become leader|Raft leader: node|no Raft leader known"
CAMPAIGN_RX = re.compile(r"became leader|election|new candidate|become leader|no Raft leader known")


# ---- shared state -------------------------------------------------------------------------------


@dataclass
class Run:
    """What one test hands the next: the topic, the Raft leader and term, the producers' records."""
    topic: str
    leader: Optional[int] = None
    term: Optional[int] = None
    producer: Optional["SteadyProducer"] = None
    extras: Extras = field(default_factory=Extras)  # the performance runs' messages
    judged_logs: dict[int, int] = field(default_factory=dict)  # log offsets judged up to, per node


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan(tester="integration/tests/test_user_plan.py")


@pytest.fixture(scope="module")
def run() -> Run:
    return Run(topic=unique_topic("test-topic"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    """Nodes 1-3 of the seed's configuration (RF 3, min_insync_replicas 2), started together;
    slot 4 is the seed's node 4 (peers 1-4), slot 5 only provides addresses for 5.2 / 5.3."""
    with started(Cluster(tmp_path_factory.mktemp("user-plan"), size=3, spare=2, name="node",
                         replication_factor=RF, min_insync_replicas=2), clean_stop=True) as c:
        yield c


# ---- helpers ------------------------------------------------------------------------------------


class SteadyProducer(NumberedProducers):
    """The plan's continuous_producer.py: one kafka-python producer with its default settings
    (idempotent, acks=all, no key: random partition), sending b"kp-%08d" on a fixed 20 ms
    schedule in a thread. Acks and errors are recorded as NumberedProducers records them (so
    `check_log` judges the log), and each ack's latency, from just before `send()` to the
    future's success callback, as (send time, seconds)."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(bootstrap, topic, list(range(PARTITIONS)), PACE_S)
        self._threads = [threading.Thread(target=self._run_kp, name=f"plan-producer-{topic}", daemon=True)]
        self.latency: list[tuple[float, float]] = []

    def _acked(self, meta, value: bytes, sent_at: float) -> None:
        now = time.monotonic()
        self._ok("kp", meta.partition, meta.offset, value)
        with self.lock:
            self.latency.append((sent_at, now - sent_at))

    def _run_kp(self) -> None:
        try:
            kp = KafkaProducer(bootstrap_servers=self.bootstrap)
        except Exception as exc:  # noqa: BLE001 - asserted by the test (no acks, an error)
            self._err("kp", b"", f"KafkaProducer(): {exc!r}")
            return
        try:
            n, due = 0, time.monotonic()
            while not self._stop.is_set():
                v = b"kp-%08d" % n
                sent_at = time.monotonic()
                try:
                    fut = kp.send(self.topic, v)
                except Exception as exc:  # noqa: BLE001 - a producer error, asserted by the test
                    self._err("kp", v, repr(exc))
                else:
                    fut.add_callback(lambda m, v=v, t=sent_at: self._acked(m, v, t))
                    fut.add_errback(lambda e, v=v: self._err("kp", v, repr(e)))
                n += 1
                self.sent["kp"] = n
                # A fixed schedule, not sleep(pace) after each send: a slow send() must not lower the rate.
                due += self.pace_s
                self._stop.wait(max(0.0, due - time.monotonic()))
            kp.flush(timeout=self.flush_timeout)
        except Exception as exc:  # noqa: BLE001 - asserted by the test
            self._err("kp", b"", f"producer: {exc!r}")
        finally:
            try:
                kp.close(timeout=10)
            except Exception as exc:  # noqa: BLE001 - asserted by the test
                self._err("kp", b"", f"close: {exc!r}")

    def latencies(self, start: float, end: float) -> list[float]:
        with self.lock:
            return [lat for t, lat in self.latency if start <= t < end]


def logged(node: ClusterNode, text: str, start: int = 0) -> list[str]:
    """Lines of the node's log (from byte `start`) containing `text`."""
    return node.log_lines(re.escape(text), start)


def log_time(line: str) -> float:
    """The epoch seconds of a log line's RFC 3339 timestamp."""
    return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()


def first_logged(cluster: Cluster, ids: list[int], text: str, marks: dict[int, int]) -> Optional[float]:
    """When `text` was first logged by any of `ids` after its mark (epoch seconds), or None."""
    times = [log_time(ln) for i in ids for ln in logged(cluster.node(i), text, marks.get(i, 0))]
    return min(times) if times else None


def parse_ids(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def is_election(line: str, leader: int, term: int) -> bool:
    """Whether a line the election grep matched shows an election: a candidacy, or a vote, leader
    or term other than the established leader's committed vote (a node taking that vote, or a
    membership line, is not one)."""
    if CAMPAIGN_RX.search(line):
        return True
    stable = f"T{term}-N{leader}:committed"
    changing = re.search(r"vote is changing from \S+ to (\S+)", line)
    if changing:
        return changing.group(1) != stable
    named = re.search(r"Raft leader: node (\d+) \(term (\d+)\)", line)
    if named:
        return (int(named.group(1)), int(named.group(2))) != (leader, term)
    votes = re.findall(r"T\d+-N\d+:\w+", line)
    return not votes or any(v != stable for v in votes)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def latency_note(name: str, values: list[float], seconds: float) -> str:
    if not values:
        return f"{name}: no acknowledged sends"
    ms = [v * 1000 for v in values]
    return (f"{name} ({seconds:.1f} s, {len(ms)} acks): p50 {percentile(ms, 50):.1f} ms, "
            f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms")


def timed_thousand(bootstrap: str, topic: str, tag: str, extras: Extras) -> float:
    """The plan's throughput script: a kafka-python producer with defaults, 1000 sends, flush;
    timed from the producer's creation to the end of flush (`time python3 ...` without the
    interpreter's start). Every acknowledged message is registered in `extras` at its offset,
    so the final read-back checks it too. Returns msg/s; raises a send's error."""
    values = [b"perf-%s-%04d" % (tag.encode(), i) for i in range(PERF_MESSAGES)]
    t0 = time.monotonic()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        futures = [producer.send(topic, v) for v in values]
        producer.flush()
        elapsed = time.monotonic() - t0
    finally:
        producer.close(timeout=10)
    for v, f in zip(values, futures):
        md = f.get(timeout=0)
        extras.present[v] = (md.partition, md.offset)
    return PERF_MESSAGES / elapsed


def expected_cli_output(cluster: Cluster, leader: int) -> str:
    """Step 1.6's expected output with this cluster's addresses (the leader's admin port)."""
    s = cluster.slots[4]
    return "\n".join([
        "Discovering cluster leader...",
        f"✓ Found leader: node {leader} (port {cluster.node(leader).admin_port})",
        "Sending add-node request to leader...",
        "✓ Node 4 addition proposed. Waiting for Raft consensus...",
        "",
        "Node Details:",
        "  ID:    4",
        f"  Kafka: {s.addr(s.kafka)}",
        f"  WAL:   {s.addr(s.wal)}",
        f"  Raft:  {s.addr(s.raft)}",
        "",
        "The node will be added to the cluster once Raft achieves consensus.",
    ])


def full_isr(cluster: Cluster, topic: str, ids: list[int]) -> dict[int, dict]:
    """partition -> its /admin/partitions entry, once every node of `ids` reports the same
    replicas, leader and ISR for every partition, every ISR equals its replica list, and every
    node of `ids` that is a replica hosts it (raises NotAgreed until then)."""
    views = {i: admin_view(cluster, i, topic) for i in ids}
    shapes = {i: {p: (e["replicas"], e["leader"], sorted(e["isr"])) for p, e in v.items()}
              for i, v in views.items()}
    if len({repr(s) for s in shapes.values()}) != 1 or len(shapes[ids[0]]) != PARTITIONS:
        raise NotAgreed(f"nodes disagree on {topic}: {shapes}")
    for p, e in views[ids[0]].items():
        if sorted(e["isr"]) != sorted(e["replicas"]):
            raise NotAgreed(f"{topic}/{p}: isr {e['isr']} != replicas {e['replicas']}")
        hosts = [i for i in e["replicas"] if i in views and views[i][p]["replica"] is not None]
        if hosts != [i for i in e["replicas"] if i in views]:
            raise NotAgreed(f"{topic}/{p}: replicas {e['replicas']}, hosted on {hosts}")
    return views[ids[0]]


def error_lines(cluster: Cluster, ids: list[int], marks: Optional[dict[int, int]] = None) -> list[str]:
    """ERROR (or panic) lines of the nodes' logs after `marks`, each cut to 300 characters."""
    marks = marks or {}
    return [f"node {i}: {ln[:300]}" for i in ids for ln in cluster.node(i).log_lines(ERROR_RX, marks.get(i, 0))]


# ---- 1.1-1.3, 2.1: three nodes, the topic ---------------------------------------------------------------


def test_1_1_to_1_3_three_nodes_start_and_the_topic_gets_the_round_robin_table(cluster, plan, run):
    mark = plan.mark()
    plan.check("s1.added", "1.1: nodes 1-3 agree on a leader within the plan's 10 s",
               cluster.formation_seconds is not None and cluster.formation_seconds <= 10,
               f"took {cluster.formation_seconds}")
    for i in VOTERS:
        n = cluster.node(i)
        want = STARTUP_LINES + [f"✓ Admin API available at {n.admin_url}/admin"]
        with plan.step("s1.added", f"1.1: node {i} logged {want}"):
            wait_until(lambda: not [w for w in want if not logged(n, w)], 10, f"node {i}'s startup lines")
    with plan.step("s1.added", f"1.1: exactly one of nodes 1-3 logged {BOOTSTRAPPED!r}"):
        wait_until(lambda: len([i for i in VOTERS if logged(cluster.node(i), BOOTSTRAPPED)]) == 1, 10,
                   "one bootstrap line")

    with plan.step("s1.added", "1.2: one node is_leader true, two false, all cluster_nodes [1, 2, 3]"):
        hs = cluster.healths(VOTERS)
        leaders = [i for i, h in hs.items() if h["is_leader"] is True]
        followers = [i for i, h in hs.items() if h["is_leader"] is False]
        assert len(leaders) == 1 and len(followers) == 2, hs
        assert all(h["cluster_nodes"] == VOTERS for h in hs.values()), hs
        run.leader, run.term = leaders[0], hs[leaders[0]]["term"]

    with plan.step("s1.added", f"1.3: KafkaAdminClient creates {run.topic} (6 partitions, RF 3), every ISR full"):
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(1))
        try:
            with warnings.catch_warnings():  # the plan's list of NewTopic is deprecated in kafka-python 3
                warnings.simplefilter("ignore", DeprecationWarning)
                admin.create_topics([NewTopic(name=run.topic, num_partitions=PARTITIONS, replication_factor=RF)])
        finally:
            admin.close()
        wait_until(lambda: full_isr(cluster, run.topic, VOTERS), 30, f"{run.topic} on nodes 1-3 with full ISRs")

    with plan.step("s2.reassigned", "2.1: node 1 logged AssignPartition with the plan's 3-node table") as s:
        rx = rf"AssignPartition topic={re.escape(run.topic)} partition=(\d+) replicas=\[([\d, ]*)\]"

        def table():
            found = {int(m.group(1)): parse_ids(m.group(2))
                     for m in map(re.compile(rx).search, cluster.node(1).log_lines(rx))}
            return found if len(found) == PARTITIONS else None

        s.detail = f"expected {round_robin(VOTERS, PARTITIONS, RF)}"
        got = wait_until(table, 10, "six AssignPartition lines on node 1")
        assert got == round_robin(VOTERS, PARTITIONS, RF), f"logged {got}"
    plan.assert_passed_since(mark)


def test_performance_before_node_addition(cluster, plan, run):
    mark = plan.mark()
    with plan.step("s4.no_errors", f"Performance (3 nodes): {PERF_MESSAGES} sends acknowledged"):
        plan.perf["before"] = timed_thousand(cluster.bootstrap(1), run.topic, "before", run.extras)
    plan.assert_passed_since(mark)


# ---- 1.4-4.3: node 4 joins under load --------------------------------------------------------------------


def test_1_4_to_4_3_node_4_joins_under_load_without_election(cluster, plan, run):
    mark = plan.mark()
    n4 = cluster.node(4)
    with plan.step("s1.added", "1.5: node 4 runs outside the cluster (status not_member)"):
        n4.start(wait=False)
        wait_until(lambda: n4.health()["status"] == "not_member", 30, "node 4 status not_member")

    prod = run.producer = SteadyProducer(cluster.bootstrap(1), run.topic)
    with prod, LeaderTermSampler(cluster, ALL, interval=SAMPLE_S) as sampler:
        with plan.step("s4.no_errors", "4.1: the continuous producer's first acks"):
            prod.wait_acks(2, timeout=30, what="before the baseline")
        # The latency baseline. The sampler runs, and health and /admin/partitions are polled
        # every 0.2 s, here as during the addition: the two windows differ by the addition alone.
        base_start = time.monotonic()
        with plan.step("s3.leader", f"3.1: nodes 1-3 agree on one leader for the {BASELINE_S:.0f} s baseline"):
            hold_for(lambda: cluster.agreement(VOTERS, voters=VOTERS)
                     and all(admin_view(cluster, i, run.topic) for i in VOTERS),
                     BASELINE_S, "the 3-node cluster before the addition", interval=0.2)
        add_start, settled = add_node_4(cluster, plan, run, sampler)
        # The producer goes on after the rebalance ("producer continues uninterrupted").
        with plan.step("s4.no_errors", "4.3: the producer is acknowledged on every partition after the rebalance"):
            prod.wait_acks(3, since=settled, timeout=30, what="after the rebalance")
    judge_producer(plan, prod, (base_start, add_start), (add_start, settled))
    plan.assert_passed_since(mark)


def add_node_4(cluster: Cluster, plan: Plan, run: Run, sampler: LeaderTermSampler) -> tuple[float, float]:
    """Steps 1.6-1.7, 2.2-2.3, 3.2-3.4: `cluster add-node 4` (the sampler running), then the
    rebalance; returns (addition start, rebalance settled) in monotonic time."""
    leader, term = run.leader, run.term
    with plan.step("s3.leader", "3.1: the leader is recorded before the addition"):
        leader, hs = cluster.agreement(VOTERS, voters=VOTERS)
        term = hs[leader]["term"]
        assert (leader, term) == (run.leader, run.term), f"was {run.leader}/{run.term}, now {leader}/{term}"
    marks = {i: cluster.node(i).log_size() for i in ALL}
    add_start, add_wall = time.monotonic(), time.time()
    out = cluster.cli(*add_node_args(cluster, 4), timeout=120)
    plan.check("s1.added", "1.6: `cluster add-node 4` exits 0", out.returncode == 0,
               f"exit {out.returncode}: {out.stdout}{out.stderr}")
    expected = expected_cli_output(cluster, leader)
    plan.check("s1.added", "1.6: the CLI prints the plan's output", expected in out.stdout,
               f"expected:\n{expected}\ngot:\n{out.stdout}{out.stderr}")
    with plan.step("s1.members", "1.7: within 5 s all 4 nodes report cluster_nodes [1, 2, 3, 4]"):
        wait_until(lambda: cluster.agreement(ALL, voters=ALL), 5, "4 nodes agreeing on 4 members", interval=0.1)
    with plan.step("s2.reassigned", "2.3: rebalance done: node 4 in 4-5 replica lists, every ISR full"):
        wait_until(lambda: rebalanced(cluster, run.topic, leader), 60, "the rebalance to settle", interval=0.2)
    settled = time.monotonic()
    # The logs are read once the latency window is over (the baseline did not read them either);
    # when the rebalancer acted is judged from the lines' own timestamps.
    with plan.step("s2.triggered", "2.2: the rebalancer logs its three lines"):
        wait_until(lambda: all(first_logged(cluster, ALL, t, marks) for t in rebalance_lines(run.topic)),
                   30, "the rebalancer's lines", interval=0.2)
    judge_addition(cluster, plan, run, out, marks, add_wall, (leader, term), sampler, add_start)
    return add_start, settled


def rebalance_lines(topic: str) -> list[str]:
    return ["Cluster membership changed: 3 → 4 nodes - triggering rebalance",
            f"Rebalancing topic '{topic}' across 4 nodes", "✓ Rebalancing complete"]


def rebalanced(cluster: Cluster, topic: str, leader: int) -> dict[int, dict]:
    """The leader's rebalancer has no move left for voters 1-4, every ISR is full, and node 4
    holds 4-5 replicas of the topic (raises NotAgreed until then)."""
    status = cluster.node(leader).get("/admin/rebalance").json()
    if status["voters"] != ALL or status["moves"] or not status["complete"]:
        raise NotAgreed(f"rebalance status {status}")
    parts = full_isr(cluster, topic, ALL)
    on4 = sum(4 in e["replicas"] for e in parts.values())
    if not 4 <= on4 <= 5:
        raise NotAgreed(f"node 4 holds {on4} replicas: {[e['replicas'] for e in parts.values()]}")
    return parts


def judge_addition(cluster, plan, run, out, marks, add_wall, stable, sampler, add_start) -> None:
    leader, term = stable
    for i in ALL:
        plan.check("s1.added", f"1.7: node {i} logged ConfChange with voters {{1, 2, 3, 4}}",
                   bool(cluster.node(i).log_lines(r"ConfChange applied .*voters=\{1, 2, 3, 4\}", marks[i])),
                   f"node {i} ConfChange lines: {cluster.node(i).log_lines('ConfChange')}")
    with plan.step("s1.no_election", "1.7: the same node leads, same term, after the addition"):
        now, hs = cluster.agreement(ALL, voters=ALL)
        assert (now, hs[now]["term"]) == (leader, term), f"was {leader}/{term}: {hs}"
    judge_stability(cluster, plan, marks, stable, sampler, add_start)
    judge_rebalance(cluster, plan, run, marks, add_wall)
    errors = error_lines(cluster, ALL, marks)
    plan.check("s2.no_errors", "2.2: no ERROR line in any node log during the rebalance", not errors, f"{errors[:5]}")
    stuck = [ln for i in ALL for ln in cluster.node(i).log_lines(r"WARN.*rebalancer", marks[i])]
    plan.check("s2.no_errors", "2.2: no rebalancer warning (a refused or retried step)", not stuck, f"{stuck[:5]}")
    errors = error_lines(cluster, ALL)
    plan.check("s1.no_errors", "1.7: no ERROR line in any node log up to node 4's addition", not errors, f"{errors[:5]}")
    run.judged_logs = {i: cluster.node(i).log_size() for i in ALL}


def judge_stability(cluster, plan, marks, stable, sampler, add_start) -> None:
    """Scenario 3 (and Scenario 1's 'No leader election') from the samples and the logs."""
    leader, term = stable
    samples, during = sampler.samples, len(sampler.since(add_start))
    plan.check("s3.leader", "3.3: leader sampled every 50 ms on every voter during the addition",
               during >= 20, f"{during} samples")
    moved = [s for s in samples if s[2] != leader]
    plan.check("s3.leader", f"3.3: every sample names node {leader} as leader", not moved, f"{moved[:5]}")
    terms = [s for s in samples if s[3] != term]
    plan.check("s3.term", f"3.3: every sample shows term {term}", bool(samples) and not terms, f"{terms[:5]}")
    with plan.step("s3.term", "3.3: all 4 nodes report the same term after the addition"):
        _now, hs = cluster.agreement(ALL, voters=ALL)
        assert all(h["term"] == term for h in hs.values()), hs
    grep = {i: cluster.node(i).log_lines(ELECTION_RX, marks[i]) for i in ALL}
    elections = [f"node {i}: {ln}" for i, lines in grep.items() for ln in lines if is_election(ln, leader, term)]
    for box in ("s3.no_elections", "s1.no_election"):
        plan.check(box, "3.4: no election message in any log after the addition started", not elections,
                   f"{elections[:5]}")
    seed_grep = sum(len(cluster.node(i).log_lines(r"became leader|election|vote", marks[i])) for i in ALL)
    plan.note(f"Leader: node {leader}, term {term} in all {len(samples)} health samples, {during} of "
              f"them from the addition on ({len(sampler.misses)} unanswered); the step 3.4 grep matched {seed_grep} lines "
              f"after the addition, {len(elections)} of them about an election")


def judge_rebalance(cluster, plan, run, marks, add_wall) -> None:
    """Scenario 2: the rebalancer's lines and timing, its proposals, the final layout."""
    lines = rebalance_lines(run.topic)
    when = {t: first_logged(cluster, ALL, t, marks) for t in lines}
    trigger = when[lines[0]]
    plan.check("s2.triggered", "2.2: 'Cluster membership changed: 3 → 4 nodes' within 30 s of add-node",
               trigger is not None and trigger - add_wall <= 30, f"logged at {trigger} (add-node at {add_wall})")
    for t in lines[1:]:
        plan.check("s2.triggered", f"2.2: {t!r} logged", when[t] is not None, "not logged")

    rx = re.compile(rf"Proposed new assignment topic={re.escape(run.topic)} partition=(\d+) "
                    r"replicas=\[([\d, ]*)\] \(was \[([\d, ]*)\]\)")
    proposed = {int(m.group(1)): (parse_ids(m.group(2)), parse_ids(m.group(3)))
                for i in ALL for m in map(rx.search, cluster.node(i).log_lines(rx.pattern, marks[i]))}
    initial = round_robin(VOTERS, PARTITIONS, RF)
    plan.check("s2.reassigned", "2.3: 'Proposed new assignment' lines for the topic, each from the initial table",
               bool(proposed) and all(was == initial[p] for p, (_r, was) in proposed.items()), f"{proposed}")
    plan.check("s2.node4", "2.3: every proposed assignment puts node 4 in",
               bool(proposed) and all(4 in r for r, _was in proposed.values()), f"{proposed}")

    parts: dict[int, dict] = {}
    with plan.step("s2.reassigned", "2.3: final layout: 3 distinct replicas each, as proposed, 4-5 per node") as s:
        parts = full_isr(cluster, run.topic, ALL)
        final = {p: e["replicas"] for p, e in parts.items()}
        s.detail = f"final {final}"
        want = {p: sorted(proposed[p][0] if p in proposed else initial[p]) for p in range(PARTITIONS)}
        assert all(len(set(r)) == RF for r in final.values()), final
        assert {p: sorted(r) for p, r in final.items()} == want, f"proposed sets {want}"
        per_node = {i: sum(i in r for r in final.values()) for i in ALL}
        assert all(4 <= c <= 5 for c in per_node.values()), f"replicas per node {per_node}"
    with plan.step("s2.node4", "2.3: node 4 in 4-5 replica lists, hosting each, in each ISR") as s:
        on4 = [p for p, e in parts.items() if 4 in e["replicas"]]
        s.detail = f"node 4 in {on4}"
        assert 4 <= len(on4) <= 5
        mine = admin_view(cluster, 4, run.topic)
        assert all(mine[p]["replica"] is not None and 4 in parts[p]["isr"] for p in on4), mine
    if trigger and when[lines[2]]:
        plan.note(f"Rebalance: triggered {trigger - add_wall:.2f} s after `cluster add-node`, complete after "
                  f"{when[lines[2]] - add_wall:.2f} s (log times; {len(proposed)} partitions moved); final replicas "
                  + ", ".join(f"P{p} {e['replicas']}" for p, e in sorted(parts.items())))


def baseline_p99(prod: SteadyProducer, baseline: tuple[float, float], length: float) -> float:
    """The largest p99 over consecutive baseline windows `length` seconds long (windows with
    fewer than 10 acks are skipped; the whole baseline if none is that long)."""
    start, end = baseline
    p99s = []
    while start + length <= end:
        window = prod.latencies(start, start + length)
        if len(window) >= 10:
            p99s.append(percentile(window, 99))
        start += length
    return max(p99s) if p99s else percentile(prod.latencies(*baseline), 99)


def judge_producer(plan: Plan, prod: SteadyProducer, baseline: tuple[float, float],
                   during: tuple[float, float]) -> None:
    """Scenario 4's producer side: errors, every send acknowledged, p99 latency during the addition."""
    plan.check("s4.no_errors", "4.3: no producer error", not prod.errors, f"{prod.errors[:5]}")
    plan.check("s4.no_errors", "4.3: every message sent was acknowledged", prod.sent["kp"] == len(prod.acks),
               f"sent {prod.sent['kp']}, acknowledged {len(prod.acks)}")
    base, dur = prod.latencies(*baseline), prod.latencies(*during)
    ok = len(base) >= 100 and len(dur) >= 10
    # The addition lasts a few seconds, so its p99 comes from ~100 acks: nearly its maximum. The
    # baseline is judged with the same estimator: the p99 of each baseline window as long as the
    # addition, and the worst of those, i.e. what a quiet window of that length can show. A spike
    # caused by the addition still stands out against it.
    # A spike is a rise both relative and absolute: on this 2-core machine quiet windows of the
    # baseline differ from each other by 8-20 ms of scheduling alone (CI saw 12 ms against 20 ms
    # with no stall in the log), while a stall a client notices (an election, a blocked append)
    # costs hundreds of milliseconds.
    p99s = (baseline_p99(prod, baseline, during[1] - during[0]), percentile(dur, 99)) if ok else (None, None)
    limit = max(P99_LIMIT * p99s[0], p99s[0] + P99_SLACK_S) if ok else None
    plan.check("s4.latency", f"4.3: p99 during the addition <= max({P99_LIMIT} x baseline p99, "
               f"baseline p99 + {P99_SLACK_S * 1000:.0f} ms)",
               ok and p99s[1] <= limit,
               f"baseline p99 {p99s[0] * 1000:.1f} ms (worst {during[1] - during[0]:.1f} s window), during "
               f"{p99s[1] * 1000:.1f} ms ({len(base)} / {len(dur)} acks)"
               if ok else f"too few acks to judge: {len(base)} before, {len(dur)} during")
    plan.note("Producer (kafka-python defaults, 1 msg / 20 ms) latency, send to ack:")
    plan.note("  " + latency_note("before", base, baseline[1] - baseline[0]))
    plan.note("  " + latency_note("during add+rebalance", dur, during[1] - during[0])
              + (f"; p99 ratio {p99s[1] / p99s[0]:.2f} (limit {limit / p99s[0]:.2f})" if ok else ""))
    with prod.lock:
        slow = sorted(((lat, t) for t, lat in prod.latency if during[0] <= t < during[1]), reverse=True)[:5]
    plan.note("  slowest during: " + ", ".join(f"{lat * 1000:.0f} ms sent at +{t - during[0]:.2f} s" for lat, t in slow))


# ---- after the addition -------------------------------------------------------------------------------


def test_performance_after_node_addition(cluster, plan, run):
    mark = plan.mark()
    with plan.step("s4.no_errors", f"Performance (4 nodes): {PERF_MESSAGES} sends acknowledged"):
        plan.perf["after"] = timed_thousand(cluster.bootstrap(1), run.topic, "after", run.extras)
    plan.assert_passed_since(mark)


def test_4_4_every_acknowledged_message_is_read_back_once(cluster, plan, run):
    mark = plan.mark()
    prod = run.producer
    with plan.step("s4.no_loss", "4.4: every acknowledged message read back exactly once (confluent-kafka)") as s:
        assert prod is not None, "the continuous producer never ran"
        got = ck_consume_all(cluster.bootstrap(1), run.topic, PARTITIONS, timeout=60)
        consumed = sum(len(r) for r in got.values())
        produced = len(prod.acks) + len(run.extras.present)
        s.detail = f"consumed {consumed}, acknowledged {produced}"
        check_log(got, prod, run.extras)
        assert consumed == produced
        plan.note(f"Messages: {prod.sent['kp']} sent and {len(prod.acks)} acknowledged by the continuous producer, "
                  f"{len(run.extras.present)} by the performance runs; {consumed} consumed")
    with plan.step("s4.no_loss", "4.4: the plan's consumer (kafka-python) counts as many"):
        kp = kp_consume_all(cluster.bootstrap(1), run.topic, PARTITIONS, timeout=60)
        assert sum(len(r) for r in kp.values()) == consumed, {p: len(r) for p, r in kp.items()}
    plan.assert_passed_since(mark)


# ---- 5.1-5.3: refusals --------------------------------------------------------------------------------------


def unchanged(cluster: Cluster, run: Run) -> None:
    """Still voters 1-4, no learner, the same leader and term: the refused request did nothing."""
    leader, hs = cluster.agreement(ALL, voters=ALL)
    assert leader == run.leader and all(h["term"] == run.term and h["learners"] == [] for h in hs.values()), hs


def test_5_failure_scenarios_are_refused(cluster, plan, run):
    mark = plan.mark()
    s1, s5 = cluster.slots[1], cluster.slots[5]
    config = str(cluster.config_path(1))
    dup = cluster.cli("cluster", "add-node", "1", "--kafka", s1.addr(s1.kafka), "--wal", s1.addr(s1.wal),
                      "--raft", s1.addr(s1.raft), "--config", config)
    plan.check("f.duplicate", "5.1: exits non-zero with '✗ Failed to add node: Node 1 already exists in cluster'",
               dup.returncode != 0 and "✗ Failed to add node: Node 1 already exists in cluster" in dup.stdout + dup.stderr,
               f"exit {dup.returncode}: {dup.stdout}{dup.stderr}")
    with plan.step("f.duplicate", "5.1: membership unchanged"):
        unchanged(cluster, run)

    with plan.step("f.follower", "5.2: a follower's /admin/add-node answers the plan's JSON"):
        follower = next(i for i in ALL if not cluster.health(i)["is_leader"])
        body = {"node_id": 5, "kafka_addr": s5.addr(s5.kafka), "wal_addr": s5.addr(s5.wal),
                "raft_addr": s5.addr(s5.raft)}
        r = requests.post(f"{cluster.node(follower).admin_url}/admin/add-node", json=body, timeout=10)
        assert r.json() == {"success": False, "message": "Cannot add node: this node is not the leader"}, \
            f"node {follower} answered {r.status_code} {r.text}"
    with plan.step("f.follower", "5.2: membership unchanged"):
        unchanged(cluster, run)

    bad = cluster.cli("cluster", "add-node", "5", "--kafka", "localhost", "--wal", s5.addr(s5.wal),
                      "--raft", s5.addr(s5.raft), "--config", config)
    plan.check("f.invalid", "5.3: exits non-zero with '✗ Failed to add node: Invalid address format'",
               bad.returncode != 0 and "✗ Failed to add node: Invalid address format" in bad.stdout + bad.stderr,
               f"exit {bad.returncode}: {bad.stdout}{bad.stderr}")
    with plan.step("f.invalid", "5.3: membership unchanged"):
        unchanged(cluster, run)
    plan.assert_passed_since(mark)


# ---- the summary ----------------------------------------------------------------------------------------------


def test_summary_every_box_is_ticked(cluster, plan, run):
    """The rest of the run's logs, then the verdict: every box of the template ticked (conftest
    prints the filled-in template after the run)."""
    errors = error_lines(cluster, ALL, run.judged_logs)
    plan.check("s1.no_errors", "no ERROR line in any node log after the addition (performance, read-back, 5.x)",
               not errors, f"{errors[:5]}")
    unticked = plan.unticked()
    assert not unticked, f"unticked boxes of the test plan: {unticked}; failed checks:\n" + "\n".join(
        f"- [{c.box}] {c.what}: {c.detail[:300]}" for c in plan.failures())
