"""Consumer groups with real members (kafka-python 3.x, confluent-kafka): each message read once
across a group, resuming from committed offsets, a killed or paused member, static members.
See group_helpers.py for how "exactly once" is checked with numbered messages."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter, defaultdict
import pytest
from kafka import KafkaConsumer
from kafka import errors as kerrors

from client_helpers import create_topic
from harness import unique_topic, wait_until
from group_helpers import (
    produce_numbered,
    check_exactly_once,
    hw,
    group_offsets,
    describe,
    wait_detail,
    disjoint_cover,
    KpMember,
    distinct,
    wait_split,
    CkMember,
    ck_run,
    MemberProcess,
    PARTS,
    N,
    MEMBER_SCRIPT,
)


def test_kafka_python_group_of_two_reads_each_message_once_then_fresh_member_resumes(gbroker):
    topic, group = unique_topic("kp-group"), unique_topic("kp-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    members = [KpMember(gbroker.bootstrap, group, topic, f"kp-m{i}") for i in range(2)]
    for m in members:
        m.start()
    try:
        wait_split(members, "two kafka-python members")
        d = describe(gbroker.bootstrap, group)
        assert d["group_state"] == "Stable" and len(d["members"]) == 2, d
        stable = [m.generations[-1] for m in members]
        assert stable[0][0] == stable[1][0], f"members in different generations: {stable}"

        produce_numbered(gbroker.bootstrap, topic, 0, N)
        wait_until(lambda: distinct(members) >= N, 60, f"{N} distinct messages (have {distinct(members)})",
                   interval=0.1)
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == {p: N // PARTS for p in range(PARTS)},
                   20, "every partition committed at its end offset")
        # Taken before stopping: the first member to leave makes the other rebalance, by design.
        generations_during_run = [list(m.generations) for m in members]
    finally:
        for m in members:
            m.stop()
    for m, generations in zip(members, generations_during_run):
        assert m.error is None, f"{m.name}: {m.error!r}"
        assert not m.commit_errors, f"{m.name}: commits failed in a stable group: {m.commit_errors[:3]}"
        # no rebalance after the split was reached
        assert generations[-1] == stable[members.index(m)], f"{m.name} rebalanced: {generations}"

    check_exactly_once([n for m in members for n in m.numbers()], set(range(N)), what="two members")
    readers = defaultdict(set)
    for m in members:
        for p, o, n in m.records:
            assert p == n % PARTS, f"message {n} read from partition {p}"
            readers[p].add(m.name)
        assert {p for p, _o, _n in m.records} == set(stable[members.index(m)][1])
    assert sorted(readers) == list(range(PARTS))
    assert all(len(r) == 1 for r in readers.values()), f"a partition read by both members: {dict(readers)}"
    for p in range(PARTS):
        offs = sorted(o for m in members for q, o, _n in m.records if q == p)
        assert offs == list(range(N // PARTS)), f"partition {p}: offsets not 0..{N // PARTS - 1}"

    # both closed (LeaveGroup): the group is Empty, its offsets stay
    wait_until(lambda: describe(gbroker.bootstrap, group)["group_state"] == "Empty", 10, "group Empty")

    produce_numbered(gbroker.bootstrap, topic, N, 500)
    fresh = KpMember(gbroker.bootstrap, group, topic, "kp-fresh")
    fresh.start()
    try:
        wait_until(lambda: distinct([fresh]) >= 500, 30, f"500 new messages (have {distinct([fresh])})", interval=0.1)
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == hw(gbroker, topic), 20,
                   "fresh member committed up to the high watermarks")
    finally:
        fresh.stop()
    assert fresh.error is None, repr(fresh.error)
    assert fresh.snapshot() == set(range(PARTS))
    check_exactly_once(fresh.numbers(), set(range(N, N + 500)), what="fresh member")
    first = {p: min(o for q, o, _n in fresh.records if q == p) for p in range(PARTS)}
    assert first == {p: N // PARTS for p in range(PARTS)}, f"fresh member did not start at the committed offsets: {first}"


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_confluent_group_stop_half_way_restart_resumes(gbroker, strategy):
    topic, group = unique_topic(f"ck-{strategy}"), unique_topic(f"ck-g-{strategy}")
    create_topic(gbroker.bootstrap, topic, PARTS)
    produce_numbered(gbroker.bootstrap, topic, 0, N)

    def nums(ms):
        return [n for m in ms for _p, _o, n in m.records]

    # run 1: two members until at least half is read and committed, then both close
    first = [CkMember(gbroker.bootstrap, group, topic, f"ck1-{i}", strategy) for i in range(2)]
    try:
        ck_run(first, lambda: len(set(nums(first))) >= N * 3 // 8, 60, f"{N * 3 // 8} messages")
        committed = first[0].committed()
    finally:
        for m in first:
            m.close()
    read1 = nums(first)
    assert len(set(read1)) < N, "run 1 read everything: nothing left to resume"
    failed1 = set().union(*(m.commit_failed for m in first))
    check_exactly_once(read1, set(read1), failed1, what="run 1")
    # what was committed is exactly what was read, per partition (offsets 0..k-1)
    per_part = Counter(n % PARTS for n in set(read1))
    assert {p: o for p, o in committed.items() if o >= 0} == {p: c for p, c in per_part.items()}, (
        f"committed {committed} vs read per partition {dict(per_part)}")

    # run 2: two new members of the same group read the rest, from the committed offsets
    second = [CkMember(gbroker.bootstrap, group, topic, f"ck2-{i}", strategy) for i in range(2)]
    try:
        ck_run(second, lambda: len(set(read1) | set(nums(second))) >= N, 60, "the rest")
        ck_run(second, lambda: disjoint_cover([m.assignment() for m in second]), 30,
               "disjoint assignments covering all partitions")
        ck_run(second, lambda: second[0].committed() == {p: N // PARTS for p in range(PARTS)}, 20,
               "commits at the end offsets")
        final = [m.assignment() for m in second]
    finally:
        for m in second:
            m.close()
    failed2 = set().union(*(m.commit_failed for m in second))
    read2 = nums(second)
    dups = check_exactly_once(read1 + read2, set(range(N)), failed1 | failed2, what=f"{strategy}, runs 1+2")
    resumed_at = {p: min((o for m in second for q, o, _n in m.records if q == p), default=None)
                  for p in range(PARTS)}
    # (a partition run 1 read to its end has nothing left for run 2)
    want = {p: None if committed.get(p) == N // PARTS else max(committed.get(p, -1), 0) for p in range(PARTS)}
    assert resumed_at == want, f"run 2 did not start at the committed offsets: {resumed_at} != {want}"
    assert disjoint_cover(final), final
    if dups:
        print(f"{strategy}: {len(dups)} re-read after failed commits: "
              f"{[m.commit_errors[:2] for m in first + second]}")


def test_member_killed_survivor_takes_over_from_committed_offsets(gbroker, tmp_path):
    topic, group = unique_topic("kill-member"), unique_topic("kill-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    script = tmp_path / "member.py"
    script.write_text(MEMBER_SCRIPT)
    procs = [MemberProcess(script, gbroker.bootstrap, group, topic, f"kill-m{i}") for i in range(2)]
    try:
        def split():
            for p in procs:
                p.check_alive()
            return disjoint_cover([p.assignment() for p in procs])
        wait_until(split, 45, "two member processes with disjoint assignments covering all partitions",
                   interval=0.1)

        produce_numbered(gbroker.bootstrap, topic, 0, N)
        victim, survivor = procs
        wait_until(lambda: (victim.check_alive(), len(victim.msgs()) >= 100)[1], 30,
                   "the victim reading 100 messages", interval=0.02)
        victim.kill()
        killed_at = time.monotonic()
        victim_parts = victim.assignment()
        victim_msgs = victim.msgs()
        assert len(victim_msgs) < N // 2, "victim read all its partitions before the kill: nothing to take over"

        def took_over():
            survivor.check_alive()
            return [t for t, a, _g in survivor.assigned() if a == set(range(PARTS)) and t > killed_at]
        t_over = wait_until(took_over, 6 + 15, "the survivor owning all partitions "
                            "(session timeout 6 s + 15 s)", interval=0.1)[0]
        took = t_over - killed_at

        def everything():
            survivor.check_alive()
            return len({n for _p, _o, n in victim_msgs + survivor.msgs()}) >= N
        wait_until(everything, 60, "all messages read by the two members", interval=0.1)
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == {p: N // PARTS for p in range(PARTS)},
                   20, "every partition committed at its end offset")
        survivor_msgs = survivor.msgs()
        failed = survivor.commit_failures()
    finally:
        for p in procs:
            p.terminate()

    # the survivor re-reads at most the last message the victim read on each of its partitions:
    # the one whose commit may not have completed when it was killed
    last_victim = {}
    for p, o, n in victim_msgs:
        last_victim[p] = max(last_victim.get(p, -1), o)
    may_repeat = {n for p, o, n in victim_msgs if last_victim.get(p) == o}
    failed_numbers = {n for p, o, n in survivor_msgs if (p, o) in failed}
    numbers = [n for _p, _o, n in victim_msgs + survivor_msgs]
    dups = check_exactly_once(numbers, set(range(N)), may_repeat | failed_numbers, what="victim + survivor")
    victim_dups = [n for n in dups if n in may_repeat]
    assert len(victim_dups) <= len(victim_parts), (victim_dups, victim_parts)

    # the survivor continued each taken-over partition at the victim's commit
    for p in victim_parts:
        after = [o for q, o, _n in survivor_msgs if q == p]
        assert after, f"survivor read nothing of partition {p}"
        start = min(after)
        if p in last_victim:
            assert start in (last_victim[p], last_victim[p] + 1), (
                f"partition {p}: victim read up to offset {last_victim[p]}, survivor resumed at {start}")
        else:
            assert start == 0, f"partition {p}: nothing read by the victim, survivor resumed at {start}"
    print(f"kill: takeover after {took:.1f}s, victim owned {sorted(victim_parts)}, duplicates {dups}, "
          f"survivor commit failures {failed}")


def test_paused_member_is_fenced_and_cannot_rewind_commits(gbroker, tmp_path):
    """A member stops (SIGSTOP, like a long GC pause) between reading a message and committing
    it. Its session expires, the survivor takes its partitions and reads everything. When the
    zombie wakes up, its commit must be refused (its member id / generation are gone), so the
    group's offsets are not rewound; it rejoins and the two split the partitions again."""
    topic, group = unique_topic("zombie"), unique_topic("zombie-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    script = tmp_path / "member.py"
    script.write_text(MEMBER_SCRIPT)
    zombie = MemberProcess(script, gbroker.bootstrap, group, topic, "zombie", pause_after=100)
    survivor = MemberProcess(script, gbroker.bootstrap, group, topic, "survivor")
    procs = [zombie, survivor]
    try:
        wait_until(lambda: [p.check_alive() for p in procs] and disjoint_cover([p.assignment() for p in procs]),
                   45, "two member processes with disjoint assignments covering all partitions", interval=0.1)
        produce_numbered(gbroker.bootstrap, topic, 0, N)
        wait_until(zombie.paused, 30, "the zombie pausing itself", interval=0.02)
        paused_at = time.monotonic()
        [(_t, (zp, zo))] = zombie._kind("PAUSED")
        zp, zo = int(zp), int(zo)
        zombie_parts, zombie_gen = zombie.assignment(), zombie.generation()

        wait_until(lambda: survivor.check_alive() or [t for t, a, _g in survivor.assigned()
                                                       if a == set(range(PARTS)) and t > paused_at],
                   6 + 15, "the survivor owning all partitions", interval=0.1)
        wait_until(lambda: survivor.check_alive() or len({n for _p, _o, n in zombie.msgs() + survivor.msgs()}) >= N,
                   60, "all messages read", interval=0.1)
        end = {p: N // PARTS for p in range(PARTS)}
        wait_until(lambda: group_offsets(gbroker.bootstrap, group, topic) == end, 20, "commits at the end offsets")

        os.kill(zombie.proc.pid, signal.SIGCONT)
        wait_until(lambda: zombie.check_alive() or zombie._kind("RESUMED"), 10, "the zombie resuming")
        wait_detail(lambda: [p.check_alive() for p in procs]
                   and zombie.generation() > zombie_gen and zombie.generation() == survivor.generation()
                   and disjoint_cover([p.assignment() for p in procs]), 30,
                   "the zombie rejoined: disjoint assignments covering all partitions again", interval=0.1,
                   detail=lambda: f"zombie:\n{zombie.output_tail()}\nsurvivor:\n{survivor.output_tail()}")
        committed = group_offsets(gbroker.bootstrap, group, topic)
        print(f"zombie:\n{zombie.output_tail()}\nsurvivor:\n{survivor.output_tail()}")
        zombie_failed = zombie.commit_failures()
        zombie_msgs, survivor_msgs = zombie.msgs(), survivor.msgs()
    finally:
        for p in procs:
            p.terminate()
    assert (zp, zo) in zombie_failed, (
        f"the zombie's commit of {topic}/{zp}@{zo + 1} after its session expired was accepted "
        f"(commit failures {zombie_failed})")
    assert committed == end, f"offsets rewound by the zombie: {committed} != {end}"
    assert zp in zombie_parts
    failed_numbers = {n for p, o, n in zombie_msgs if (p, o) in zombie_failed}
    failed_numbers |= {n for p, o, n in survivor_msgs if (p, o) in survivor.commit_failures()}
    check_exactly_once([n for _p, _o, n in zombie_msgs + survivor_msgs], set(range(N)), failed_numbers,
                       what="zombie + survivor")


def test_static_member_restart_keeps_assignment_without_rebalance(gbroker):
    """KIP-345: a static member (group.instance.id) that closes and comes back within the session
    timeout takes its old place: same partitions, no new generation for the other member; static
    members send no LeaveGroup, so the group only empties when their sessions expire."""
    topic, group = unique_topic("static"), unique_topic("static-g")
    create_topic(gbroker.bootstrap, topic, PARTS)
    members = [KpMember(gbroker.bootstrap, group, topic, f"static-{i}", group_instance_id=f"inst-{i}")
               for i in range(2)]
    for m in members:
        m.start()
    again = None
    try:
        wait_split(members, "two static members")
        a, other = members
        a_parts, gen = a.snapshot(), other.generations[-1]
        d = describe(gbroker.bootstrap, group)
        assert sorted(x["group_instance_id"] for x in d["members"]) == ["inst-0", "inst-1"], d["members"]
        ids_before = {x["group_instance_id"]: x["member_id"] for x in d["members"]}
        a.stop()
        d = describe(gbroker.bootstrap, group)
        assert d["group_state"] == "Stable" and len(d["members"]) == 2, d

        again = KpMember(gbroker.bootstrap, group, topic, "static-0b", group_instance_id="inst-0")
        again.start()
        wait_until(lambda: again.snapshot(), 20, "the restarted static member assigned")
        assert again.snapshot() == a_parts
        produce_numbered(gbroker.bootstrap, topic, 0, 200)
        wait_until(lambda: distinct([again, other]) >= 200, 30, "200 messages read")
        assert other.generations[-1] == gen, f"the other member rebalanced: {other.generations}"
        d = describe(gbroker.bootstrap, group)
        assert d["group_state"] == "Stable", d
        # the returning instance got a new member id (Kafka keeps the member's other metadata,
        # client id included, from its first join)
        ids = {x["group_instance_id"]: x["member_id"] for x in d["members"]}
        assert ids["inst-1"] == ids_before["inst-1"], (ids_before, ids)
        assert ids["inst-0"] != ids_before["inst-0"] and ids["inst-0"].startswith("inst-0"), (ids_before, ids)
    finally:
        for m in members + ([again] if again else []):
            m.stop()
    check_exactly_once(again.numbers() + other.numbers(), set(range(200)), what="static members")
    # no LeaveGroup from static members: they stay until their 6 s sessions expire
    d = describe(gbroker.bootstrap, group)
    assert len(d["members"]) == 2, d
    wait_until(lambda: describe(gbroker.bootstrap, group)["group_state"] == "Empty", 6 + 10,
               "the static members' sessions to expire")


def test_session_timeout_below_minimum_is_refused(gbroker):
    topic = unique_topic("short-session")
    create_topic(gbroker.bootstrap, topic, 1)
    c = KafkaConsumer(topic, bootstrap_servers=gbroker.bootstrap, group_id=unique_topic("short-g"),
                      session_timeout_ms=3000, heartbeat_interval_ms=1000)
    try:
        with pytest.raises(kerrors.InvalidSessionTimeoutError):
            c.poll(timeout_ms=5000)
    finally:
        c.close(autocommit=False)
