"""Raft cluster of three nodes (the user's test plan, docs/acceptance/zero-downtime-node-addition-test-plan.md,
Scenario 1 steps 1.1-1.5).

Formation and health agreement, topic creation through the Raft leader with the round-robin
replica table, CreateTopics on a follower, routing by metadata (NOT_LEADER_OR_FOLLOWER on a
non-leader), 20,000 messages through one bootstrap address, `cluster status`, a configured
but not added node 4, and kill -9 of the Raft leader followed by a rejoin.

One cluster per module (conftest `cluster3`). Tests run in file order and each one leaves
nodes 1-3 running and agreed; the two that disturb the cluster (node 4, leader kill) come last.
Partition data lives on the partition leader only in this issue, so ISR is never asserted.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import ConfigResource as CkResource
from kafka import KafkaProducer
from kafka.errors import InvalidReplicationFactorError

import kproto
from client_helpers import admin, ck_consume_all
from cluster import Cluster, LeaderTermSampler, hold_for, round_robin
from harness import unique_topic, wait_until

VOTERS = [1, 2, 3]
PARTITIONS = 6
RF = 3
ERR_NOT_LEADER_OR_FOLLOWER = 6
ERR_INVALID_REPLICATION_FACTOR = 38

Layout = dict[int, tuple[int, list[int]]]  # partition -> (leader, replicas)


def expected_layout(partitions: int = PARTITIONS, rf: int = RF) -> Layout:
    return {p: (r[0], r) for p, r in round_robin(VOTERS, partitions, rf).items()}


# ---- metadata as each client / each node sees it ------------------------------------------


def raw_metadata(bootstrap: str, topics: list[str]) -> dict:
    """Metadata v1 sent to exactly this node."""
    _cid, body = kproto.call(bootstrap, kproto.metadata_v1(1, topics))
    return kproto.parse_metadata_v1(body)


def raw_layout(bootstrap: str, topics: list[str]) -> dict[str, Layout]:
    out = {}
    for t in raw_metadata(bootstrap, topics)["topics"]:
        if t["error_code"] != 0:
            raise ValueError(f"{bootstrap}: topic {t['name']} error {t['error_code']}")
        out[t["name"]] = {p["partition"]: (p["leader"], p["replicas"]) for p in t["partitions"]}
    return out


def kp_layout(bootstrap: str, topics: list[str]) -> dict[str, Layout]:
    """kafka-python KafkaAdminClient.describe_topics."""
    a = admin(bootstrap)
    try:
        out = {}
        for t in a.describe_topics(topics):
            if t["error_code"] != 0:
                raise ValueError(f"describe_topics: {t['name']} error {t['error_code']}")
            out[t["name"]] = {p["partition_index"]: (p["leader_id"], list(p["replica_nodes"]))
                              for p in t["partitions"]}
        return out
    finally:
        a.close()


def ck_metadata(bootstrap: str, topic: str):
    """confluent-kafka AdminClient.list_topics: (layout, cluster metadata)."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic=topic, timeout=10)
    t = md.topics[topic]
    if t.error is not None:
        raise ValueError(f"list_topics: {topic} error {t.error}")
    return {p: (pm.leader, list(pm.replicas)) for p, pm in t.partitions.items()}, md


def wait_equal(fn, want, timeout: float, what: str):
    """wait_until fn() == want, reporting the last value seen."""
    def check():
        got = fn()
        if got != want:
            raise ValueError(f"got {got}")
        return True

    wait_until(check, timeout, f"{what} == {want}", interval=0.2)


def create_rf3(cluster: Cluster, topic: str, bootstrap: str, partitions: int = PARTITIONS) -> Layout:
    """kafka-python CreateTopics (partitions, RF 3) via `bootstrap`; returns once every running
    member's own Metadata shows the round-robin table."""
    a = admin(bootstrap)
    try:
        a.create_topics({topic: {"num_partitions": partitions, "replication_factor": RF}})
    finally:
        a.close()
    want = expected_layout(partitions)
    for i in cluster.running():
        wait_equal(lambda: raw_layout(cluster.bootstrap(i), [topic]), {topic: want}, 15,
                   f"node {i} Metadata of {topic}")
    return want


def assign_lines(cluster: Cluster, i: int, topic: str, start: int = 0) -> dict[int, list[list[int]]]:
    """partition -> replica lists of every `AssignPartition` line for `topic` in node i's log."""
    rx = re.compile(rf'AssignPartition\b.*?topic="?{re.escape(topic)}"?[\s,].*?partition=(\d+)\b'
                    rf'.*?replicas=\[([0-9,\s]*)\]')
    out: dict[int, list[list[int]]] = {}
    for line in cluster.node(i).log_lines("AssignPartition", start):
        m = rx.search(line)
        if m:
            reps = [int(x) for x in m.group(2).replace(",", " ").split()]
            out.setdefault(int(m.group(1)), []).append(reps)
    return out


# ---- 1.1 / 1.2: formation and health ------------------------------------------------------


def test_three_nodes_elect_one_leader(cluster3):
    assert cluster3.formation_seconds is not None
    assert cluster3.formation_seconds <= 10.0, (
        f"leader agreed on {cluster3.formation_seconds:.1f}s after the third start (budget 10 s)")

    leader = cluster3.wait_for_leader(5, ids=VOTERS, voters=VOTERS)
    _, hs = cluster3.agreement(VOTERS, voters=VOTERS)
    assert leader in VOTERS
    assert [i for i, h in hs.items() if h["is_leader"] is True] == [leader], hs
    for i, h in hs.items():
        assert h["node_id"] == i, h
        assert h["leader_id"] == leader, h
        assert h["cluster_nodes"] == VOTERS, h
        assert h["learners"] == [], h
        assert h["status"] == "healthy", h
        assert isinstance(h["term"], int) and h["term"] >= 1, h
    assert len({h["term"] for h in hs.values()}) == 1, hs

    # Startup log lines: bootstrapped on the lowest configured id only; the rest on every node.
    for i in VOTERS:
        node = cluster3.node(i)
        for pattern in (r"Raft gRPC server started", r"Raft message loop started",
                        rf"Admin API available at http://[^\s/]+:{node.admin_port}/admin"):
            wait_until(lambda: node.log_lines(pattern), 5, f"node {i} log line /{pattern}/")
    boot = {i: len(cluster3.node(i).log_lines(r"Raft cluster bootstrapped")) for i in VOTERS}
    assert boot == {1: 1, 2: 0, 3: 0}, f"'Raft cluster bootstrapped' lines per node: {boot}"


# ---- 1.3: topics created through the Raft leader -------------------------------------------


def test_create_topic_round_robin_assignment(cluster3):
    cluster3.wait_for_leader(voters=VOTERS)
    topic = unique_topic("test-topic")
    marks = {i: cluster3.node(i).log_size() for i in VOTERS}
    want = create_rf3(cluster3, topic, cluster3.bootstrap(1))  # also: each node's own Metadata
    assert want == {0: (1, [1, 2, 3]), 1: (2, [2, 3, 1]), 2: (3, [3, 1, 2]),
                    3: (1, [1, 2, 3]), 4: (2, [2, 3, 1]), 5: (3, [3, 1, 2])}  # the seed's table

    assert kp_layout(cluster3.bootstrap(1), [topic]) == {topic: want}, "kafka-python describe_topics"
    brokers = {i: ("127.0.0.1", cluster3.node(i).kafka_port) for i in VOTERS}
    for i in VOTERS:
        layout, md = ck_metadata(cluster3.bootstrap(i), topic)
        assert layout == want, f"confluent list_topics via node {i}"
        assert {b.id: (b.host, b.port) for b in md.brokers.values()} == brokers, f"brokers via node {i}"
        raw = raw_metadata(cluster3.bootstrap(i), [topic])
        assert {b["node_id"]: (b["host"], b["port"]) for b in raw["brokers"]} == brokers, \
            f"Metadata v1 brokers from node {i}"

    # One applied AssignPartition per partition, on every node (it is a Raft command).
    for i in VOTERS:
        wait_equal(lambda: sorted(assign_lines(cluster3, i, topic, marks[i])), list(range(PARTITIONS)), 10,
                   f"partitions with an AssignPartition line for {topic} in node {i}'s log")
        for p, lists in assign_lines(cluster3, i, topic, marks[i]).items():
            assert all(r == want[p][1] for r in lists), f"node {i}: AssignPartition {topic}/{p} replicas {lists}"


def test_create_topics_on_follower_and_invalid_replication_factor(cluster3):
    leader = cluster3.wait_for_leader(voters=VOTERS)
    follower = next(i for i in VOTERS if i != leader)
    fb = cluster3.bootstrap(follower)
    want = expected_layout()

    # Raw CreateTopics on the follower's own socket: it must forward to the Raft leader.
    raw_topic = unique_topic("follower-raw")
    cid, body = kproto.call(fb, kproto.create_topics_v2(7, raw_topic, PARTITIONS, RF, timeout_ms=15000))
    assert cid == 7
    [res] = kproto.parse_create_topics_v2(body)
    assert (res["name"], res["error_code"]) == (raw_topic, 0), res
    for i in VOTERS:
        wait_equal(lambda: raw_layout(cluster3.bootstrap(i), [raw_topic]), {raw_topic: want}, 15,
                   f"node {i} Metadata of {raw_topic}")

    # kafka-python bootstrapped on the follower only.
    kp_topic = unique_topic("follower-kp")
    create_rf3(cluster3, kp_topic, fb)
    assert kp_layout(fb, [kp_topic]) == {kp_topic: expected_layout()}

    # RF 4 on 3 voters: INVALID_REPLICATION_FACTOR, on the follower and through the client.
    bad = unique_topic("rf4")
    _cid, body = kproto.call(fb, kproto.create_topics_v2(8, bad, PARTITIONS, 4, timeout_ms=15000))
    [res] = kproto.parse_create_topics_v2(body)
    assert res["error_code"] == ERR_INVALID_REPLICATION_FACTOR, res
    a = admin(cluster3.bootstrap(1))
    try:
        with pytest.raises(InvalidReplicationFactorError):
            a.create_topics({bad: {"num_partitions": PARTITIONS, "replication_factor": 4}})
    finally:
        a.close()

    def absent():
        for i in VOTERS:
            [t] = raw_metadata(cluster3.bootstrap(i), [bad])["topics"]
            if t["error_code"] == 0:
                raise AssertionError(f"node {i} has the RF-4 topic {bad}: {t}")
        return True

    hold_for(absent, 1.0, f"RF-4 topic {bad} never created")


# ---- routing by metadata ----------------------------------------------------------------


def test_produce_consume_through_one_bootstrap(cluster3):
    """10,000 kafka-python + 10,000 confluent-kafka messages to a 6-partition RF-3 topic whose
    partition leaders are spread over all three nodes; every ack is read back exactly once."""
    n = 10_000
    cluster3.wait_for_leader(voters=VOTERS)
    bootstrap = cluster3.bootstrap(1)
    topic = unique_topic("rf3-produce")
    create_rf3(cluster3, topic, bootstrap)
    acked: dict[tuple[int, int], tuple[bytes, bytes]] = {}
    clashes: list = []

    def record(partition: int, offset: int, key: bytes, value: bytes) -> None:
        if (partition, offset) in acked:
            clashes.append((partition, offset, acked[(partition, offset)][0], key))
        acked[(partition, offset)] = (key, value)

    # kafka-python: idempotent, acks=all (its 3.x defaults).
    kp = KafkaProducer(bootstrap_servers=bootstrap, client_id="chronik-it-cluster-kp", linger_ms=5)
    try:
        sent = [(b"kp-%05d" % i, b"kp-value-%05d-" % i + bytes(i % 97)) for i in range(n)]
        futures = [kp.send(topic, key=k, value=v) for k, v in sent]
        kp.flush(timeout=120)
        kp_errors = []
        for (k, v), f in zip(sent, futures):
            try:
                m = f.get(timeout=0)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                kp_errors.append((k, repr(exc)))
            else:
                record(m.partition, m.offset, k, v)
    finally:
        kp.close(timeout=10)
    assert not kp_errors, f"{len(kp_errors)} kafka-python delivery errors, e.g. {kp_errors[:3]}"

    # confluent-kafka: librdkafka routes by the same metadata.
    ck = Producer({"bootstrap.servers": bootstrap, "client.id": "chronik-it-cluster-ck",
                   "enable.idempotence": True, "linger.ms": 5})
    ck_errors: list = []

    def on_delivery(err, msg):
        if err is not None:
            ck_errors.append((msg.key(), str(err)))
        else:
            record(msg.partition(), msg.offset(), msg.key(), msg.value())

    for i in range(n):
        while True:
            try:
                ck.produce(topic, key=b"ck-%05d" % i, value=b"ck-value-%05d-" % i + bytes(i % 89),
                           on_delivery=on_delivery)
                break
            except BufferError:
                ck.poll(0.05)
        if i % 1000 == 0:
            ck.poll(0)
    assert ck.flush(120) == 0, "confluent messages still undelivered after flush"
    assert not ck_errors, f"{len(ck_errors)} confluent delivery errors, e.g. {ck_errors[:3]}"

    assert not clashes, f"two messages acknowledged at the same (partition, offset): {clashes[:5]}"
    assert len(acked) == 2 * n
    per_partition = Counter(p for p, _o in acked)
    assert sorted(per_partition) == list(range(PARTITIONS)), f"partitions that got messages: {per_partition}"

    got = ck_consume_all(bootstrap, topic, PARTITIONS, timeout=90)
    consumed: dict[tuple[int, int], tuple[bytes, bytes]] = {}
    for p, records in got.items():
        offsets = [o for o, _k, _v in records]
        assert offsets == list(range(len(offsets))), f"partition {p}: offsets not contiguous from 0"
        assert len(offsets) == per_partition[p], f"partition {p}: {len(offsets)} read, {per_partition[p]} acked"
        for o, k, v in records:
            consumed[(p, o)] = (k, v)
    keys = Counter(k for k, _v in consumed.values())
    assert [k for k, c in keys.items() if c > 1] == [], "messages consumed more than once"
    missing = [po for po in acked if po not in consumed]
    assert not missing, f"{len(missing)} acknowledged messages not consumed, e.g. {missing[:5]}"
    wrong = [(po, acked[po][0], consumed[po][0]) for po in acked if consumed[po] != acked[po]]
    assert not wrong, f"{len(wrong)} records differ from what was acknowledged there, e.g. {wrong[:3]}"
    assert len(consumed) == len(acked)


def test_produce_and_fetch_on_non_leader_answer_not_leader(cluster3):
    cluster3.wait_for_leader(voters=VOTERS)
    topic = unique_topic("not-leader")
    want = create_rf3(cluster3, topic, cluster3.bootstrap(1))
    batch = kproto.record_batch([b"raw-0", b"raw-1"])
    for p in (0, 1):
        leader, replicas = want[p]
        for i in VOTERS:
            if i == leader:
                continue
            _cid, body = kproto.call(cluster3.bootstrap(i), kproto.produce_v3(20 + i, topic, p, batch))
            [res] = kproto.parse_produce_v3(body)
            assert res["error_code"] == ERR_NOT_LEADER_OR_FOLLOWER, (
                f"Produce {topic}/{p} on node {i} (leader {leader}, replicas {replicas}): {res}")
            _cid, body = kproto.call(cluster3.bootstrap(i), kproto.fetch_v4(30 + i, topic, p, 0, max_wait_ms=0))
            [res] = kproto.parse_fetch_v4(body)
            assert res["error_code"] == ERR_NOT_LEADER_OR_FOLLOWER, f"Fetch {topic}/{p} on node {i}: {res}"
        # The leader itself takes the same request, so the error above is about leadership.
        _cid, body = kproto.call(cluster3.bootstrap(leader), kproto.produce_v3(40, topic, p, batch))
        [res] = kproto.parse_produce_v3(body)
        assert (res["error_code"], res["base_offset"]) == (0, 0), f"Produce {topic}/{p} on leader {leader}: {res}"
        _cid, body = kproto.call(cluster3.bootstrap(leader), kproto.fetch_v4(41, topic, p, 0, max_wait_ms=0))
        [res] = kproto.parse_fetch_v4(body)
        assert res["error_code"] == 0 and res["high_watermark"] == 2, res
        assert [v for _o, _t, _k, v in kproto.decode_records(res["records"])] == [b"raw-0", b"raw-1"]


# ---- CLI ------------------------------------------------------------------------------


def test_cluster_status_cli(cluster3):
    cluster3.wait_for_leader(voters=VOTERS)
    r = cluster3.cli("cluster", "status", "--config", str(cluster3.config_path(1)))
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"cluster status exited {r.returncode}:\n{out}"
    for i in VOTERS:
        assert re.search(rf"\b{i}\b", r.stdout), f"node {i} not in cluster status output:\n{out}"
    assert "leader" in r.stdout.lower(), f"no leader in cluster status output:\n{out}"


# ---- 1.4 / 1.5: a configured node that was not added ------------------------------------


def test_configured_node_not_added_stays_non_member(cluster3):
    leader = cluster3.wait_for_leader(voters=VOTERS)
    term = cluster3.health(leader)["term"]
    n4 = cluster3.node(4)
    assert n4.config_path.read_text().count("[[peers]]") == 4  # the seed's node-4 TOML
    n4.start(wait=False)
    try:
        def not_member():
            n4.check_alive()
            h = n4.health()
            if h.get("status") != "not_member":
                raise ValueError(f"node 4 health {h}")
            return h

        h4 = wait_until(not_member, 30, "node 4 /admin/health status not_member", interval=0.2)
        assert h4["node_id"] == 4 and h4["is_leader"] is False, h4

        def unchanged():
            n4.check_alive()
            now, hs = cluster3.agreement(VOTERS, voters=VOTERS)  # raises unless cluster_nodes == [1,2,3]
            if now != leader or any(h["term"] != term for h in hs.values()):
                raise AssertionError(f"leader/term moved from {leader}/{term}: {hs}")
            if any(4 in h["learners"] for h in hs.values()):
                raise AssertionError(f"node 4 became a learner without add-node: {hs}")
            h = n4.health()
            if h["status"] != "not_member" or h["is_leader"] is not False:
                raise AssertionError(f"node 4 health {h}")
            return True

        checks = hold_for(unchanged, 3.0, "nodes 1-3 keep cluster_nodes [1, 2, 3] while node 4 runs")
        assert checks >= 5
    finally:
        rc = n4.stop()
    assert rc == 0, f"node 4 exited with {rc} on SIGTERM"


# ---- leader failure -----------------------------------------------------------------------


def test_a_frozen_follower_wakes_up_without_an_election(cluster3):
    """SIGSTOP a Raft follower for twice the longest election timeout, then SIGCONT. Woken past
    its election timeout, it asks the others for a pre-vote before campaigning; they still hear
    the leader and refuse. The leader and term never change on any node, and the woken node
    follows the same leader again. (Before pre-vote it campaigned at once, and its higher term
    deposed the healthy leader.)"""
    leader = cluster3.wait_for_leader(voters=VOTERS)
    term = cluster3.health(leader)["term"]
    victim = next(i for i in VOTERS if i != leader)

    def unchanged(ids):
        return lambda: all((cluster3.health(i)["leader_id"], cluster3.health(i)["term"]) == (leader, term)
                           for i in ids)
    with LeaderTermSampler(cluster3, VOTERS) as sampler:
        cluster3.pause(victim)
        try:
            hold_for(unchanged([i for i in VOTERS if i != victim]), 6.0, f"leader and term while node {victim} is frozen")
        finally:
            cluster3.resume(victim)
        wait_until(unchanged([victim]), 30, f"node {victim} following node {leader} in term {term} again")
        hold_for(unchanged(VOTERS), 6.0, f"leader and term after node {victim} woke")
    assert sampler.changes(leader, term) == [], f"the leadership changed: {sampler.changes(leader, term)[:5]}"


def test_kill_leader_reelects_and_node_rejoins(cluster3):
    old = cluster3.wait_for_leader(voters=VOTERS)
    term0 = cluster3.health(old)["term"]
    survivors = [i for i in VOTERS if i != old]
    topic = unique_topic("failover")
    want = create_rf3(cluster3, topic, cluster3.bootstrap(survivors[0]))

    # Some data on a partition the old leader leads, to read back after its restart. acks=all:
    # with acks=1 the leader may be killed before its followers fetched, and losing such a
    # tail in a failover is what acks=1 allows.
    p_old = next(p for p, (leader, _r) in want.items() if leader == old)
    values = [b"before-kill-%03d" % i for i in range(100)]
    prod = KafkaProducer(bootstrap_servers=cluster3.bootstrap(survivors[0]), client_id="chronik-it-failover",
                         acks="all")
    try:
        futures = [prod.send(topic, value=v, partition=p_old) for v in values]
        prod.flush(timeout=60)
        assert [f.get(timeout=0).offset for f in futures] == list(range(len(values)))
    finally:
        prod.close(timeout=10)

    a = admin(cluster3.bootstrap(survivors[0]))
    try:
        names = sorted(t for t in a.list_topics() if not t.startswith("__"))
    finally:
        a.close()
    assert topic in names
    before = raw_layout(cluster3.bootstrap(survivors[0]), names)

    cluster3.kill(old)
    new = cluster3.wait_for_leader(15, ids=survivors, voters=VOTERS)
    assert new != old and new in survivors
    term1 = cluster3.health(new)["term"]
    assert term1 > term0, f"term {term0} -> {term1} across a leader change"

    # Two live voters: RF 3 cannot be placed now (Kafka places replicas on live brokers only).
    down = unique_topic("rf3-node-down")
    _cid, body = kproto.call(cluster3.bootstrap(survivors[0]),
                             kproto.create_topics_v2(9, down, PARTITIONS, RF, timeout_ms=15000))
    [res] = kproto.parse_create_topics_v2(body)
    assert res["error_code"] == ERR_INVALID_REPLICATION_FACTOR, res

    mark = cluster3.node(old).log_size()
    cluster3.restart(old)
    leader = cluster3.wait_for_leader(30, ids=VOTERS, voters=VOTERS)
    assert cluster3.health(leader)["term"] >= term1
    assert cluster3.node(old).log_lines(r"Raft cluster bootstrapped", mark) == [], \
        "the restarted node bootstrapped a new cluster instead of recovering its Raft log"

    # Killed, node `old` came back unclean (its disk may have lost a tail): every partition it
    # led is now led by an in-sync survivor, in a new epoch; the rest is as before.
    def rejoined_layout() -> dict[str, Layout]:
        views = [raw_layout(cluster3.bootstrap(i), names) for i in VOTERS]
        if any(v != views[0] for v in views):
            raise ValueError(f"nodes disagree: {views}")
        for t, layout in before.items():
            for p, (leader, replicas) in layout.items():
                now_leader, now_replicas = views[0][t][p]
                moved = leader == old and now_leader in survivors
                if now_replicas != replicas or (now_leader != leader and not moved) or now_leader == old:
                    raise ValueError(f"{t}/{p}: {views[0][t][p]}, was {(leader, replicas)}")
        return views[0]

    after = wait_until(rejoined_layout, 30, f"the layout after the rejoin: node {old}'s leaderships moved")
    assert kp_layout(cluster3.bootstrap(old), names) == after, "kafka-python describe_topics after rejoin"

    # The new leader may have been elected with a high watermark below the acknowledged end (a
    # follower learns it from its next fetch answer, which the kill can come before); it
    # reaches the end once the in-sync replicas report in the new epoch, as in Kafka.
    def read_back():
        got = ck_consume_all(cluster3.bootstrap(old), topic, PARTITIONS, timeout=60)
        return [(o, v) for o, _k, v in got[p_old]] == list(enumerate(values))
    wait_until(read_back, 30, f"partition {p_old} (led by node {old}) read back whole after its restart")


def test_a_client_bootstrapping_before_formation_finds_the_node(tmp_path):
    """A node whose peers are still down has no cluster metadata yet; it names itself in
    Metadata, so a client bootstrapping on it has a broker to come back to. With an empty list,
    librdkafka's admin client waits for broker 1 forever; here the same client's request on
    broker 1 completes once the cluster has formed."""
    c = Cluster(tmp_path, size=3, spare=0, name="early")
    try:
        c.node(1).start(wait=False)
        c.node(1).wait_ready()
        ac = AdminClient({"bootstrap.servers": c.bootstrap(1)})
        brokers = {b.id: (b.host, b.port) for b in ac.list_topics(timeout=10).brokers.values()}
        assert brokers == {1: ("127.0.0.1", c.node(1).kafka_port)}, brokers
        for i in (2, 3):
            c.node(i).start(wait=False)
        c.wait_for_leader(30, ids=VOTERS)
        res = CkResource("broker", "1")
        entry = ac.describe_configs([res])[res].result(15)["log.retention.ms"]
        assert entry.value == "604800000", entry
    finally:
        c.kill_all()
