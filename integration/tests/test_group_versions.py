"""The consumer-group APIs at every advertised version (JoinGroup 0-9, SyncGroup 0-5,
Heartbeat 0-4, LeaveGroup 0-5, ListGroups 0-5), what kafka-python infers from them, and real
groups on them.

Raw requests are encoded and responses decoded with kafka-python's schema-generated classes
(Kafka's own JSON message definitions), not with the broker's codec. What each version adds is
checked: JoinGroup v7 echoes the protocol type and v9 tells a static leader rejoining a Stable
group to skip the assignment (KIP-814); SyncGroup v5 echoes protocol type and name; LeaveGroup
v5 carries a reason; ListGroups v5 filters by group type.
"""

from __future__ import annotations

import struct
import uuid

from kafka.admin import KafkaAdminClient
from kafka.protocol.admin import ListGroupsRequest, ListGroupsResponse
from kafka.protocol.consumer.group import (
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
)

import kproto
from client_helpers import create_topic
from group_helpers import (PARTS, KpMember, check_exactly_once, disjoint_cover, distinct, find_coordinator,
                           produce_numbered)
from harness import unique_topic, wait_until

JOIN, SYNC, HEARTBEAT, LEAVE, LIST_GROUPS = 11, 14, 12, 13, 16
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82
LOADING = (14, 15, 16)  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
SUBSCRIPTION = b"\x00\x00\x00\x00\x00\x01\x00\x06orders\xff\xff\xff\xff"


def call(bootstrap: str, request, response_cls, version: int, corr: int = 7):
    """One request on its own connection, decoded at `version`."""
    request.with_header(correlation_id=corr, client_id="chronik-it-groupv")
    frame = bytes(request.encode(version=version, header=True, framed=True))
    with kproto.connect(bootstrap, timeout=15) as s:
        s.sendall(frame)
        size = struct.unpack(">i", kproto.recv_exact(s, 4))[0]
        payload = kproto.recv_exact(s, size)
    assert struct.unpack(">i", payload[:4])[0] == corr
    return response_cls.decode(payload, version=version, header=True)


def advertised(bootstrap: str) -> dict[int, tuple[int, int]]:
    _, body = kproto.call(bootstrap, kproto.api_versions_v0(0))
    err, apis = kproto.parse_api_versions_v0(body)
    assert err == 0
    return apis


def join(bootstrap, version, group, member_id="", instance=None, reason=None):
    req = JoinGroupRequest(
        group_id=group, session_timeout_ms=10000, rebalance_timeout_ms=10000, member_id=member_id,
        group_instance_id=instance, protocol_type="consumer", reason=reason,
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=SUBSCRIPTION)])
    return call(bootstrap, req, JoinGroupResponse, version)


def join_ready(bootstrap, version, group, **kw):
    """Joins once the group's coordinator is found and loaded."""
    find_coordinator(bootstrap, group)
    out = {}

    def ok():
        out["r"] = join(bootstrap, version, group, **kw)
        return out["r"].error_code not in LOADING
    wait_until(ok, 30, f"JoinGroup v{version} past coordinator loading (last {out.get('r')})")
    return out["r"]


def sync(bootstrap, version, group, generation, member_id, assignments, instance=None):
    req = SyncGroupRequest(
        group_id=group, generation_id=generation, member_id=member_id, group_instance_id=instance,
        protocol_type="consumer", protocol_name="range",
        assignments=[SyncGroupRequest.SyncGroupRequestAssignment(member_id=m, assignment=a)
                     for m, a in assignments])
    return call(bootstrap, req, SyncGroupResponse, version)


def heartbeat(bootstrap, version, group, generation, member_id, instance=None):
    req = HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                           group_instance_id=instance)
    return call(bootstrap, req, HeartbeatResponse, version)


def group_name(tag: str) -> str:
    return f"gv-{tag}-{uuid.uuid4().hex[:8]}"


def test_kafka_python_infers_kafka_3_9_and_negotiates_the_new_group_versions(gbroker):
    """kafka-python 3 names the broker by the newest version it recognises: Fetch v17 makes it
    Kafka 3.9 (the next step, 4.0, needs ListOffsets v10). It then negotiates the newest group
    versions."""
    apis = advertised(gbroker.bootstrap)
    assert (apis[JOIN], apis[SYNC], apis[HEARTBEAT], apis[LEAVE]) == ((0, 9), (0, 5), (0, 4), (0, 5))
    a = KafkaAdminClient(bootstrap_servers=gbroker.bootstrap, client_id="gv-admin", request_timeout_ms=15000)
    try:
        assert a._client.check_version() == (3, 9)
        data = a._manager.broker_version_data
        got = [data.api_version(c) for c in (JoinGroupRequest, SyncGroupRequest, HeartbeatRequest,
                                              LeaveGroupRequest)]
        assert got == [9, 5, 4, 5]
    finally:
        a.close()


def test_every_version_joins_syncs_heartbeats_and_leaves(gbroker):
    """A one-member group per JoinGroup version, driven through a whole generation with the
    matching Sync/Heartbeat/Leave versions; each version's additions are checked."""
    b = gbroker.bootstrap
    failures = []
    for v in range(0, 10):
        sv, hv, lv = min(v, 5), min(v, 4), min(v, 5)
        group = group_name(f"v{v}")
        try:
            r = join_ready(b, v, group, reason="first join" if v >= 8 else None)
            if v >= 4:
                assert r.error_code == MEMBER_ID_REQUIRED and r.member_id, r
                r = join(b, v, group, member_id=r.member_id)
            assert r.error_code == 0 and r.generation_id == 1, r
            assert r.leader == r.member_id and [m.member_id for m in r.members] == [r.member_id], r
            assert r.protocol_name == "range", r
            # v7+: the protocol type is echoed; v9: a fresh leader must assign.
            if v >= 7:
                assert r.protocol_type == "consumer", r
            assert not r.skip_assignment, r
            me = r.member_id
            s = sync(b, sv, group, 1, me, [(me, b"assigned-" + str(v).encode())])
            assert s.error_code == 0 and s.assignment == b"assigned-" + str(v).encode(), s
            if sv >= 5:
                assert (s.protocol_type, s.protocol_name) == ("consumer", "range"), s
            assert heartbeat(b, hv, group, 1, me).error_code == 0
            assert heartbeat(b, hv, group, 0, me).error_code == 22  # ILLEGAL_GENERATION
            members = [LeaveGroupRequest.MemberIdentity(member_id=me, group_instance_id=None,
                                                        reason="done" if lv >= 5 else None),
                       LeaveGroupRequest.MemberIdentity(member_id="ghost", group_instance_id=None)]
            lr = call(b, LeaveGroupRequest(group_id=group, member_id=me, members=members),
                      LeaveGroupResponse, lv)
            assert lr.error_code == 0, lr
            if lv >= 3:
                assert [(m.member_id, m.error_code) for m in lr.members] == [(me, 0), ("ghost", 25)], lr
            # It is gone: its heartbeat is refused.
            assert heartbeat(b, hv, group, 1, me).error_code == 25  # UNKNOWN_MEMBER_ID
        except Exception as exc:  # noqa: BLE001 - collected and reported together
            failures.append(f"JoinGroup v{v}: {type(exc).__name__}: {str(exc)[:400]}")
    assert not failures, "\n".join(failures)


def test_a_static_leader_restart_skips_the_assignment_from_v9_only(gbroker):
    """KIP-814: a static leader rejoining a Stable group with a new member id. At v9 it is named
    leader, sees the members and is told to skip the assignment; at v8 it is handed the previous
    leader id instead (so it does not assign). Either way the group stays Stable, the member keeps
    its assignment, and its old id is fenced."""
    b = gbroker.bootstrap
    group = group_name("static")
    r = join_ready(b, 9, group, instance="worker-1")
    assert r.error_code == 0 and r.leader == r.member_id and not r.skip_assignment, r
    first = r.member_id
    assert sync(b, 5, group, 1, first, [(first, b"p0-p1")], instance="worker-1").error_code == 0

    r = join(b, 9, group, instance="worker-1", reason="restarted")
    second = r.member_id
    assert r.error_code == 0 and r.generation_id == 1 and second != first, r
    assert r.leader == second and r.skip_assignment is True, r
    assert [(m.member_id, m.group_instance_id) for m in r.members] == [(second, "worker-1")], r
    assert heartbeat(b, 4, group, 1, first, instance="worker-1").error_code == FENCED_INSTANCE_ID
    s = sync(b, 5, group, 1, second, [], instance="worker-1")
    assert (s.error_code, s.assignment) == (0, b"p0-p1"), s

    r = join(b, 8, group, instance="worker-1")
    third = r.member_id
    assert r.error_code == 0 and r.generation_id == 1 and third not in (first, second), r
    assert r.leader == second and not r.members and not r.skip_assignment, r
    s = sync(b, 5, group, 1, third, [], instance="worker-1")
    assert (s.error_code, s.assignment) == (0, b"p0-p1"), s
    assert heartbeat(b, 4, group, 1, third, instance="worker-1").error_code == 0


def test_list_groups_filters_by_type_from_v5(gbroker):
    """ListGroups v5 (KIP-848's types filter): every group here is `classic`, so a `classic`
    filter (any case) lists a Stable group with its type, a `consumer` one lists nothing, and
    older versions list it as before."""
    b = gbroker.bootstrap
    assert advertised(b)[LIST_GROUPS] == (0, 5)
    group = group_name("list")
    r = join_ready(b, 9, group, instance="lister")
    assert sync(b, 5, group, 1, r.member_id, [(r.member_id, b"x")], instance="lister").error_code == 0

    def listed(version, types=(), states=()):
        resp = call(b, ListGroupsRequest(states_filter=list(states), types_filter=list(types)),
                    ListGroupsResponse, version)
        assert resp.error_code == 0, resp
        return {g.group_id: g for g in resp.groups}

    for types in (["classic"], ["Classic", "consumer"], []):
        g = listed(5, types, ["Stable"]).get(group)
        assert g is not None and (g.group_type, g.group_state, g.protocol_type) == ("classic", "Stable", "consumer"), \
            (types, g)
    assert group not in listed(5, ["consumer"])
    assert group not in listed(5, ["classic"], ["Empty"])
    assert listed(4, [], ["Stable"])[group].group_state == "Stable"
    assert listed(0)[group].protocol_type == "consumer"


def test_kafka_python_group_on_the_new_versions(gbroker):
    """Two kafka-python members (JoinGroup v7, SyncGroup v5, Heartbeat v4, LeaveGroup v5 with this
    broker) split a topic and commit; one closes (LeaveGroup) and the other takes over every
    partition and reads on from the committed offsets: every message read exactly once."""
    b = gbroker.bootstrap
    topic = unique_topic("gv-kp")
    create_topic(b, topic, PARTS)
    group = group_name("kp")
    produce_numbered(b, topic, 0, 200)
    m1, m2 = KpMember(b, group, topic, "gv-a"), KpMember(b, group, topic, "gv-b")
    m1.start()
    m2.start()
    try:
        wait_until(lambda: disjoint_cover([m1.snapshot(), m2.snapshot()]) and distinct([m1, m2]) == 200, 60,
                   "two members splitting the partitions and reading everything")
        m2.stop()  # closes the consumer: LeaveGroup
        produce_numbered(b, topic, 200, 100)
        wait_until(lambda: m1.snapshot() == set(range(PARTS)) and distinct([m1, m2]) == 300, 60,
                   "the remaining member owning every partition and reading the new messages")
    finally:
        m1.stop()
    assert m1.error is None and m2.error is None, (m1.error, m2.error)
    check_exactly_once(m1.numbers() + m2.numbers(), set(range(300)), m1.commit_failed | m2.commit_failed,
                       "kafka-python group")
    gens = [g for g, _a in m1.generations if g > 0]
    assert len(set(gens)) >= 2, f"the leave must have started a new generation: {m1.generations}"
