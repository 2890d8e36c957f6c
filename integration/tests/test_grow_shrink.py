"""Growing and shrinking a running cluster with `chronik-server cluster add-node` / `remove-node`.

Module cluster: nodes 1-3 (RF 3, min_insync_replicas 2), spare slots 4-7 (slot k's TOML lists
peers 1..k, as an operator would write it for the k-th node).

1. Refusals first, while the cluster has three nodes: remove-node on a follower (421), of a
   non-member (409), below a topic's replication factor (409 naming the topic), and the CLI's
   `✗ Failed to remove node: ...`; none of them may change anything.
2. 3 → 4 → 5 → 4 → 3 with the CLI while two numbered producers (test_replication's
   NumberedProducers) write a 6-partition RF-3 topic. After every step the running members
   agree, the rebalance is complete, every partition has 3 distinct in-sync replicas on current
   voters only, evenly spread (⌊18/n⌋..⌈18/n⌉ slots per voter). A removed node learns from
   its leader that it was removed (`not_member`) and does not campaign while left running past
   its election timeout; then it is stopped by pid. Leader and term of nodes 1-3, sampled every 50 ms, never change; every ack
   is read back exactly once.
3. Removed ids are retired; two add-node requests racing go one at a time (a loser gets 409 and
   joins when asked again); remove-node run with the leaving node's own config.
4. Own cluster with a 2 MB/s copy throttle: node 4 is SIGKILLed halfway through copying a
   partition; the move waits (old replicas stay, in the ISR), producers keep their acks, and the
   move finishes once node 4 is back. The copy rate observed on node 4 is checked against the
   throttle.

Problems with the CLI's printed lines are collected and asserted at the end of a test, so one
run reports all of them and the cluster checks after them still run.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from typing import Optional

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from client_helpers import ck_consume_all, ck_produce_waiting
from cluster import Cluster, LeaderTermSampler, NotAgreed, hold_for, started
from harness import unique_topic, wait_until
from test_add_node import add_node_args
from replication_helpers import Extras, NumberedProducers, check_log

VOTERS = [1, 2, 3]
PARTITIONS = 6
RF = 3
SLOTS = PARTITIONS * RF
# How long a removed node is watched for a campaign: beyond its longest election timeout (3 s).
REMOVED_NODE_QUIET_S = 4.0
PROGRESS = re.compile(r"^Rebalancing \[([█░]{30})\] (\d+)/(\d+) partitions moved$")
ELECTION_LINES = r"Raft leader: node|new candidate|become leader"

# Scenario 4: the copy throttle and how much there is to copy.
RATE = 2_000_000          # [replication] rebalance_max_bytes_per_sec
PRELOAD_BYTES = 24_000_000
PRELOAD_MSG = 10_000      # bytes per preloaded value (incompressible)
# Node 4 is dead this long while its moves must stay put: past session_timeout_ms (6000), when
# the leader gives up on a silent broker.
DEAD_HOLD_S = 7.0


@pytest.fixture(scope="module")
def gs(tmp_path_factory) -> Cluster:
    with started(Cluster(tmp_path_factory.mktemp("grow-shrink"), size=3, spare=4, name="gnode",
                         replication_factor=RF, min_insync_replicas=2)) as c:
        yield c


# ---- views -----------------------------------------------------------------------------------


def post(c: Cluster, i: int, path: str, body: dict, timeout: float = 30) -> tuple[int, dict]:
    r = requests.post(f"{c.admin_url(i)}{path}", json=body, timeout=timeout)
    return r.status_code, r.json()


def rebalance(c: Cluster, i: int) -> dict:
    return c.node(i).get("/admin/rebalance").json()


def topic_view(c: Cluster, i: int, topic: str) -> dict[int, dict]:
    """partition -> node i's /admin/partitions entry."""
    return {e["partition"]: e for e in c.node(i).partitions() if e["topic"] == topic}


def settled(c: Cluster, topic: str, voters: list[int], leader: int) -> tuple[dict[int, dict], Counter]:
    """Raises NotAgreed until: the running `voters` agree on `leader` and on cluster_nodes ==
    voters; the leader's rebalance is complete with nothing draining; on every voter each
    partition of `topic` has the same RF distinct replicas, all in the ISR, all on voters, each
    hosted by its node and by no other voter; every voter holds ⌊18/n⌋..⌈18/n⌉ slots.
    Returns the leader's view and the slots per voter."""
    voters = sorted(voters)
    now, _ = c.agreement(voters, voters=voters)
    if now != leader:
        raise NotAgreed(f"leader is {now}, not {leader}")
    st = rebalance(c, leader)
    if not (st["active"] and st["voters"] == voters and st["draining"] == [] and st["moves"] == []
            and st["complete"]):
        raise NotAgreed(f"rebalance on node {leader}: {st}")
    views = {i: topic_view(c, i, topic) for i in voters}
    lead = views[leader]
    if sorted(lead) != list(range(PARTITIONS)):
        raise NotAgreed(f"node {leader} lists partitions {sorted(lead)}")
    load: Counter = Counter()
    for p, e in lead.items():
        reps = e["replicas"]
        if len(reps) != RF or len(set(reps)) != RF or not set(reps) <= set(voters):
            raise NotAgreed(f"{topic}/{p}: replicas {reps} (voters {voters})")
        if sorted(e["isr"]) != sorted(reps):
            raise NotAgreed(f"{topic}/{p}: ISR {e['isr']} is not the replicas {reps}")
        for i in voters:
            v = views[i][p]
            if (sorted(v["replicas"]), sorted(v["isr"]), v["leader"]) != (sorted(reps), sorted(e["isr"]), e["leader"]):
                raise NotAgreed(f"{topic}/{p}: node {i} sees {v['replicas']} isr {v['isr']} leader {v['leader']}, "
                                f"node {leader} sees {reps} isr {e['isr']} leader {e['leader']}")
            if (v["replica"] is not None) != (i in reps):
                raise NotAgreed(f"{topic}/{p}: node {i} replica {v['replica']} but replicas are {reps}")
        load.update(reps)
    lo, hi = SLOTS // len(voters), -(-SLOTS // len(voters))
    if any(not lo <= load[v] <= hi for v in voters):
        raise NotAgreed(f"{topic}: slots per voter {dict(load)} not within {lo}..{hi}")
    return lead, load


def wait_settled(c: Cluster, topic: str, voters: list[int], leader: int, timeout: float, what: str):
    return wait_until(lambda: settled(c, topic, voters, leader), timeout,
                      f"{what}: cluster {sorted(voters)} settled, {topic} evenly on it", interval=0.25)


def create_topic(c: Cluster, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap(1)})
    for f in admin.create_topics([NewTopic(topic, partitions, RF)]).values():
        f.result(30)


def cli_problems(out, action: str, node: int, voters: list[int], moves: int) -> list[str]:
    """What is wrong with a successful add-node / remove-node's output: the fixed lines, and
    progress lines that only go forward, end at moves/moves (the number of partitions the leader
    proposed to move in this step) right before `✓ Rebalancing complete`."""
    lines = out.stdout.splitlines()
    if action == "add":
        want = [f"✓ Node {node} addition proposed. Waiting for Raft consensus...",
                f"✓ Node {node} is a voting member: cluster nodes {voters}",
                f"Rebalancing partitions onto node {node}...", "✓ Rebalancing complete"]
    else:
        want = [f"✓ Node {node} is draining: moving its replicas to the other nodes...", "✓ Rebalancing complete",
                f"✓ Node {node} removed from the cluster: cluster nodes {voters}"]
    problems = [f"{action} {node}: missing line {w!r}" for w in want if w not in lines]
    progress = [(i, PROGRESS.match(ln)) for i, ln in enumerate(lines) if PROGRESS.match(ln)]
    if not progress:
        problems.append(f"{action} {node}: no progress line")
    else:
        done = [(int(m[2]), int(m[3])) for _i, m in progress]
        if any(b[0] < a[0] for a, b in zip(done, done[1:])):
            problems.append(f"{action} {node}: progress went backwards: {done}")
        for _i, m in progress:
            d, t = int(m[2]), int(m[3])
            cells = m[1].count("█")
            if cells != (d * 30 // t if t else 30):
                problems.append(f"{action} {node}: bar {m[0]!r} does not show {d}/{t}")
        last_i, last = progress[-1]
        if (int(last[2]), int(last[3])) != (moves, moves):
            problems.append(f"{action} {node}: last progress line {last[0]!r}, the leader proposed {moves} moves "
                            f"(progress lines: {[m[0][-28:] for _i, m in progress]})")
        if last_i + 1 >= len(lines) or lines[last_i + 1] != "✓ Rebalancing complete":
            problems.append(f"{action} {node}: the last progress line is not followed by '✓ Rebalancing complete'")
    if problems:
        problems.append(f"{action} {node} printed:\n{out.stdout}")
    return problems


# ---- 1. refusals ----------------------------------------------------------------------------


def test_remove_node_refusals_change_nothing(gs):
    c = gs
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    term = c.health(leader)["term"]
    # The rebalancer publishes its status on its first tick (500 ms) as the leader.
    wait_until(lambda: rebalance(c, leader)["active"], 10, f"node {leader}'s rebalancer active")
    # An RF-3 topic: on three nodes, none can go.
    topic = unique_topic("refuse")
    create_topic(c, topic, partitions=1)
    follower = next(i for i in VOTERS if i != leader)

    status, body = post(c, follower, "/admin/remove-node", {"node_id": follower})
    assert (status, body) == (421, {"success": False, "message": "Cannot remove node: this node is not the leader"})

    status, body = post(c, leader, "/admin/remove-node", {"node_id": 9})
    assert (status, body) == (409, {"success": False,
                                     "message": "Cannot remove node 9: it is not a voting member of the cluster"})
    # A configured spare that is not a member is no voter either.
    status, body = post(c, leader, "/admin/remove-node", {"node_id": 4})
    assert (status, body["message"]) == (409, "Cannot remove node 4: it is not a voting member of the cluster")

    below_rf = f"Cannot remove node 3: topic '{topic}' has replication factor 3 and only 2 node(s) would remain"
    status, body = post(c, leader, "/admin/remove-node", {"node_id": 3})
    assert (status, body) == (409, {"success": False, "message": below_rf})

    # The CLI, from a follower's config (it finds the leader itself).
    out = c.cli("cluster", "remove-node", "3", "--config", str(c.config_path(follower)))
    assert out.returncode != 0, out.stdout
    assert f"✗ Failed to remove node: {below_rf}" in out.stdout.splitlines(), out.stdout
    out = c.cli("cluster", "remove-node", "9", "--config", str(c.config_path(1)))
    assert out.returncode != 0, out.stdout
    assert ("✗ Failed to remove node: Cannot remove node 9: it is not a voting member of the cluster"
            in out.stdout.splitlines()), out.stdout

    # Nothing moved: no drain, no plan, same leader and term.
    now, hs = c.agreement(VOTERS, voters=VOTERS)
    assert now == leader and all(h["term"] == term for h in hs.values()), hs
    st = rebalance(c, leader)
    assert st["draining"] == [] and st["moves"] == [] and st["voters"] == VOTERS, st


# ---- 2. 3 → 4 → 5 → 4 → 3 under load ----------------------------------------------------------


def test_grow_to_five_and_shrink_back_to_three_under_load(gs):
    c = gs
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    term = c.health(leader)["term"]
    topic = unique_topic("grow-shrink")
    create_topic(c, topic)
    wait_settled(c, topic, VOTERS, leader, 30, "topic created")

    marks = {i: c.node(i).log_size() for i in VOTERS}
    problems: list[str] = []
    timings: list[str] = []
    voters = list(VOTERS)
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods, \
            LeaderTermSampler(c, VOTERS) as sampler:
        prods.wait_acks(20, timeout=30, what="before the first step")
        for action, node in [("add", 4), ("add", 5), ("remove", 5), ("remove", 4)]:
            mark = c.node(leader).log_size()
            if action == "add":
                c.node(node).start(wait=False)
                wait_until(lambda: c.health(node)["status"] == "not_member", 30,
                           f"node {node} running outside the membership")
                voters = sorted(voters + [node])
                t0 = time.monotonic()
                out = c.cli(*add_node_args(c, node), timeout=180)
            else:
                voters = [v for v in voters if v != node]
                t0 = time.monotonic()
                out = c.cli("cluster", "remove-node", str(node), "--config", str(c.config_path(1)), timeout=180)
            took = time.monotonic() - t0
            assert out.returncode == 0, f"{action}-node {node} failed:\n{out.stdout}{out.stderr}"
            _, load = wait_settled(c, topic, voters, leader, 60, f"after {action}-node {node}")
            moves = len(c.node(leader).log_lines(r"Proposed new assignment topic=", mark))
            timings.append(f"{action} {node}: CLI {took:.1f}s, {moves} moves, slots {dict(sorted(load.items()))}")
            problems += cli_problems(out, action, node, voters, moves)

            if action == "remove":
                gone = c.node(node)
                # Its replicas were moved away, so it deleted them.
                wait_until(lambda: all(e["replica"] is None for e in topic_view(c, node, topic).values()), 15,
                           f"removed node {node} hosting no replica of {topic}")
                # It never applies its own removal (the leader stops sending it the log), so it
                # must learn of it from its peers and stop taking part in elections: a campaign
                # would send vote requests to the voters that carry on without it.
                wait_until(lambda: c.health(node)["status"] == "not_member", 15,
                           f"removed node {node} learning it was removed")
                hold_for(lambda: c.health(node)["term"] == term, REMOVED_NODE_QUIET_S,
                         f"removed node {node} staying out of elections")
                rc = c.stop(node)
                if rc != 0:
                    problems.append(f"removed node {node} exited with {rc} on SIGTERM:\n{gone.log_tail(30)}")
                now, hs = c.agreement(voters, voters=voters)
                assert now == leader and all(h["term"] == term for h in hs.values()), hs
            # The producers are still served after every step.
            prods.wait_acks(10, since=time.monotonic(), timeout=30, what=f"after {action}-node {node}")
    print("\n".join(timings))
    assert prods.errors == [], f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    check_log(ck_consume_all(",".join(c.bootstrap(i) for i in VOTERS), topic, PARTITIONS, timeout=60), prods)

    assert len(sampler.samples) > 100, f"{len(sampler.samples)} samples, {len(sampler.misses)} misses"
    changed = sampler.changes(leader, term)
    assert not changed, f"leader/term of nodes 1-3 changed (was {leader}/{term}): {changed[:5]}"
    for i in VOTERS:
        campaign = c.node(i).log_lines(ELECTION_LINES, marks[i])
        assert not campaign, f"node {i} logged an election: {campaign[:5]}"
    assert not problems, "\n".join(problems)


# ---- 3. retired ids, racing additions ----------------------------------------------------------


def test_removed_ids_are_retired_and_racing_adds_go_one_at_a_time(gs):
    c = gs
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    term = c.health(leader)["term"]
    if c.node(4).starts == 0 or c.node(5).starts == 0:
        pytest.skip("needs test_grow_to_five_and_shrink_back_to_three_under_load to have removed nodes 4 and 5")

    for i in (4, 5):
        s = c.slots[i]
        body = {"node_id": i, "kafka_addr": s.addr(s.kafka), "wal_addr": s.addr(s.wal), "raft_addr": s.addr(s.raft)}
        status, reply = post(c, leader, "/admin/add-node", body)
        assert (status, reply) == (409, {"success": False,
                                         "message": f"Node {i} was removed from the cluster; node ids are never reused"})
    out = c.cli(*add_node_args(c, 4))
    assert out.returncode != 0, out.stdout
    assert ("✗ Failed to add node: Node 4 was removed from the cluster; node ids are never reused"
            in out.stdout.splitlines()), out.stdout

    # Two fresh nodes, both asked for at the same instant. An addition holds the leader's
    # one-change-at-a-time flag for only ~30-40 ms here, so the two normally overlap and one is
    # refused; if one arrived after the other finished, both succeeding is right too.
    for i in (6, 7):
        c.node(i).start(wait=False)
    for i in (6, 7):
        wait_until(lambda i=i: c.health(i)["status"] == "not_member", 30, f"node {i} running outside the membership")
    barrier = threading.Barrier(2)
    replies: dict[int, tuple[float, float, int, dict]] = {}

    def add(i: int) -> None:
        s = c.slots[i]
        body = {"node_id": i, "kafka_addr": s.addr(s.kafka), "wal_addr": s.addr(s.wal), "raft_addr": s.addr(s.raft)}
        barrier.wait(10)
        t0 = time.monotonic()
        status, reply = post(c, leader, "/admin/add-node", body, timeout=120)
        replies[i] = (t0, time.monotonic(), status, reply)

    with LeaderTermSampler(c, VOTERS) as sampler:
        threads = [threading.Thread(target=add, args=(i,)) for i in (6, 7)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        print(f"racing adds: { {i: (round(b - a, 3), s, r) for i, (a, b, s, r) in replies.items()} }")
        assert sorted(replies) == [6, 7], replies
        won = sorted(i for i, r in replies.items() if r[2] == 200)
        lost = sorted(i for i, r in replies.items() if r[2] != 200)
        assert won, f"neither addition succeeded: {replies}"
        for i in won:
            assert replies[i][3]["success"] is True, replies[i]
        for i in lost:
            assert replies[i][2:] == (409, {"success": False,
                                            "message": "Cannot add node: a membership change is in progress"}), replies[i]
        # The membership is exactly the winners, on every member; a loser is still outside.
        members = sorted(VOTERS + won)
        assert c.wait_for_leader(30, ids=members, voters=members) == leader
        hs = c.healths(members)
        assert all(h["learners"] == [] for h in hs.values()), hs
        for i in lost:
            assert c.health(i)["status"] == "not_member", c.health(i)
            # Refused only because of the race: asked again, it joins.
            out = c.cli(*add_node_args(c, i), timeout=180)
            assert out.returncode == 0, out.stdout + out.stderr
        members = [1, 2, 3, 6, 7]
        assert c.wait_for_leader(30, ids=members, voters=members) == leader
        # The topics of the earlier tests spread over the five nodes.
        for t in {e["topic"] for e in c.node(leader).partitions()}:
            if t.startswith("grow-shrink"):
                wait_settled(c, t, members, leader, 90, "after the racing additions")

        # remove-node run with the leaving node's own config, whose peers include itself (what an
        # operator on that host has at hand): the removed node keeps listing itself as a voter,
        # so the command must not wait for it to agree.
        t0 = time.monotonic()
        out = c.cli("cluster", "remove-node", "7", "--config", str(c.config_path(7)), timeout=180)
        took = time.monotonic() - t0
        members = [1, 2, 3, 6]
        for t in {e["topic"] for e in c.node(leader).partitions()}:
            if t.startswith("grow-shrink"):
                wait_settled(c, t, members, leader, 60, "after remove-node 7")
        rc = c.stop(7)
    changed = sampler.changes(leader, term)
    assert not changed, f"leader/term of nodes 1-3 changed (was {leader}/{term}): {changed[:5]}"
    assert rc == 0, f"removed node 7 exited with {rc} on SIGTERM"
    assert out.returncode == 0, f"remove-node 7 with node 7's config, after {took:.0f}s:\n{out.stdout}{out.stderr}"
    assert "✓ Node 7 removed from the cluster: cluster nodes [1, 2, 3, 6]" in out.stdout.splitlines(), out.stdout


# ---- 4. the new node dies mid-copy -------------------------------------------------------------


@pytest.fixture
def slow(tmp_path) -> Cluster:
    with started(Cluster(tmp_path / "throttled", size=3, spare=1, name="tnode", replication_factor=RF,
                         min_insync_replicas=2, replication={"rebalance_max_bytes_per_sec": RATE})) as c:
        yield c


def preload(bootstrap: str, topic: str, total_bytes: int = PRELOAD_BYTES, batch_bytes: int = 1_000_000) -> Extras:
    """`total_bytes` of incompressible values in batches up to `batch_bytes` (librdkafka's
    default), acks=all, round-robin over the partitions; each is recorded where it was
    acknowledged, for check_log."""
    extras = Extras()
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "batch.size": batch_bytes,
                  "linger.ms": 20, "compression.type": "none", "client.id": "chronik-it-preload"})
    rnd = random.Random(topic)
    failed: list[str] = []

    def done(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            extras.present[msg.value()] = (msg.partition(), msg.offset())

    for n in range(total_bytes // PRELOAD_MSG):
        value = b"pre-%06d-" % n + rnd.randbytes(PRELOAD_MSG - 11)
        ck_produce_waiting(p, topic, value, n % PARTITIONS, done)
        p.poll(0)
    assert p.flush(120) == 0, "preload still queued after 120 s"
    assert not failed, f"preload failures: {failed[:5]}"
    return extras


class CopyMeter:
    """Node `node`'s bytes on disk for `topic` (sum of its replicas' size_bytes) every 0.2 s."""

    def __init__(self, c: Cluster, node: int, topic: str):
        self.c, self.node, self.topic = c, node, topic
        self.samples: list[tuple[float, int, dict[int, int]]] = []  # (time, bytes, partition -> LEO)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """One sample now (also called by the test right before it kills the node)."""
        try:
            view = topic_view(self.c, self.node, self.topic)
        except Exception:  # noqa: BLE001 - node 4 is dead for a while on purpose
            return
        reps = {p: e["replica"] for p, e in view.items() if e["replica"] is not None}
        self.samples.append((time.monotonic(), sum(r["size_bytes"] for r in reps.values()),
                             {p: r["log_end_offset"] for p, r in reps.items()}))

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def __enter__(self) -> "CopyMeter":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> bool:
        self._stop.set()
        self._thread.join(10)
        return False

    def window(self, start: float, end: float, bytes_before: Optional[float] = None) -> Optional[tuple[float, int, float]]:
        """(seconds, bytes, bytes/s) copied from `start` until the copy was over: the first sample
        that reached the window's final size (later growth is the producers' writes). The bytes
        at `start` are the first sample's, or the last sample taken before `bytes_before` (for a
        window starting with a process start: what the node had when it died)."""
        samples = sorted(self.samples, key=lambda s: s[0])  # two threads append
        ws = [s for s in samples if start <= s[0] <= end]
        if len(ws) < 2:
            return None
        if bytes_before is None:
            base = ws[0][1]
        else:
            base = [s for s in samples if s[0] <= bytes_before][-1][1]
            start = min(start, ws[0][0])
        final = ws[-1][1]
        last = next(s for s in ws if s[1] >= final - 256 * 1024)
        secs, copied = last[0] - start, last[1] - base
        return round(secs, 2), copied, round(copied / secs if secs > 0 else float("inf"))


def test_new_node_killed_mid_copy_finishes_after_restart(slow):
    c = slow
    leader = c.wait_for_leader(ids=VOTERS, voters=VOTERS)
    term = c.health(leader)["term"]
    topic = unique_topic("mid-copy")
    create_topic(c, topic)
    wait_settled(c, topic, VOTERS, leader, 30, "topic created")
    t0 = time.monotonic()
    # Batches well under the throttle's burst (200 KB): a fetch returns at least one whole batch,
    # so with 1 MB batches each copy's first fetch alone would be half a second's worth.
    extras = preload(",".join(c.bootstrap(i) for i in VOTERS), topic, batch_bytes=64 * 1024)
    preload_s = time.monotonic() - t0

    n4 = c.node(4)
    n4.start(wait=False)
    wait_until(lambda: c.health(4)["status"] == "not_member", 30, "node 4 running outside the membership")
    cli: dict = {}

    def run_cli():
        cli["out"] = c.cli(*add_node_args(c, 4), timeout=300)

    cli_thread = threading.Thread(target=run_cli, daemon=True)
    everyone = VOTERS + [4]
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods, \
            LeaderTermSampler(c, VOTERS) as sampler, CopyMeter(c, 4, topic) as meter:
        prods.wait_acks(20, timeout=30, what="before the addition")
        t_add = time.monotonic()
        cli_thread.start()

        def mid_copy():
            """A move onto node 4 catching up, node 4's copy 20-75% of its leader's log (past the
            first fetches)."""
            moves = [m for m in rebalance(c, leader)["moves"]
                     if m["phase"] == "catching_up" and 4 in m["to"] and 4 not in m["from"]]
            if not moves:
                return None
            mine = topic_view(c, 4, topic)
            for m in moves:
                p = m["partition"]
                r = mine[p]["replica"]
                lead = topic_view(c, mine[p]["leader"], topic)[p]["replica"]
                if r and lead and 0.2 * lead["log_end_offset"] <= r["log_end_offset"] <= 0.75 * lead["log_end_offset"]:
                    return p, r["log_end_offset"], lead["log_end_offset"]
            return None

        p_mid, leo4, leo_lead = wait_until(mid_copy, 60, "node 4 halfway through copying a partition", interval=0.05)
        meter.sample()  # what node 4 holds when it dies: the base of the copy after the restart
        t_kill = time.monotonic()
        c.kill(4)
        open_moves = {m["partition"]: m for m in rebalance(c, leader)["moves"] if m["phase"] != "done"}
        assert p_mid in open_moves, open_moves

        def stuck():
            """The cluster serves without node 4 and no open move went past catching up: each
            keeps its old replicas, in the ISR."""
            now, hs = c.agreement(VOTERS, voters=everyone)
            assert now == leader and all(h["term"] == term for h in hs.values()), hs
            st = {m["partition"]: m for m in rebalance(c, leader)["moves"]}
            view = topic_view(c, leader, topic)
            for p, m in open_moves.items():
                assert st.get(p, {}).get("phase") in ("queued", "adding", "catching_up"), (p, st.get(p))
                e = view[p]
                assert set(m["from"]) <= set(e["replicas"]) and set(m["from"]) <= set(e["isr"]), (p, m, e)
                assert 4 not in e["isr"], (p, e)
            assert cli_thread.is_alive(), cli.get("out")
            return True

        prods.wait_acks(20, since=t_kill, timeout=30, what="with node 4 dead")
        hold_for(stuck, DEAD_HOLD_S, "open moves waiting for the dead node 4", interval=0.25)
        prods.wait_acks(20, since=time.monotonic(), timeout=30, what="after holding with node 4 dead")
        assert prods.errors == [], prods.errors[:5]

        t_restart = time.monotonic()
        c.restart(4)
        _, load = wait_settled(c, topic, everyone, leader, 120, "node 4 back")
        t_done = time.monotonic()
        assert 4 <= load[4] <= 5, load
        prods.wait_acks(20, since=t_done, timeout=30, what="after the rebalance")
        cli_thread.join(60)
    assert prods.errors == [], f"{len(prods.errors)} producer errors, e.g. {prods.errors[:5]}"
    check_log(ck_consume_all(",".join(c.bootstrap(i) for i in VOTERS), topic, PARTITIONS, timeout=90), prods, extras)

    out = cli.get("out")
    assert out is not None, "the add-node CLI did not finish"
    assert out.returncode == 0, out.stdout + out.stderr
    moves = len(c.node(leader).log_lines(r"Proposed new assignment topic="))
    problems = cli_problems(out, "add", 4, everyone, moves)

    changed = sampler.changes(leader, term)
    assert not changed, f"leader/term of nodes 1-3 changed (was {leader}/{term}): {changed[:5]}"

    before = meter.window(t_add, t_kill)
    after = meter.window(t_restart, t_done, bytes_before=t_kill)
    print(f"preload {PRELOAD_BYTES / 1e6:.0f} MB in {preload_s:.1f}s; killed node 4 at offset {leo4} of {leo_lead} "
          f"in partition {p_mid}, {t_kill - t_add:.1f}s after add-node; rebalance done {t_done - t_restart:.1f}s "
          f"after the restart; node 4 holds {meter.samples[-1][1]} bytes; copied (s, bytes, B/s) before the kill "
          f"{before}, after the restart {after}; throttle {RATE} B/s")
    # Judged on the copy after the restart (several seconds, most of the data): a fetch is charged
    # once it lands, so each copy's first fetch after the restart (one burst, 200 KB) comes on top
    # of the rate; over seconds the average must stay near it.
    assert after is not None and after[0] >= 3, f"copy after the restart too short to judge: {after}"
    assert after[2] <= 1.5 * RATE, f"node 4 copied {after[1]} bytes in {after[0]:.1f}s: {after[2]:.0f} B/s"
    assert not problems, "\n".join(problems)
