"""Group administration and offset bookkeeping: List/Describe/DeleteGroups, OffsetCommit checks
(unknown topic, generation, member), offsets of deleted topics, and GET /admin/groups."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer
from kafka import errors as kerrors
from kafka.structs import OffsetAndMetadata, TopicPartition

import kproto
from client_helpers import admin, create_topic
from harness import unique_topic, wait_until
from group_helpers import (
    produce_numbered,
    group_offsets,
    describe,
    admin_group,
    KpMember,
    distinct,
    wait_split,
    offset_commit_v2,
    parse_offset_commit_v2,
    offset_fetch_v1,
    parse_offset_fetch_v1,
    PARTS,
)


def test_admin_list_describe_delete_groups(gbroker):
    topic, group = unique_topic("adm-groups"), unique_topic("adm-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    produce_numbered(gbroker.bootstrap, topic, 0, 40)
    members = [KpMember(gbroker.bootstrap, group, topic, f"adm-m{i}") for i in range(2)]
    for m in members:
        m.start()
    a = admin(gbroker.bootstrap)
    try:
        wait_split(members, "two members")
        wait_until(lambda: distinct(members) >= 40 and group_offsets(gbroker.bootstrap, group, topic)
                   == {p: 10 for p in range(PARTS)}, 30, "40 messages read and committed")

        listed = {x["group_id"]: x for x in a.list_groups()}
        assert group in listed, f"{group} not in ListGroups: {sorted(listed)}"
        assert listed[group]["protocol_type"] == "consumer"
        if "group_state" in listed[group]:  # ListGroups v4+
            assert listed[group]["group_state"] == "Stable"
        only_stable = {x["group_id"] for x in a.list_groups(states_filter=["Stable"])}
        assert group in only_stable
        assert group not in {x["group_id"] for x in a.list_groups(states_filter=["Empty"])}

        d = a.describe_groups([group])[group]
        assert d["error"] is None, d
        assert (d["group_state"], d["protocol_type"], d["protocol_data"]) == ("Stable", "consumer", "range"), d
        assert sorted(x["client_id"] for x in d["members"]) == ["adm-m0", "adm-m1"], d["members"]
        by_client = {x["client_id"]: x for x in d["members"]}
        for m in members:
            x = by_client[m.name]
            assert x["member_id"].startswith(m.name), x["member_id"]
            assigned = {p for t in x["member_assignment"]["assigned_partitions"] for p in t["partitions"]
                        if t["topic"] == topic}
            assert assigned == m.snapshot(), f"{m.name}: DescribeGroups says {assigned}, client has {m.snapshot()}"
            assert x["member_metadata"]["topics"] == [topic]
        g = admin_group(gbroker, group)
        assert g["state"] == "Stable" and g["protocol_type"] == "consumer", g

        # members active: NON_EMPTY_GROUP, and nothing is deleted
        assert a.delete_groups([group]) == {group: "NonEmptyGroupError"}
        assert group_offsets(gbroker.bootstrap, group, topic) == {p: 10 for p in range(PARTS)}
    finally:
        for m in members:
            m.stop()
    for m in members:
        assert m.error is None, repr(m.error)
    try:
        wait_until(lambda: describe(gbroker.bootstrap, group)["group_state"] == "Empty", 10, "group Empty")
        d = a.describe_groups([group])[group]
        assert d["members"] == [] and d["error"] is None, d
        assert group in {x["group_id"] for x in a.list_groups(states_filter=["Empty"])}

        assert a.delete_groups([group]) == {group: "OK"}
        assert group not in {x["group_id"] for x in a.list_groups()}
        assert a.list_group_offsets({group: None})[group] == {}
        assert admin_group(gbroker, group) is None
        d = a.describe_groups([group])[group]
        assert d["group_state"] == "Dead" and d["members"] == [], d
        assert a.delete_groups([group]) == {group: "GroupIdNotFoundError"}
    finally:
        a.close()
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        assert [c.committed(TopicPartition(topic, p)) for p in range(PARTS)] == [None] * PARTS
    finally:
        c.close(autocommit=False)


def test_commit_for_unknown_topic_is_refused(gbroker):
    topic, group = unique_topic("unk-commit"), unique_topic("unk-g")
    create_topic(gbroker.bootstrap, topic, 2)
    ghost = unique_topic("no-such-topic")

    # The raw requests skip FindCoordinator; an admin lookup first makes sure the offsets topic
    # exists and this (single) broker coordinates the group.
    assert group_offsets(gbroker.bootstrap, group) == {}
    # raw OffsetCommit v2, simple (no generation): per-partition codes, the good one applied
    _, body = kproto.call(gbroker.bootstrap, offset_commit_v2(
        1, group, [(topic, 0, 5), (topic, 7, 5), (ghost, 0, 5)]))
    assert parse_offset_commit_v2(body) == {(topic, 0): 0, (topic, 7): 3, (ghost, 0): 3}
    assert group_offsets(gbroker.bootstrap, group) == {0: 5}
    _, body = kproto.call(gbroker.bootstrap, offset_fetch_v1(2, group, [(topic, 0), (topic, 1), (ghost, 0)]))
    got = parse_offset_fetch_v1(body)
    assert got[(topic, 0)] == (5, "", 0) and got[(topic, 1)][:2] == (-1, "") and got[(ghost, 0)][0] == -1, got

    # kafka-python surfaces UNKNOWN_TOPIC_OR_PARTITION (retriable, so commit() itself would only
    # retry until its timeout: the async commit's callback shows the error)
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        # an OffsetFetch first, so the coordinator is known and commit_async's future is the commit's
        assert c.committed(TopicPartition(topic, 0)) == 5
        got = []
        fut = c.commit_async({TopicPartition(ghost, 0): OffsetAndMetadata(9, "", -1)},
                             callback=lambda offsets, exc: got.append(exc))
        wait_until(lambda: fut.is_done, 15, "the async commit to complete")
        assert isinstance(fut.exception, kerrors.UnknownTopicOrPartitionError), repr(fut.exception)
        with pytest.raises(kerrors.KafkaTimeoutError):
            c.commit({TopicPartition(ghost, 0): OffsetAndMetadata(9, "", -1)}, timeout_ms=1500)
        c.commit({TopicPartition(topic, 1): OffsetAndMetadata(3, "", -1)})
        # (callbacks of completed async commits run at the next commit)
        assert len(got) == 1 and isinstance(got[0], kerrors.UnknownTopicOrPartitionError), got
        assert c.committed(TopicPartition(topic, 1)) == 3
        assert c.committed(TopicPartition(ghost, 0)) is None
    finally:
        c.close(autocommit=False)
    assert group_offsets(gbroker.bootstrap, group) == {0: 5, 1: 3}


def test_commit_checks_generation_and_member(gbroker):
    """OffsetCommit against a live group: only its current generation's members may commit."""
    topic, group = unique_topic("gen-check"), unique_topic("gen-g")
    create_topic(gbroker.bootstrap, topic, 1)
    m = KpMember(gbroker.bootstrap, group, topic, "gen-m")
    m.start()
    try:
        wait_until(lambda: m.snapshot() == {0}, 20, "the member assigned")
        gen = m.generations[-1][0]
        [member] = describe(gbroker.bootstrap, group)["members"]
        mid = member["member_id"]
        cases = [
            ((gen, mid), 0),
            ((gen + 1, mid), 22),        # ILLEGAL_GENERATION
            ((gen - 1, mid), 22),
            ((gen, "no-such-member"), 25),  # UNKNOWN_MEMBER_ID
            ((-1, ""), 25),              # a "simple" commit to a group with members
        ]
        for i, ((g, who), want) in enumerate(cases):
            _, body = kproto.call(gbroker.bootstrap, offset_commit_v2(10 + i, group, [(topic, 0, 100 + i)], g, who))
            assert parse_offset_commit_v2(body) == {(topic, 0): want}, f"commit as generation {g} member {who!r}"
        # only the first was applied; OffsetFetch v1 (no top-level error field) returns it
        _, body = kproto.call(gbroker.bootstrap, offset_fetch_v1(20, group, [(topic, 0)]))
        assert parse_offset_fetch_v1(body) == {(topic, 0): (100, "", 0)}
    finally:
        m.stop()
    assert m.error is None, repr(m.error)


def test_offsets_of_a_deleted_topic_are_removed(gbroker):
    """Kafka drops a group's committed offsets for a topic when the topic is deleted (so a topic
    re-created under the same name is read from its start, not from the old topic's offsets)."""
    topic, group = unique_topic("deleted-topic"), unique_topic("deleted-topic-g")
    create_topic(gbroker.bootstrap, topic, 1)
    produce_numbered(gbroker.bootstrap, topic, 0, 10, partitions=1)
    m = KpMember(gbroker.bootstrap, group, topic, "deltopic-m")
    m.start()
    try:
        wait_until(lambda: distinct([m]) >= 10 and group_offsets(gbroker.bootstrap, group) == {0: 10}, 20,
                   "10 read and committed")
    finally:
        m.stop()
    a = admin(gbroker.bootstrap)
    try:
        a.delete_topics([topic])
    finally:
        a.close()
    wait_until(lambda: gbroker.partition(topic, 0) is None, 15, "topic deleted")

    stored = group_offsets(gbroker.bootstrap, group, topic)
    g = admin_group(gbroker, group)

    # the same name again, 15 messages: the group must read all of them
    create_topic(gbroker.bootstrap, topic, 1)
    produce_numbered(gbroker.bootstrap, topic, 100, 15, partitions=1)
    fresh = KpMember(gbroker.bootstrap, group, topic, "deltopic-fresh")
    fresh.start()
    try:
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == {0: 15}, 20,
                   "the fresh member caught up")
    finally:
        fresh.stop()
    assert stored == {}, (f"offsets of the deleted topic survived its deletion: OffsetFetch {stored}, "
                          f"/admin/groups {g}; the group then read {sorted(fresh.numbers())} of the "
                          f"re-created topic's messages 100..114")
    assert sorted(fresh.numbers()) == list(range(100, 115)), (
        f"re-created topic: the group read {sorted(fresh.numbers())}, not its 15 messages")


def test_group_with_only_committed_offsets_is_described_like_it_is_listed(gbroker):
    """A group that has committed offsets but no members (simple commits here; after a broker
    restart every group is in this situation, since membership is not persisted) is listed
    by ListGroups as Empty and can be deleted; DescribeGroups must agree and say Empty, not
    Dead (Kafka's tools print "Consumer group ... does not exist" for a Dead group)."""
    topic, group = unique_topic("offsets-only"), unique_topic("offsets-only-g")
    create_topic(gbroker.bootstrap, topic, 1)
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        c.commit({TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1)})
    finally:
        c.close(autocommit=False)
    a = admin(gbroker.bootstrap)
    try:
        listed = {x["group_id"]: x for x in a.list_groups()}
        assert listed[group]["group_state"] == "Empty", listed[group]
        assert admin_group(gbroker, group)["state"] == "Empty"
        d = a.describe_groups([group])[group]
        assert (d["error"], d["group_state"], d["members"]) == (None, "Empty", []), (
            f"ListGroups and /admin/groups say Empty, DescribeGroups says {d['group_state']!r}: {d}")
    finally:
        a.close()


def test_admin_groups_endpoint_shows_committed_offsets_and_lag(gbroker):
    topic, group = unique_topic("lag"), unique_topic("lag-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    produce_numbered(gbroker.bootstrap, topic, 0, 400)  # 100 per partition
    c = KafkaConsumer(bootstrap_servers=gbroker.bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        # a simple (group-less) commit through kafka-python: assign + commit explicit offsets
        c.assign([TopicPartition(topic, p) for p in range(PARTS)])
        want = {0: 100, 1: 60, 2: 1, 3: 0}
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, f"meta-{p}", -1) for p, o in want.items()})
        assert {p: c.committed(TopicPartition(topic, p)) for p in range(PARTS)} == want
        om = c.committed(TopicPartition(topic, 1), metadata=True)
        assert om.metadata == "meta-1"
    finally:
        c.close(autocommit=False)

    g = admin_group(gbroker, group)
    assert g is not None
    assert g["state"] == "Empty", g
    rows = {x["partition"]: x for x in g["partitions"]}
    assert all(x["topic"] == topic for x in g["partitions"])
    assert {p: (x["committed_offset"], x["high_watermark"], x["lag"]) for p, x in rows.items()} == {
        p: (o, 100, 100 - o) for p, o in want.items()}
    assert g["total_lag"] == sum(100 - o for o in want.values())

    produce_numbered(gbroker.bootstrap, topic, 400, 40)  # 10 more per partition
    g = admin_group(gbroker, group)
    assert {x["partition"]: x["lag"] for x in g["partitions"]} == {p: 110 - o for p, o in want.items()}
    assert g["total_lag"] == sum(110 - o for o in want.values())
