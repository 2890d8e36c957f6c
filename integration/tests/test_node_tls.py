"""Node TLS on the Raft and replication ports (issue 12, item 5): `[security] node_cert_file`,
`node_key_file` and `node_ca_file`. A 3-node cluster whose nodes hold certificates of a test CA
(`CN=node-<id>`, made per run with trustme) forms, replicates acks=all writes to every replica
and serves them back. Then it is attacked:

- plaintext gRPC, TLS without a client certificate, and a certificate of a foreign CA are refused
  on both ports before any request is served;
- a process holding node 3's genuine certificate follows a partition *as node 2*: the stream is
  refused with PERMISSION_DENIED and logged, while following as node 3 gets past the check;
- the same certificate asks for a Raft vote *as node 2*: refused with PERMISSION_DENIED and
  logged, while a vote as node 3 reaches Raft (and, being for an old term, is not granted);
- a node given another node's certificate, or only part of the settings, does not start, and
  names the key.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import grpc
import pytest
import trustme

from kafka import KafkaProducer
from kafka.admin import NewTopic

from client_helpers import admin, ck_consume_all
from cluster import Cluster, started
from harness import broker_binary, unique_topic, wait_until
from tls_helpers import PemDir

RAFT_CALL = "/chronik.raft.RaftService/ClusterInfo"
WAL_CALL = "/chronik.replication.Replication/EpochEndOffset"
FOLLOW_MANY = "/chronik.replication.Replication/FollowMany"
VOTE = "/chronik.raft.RaftService/Vote"


class Certs(PemDir):
    """The cluster CA and a certificate per node, a foreign CA's node certificate, as PEM files."""

    def __init__(self, root: Path):
        super().__init__(root)
        ca = trustme.CA(organization_name="Chronik node CA")
        self.ca = self.write("ca.pem", ca.cert_pem.bytes())
        self.nodes = {i: self.pair(f"node-{i}", ca.issue_cert("127.0.0.1", "localhost", common_name=f"node-{i}"))
                      for i in (1, 2, 3)}
        foreign = trustme.CA(organization_name="Another cluster's CA")
        self.foreign = self.pair("foreign-node-2", foreign.issue_cert("127.0.0.1", common_name="node-2"))

    def toml(self, node: int, cert_of: int | None = None) -> str:
        cert, key = self.nodes[cert_of or node]
        return (f'[security]\nnode_cert_file = "{cert}"\nnode_key_file = "{key}"\n'
                f'node_ca_file = "{self.ca}"\n')


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return Certs(tmp_path_factory.mktemp("node-certs"))


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory, certs):
    with started(Cluster(tmp_path_factory.mktemp("node-tls"), size=3, spare=0, name="tlsnode",
                         min_insync_replicas=2, extra_toml=certs.toml)) as c:
        yield c


def credentials(certs: Certs, pair: tuple[str, str] | None) -> grpc.ChannelCredentials:
    read = lambda p: Path(p).read_bytes()  # noqa: E731
    if pair is None:
        return grpc.ssl_channel_credentials(root_certificates=read(certs.ca))
    return grpc.ssl_channel_credentials(read(certs.ca), private_key=read(pair[1]), certificate_chain=read(pair[0]))


def unary(channel: grpc.Channel, method: str) -> grpc.StatusCode:
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        call(b"", timeout=10)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def fetch_request(topic: str, partition: int, replica_id: int) -> bytes:
    """replication.proto FetchRequest: topic (1), partition (2), replica_id (3), max_bytes (6)."""
    name = topic.encode()
    return (b"\x0a" + varint(len(name)) + name + b"\x10" + varint(partition) + b"\x18" + varint(replica_id)
            + b"\x30" + varint(1024))


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint at `at` and where the next field starts."""
    n = shift = 0
    while True:
        b = data[at]
        n, at, shift = n | (b & 0x7F) << shift, at + 1, shift + 7
        if not b & 0x80:
            return n, at


def follow_many_once(addr: str, creds: grpc.ChannelCredentials, topic: str, replica_id: int) -> tuple[str, bytes]:
    """Opens a FollowMany stream (one per pair of nodes, every followed partition on it), sends one
    frame holding one fetch on logical stream 1 and returns the first answer: ("response", its
    bytes) for a fetch answered, ("ended", the reason) for a refusal, which ends only that
    logical stream."""
    fetch = fetch_request(topic, 0, replica_id)
    item = b"\x08\x01" + b"\x12" + varint(len(fetch)) + fetch  # FollowItem: stream 1, request
    frame = b"\x0a" + varint(len(item)) + item  # FollowFrame: items
    answered = threading.Event()

    def frames():
        yield frame
        # Closing our side would end the exchange before the leader answers.
        answered.wait(10)

    with grpc.secure_channel(addr, creds) as channel:
        call = channel.stream_stream(FOLLOW_MANY, request_serializer=None, response_deserializer=None)
        first = next(iter(call(frames(), timeout=10)))
        answered.set()
    # FollowedFrame.items[0] = FollowedItem {stream (1) = 1, then response (2) or ended (3)}.
    assert first[0] == 0x0A, first
    _, at = read_varint(first, 1)
    assert first[at:at + 2] == b"\x08\x01", first
    field = first[at + 2] >> 3
    size, start = read_varint(first, at + 3)
    return {2: "response", 3: "ended"}[field], first[start:start + size]


def create_rf3(c: Cluster, topic: str) -> None:
    a = admin(c.bootstrap(1))
    try:
        a.create_topics([NewTopic(topic, 1, 3)])
    finally:
        a.close()


def partition(c: Cluster, topic: str) -> dict | None:
    return next((p for p in c.node(1).get("/admin/partitions").json()["partitions"] if p["topic"] == topic), None)


def test_a_cluster_over_node_tls_replicates_to_every_replica(tls_cluster):
    c = tls_cluster
    topic = unique_topic("node-tls")
    create_rf3(c, topic)

    def replicated() -> bool:
        p = partition(c, topic)
        return p is not None and sorted(p["isr"]) == [1, 2, 3]

    wait_until(replicated, 30, f"{topic} with all three replicas in sync")
    p = KafkaProducer(bootstrap_servers=c.bootstrap(1), acks="all")
    try:
        for i in range(200):
            p.send(topic, b"m%d" % i)
        p.flush(30)
    finally:
        p.close()
    got = ck_consume_all(c.bootstrap(2), topic, 1, timeout=60)
    assert [v for _o, _k, v in got[0]] == [b"m%d" % i for i in range(200)]
    wait_until(replicated, 30, "every replica still in sync after the writes (they fetched over TLS)")


@pytest.mark.parametrize("port", ["raft", "wal"])
def test_node_ports_refuse_anyone_without_a_certificate_of_the_cluster_ca(tls_cluster, certs, port):
    c = tls_cluster
    s = c.slots[2]
    addr = s.addr(s.raft if port == "raft" else s.wal)
    method = RAFT_CALL if port == "raft" else WAL_CALL
    with grpc.insecure_channel(addr) as ch:
        assert unary(ch, method) == grpc.StatusCode.UNAVAILABLE, "plaintext"
    for who, pair in [("no client certificate", None), ("a foreign CA's node-2", certs.foreign)]:
        with grpc.secure_channel(addr, credentials(certs, pair)) as ch:
            assert unary(ch, method) == grpc.StatusCode.UNAVAILABLE, who
    with grpc.secure_channel(addr, credentials(certs, certs.nodes[1])) as ch:
        assert unary(ch, method) != grpc.StatusCode.UNAVAILABLE, "node 1's certificate gets through"


def create_rf3_with_leader(c: Cluster, topic: str) -> int:
    """Creates `topic` with one partition on all three nodes; returns its leader once it has one."""
    create_rf3(c, topic)
    return wait_until(lambda: (partition(c, topic) or {}).get("leader", 0) > 0 and partition(c, topic)["leader"],
                      30, f"{topic}'s leader")


def test_a_follower_cannot_fetch_as_another_node(tls_cluster, certs):
    c = tls_cluster
    topic = unique_topic("impersonated")
    leader = create_rf3_with_leader(c, topic)
    others = [i for i in (1, 2, 3) if i != leader]
    holder, victim = others
    s = c.slots[leader]
    wal = s.addr(s.wal)
    mark = c.node(leader).log_size()
    refusal = f"node {holder}'s certificate cannot fetch as node {victim}".encode()
    assert follow_many_once(wal, credentials(certs, certs.nodes[holder]), topic, victim) == ("ended", refusal)
    wait_until(lambda: c.node(leader).log_lines("refused a fetch as another node", mark), 10, "the refusal logged")
    kind, _ = follow_many_once(wal, credentials(certs, certs.nodes[holder]), topic, holder)
    assert kind == "response", "fetching as itself is answered"


def test_a_malformed_follow_frame_ends_that_stream_only(tls_cluster, certs):
    c = tls_cluster
    topic = unique_topic("malformed-frame")
    leader = create_rf3_with_leader(c, topic)
    follower = next(i for i in (1, 2, 3) if i != leader)
    s = c.slots[leader]
    creds = credentials(certs, certs.nodes[follower])
    with grpc.secure_channel(s.addr(s.wal), creds) as channel:
        call = channel.stream_stream(FOLLOW_MANY, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as refused:
            # Field 1 claims a length far past the end of the frame.
            next(iter(call(iter([b"\x0a\xff\xff\xff\x7f\x01"]), timeout=10)))
        assert refused.value.code() == grpc.StatusCode.INTERNAL, refused.value
    # The leader still serves that follower, both through a new stream and through its own.
    assert follow_many_once(s.addr(s.wal), creds, topic, follower)[0] == "response"
    p = KafkaProducer(bootstrap_servers=c.bootstrap(leader), acks="all")
    try:
        p.send(topic, b"after").get(30)
    finally:
        p.close()
    wait_until(lambda: sorted(partition(c, topic)["isr"]) == [1, 2, 3], 30, "every replica in sync after the write")


def vote_as(addr: str, creds: grpc.ChannelCredentials, candidate: int) -> tuple[grpc.StatusCode, str]:
    """A Raft vote request from `candidate` for term 0 (which every node has passed, so it is
    never granted and disturbs nothing); the status it ends with and the details."""
    vote = json.dumps({"vote": {"leader_id": {"term": 0, "node_id": candidate}, "committed": False},
                       "last_log_id": None}).encode()
    with grpc.secure_channel(addr, creds) as channel:
        call = channel.unary_unary(VOTE, request_serializer=None, response_deserializer=None)
        try:
            answer = call(b"\x0a" + varint(len(vote)) + vote, timeout=10)
            return grpc.StatusCode.OK, answer.decode(errors="replace")
        except grpc.RpcError as e:
            return e.code(), e.details() or ""


def test_a_node_cannot_send_raft_messages_as_another_node(tls_cluster, certs):
    c = tls_cluster
    leader = c.wait_for_leader()
    holder, victim = [i for i in (1, 2, 3) if i != leader]
    s = c.slots[leader]
    mark = len(c.node(leader).log_text())
    code, details = vote_as(s.addr(s.raft), credentials(certs, certs.nodes[holder]), victim)
    assert code == grpc.StatusCode.PERMISSION_DENIED, (code, details)
    assert f"node {holder}'s certificate cannot speak for node {victim}" in details
    wait_until(lambda: c.node(leader).log_lines("refused a Raft message sent as another node", mark), 10,
               "the refusal logged")
    code, details = vote_as(s.addr(s.raft), credentials(certs, certs.nodes[holder]), holder)
    assert code == grpc.StatusCode.OK and '"vote_granted":false' in details, (code, details)
    assert c.wait_for_leader() == leader, "nothing changed: the old vote was refused by Raft itself"


def start_refused(cluster: Cluster, node: int, toml: str, tmp_path: Path) -> str:
    """Starts node `node`'s binary with `toml` appended to its config; it must exit non-zero.
    Returns its output."""
    config = tmp_path / f"node-{node}.toml"
    original = cluster.node(node).config_path.read_text()
    config.write_text(original.split("[security]")[0] + toml)
    done = subprocess.run([str(broker_binary()), "start", "--config", str(config), "--data-dir",
                           str(tmp_path / "data"), "--node-id", str(node)],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode != 0, done.stdout[-2000:]
    return done.stdout + done.stderr


def test_a_node_with_another_nodes_certificate_or_half_the_settings_does_not_start(tls_cluster, certs, tmp_path):
    out = start_refused(tls_cluster, 2, certs.toml(2, cert_of=3), tmp_path)
    assert "security.node_cert_file: the certificate names node 3, this is node 2" in out, out[-2000:]
    cert, _key = certs.nodes[2]
    out = start_refused(tls_cluster, 2, f'[security]\nnode_cert_file = "{cert}"\n', tmp_path)
    for key in ("security.node_key_file", "security.node_ca_file"):
        assert f"{key}: node TLS needs node_cert_file, node_key_file and node_ca_file together" in out, out[-2000:]
