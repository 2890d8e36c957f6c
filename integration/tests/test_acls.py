"""Kafka ACLs (`[authorization]`): Kafka's authorizer model, managed with CreateAcls /
DescribeAcls / DeleteAcls and enforced on every request with Kafka's error codes.

One standalone broker for the module, authorization on, `User:admin` a super user and
`allow_everyone_if_no_acl_found = false`. Its main listener is PLAINTEXT, so whoever connects
there is `User:ANONYMOUS`; a SASL_PLAINTEXT listener takes SCRAM-SHA-256 and PLAIN logins of the
users admin, alice and bob (created through `POST /admin/users`).

- kafka-python's admin client creates, describes (by principal, by resource type ANY, PREFIXED,
  MATCH, permission, operation and host) and deletes bindings; each comes back field by field.
- alice, with READ and DESCRIBE on topic `orders`, WRITE on the prefix `orders` and READ on group
  `g1`, produces idempotently (InitProducerId passes on her WRITE) and consumes and commits in
  `g1`; group `g2` is GROUP_AUTHORIZATION_FAILED, reading `orders-eu` (only WRITE) and committing
  it are TOPIC_AUTHORIZATION_FAILED. bob is refused `orders` (by Metadata, by Produce, and by
  InitProducerId when idempotent), and does not see it or `g1` in his listings. A DENY on her
  READ overrides the ALLOW until it is deleted.
- ANONYMOUS sees no topic and writes nothing (ApiVersions and a Metadata naming no topic
  work); an ACL for another host does not apply; auto-creation needs CREATE. The super user needs
  no ACL for anything.
- DescribeAcls needs DESCRIBE on `kafka-cluster`, CreateAcls and DeleteAcls ALTER; topic and
  cluster admin requests need their operations (kafka-python, confluent-kafka for configs).
- confluent-kafka creates, describes and deletes an ACL, and its producer is refused a topic.
- Each denial is logged (`authorization denied`, principal, operation, resource); ACLs survive a
  restart; with `allow_everyone_if_no_acl_found` (set through the environment) a resource
  without ACLs is open to all, and one ACL on it closes it to everyone else.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid
from typing import Callable, Optional

import pytest
import requests
from confluent_kafka import KafkaError as CkError
from confluent_kafka import KafkaException
from confluent_kafka import Producer as CkProducer
from confluent_kafka.admin import AclBinding, AclBindingFilter, AclOperation, AclPermissionType
from confluent_kafka.admin import AdminClient as CkAdmin
from confluent_kafka.admin import ConfigResource as CkResource
from confluent_kafka.admin import ResourcePatternType
from confluent_kafka.admin import ResourceType as CkResourceType
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         KafkaAdminClient, NewTopic, ResourcePattern, ResourcePatternFilter, ResourceType)
from kafka.errors import (ClusterAuthorizationFailedError, GroupAuthorizationFailedError, InvalidRequestError,
                          KafkaError, NoError, SecurityDisabledError, TopicAuthorizationFailedError)
from kafka.structs import OffsetAndMetadata, TopicPartition

import kproto
from group_helpers import GROUP_ENV
from harness import Broker, broker_binary, free_port, wait_until

ADMIN, ALICE, BOB = "admin", "alice", "bob"
PASSWORDS = {ADMIN: "admin-pw-0451", ALICE: "alice-pw-2718", BOB: "bob-pw-3141"}
ADMIN_P, ALICE_P, BOB_P = "User:admin", "User:alice", "User:bob"
ANONYMOUS = "User:ANONYMOUS"
CLUSTER = "kafka-cluster"
NODE_ID = 1
TOPIC_AUTH, GROUP_AUTH, CLUSTER_AUTH = 29, 30, 31
API_DESCRIBE_ACLS, API_CREATE_ACLS, API_DELETE_ACLS = 29, 30, 31
TIMEOUT_MS = 10000

TOPIC, GROUP, CLUSTER_RES = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
LITERAL, PREFIXED = ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED
ALLOW, DENY = ACLPermissionType.ALLOW, ACLPermissionType.DENY
READ, WRITE, DESCRIBE = ACLOperation.READ, ACLOperation.WRITE, ACLOperation.DESCRIBE
CREATE, DELETE, ALTER = ACLOperation.CREATE, ACLOperation.DELETE, ACLOperation.ALTER

AUTHORIZATION = ('[authorization]\nenabled = true\nsuper_users = ["User:admin"]\n'
                 'allow_everyone_if_no_acl_found = false\n')


class Secured:
    """A broker with its main (PLAINTEXT) listener and its SASL_PLAINTEXT one."""

    def __init__(self, broker: Broker, sasl_port: int):
        self.broker = broker
        self.sasl = f"127.0.0.1:{sasl_port}"


def secure(b: Broker, authorization: str) -> Secured:
    """Adds the SASL_PLAINTEXT listener and `authorization` to `b`'s config, starts it and
    creates the three users."""
    port = free_port()
    while port in (b.kafka_port, b.admin_port):
        port = free_port()
    b.extra_toml = (f'[[kafka.listeners]]\nname = "SASL_PLAINTEXT"\nbind = "127.0.0.1:{port}"\n'
                    'security_protocol = "SASL_PLAINTEXT"\n'
                    '[sasl]\nmechanisms = ["SCRAM-SHA-256", "PLAIN"]\n' + authorization)
    b.write_config()
    b.start()
    for name, password in PASSWORDS.items():
        body = {"name": name, "password": password, "mechanism": "SCRAM-SHA-256"}
        r = requests.post(f"{b.admin_url}/admin/users", json=body, timeout=30)
        assert r.status_code == 200 and r.json()["success"], r.text
    return Secured(b, port)


@pytest.fixture(scope="module")
def acls(tmp_path_factory) -> Secured:
    b = Broker(tmp_path_factory.mktemp("acls"), name="acl-broker", fsync="interval", extra_env=GROUP_ENV)
    try:
        s = secure(b, AUTHORIZATION)
    except BaseException:
        b.kill()
        raise
    yield s
    rc = b.stop()
    assert rc == 0, f"acl broker exited with {rc} on SIGTERM"


# ---- clients -------------------------------------------------------------------------------------


def uid() -> str:
    return uuid.uuid4().hex[:8]


def sasl(s: Secured, user: str, mechanism: str = "SCRAM-SHA-256") -> dict:
    """kafka-python settings for `user` on the SASL listener."""
    return dict(bootstrap_servers=s.sasl, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                sasl_plain_username=user, sasl_plain_password=PASSWORDS[user])


def anonymous(s: Secured) -> dict:
    """kafka-python settings for the PLAINTEXT listener (User:ANONYMOUS)."""
    return dict(bootstrap_servers=s.broker.bootstrap)


def ck_conf(s: Secured, user: str, mechanism: str = "PLAIN") -> dict:
    return {"bootstrap.servers": s.sasl, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": PASSWORDS[user], "socket.timeout.ms": TIMEOUT_MS}


@contextlib.contextmanager
def admin_as(kw: dict):
    a = KafkaAdminClient(client_id="chronik-it-acl-admin", request_timeout_ms=TIMEOUT_MS, **kw)
    try:
        yield a
    finally:
        a.close()


@contextlib.contextmanager
def producer(kw: dict, **cfg):
    """kafka-python 3's producer: idempotent and acks=all unless `cfg` says otherwise."""
    p = KafkaProducer(client_id="chronik-it-acl-producer", request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS,
                      delivery_timeout_ms=15000, linger_ms=0, **kw, **cfg)
    try:
        yield p
    finally:
        p.close(timeout=5)


@contextlib.contextmanager
def consumer(kw: dict, group: Optional[str], *topics: str):
    c = KafkaConsumer(*topics, group_id=group, client_id="chronik-it-acl-consumer", auto_offset_reset="earliest",
                      enable_auto_commit=False, request_timeout_ms=TIMEOUT_MS, session_timeout_ms=6000,
                      heartbeat_interval_ms=1000, **kw)
    try:
        yield c
    finally:
        c.close()


def read(c: KafkaConsumer, n: int, timeout: float = 20) -> list:
    """The next `n` records `c` polls."""
    got: list = []

    def more() -> bool:
        for records in c.poll(timeout_ms=500).values():
            got.extend(records)
        return len(got) >= n

    wait_until(more, timeout, f"{n} records (have {len(got)})")
    return got


def first_error(call: Callable[[], object], timeout: float, what: str) -> KafkaError:
    """Calls `call` until it raises a Kafka error (the client's way to report a refusal), which
    is returned."""
    def failed() -> Optional[KafkaError]:
        try:
            call()
        except KafkaError as exc:
            return exc
        return None

    return wait_until(failed, timeout, what)


def create_topics(s: Secured, *names: str, partitions: int = 1) -> None:
    """Creates the topics as the super user and waits until each partition has a leader."""
    with admin_as(sasl(s, ADMIN)) as a:
        a.create_topics({n: {"num_partitions": partitions, "replication_factor": 1} for n in names})

        def ready() -> bool:
            led = {t["name"] for t in a.describe_topics(list(names))
                   if t["error_code"] == 0 and t["partitions"] and all(p["leader_id"] >= 0 for p in t["partitions"])}
            return led == set(names)

        wait_until(ready, 15, f"topics {names} with leaders")


# ---- ACLs ----------------------------------------------------------------------------------------


def acl(principal: str, rtype: ResourceType, name: str, op: ACLOperation, perm: ACLPermissionType = ALLOW,
        pattern: ACLResourcePatternType = LITERAL, host: str = "*") -> ACL:
    return ACL(principal=principal, host=host, operation=op, permission_type=perm,
               resource_pattern=ResourcePattern(rtype, name, pattern))


def acl_filter(principal: Optional[str] = None, rtype: ResourceType = ResourceType.ANY, name: Optional[str] = None,
               pattern: ACLResourcePatternType = ACLResourcePatternType.ANY, op: ACLOperation = ACLOperation.ANY,
               perm: ACLPermissionType = ACLPermissionType.ANY, host: Optional[str] = None) -> ACLFilter:
    return ACLFilter(principal=principal, host=host, operation=op, permission_type=perm,
                     resource_pattern=ResourcePatternFilter(rtype, name, pattern))


def fields(a: ACLFilter) -> tuple:
    """A binding's seven fields, by name, in Kafka's order."""
    p = a.resource_pattern
    return (p.resource_type.name, p.resource_name, p.pattern_type.name, a.principal, a.host, a.operation.name,
            a.permission_type.name)


def want(*bindings: ACLFilter) -> list[tuple]:
    return sorted(fields(b) for b in bindings)


def described(kw: dict, flt: ACLFilter) -> list[tuple]:
    with admin_as(kw) as a:
        found, error = a.describe_acls(flt)
    assert error is NoError, error
    return sorted(fields(b) for b in found)


def grant(s: Secured, *bindings: ACL) -> None:
    with admin_as(sasl(s, ADMIN)) as a:
        result = a.create_acls(list(bindings))
    assert result == {"succeeded": list(bindings), "failed": []}, result


def revoke(s: Secured, *bindings: ACL, check: bool = True) -> None:
    """Deletes each binding with itself as the filter; `check`: each deleted exactly itself."""
    with admin_as(sasl(s, ADMIN)) as a:
        results = a.delete_acls(list(bindings))
    if check:
        got = [(error, [fields(m) for m in matched]) for _f, matched, error in results]
        assert got == [(NoError, [fields(b)]) for b in bindings], got


# ---- raw frames (PLAINTEXT listener, so User:ANONYMOUS) ----------------------------------------------


def raw_metadata(bootstrap: str, topics: Optional[list[str]]) -> dict:
    _, body = kproto.call(bootstrap, kproto.metadata_v1(1, topics))
    return kproto.parse_metadata_v1(body)


def topic_errors(bootstrap: str, topics: list[str]) -> dict[str, int]:
    return {t["name"]: t["error_code"] for t in raw_metadata(bootstrap, topics)["topics"]}


def raw_produce(bootstrap: str, topic: str) -> int:
    """A plain (non-idempotent) Produce v3 of one record to partition 0; its error code."""
    _, body = kproto.call(bootstrap, kproto.produce_v3(1, topic, 0, kproto.record_batch([b"anonymous"])))
    [p] = kproto.parse_produce_v3(body)
    return p["error_code"]


def auto_create(bootstrap: str, topic: str) -> int:
    """Metadata v4 for `topic` allowing auto-creation: the topic's error, 0 once it exists with a
    leader, -1 while it has none yet."""
    _, body = kproto.call(bootstrap, kproto.metadata_v4(1, [topic], True))
    [t] = kproto.parse_metadata_v4(body)["topics"]
    if t["error_code"]:
        return t["error_code"]
    return 0 if t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"]) else -1


# ---- tests ---------------------------------------------------------------------------------------


def test_acls_round_trip_through_kafka_pythons_admin_client(acls):
    s = acls
    u = uid()
    carol = f"User:carol-{u}"  # ACLs may name principals no user has (yet)
    topic, prefix, group, txn = f"rt-{u}", f"rt-{u}-pre-", f"rt-{u}-group", f"rt-{u}-txn"
    literal = acl(carol, TOPIC, topic, READ)
    prefixed = acl(carol, TOPIC, prefix, WRITE, pattern=PREFIXED)
    every_topic = acl(carol, TOPIC, "*", DESCRIBE)
    denied = acl(carol, GROUP, group, READ, perm=DENY, host="127.0.0.1")
    cluster = acl(carol, CLUSTER_RES, CLUSTER, ACLOperation.IDEMPOTENT_WRITE)
    transactional = acl(carol, ResourceType.TRANSACTIONAL_ID, txn, WRITE)
    bindings = [literal, prefixed, every_topic, denied, cluster, transactional]
    admin = sasl(s, ADMIN)

    assert described(admin, acl_filter(carol)) == []
    with admin_as(admin) as a:
        assert a.create_acls(bindings) == {"succeeded": bindings, "failed": []}
        # The cluster resource has one name; anything else is INVALID_REQUEST and stores nothing.
        bad = a.create_acls([acl(carol, CLUSTER_RES, "my-cluster", ALTER)])
        assert bad == {"succeeded": [], "failed": [InvalidRequestError]}, bad

    # By principal, over every resource type.
    assert described(admin, acl_filter(carol)) == want(*bindings)
    assert described(admin, acl_filter(carol, TOPIC)) == want(literal, prefixed, every_topic)
    assert described(admin, acl_filter(carol, CLUSTER_RES, CLUSTER, LITERAL)) == want(cluster)
    # A pattern type and name select the bindings with exactly that pattern (any principal).
    assert described(admin, acl_filter(None, TOPIC, prefix, PREFIXED)) == want(prefixed)
    assert described(admin, acl_filter(None, TOPIC, prefix, LITERAL)) == []
    # MATCH: every binding that applies to the named resource: its literal name, the literal `*`,
    # and every prefix of the name.
    assert described(admin, acl_filter(carol, TOPIC, prefix + "payments", ACLResourcePatternType.MATCH)) == \
        want(prefixed, every_topic)
    assert described(admin, acl_filter(carol, TOPIC, topic, ACLResourcePatternType.MATCH)) == \
        want(literal, every_topic)
    # Permission, operation and host.
    assert described(admin, acl_filter(carol, perm=DENY)) == want(denied)
    assert described(admin, acl_filter(carol, op=WRITE)) == want(prefixed, transactional)
    assert described(admin, acl_filter(carol, host="127.0.0.1")) == want(denied)

    with admin_as(admin) as a:
        [(_f, topics, error)] = a.delete_acls([acl_filter(carol, TOPIC)])
        assert error is NoError and want(*topics) == want(literal, prefixed, every_topic)
        assert described(admin, acl_filter(carol)) == want(denied, cluster, transactional)
        [(_f, rest, error)] = a.delete_acls([acl_filter(carol)])
        assert error is NoError and want(*rest) == want(denied, cluster, transactional)
        [(_f, none, error)] = a.delete_acls([acl_filter(carol)])
        assert (none, error) == ([], NoError)
    assert described(admin, acl_filter(carol)) == []


def test_a_super_user_that_is_not_a_principal_stops_the_start_naming_its_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(f'[bind]\nkafka = "127.0.0.1:{free_port()}"\nadmin = "127.0.0.1:{free_port()}"\n'
                      '[authorization]\nenabled = true\nsuper_users = ["admin"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
    out = subprocess.run([str(broker_binary()), "start", "--config", str(config), "--data-dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode != 0
    assert "authorization.super_users" in out.stdout + out.stderr, out.stdout + out.stderr


def test_alice_works_within_her_acls_and_bob_is_refused(acls):
    s = acls
    create_topics(s, "orders", "orders-eu")
    grant(s, acl(ALICE_P, TOPIC, "orders", READ), acl(ALICE_P, TOPIC, "orders", DESCRIBE),
          acl(ALICE_P, TOPIC, "orders", WRITE, pattern=PREFIXED), acl(ALICE_P, GROUP, "g1", READ))
    alice, bob = sasl(s, ALICE), sasl(s, BOB)

    # Idempotent (kafka-python's default): InitProducerId passes on her WRITE on some topic; the
    # prefix covers orders-eu too (WRITE implies DESCRIBE, so Metadata shows it).
    with producer(alice) as p:
        assert [p.send("orders", b"order-%d" % i).get(10).offset for i in range(10)] == list(range(10))
        assert p.send("orders-eu", b"eu-0").get(10).offset == 0
    with consumer(alice, "g1", "orders") as c:
        got = read(c, 10)
        assert [(r.offset, r.value) for r in got] == [(i, b"order-%d" % i) for i in range(10)]
        c.commit()
        assert c.committed(TopicPartition("orders", 0)) == 10
    with consumer(alice, "g2", "orders") as c:
        refused = first_error(lambda: c.poll(timeout_ms=500), 15, "alice refused group g2")
    assert isinstance(refused, GroupAuthorizationFailedError), refused
    # WRITE is not READ: she may see orders-eu but not fetch from it, nor commit offsets of it.
    with consumer(alice, None) as c:
        c.assign([TopicPartition("orders-eu", 0)])
        refused = first_error(lambda: c.poll(timeout_ms=500), 15, "alice refused a fetch from orders-eu")
    assert isinstance(refused, TopicAuthorizationFailedError), refused
    with admin_as(alice) as a:
        committed = a.alter_group_offsets("g1", {TopicPartition("orders", 0): OffsetAndMetadata(10, "", -1),
                                                 TopicPartition("orders-eu", 0): OffsetAndMetadata(0, "", -1)})
        assert committed == {TopicPartition("orders", 0): NoError,
                             TopicPartition("orders-eu", 0): TopicAuthorizationFailedError}, committed
        assert "g1" in {g["group_id"] for g in a.list_groups()}

    # bob has no ACL: nothing of alice's shows in his listings, and his requests are refused.
    with admin_as(bob) as a:
        assert not {"orders", "orders-eu"} & set(a.list_topics())
        assert "g1" not in {g["group_id"] for g in a.list_groups()}
        assert "GroupAuthorizationFailed" in str(a.describe_groups(["g1"], group_coordinator_id=NODE_ID)["g1"]["error"])
        assert a.delete_groups(["g1"], group_coordinator_id=NODE_ID) == {"g1": "GroupAuthorizationFailedError"}
    with admin_as(sasl(s, ADMIN)) as a:
        assert {"orders", "orders-eu"} <= set(a.list_topics())
        assert "g1" in {g["group_id"] for g in a.list_groups()}, "the group was not deleted"
    with producer(bob, enable_idempotence=False) as p:
        with pytest.raises(TopicAuthorizationFailedError):  # by Metadata
            p.send("orders", b"bob").get(10)
    bob_describes = acl(BOB_P, TOPIC, "orders", DESCRIBE)
    grant(s, bob_describes)
    try:
        with admin_as(bob) as a:
            assert "orders" in a.list_topics() and "orders-eu" not in a.list_topics()
        with producer(bob, enable_idempotence=False) as p:
            with pytest.raises(TopicAuthorizationFailedError):  # by Produce: DESCRIBE is not WRITE
                p.send("orders", b"bob").get(10)
        with producer(bob) as p:
            # kafka-python wraps InitProducerId's error: "Unexpected error in InitProducerIdResponse".
            with pytest.raises(KafkaError, match="ClusterAuthorizationFailed"):
                p.send("orders", b"bob").get(10)
    finally:
        revoke(s, bob_describes)

    # A DENY wins over the ALLOW for that operation only: she still writes, but cannot read.
    deny = acl(ALICE_P, TOPIC, "orders", READ, perm=DENY)
    grant(s, deny)
    with producer(alice) as p:
        assert p.send("orders", b"during-deny").get(10).offset == 10
    with consumer(alice, "g1", "orders") as c:
        refused = first_error(lambda: c.poll(timeout_ms=500), 20, "alice's fetch refused by the DENY")
    assert isinstance(refused, TopicAuthorizationFailedError), refused
    revoke(s, deny)
    with consumer(alice, "g1", "orders") as c:
        assert [(r.offset, r.value) for r in read(c, 1)] == [(10, b"during-deny")], "from g1's committed offset"


def test_anonymous_clients_see_no_topic_and_write_nothing(acls):
    s = acls
    u = uid()
    topic, auto = f"anon-{u}", f"anon-auto-{u}"
    create_topics(s, topic)
    plain = s.broker.bootstrap

    _, body = kproto.call(plain, kproto.api_versions_v0(1))
    error, apis = kproto.parse_api_versions_v0(body)
    assert error == 0
    # v1-3 at least (Kafka 4 dropped v0); kafka-python negotiates v3.
    acl_apis = [apis.get(k) for k in (API_DESCRIBE_ACLS, API_CREATE_ACLS, API_DELETE_ACLS)]
    assert all(r is not None and r[0] <= 1 and r[1] == 3 for r in acl_apis), acl_apis
    nothing = raw_metadata(plain, [])
    assert nothing["topics"] == [] and [b["node_id"] for b in nothing["brokers"]] == [NODE_ID]
    assert raw_metadata(plain, None)["topics"] == [], "listing all topics omits those it may not describe"
    assert topic_errors(plain, [topic]) == {topic: TOPIC_AUTH}
    assert raw_produce(plain, topic) == TOPIC_AUTH
    with producer(anonymous(s), enable_idempotence=False) as p:
        with pytest.raises(TopicAuthorizationFailedError):
            p.send(topic, b"x").get(10)
    with admin_as(anonymous(s)) as a:
        assert a.list_topics() == []
        with pytest.raises(ClusterAuthorizationFailedError):
            a.describe_acls(acl_filter())

    elsewhere = acl(ANONYMOUS, TOPIC, topic, DESCRIBE, host="192.0.2.10")
    here = acl(ANONYMOUS, TOPIC, topic, DESCRIBE, host="127.0.0.1")
    may_see = acl(ANONYMOUS, TOPIC, auto, DESCRIBE, pattern=PREFIXED)
    may_create = acl(ANONYMOUS, TOPIC, auto, CREATE, pattern=PREFIXED)
    try:
        grant(s, elsewhere)
        assert topic_errors(plain, [topic]) == {topic: TOPIC_AUTH}, "an ACL for another host does not apply"
        grant(s, here)
        assert topic_errors(plain, [topic]) == {topic: 0}
        assert [t["name"] for t in raw_metadata(plain, None)["topics"]] == [topic]
        assert raw_produce(plain, topic) == TOPIC_AUTH, "DESCRIBE is not WRITE"

        # Auto-creation by Metadata needs CREATE (on the cluster or the topic), not just DESCRIBE.
        grant(s, may_see)
        assert auto_create(plain, f"{auto}-1") == TOPIC_AUTH
        with admin_as(sasl(s, ADMIN)) as a:
            assert f"{auto}-1" not in a.list_topics()
        grant(s, may_create)
        wait_until(lambda: auto_create(plain, f"{auto}-1") == 0, 15, "the topic auto-created for ANONYMOUS")
    finally:
        revoke(s, elsewhere, here, may_see, may_create, check=False)


def test_old_request_versions_without_a_top_level_error_are_refused_per_partition(acls):
    """OffsetFetch v1 and a follower's Fetch v4 have no top-level error code: the refusal goes on
    each partition asked for, and the connection stays usable."""
    s = acls
    topic = f"old-{uid()}"
    create_topics(s, topic)
    offset_fetch_v1 = kproto.frame(9, 1, 7, kproto.string("old-group") + kproto.array(
        [kproto.string(topic) + kproto.array([kproto.i32(0)])]))
    follower_fetch_v4 = kproto.frame(1, 4, 8, kproto.i32(2) + kproto.i32(0) + kproto.i32(1) + kproto.i32(1 << 20)
                                     + kproto.i8(0) + kproto.array([kproto.string(topic) + kproto.array(
                                         [kproto.i32(0) + kproto.i64(0) + kproto.i32(1 << 20)])]))
    with kproto.connect(s.broker.bootstrap) as sock:
        sock.sendall(offset_fetch_v1)

        def partition(r: kproto.Reader) -> tuple[int, int, int]:
            index, offset = r.i32(), r.i64()
            r.string()  # metadata
            return index, offset, r.i16()

        r = kproto.Reader(kproto.read_response(sock)[1])
        assert r.array(lambda r: (r.string(), r.array(partition))) == [(topic, [(0, -1, GROUP_AUTH)])]
        sock.sendall(follower_fetch_v4)
        [p] = kproto.parse_fetch_v4(kproto.read_response(sock)[1])
        assert (p["partition"], p["error_code"]) == (0, CLUSTER_AUTH), p


def test_the_super_user_needs_no_acl(acls):
    s = acls
    u = uid()
    topic, group = f"super-{u}", f"super-{u}-group"
    admin = sasl(s, ADMIN, "PLAIN")
    assert described(admin, acl_filter(ADMIN_P)) == []
    create_topics(s, topic)
    with producer(admin) as p:
        assert [p.send(topic, b"s-%d" % i).get(10).offset for i in range(5)] == list(range(5))
    with consumer(admin, group, topic) as c:
        assert [r.value for r in read(c, 5)] == [b"s-%d" % i for i in range(5)]
        c.commit()
        assert c.committed(TopicPartition(topic, 0)) == 5
    with admin_as(admin) as a:
        assert topic in a.list_topics()
        assert group in {g["group_id"] for g in a.list_groups()}
        assert a.describe_cluster()["cluster_id"]
        assert a.list_partition_reassignments() == {}
        a.delete_records({TopicPartition(topic, 0): 2}, partition_leader_id=NODE_ID)
        a.create_partitions({topic: 2})
        assert a.delete_groups([group], group_coordinator_id=NODE_ID) == {group: "OK"}
        a.delete_topics([topic])
        wait_until(lambda: topic not in a.list_topics(), 15, f"{topic} deleted")


def test_describing_acls_needs_describe_on_the_cluster_and_changing_them_alter(acls):
    s = acls
    alice = sasl(s, ALICE)
    other = acl(f"User:dave-{uid()}", TOPIC, "anything", READ)
    with admin_as(alice) as a:
        with pytest.raises(ClusterAuthorizationFailedError):
            a.describe_acls(acl_filter())
        assert a.create_acls([other]) == {"succeeded": [], "failed": [ClusterAuthorizationFailedError]}
        [(_f, matched, error)] = a.delete_acls([acl_filter(ALICE_P)])
        assert (matched, error) == ([], ClusterAuthorizationFailedError)

    may_describe = acl(ALICE_P, CLUSTER_RES, CLUSTER, DESCRIBE)
    may_alter = acl(ALICE_P, CLUSTER_RES, CLUSTER, ALTER)
    try:
        grant(s, may_describe)
        assert described(alice, acl_filter(ALICE_P, CLUSTER_RES)) == want(may_describe)
        with admin_as(alice) as a:
            assert a.create_acls([other]) == {"succeeded": [], "failed": [ClusterAuthorizationFailedError]}
        grant(s, may_alter)
        with admin_as(alice) as a:
            assert a.create_acls([other]) == {"succeeded": [other], "failed": []}
            [(_f, matched, error)] = a.delete_acls([other])
            assert (want(*matched), error) == (want(other), NoError)
    finally:
        revoke(s, may_describe, may_alter, check=False)
    with admin_as(alice) as a:
        with pytest.raises(ClusterAuthorizationFailedError):
            a.describe_acls(acl_filter())


def ck_config_error(s: Secured, user: str, rtype: str, name: str) -> Optional[int]:
    """confluent-kafka's DescribeConfigs of one resource as `user`: the error code, None if it worked."""
    res = CkResource(rtype, name)
    admin = CkAdmin(ck_conf(s, user))  # kept referenced: a collected client fails its futures (_DESTROY)
    try:
        admin.describe_configs([res], request_timeout=10)[res].result(15)
    except KafkaException as exc:
        return exc.args[0].code()
    return None


def test_topic_and_cluster_admin_requests_need_their_operations(acls):
    s = acls
    u = uid()
    theirs, prefix = f"adm-{u}", f"bob-{u}-"
    mine = prefix + "t"
    create_topics(s, theirs)
    bob = sasl(s, BOB)
    with admin_as(bob) as a:
        with pytest.raises(TopicAuthorizationFailedError):
            a.create_topics({mine: {"num_partitions": 1, "replication_factor": 1}})
        with pytest.raises(TopicAuthorizationFailedError):
            a.delete_topics([theirs])
        with pytest.raises(TopicAuthorizationFailedError):
            a.create_partitions({theirs: 2})
        with pytest.raises(TopicAuthorizationFailedError):
            a.delete_records({TopicPartition(theirs, 0): 0}, partition_leader_id=NODE_ID)
        # DescribeCluster tells only what Metadata does: Kafka asks no ACL for it.
        assert a.describe_cluster()["cluster_id"]
        with pytest.raises(ClusterAuthorizationFailedError):
            a.list_partition_reassignments()
    assert ck_config_error(s, BOB, "topic", theirs) == CkError.TOPIC_AUTHORIZATION_FAILED
    assert ck_config_error(s, BOB, "broker", str(NODE_ID)) == CkError.CLUSTER_AUTHORIZATION_FAILED
    with admin_as(sasl(s, ADMIN)) as a:
        [t] = a.describe_topics([theirs])
        assert (t["error_code"], len(t["partitions"])) == (0, 1), "nothing was changed"
        assert mine not in a.list_topics()

    grants = [acl(BOB_P, TOPIC, prefix, op, pattern=PREFIXED)
              for op in (CREATE, DELETE, ALTER, ACLOperation.DESCRIBE_CONFIGS)]
    grants.append(acl(BOB_P, CLUSTER_RES, CLUSTER, DESCRIBE))
    grant(s, *grants)
    try:
        with admin_as(bob) as a:
            a.create_topics({mine: {"num_partitions": 1, "replication_factor": 1}})

            def led() -> bool:  # DELETE and ALTER imply DESCRIBE: bob sees his topic
                [t] = a.describe_topics([mine])
                return t["error_code"] == 0 and all(p["leader_id"] >= 0 for p in t["partitions"])

            wait_until(led, 15, f"{mine} with a leader, seen by bob")
            a.create_partitions({mine: 2})
            a.delete_records({TopicPartition(mine, 0): 0}, partition_leader_id=NODE_ID)
            assert a.describe_cluster()["cluster_id"]
            assert a.list_partition_reassignments() == {}
            assert ck_config_error(s, BOB, "topic", mine) is None
            assert ck_config_error(s, BOB, "broker", str(NODE_ID)) == CkError.CLUSTER_AUTHORIZATION_FAILED, \
                "DESCRIBE on the cluster is not DESCRIBE_CONFIGS"
            a.delete_topics([mine])
            wait_until(lambda: mine not in a.list_topics(), 15, f"{mine} deleted")
            with pytest.raises(TopicAuthorizationFailedError):
                a.delete_topics([theirs])
    finally:
        revoke(s, *grants, check=False)


def ck_produce(conf: dict, topic: str, count: int, **extra) -> list:
    """confluent-kafka: per message, its offset or the KafkaError it was refused with."""
    results: list = []
    p = CkProducer({**conf, "message.timeout.ms": 10000, **extra})
    for i in range(count):
        p.produce(topic, b"ck-%d" % i,
                  on_delivery=lambda err, m: results.append(err if err is not None else m.offset()))
    assert p.flush(20) == 0
    return results


def test_confluent_kafka_manages_acls_and_its_producer_is_refused(acls):
    s = acls
    u = uid()
    allowed, refused = f"ck-{u}", f"ck-{u}-other"
    create_topics(s, allowed, refused)
    admin = CkAdmin(ck_conf(s, ADMIN, "SCRAM-SHA-256"))
    binding = AclBinding(CkResourceType.TOPIC, allowed, ResourcePatternType.LITERAL, BOB_P, "*",
                         AclOperation.WRITE, AclPermissionType.ALLOW)
    for future in admin.create_acls([binding], request_timeout=10).values():
        assert future.result(15) is None
    by_name = AclBindingFilter(CkResourceType.TOPIC, allowed, ResourcePatternType.ANY, None, None,
                               AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(by_name, request_timeout=10).result(15) == [binding]
    by_match = AclBindingFilter(CkResourceType.ANY, allowed, ResourcePatternType.MATCH, BOB_P, None,
                                AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(by_match, request_timeout=10).result(15) == [binding]

    bob = ck_conf(s, BOB)
    assert ck_produce(bob, allowed, 5, **{"enable.idempotence": True}) == [0, 1, 2, 3, 4]
    [error] = ck_produce(bob, refused, 1)
    assert isinstance(error, CkError) and error.code() == CkError.TOPIC_AUTHORIZATION_FAILED, error

    [deleted] = admin.delete_acls([by_name], request_timeout=10).values()
    assert deleted.result(15) == [binding]
    assert admin.describe_acls(by_name, request_timeout=10).result(15) == []
    [error] = ck_produce(bob, allowed, 1)
    assert isinstance(error, CkError) and error.code() == CkError.TOPIC_AUTHORIZATION_FAILED, error


def test_each_denial_is_logged_with_principal_operation_and_resource(acls):
    s = acls
    topic = f"logged-{uid()}"
    create_topics(s, topic)
    mark = s.broker.log_size()
    with admin_as(sasl(s, BOB)) as a:
        [t] = a.describe_topics([topic])
    assert t["error_code"] == TOPIC_AUTH, "a topic named in Metadata without DESCRIBE"
    assert raw_produce(s.broker.bootstrap, topic) == TOPIC_AUTH

    def logged(principal: str, operation: str) -> list[str]:
        return [line for line in s.broker.log_text(mark).splitlines()
                if "authorization denied" in line and topic in line and "resource=" in line
                and re.search(rf'principal="?{re.escape(principal)}\b', line)
                and re.search(rf'operation="?{operation}\b', line, re.IGNORECASE)]

    wait_until(lambda: logged(BOB_P, "describe"), 10, "bob's denied DESCRIBE logged")
    wait_until(lambda: logged(ANONYMOUS, "write"), 10, "ANONYMOUS's denied WRITE logged")


def test_acls_survive_a_restart(acls):
    s = acls
    u = uid()
    named, prefix = f"kept-{u}", f"kept-{u}-p-"
    shown, hidden = prefix + "shown", prefix + "hidden"
    create_topics(s, named, shown, hidden)
    kept = [acl(ANONYMOUS, TOPIC, named, DESCRIBE), acl(ANONYMOUS, TOPIC, prefix, DESCRIBE, pattern=PREFIXED),
            acl(ANONYMOUS, TOPIC, hidden, DESCRIBE, perm=DENY)]
    plain, admin = s.broker.bootstrap, sasl(s, ADMIN)
    names = [named, shown, hidden]
    expected = {named: 0, shown: 0, hidden: TOPIC_AUTH}
    grant(s, *kept)
    try:
        assert topic_errors(plain, names) == expected, "DENY wins over the prefixed ALLOW"
        before = described(admin, acl_filter(ANONYMOUS))
        assert set(want(*kept)) <= set(before)

        s.broker.restart()
        wait_until(lambda: described(admin, acl_filter(ANONYMOUS)) == before, 15, "the same ACLs after the restart")
        wait_until(lambda: topic_errors(plain, names) == expected, 15, "the same answers after the restart")
    finally:
        revoke(s, *kept, check=False)
    assert topic_errors(plain, names) == {n: TOPIC_AUTH for n in names}


def test_a_user_and_acls_acknowledged_just_before_a_kill_9_survive_it(acls):
    """Both are Raft metadata: acknowledged means committed, so SIGKILL right after the answers
    loses neither."""
    s = acls
    u = uid()
    topic, carol = f"killed-{u}", f"carol-{u}"
    create_topics(s, topic)
    r = requests.post(f"{s.broker.admin_url}/admin/users", timeout=30,
                      json={"name": carol, "password": "carol-pw-1618", "mechanism": "SCRAM-SHA-256"})
    assert r.status_code == 200 and r.json()["success"], r.text
    kept = [acl(f"User:{carol}", TOPIC, topic, WRITE), acl(f"User:{carol}", TOPIC, topic, READ)]
    grant(s, *kept)
    s.broker.kill()
    s.broker.start()
    as_carol = dict(bootstrap_servers=s.sasl, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                    sasl_plain_username=carol, sasl_plain_password="carol-pw-1618")
    try:
        with producer(as_carol) as p:
            assert p.send(topic, b"after-kill").get(15).offset == 0, "carol logs in and may still write"
        with consumer(as_carol, None, topic) as c:
            assert [r.value for r in read(c, 1)] == [b"after-kill"]
    finally:
        revoke(s, *kept, check=False)


def test_allow_everyone_if_no_acl_found_opens_only_resources_without_acls(make_broker):
    b = make_broker("acl-open", start=False, fsync="interval", extra_env={
        **GROUP_ENV,
        "CHRONIK_AUTHORIZATION__ENABLED": "true",
        "CHRONIK_AUTHORIZATION__SUPER_USERS": ADMIN_P,
        "CHRONIK_AUTHORIZATION__ALLOW_EVERYONE_IF_NO_ACL_FOUND": "true",
    })
    s = secure(b, "")
    u = uid()
    topic, other = f"open-{u}", f"open-{u}-other"
    create_topics(s, topic, other)
    alice, bob = sasl(s, ALICE), sasl(s, BOB)

    # No ACL anywhere: bob produces idempotently and consumes in a group, ANONYMOUS writes too.
    with producer(bob) as p:
        assert [p.send(topic, b"bob-%d" % i).get(10).offset for i in range(3)] == [0, 1, 2]
    with consumer(bob, f"bob-{u}", topic) as c:
        assert [r.value for r in read(c, 3)] == [b"bob-0", b"bob-1", b"bob-2"]
    assert raw_produce(b.bootstrap, topic) == 0

    # One ACL on the topic: now only alice may use it. The other topic stays open.
    grant(s, acl(ALICE_P, TOPIC, topic, WRITE), acl(ALICE_P, TOPIC, topic, READ))
    with producer(bob, enable_idempotence=False) as p:
        with pytest.raises(TopicAuthorizationFailedError):
            p.send(topic, b"bob-late").get(10)
    with admin_as(bob) as a:
        visible = set(a.list_topics())
    assert topic not in visible and other in visible
    assert raw_produce(b.bootstrap, topic) == TOPIC_AUTH
    assert raw_produce(b.bootstrap, other) == 0
    with producer(alice) as p:
        assert p.send(topic, b"alice").get(10).offset == 4
    with consumer(alice, f"alice-{u}", topic) as c:
        assert [r.value for r in read(c, 5)] == [b"bob-0", b"bob-1", b"bob-2", b"anonymous", b"alice"]


def test_with_authorization_off_acl_requests_answer_security_disabled(make_broker):
    """As Kafka without an authorizer: nothing is checked, so no ACL can be created or listed."""
    b = make_broker("acl-off", fsync="interval")
    plain = {"bootstrap_servers": b.bootstrap}
    with admin_as(plain) as a:
        result = a.create_acls([acl(ALICE_P, TOPIC, "t", READ)])
        assert result == {"succeeded": [], "failed": [SecurityDisabledError]}, result
        with pytest.raises(SecurityDisabledError):
            a.describe_acls(acl_filter())
        topic = f"off-{uid()}"
        a.create_topics([NewTopic(topic, 1, 1)])
    wait_until(lambda: raw_produce(b.bootstrap, topic) == 0, 15, "ANONYMOUS produces: nothing is checked")
