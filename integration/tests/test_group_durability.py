"""Committed offsets and groups across broker restarts (SIGTERM and kill -9)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager
from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

import kproto
from client_helpers import admin, create_topic
from cluster import Cluster, started
from harness import unique_topic, wait_until
from replication_helpers import create_topic as create_replicated_topic
from txn_helpers import coordinator_node
from group_helpers import (
    produce_numbered,
    check_exactly_once,
    group_offsets,
    describe,
    admin_group,
    KpMember,
    distinct,
    GROUP_ENV,
    offset_commit_v2,
    parse_offset_commit_v2,
    offset_fetch_v1,
    parse_offset_fetch_v1,
)


def test_committed_offsets_survive_broker_restart(make_broker):
    b = make_broker("groups-restart", extra_env=GROUP_ENV, num_partitions=1, auto_create_topics=False)
    topic, group, doomed = unique_topic("restart"), unique_topic("restart-g"), unique_topic("restart-del")
    parts, total = 2, 400
    create_topic(b.bootstrap, topic, parts)
    produce_numbered(b.bootstrap, topic, 0, total, partitions=parts)

    m = KpMember(b.bootstrap, group, topic, "restart-m1", limit=130, max_poll_records=10)
    m.start()
    try:
        wait_until(lambda: not m.is_alive(), 30, "130 records read (the member stops by itself)")
    finally:
        m.stop()
    assert m.error is None and not m.commit_errors, (m.error, m.commit_errors)
    read1 = m.numbers()
    check_exactly_once(read1, set(read1), what="before the restart")
    per_part = Counter(n % parts for n in read1)
    committed = group_offsets(b.bootstrap, group, topic)
    # (kafka-python also commits position 0 of a partition it has not read yet)
    assert set(per_part) <= set(committed) and all(o == per_part.get(p, 0) for p, o in committed.items()), (
        f"committed {committed} vs read per partition {dict(per_part)}")
    assert any(0 < o < total // parts for o in committed.values()), f"no partition committed half way: {committed}"

    # a second group, deleted before the restart: it must stay deleted
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=doomed, enable_auto_commit=False)
    try:
        c.commit({TopicPartition(topic, 0): OffsetAndMetadata(7, "", -1)})
    finally:
        c.close(autocommit=False)
    a = admin(b.bootstrap)
    try:
        assert a.delete_groups([doomed]) == {doomed: "OK"}
    finally:
        a.close()

    rc = b.stop()
    assert rc == 0, f"broker exited with {rc} on SIGTERM"
    b.start()

    # Until the coordinator has loaded the group's offsets partition it answers OffsetFetch with
    # COORDINATOR_LOAD_IN_PROGRESS, as Kafka does; kafka-python's admin client raises it rather
    # than retrying, so retry here.
    wait_until(lambda: group_offsets(b.bootstrap, group, topic) == committed, 30, "OffsetFetch after the restart")
    g = admin_group(b, group)
    assert g is not None, "group missing from /admin/groups after the restart"
    assert {x["partition"]: (x["committed_offset"], x["lag"]) for x in g["partitions"]} == {
        p: (committed[p], total // parts - committed[p]) for p in committed}
    a = admin(b.bootstrap)
    try:
        listed = {x["group_id"] for x in a.list_groups()}
        assert group in listed and doomed not in listed, listed
        assert a.list_group_offsets({doomed: None})[doomed] == {}, "deleted group's offsets came back"
    finally:
        a.close()

    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        assert {p: c.committed(TopicPartition(topic, p)) for p in range(parts)} == {
            p: committed.get(p) for p in range(parts)}
    finally:
        c.close(autocommit=False)

    m2 = KpMember(b.bootstrap, group, topic, "restart-m2")
    m2.start()
    try:
        wait_until(lambda: len(set(read1) | set(m2.numbers())) >= total, 30, "the rest after the restart",
                   interval=0.05)
        wait_until(lambda: group_offsets(b.bootstrap, group, topic) == {p: total // parts for p in range(parts)},
                   15, "commits at the end offsets")
    finally:
        m2.stop()
    assert m2.error is None and not m2.commit_errors, (m2.error, m2.commit_errors)
    check_exactly_once(read1 + m2.numbers(), set(range(total)), what="before + after the restart")
    first = {p: min((o for q, o, _n in m2.records if q == p), default=None) for p in range(parts)}
    want = {p: None if committed.get(p) == total // parts else committed.get(p, 0) for p in range(parts)}
    assert first == want, (
        f"resumed at {first}, committed before the restart {committed}")


def member_ids(description: dict) -> list[str]:
    return [x["member_id"] for x in description["members"]]


def test_running_member_keeps_its_generation_across_broker_restart(make_broker):
    """Membership is written when a generation settles: a member running across a restart keeps
    its member id and generation (no rebalance), its commits after the restart are accepted, and
    it reads every record exactly once."""
    b = make_broker("groups-rejoin", extra_env=GROUP_ENV, num_partitions=1, auto_create_topics=False)
    topic, group = unique_topic("rejoin"), unique_topic("rejoin-g")
    parts = 2
    create_topic(b.bootstrap, topic, parts)
    produce_numbered(b.bootstrap, topic, 0, 100, partitions=parts)
    m = KpMember(b.bootstrap, group, topic, "rejoin-m", reconnect_backoff_max_ms=500)
    m.start()
    try:
        wait_until(lambda: distinct([m]) >= 100, 30, "the first 100 messages", interval=0.05)
        wait_until(lambda: group_offsets(b.bootstrap, group, topic) == {0: 50, 1: 50}, 15, "first commits")
        before = describe(b.bootstrap, group)
        assert before["group_state"] == "Stable", before
        generations_before = list(m.generations)
        assert b.stop() == 0
        b.start()
        after = describe(b.bootstrap, group)
        assert after["group_state"] == "Stable", f"not restored: {after}"
        assert member_ids(after) == member_ids(before), (before, after)
        produce_numbered(b.bootstrap, topic, 100, 100, partitions=parts)
        wait_until(lambda: distinct([m]) >= 200, 60, f"100 more after the restart (have {distinct([m])})",
                   interval=0.1)
        wait_until(lambda: group_offsets(b.bootstrap, group, topic) == {0: 100, 1: 100}, 20,
                   "commits after the restart")
    finally:
        m.stop()
    assert m.error is None, repr(m.error)
    assert m.commit_errors == [], m.commit_errors
    assert m.generations == generations_before, f"rebalanced across the restart: {m.generations}"
    check_exactly_once(m.numbers(), set(range(200)), m.commit_failed, what="across the restart")
    print(f"restart: generation {m.generations[-1][0]} throughout, members {member_ids(after)}")


@contextmanager
def group_on_three_nodes(tmp_path, name: str, **member_cfg):
    """A 3-node cluster (RF 3, min ISR 2), a 2-partition topic of 100 numbered records, and a
    kafka-python member that has read them and committed 50 on each partition. Yields the
    cluster, the bootstrap of all three, the topic, the group and the member (stopped after)."""
    c = Cluster(tmp_path / name, size=3, spare=0, name=name, min_insync_replicas=2, extra_env=GROUP_ENV)
    with started(c):
        everyone = ",".join(c.bootstrap(i) for i in (1, 2, 3))
        topic, group = unique_topic(name), unique_topic(f"{name}-g")
        create_replicated_topic(c, topic, partitions=2, voters=[1, 2, 3])
        produce_numbered(everyone, topic, 0, 100, partitions=2)
        m = KpMember(everyone, group, topic, f"{name}-m", reconnect_backoff_max_ms=500, **member_cfg)
        m.start()
        try:
            wait_until(lambda: distinct([m]) >= 100, 30, "the first 100 messages", interval=0.05)
            wait_until(lambda: group_offsets(everyone, group, topic) == {0: 50, 1: 50}, 15, "first commits")
            yield c, everyone, topic, group, m
        finally:
            m.stop()


def goes_on_without(c: Cluster, victim: int, group: str, topic: str, m: KpMember, what: str) -> None:
    """Once another node coordinates the group, 100 more records are read and committed."""
    survivors = ",".join(c.bootstrap(i) for i in (1, 2, 3) if i != victim)
    wait_until(lambda: coordinator_node(survivors, group, 0) != victim, 60, "a new coordinator")
    produce_numbered(survivors, topic, 100, 100, partitions=2)
    wait_until(lambda: distinct([m]) >= 200, 90, f"100 more {what} (have {distinct([m])})", interval=0.1)
    wait_until(lambda: group_offsets(survivors, group, topic) == {0: 100, 1: 100}, 60, f"commits {what}")


def test_members_keep_their_generation_when_the_coordinator_node_dies(tmp_path):
    """kill -9 of the node coordinating a group (3 nodes, RF 3): the offsets partition's new
    leader reads the group's membership back, so a kafka-python member goes on in its generation
    (no rebalance, no failed commit) and reads every record exactly once."""
    with group_on_three_nodes(tmp_path, "gcnode") as (c, everyone, topic, group, m):
        generations_before = list(m.generations)
        victim = coordinator_node(everyone, group, 0)
        c.kill(victim)
        goes_on_without(c, victim, group, topic, m, "after the kill")
    assert m.error is None, repr(m.error)
    assert m.commit_errors == [], m.commit_errors
    assert m.generations == generations_before, f"rebalanced when node {victim} died: {m.generations}"
    check_exactly_once(m.numbers(), set(range(200)), m.commit_failed, what="across the coordinator's death")


OFFSETS_TOPIC = "__consumer_offsets"
NOT_LEADER_OR_FOLLOWER = 6


class OffsetWatch(threading.Thread):
    """Reads the group's committed offsets from whichever node coordinates it, until stopped,
    and records any that went back: a commit a deposed coordinator accepted would show here."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        super().__init__(daemon=True)
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.highest: dict[int, int] = {}
        self.rewound: list[tuple[int, int, int]] = []  # (partition, seen, highest before)
        self.history: list[tuple[float, dict[int, int]]] = []
        self.stop_evt = threading.Event()

    def run(self):
        while not self.stop_evt.wait(0.2):
            try:
                now = group_offsets(self.bootstrap, self.group, self.topic)
            except Exception:  # noqa: BLE001 - no coordinator for a moment while one is frozen
                continue
            self.history.append((time.monotonic(), now))
            for p, o in now.items():
                if o < self.highest.get(p, -1):
                    self.rewound.append((p, o, self.highest[p]))
                self.highest[p] = max(o, self.highest.get(p, -1))


def test_a_frozen_coordinator_wakes_up_without_serving_its_stale_state(tmp_path):
    """SIGSTOP of the node coordinating a group (and leading some partitions), with an
    old-generation commit of low offsets already in its socket buffer. The group moves to a new
    coordinator, which loads every commit acknowledged before the freeze; a kafka-python member
    reads every record exactly once (repeats only where a commit failed). When the frozen node
    wakes, out of touch with the Raft leader, it refuses the buffered commit, serves none of its
    old offsets or leaderships, and the group's offsets never go back."""
    with group_on_three_nodes(tmp_path, "gcfreeze", request_timeout_ms=8000) as (c, everyone, topic, group, m):
        watch = OffsetWatch(everyone, group, topic)
        watch.start()
        [member] = member_ids(describe(everyone, group))
        generation = m.generations[-1][0]
        victim = coordinator_node(everyone, group, 0)
        _cid, body = kproto.call(c.bootstrap(victim), kproto.metadata_v1(1, [OFFSETS_TOPIC]))
        [offsets_topic] = kproto.parse_metadata_v1(body)["topics"]
        led = next(p["partition"] for p in offsets_topic["partitions"] if p["leader"] == victim)
        zombie, reader, asker = (kproto.connect(c.bootstrap(victim)) for _ in range(3))
        marks = {"pause": time.monotonic()}
        c.pause(victim)
        try:
            zombie.sendall(offset_commit_v2(1, group, [(topic, 0, 10), (topic, 1, 10)], generation, member))
            # A fetch past the log end of a partition it led: answered OFFSET_OUT_OF_RANGE, a
            # consumer without leader epochs would reset to the earliest offset.
            reader.sendall(kproto.fetch_v4(2, OFFSETS_TOPIC, led, 1 << 40, 0))
            # And the group's offsets, which it holds as of before the freeze.
            asker.sendall(offset_fetch_v1(3, group, [(topic, 0), (topic, 1)]))
            goes_on_without(c, victim, group, topic, m, "while frozen")
        finally:
            marks["resume"] = time.monotonic()
            c.resume(victim)
        try:
            zombie.settimeout(30)
            answer = parse_offset_commit_v2(kproto.read_response(zombie)[1])
            reader.settimeout(30)
            [fetched] = kproto.parse_fetch_v4(kproto.read_response(reader)[1])
            asker.settimeout(30)
            stale = parse_offset_fetch_v1(kproto.read_response(asker)[1])
            for s in (zombie, reader, asker):
                s.close()
            produce_numbered(everyone, topic, 200, 100, partitions=2)
            wait_until(lambda: distinct([m]) >= 300, 60, "100 more after waking", interval=0.1)
            wait_until(lambda: group_offsets(everyone, group, topic) == {0: 150, 1: 150}, 30,
                       "commits after waking")
        finally:
            watch.stop_evt.set()
    assert m.error is None, repr(m.error)
    assert set(answer) == {(topic, 0), (topic, 1)} and 0 not in answer.values(), (
        f"node {victim} accepted the commit it read on waking: {answer}")
    assert all(code != 0 for _offset, _meta, code in stale.values()), f"node {victim} served its old offsets: {stale}"
    assert fetched["error_code"] == NOT_LEADER_OR_FOLLOWER, (
        f"node {victim} answered a fetch of {OFFSETS_TOPIC}-{led} past its log end with {fetched['error_code']}")
    timeline = (f"offsets seen {watch.history}, frozen at {marks['pause']:.1f} s and woken at "
                f"{marks['resume']:.1f} s, generations {m.generations}, commit errors {m.commit_errors}")
    assert watch.rewound == [], f"committed offsets went back: {watch.rewound}; {timeline}"
    check_exactly_once(m.numbers(), set(range(300)), m.commit_failed, what=f"across the freeze ({timeline})")
    print(f"frozen coordinator {victim} answered {answer} and fetch error {fetched['error_code']}; generations {m.generations}; "
          f"commit errors {m.commit_errors}")


def test_acknowledged_commits_survive_broker_sigkill(make_broker):
    """fsync = always: a commit is answered once durable. kill -9 the broker while a member
    commits after every 5 messages; after the restart no acknowledged commit is lost: the stored
    offsets are at least the acknowledged ones, and the member, rejoining, re-reads nothing whose
    commit was acknowledged."""
    b = make_broker("groups-sigkill", extra_env=GROUP_ENV, fsync="always", num_partitions=1,
                    auto_create_topics=False)
    topic, group = unique_topic("sigkill"), unique_topic("sigkill-g")
    parts, total = 2, 3000
    create_topic(b.bootstrap, topic, parts)
    produce_numbered(b.bootstrap, topic, 0, total, partitions=parts)
    m = KpMember(b.bootstrap, group, topic, "sigkill-m", max_poll_records=5)
    m.start()
    try:
        wait_until(lambda: distinct([m]) >= 500, 30, "500 messages read", interval=0.01)
        b.kill()
        with m.lock:
            acked = dict(m.acked)
            read_before = len(m.records)
        assert read_before < total, "everything was read before the kill"
        b.start()
        # (COORDINATOR_LOAD_IN_PROGRESS until the offsets partition is loaded: see above)
        stored = wait_until(lambda: group_offsets(b.bootstrap, group, topic), 30, "OffsetFetch after the restart")
        lost = {p: (o, stored.get(p)) for p, o in acked.items() if stored.get(p, -1) < o}
        assert not lost, f"acknowledged commits lost by kill -9 (partition: (acked, stored)): {lost}"
        wait_until(lambda: distinct([m]) >= total, 60, f"the rest after the restart (have {distinct([m])})",
                   interval=0.1)
        wait_until(lambda: group_offsets(b.bootstrap, group, topic) == {p: total // parts for p in range(parts)},
                   20, "commits at the end offsets")
    finally:
        m.stop()
    assert m.error is None, repr(m.error)
    check_exactly_once(m.numbers(), set(range(total)), m.commit_failed, what="across kill -9")
    print(f"sigkill: acked at kill {acked}, commit errors {m.commit_errors[:3]}")
