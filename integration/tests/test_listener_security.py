"""Kafka listeners with TLS and SASL (issue 12 items 1 and 2), on a real 3-node cluster whose
nodes each run five listeners: the main PLAINTEXT one, SSL (client certificates requested),
MTLS (SSL that requires a client certificate), SASL_SSL and SASL_PLAINTEXT. Certificates are made by the test (trustme), never committed.

- Users: `chronik-server cluster user set/list/delete` and Kafka's own admin API
  (confluent-kafka's alter/describe_user_scram_credentials) manage SCRAM credentials stored in the
  Raft metadata; a user created through one node logs in on every node; a deleted one cannot.
- Every client library the project supports (confluent-kafka, kafka-python, aiokafka, kcat,
  kafkajs) produces and consumes back exactly its records over SSL, SASL_SSL with PLAIN and with
  SCRAM-SHA-512, and SASL_PLAINTEXT with SCRAM-SHA-256; Metadata gives each client the addresses of
  the listener it came in on, on all three nodes.
- Refusals: a wrong password, an unknown user, a mechanism the broker does not offer, a server
  certificate the client does not trust, a client certificate from a foreign CA or an expired one,
  plaintext spoken to a TLS port, requests sent to a SASL port before authenticating: each is
  refused with the right error, the broker logs why, and it keeps serving everyone else.
- A client certificate becomes the connection's principal (`User:CN=...,O=...`).
- A configuration that cannot work (an SSL listener without a certificate, an unknown mechanism)
  stops the broker at startup with a message naming the key.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
import trustme
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

import kproto
from cluster import Cluster, started
from harness import broker_binary, free_port, unique_topic, wait_until
from tls_helpers import PemDir

VOTERS = [1, 2, 3]
# Listener name -> security protocol.
LISTENERS = {"SSL": "SSL", "MTLS": "SSL", "SASL_SSL": "SASL_SSL", "SASL_PLAINTEXT": "SASL_PLAINTEXT"}
ALICE, ALICE_PW = "alice", "wonder-land-42"
BOB, BOB_PW = "bob", "builder-77"
CAROL, CAROL_PW = "carol", "c4r0l-pw"
DAVE, DAVE_PW = "dave", "d4ve-pw"
CLIENTS_DIR = Path(__file__).resolve().parent.parent / "clients"


class Certs(PemDir):
    """A test CA, the brokers' certificate, a good client certificate, one from a foreign CA and an
    expired one, as PEM files."""

    def __init__(self, root: Path):
        super().__init__(root)
        ca = trustme.CA(organization_name="Chronik test CA")
        self.ca = self.write("ca.pem", ca.cert_pem.bytes())
        server = ca.issue_cert("localhost", "127.0.0.1")
        self.server_cert, self.server_key = self.pair("server", server)
        self.client_cert, self.client_key = self.pair("client", ca.issue_cert(
            "alice@example.com", common_name="alice", organization_name="Example"))
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
        self.expired_cert, self.expired_key = self.pair("expired", ca.issue_cert(
            "old@example.com", common_name="old", not_before=past - datetime.timedelta(days=30),
            not_after=past))
        foreign = trustme.CA(organization_name="Somebody else")
        self.foreign_ca = self.write("foreign-ca.pem", foreign.cert_pem.bytes())
        self.foreign_cert, self.foreign_key = self.pair("foreign", foreign.issue_cert(
            "mallory@example.com", common_name="mallory"))


class Secured:
    """The cluster, its certificates and each node's listener ports."""

    def __init__(self, cluster: Cluster, certs: Certs, ports: dict[int, dict[str, int]]):
        self.cluster, self.certs, self.ports = cluster, certs, ports

    def bootstrap(self, listener: str, node: int = 1) -> str:
        return f"127.0.0.1:{self.ports[node][listener]}"

    def confluent(self, listener: str, mechanism: str | None = None, user: str = ALICE,
                  password: str = ALICE_PW, node: int = 1, **extra) -> dict:
        protocol = LISTENERS[listener]
        conf = {"bootstrap.servers": self.bootstrap(listener, node), "security.protocol": protocol}
        if "SSL" in protocol:
            conf["ssl.ca.location"] = self.certs.ca
        if mechanism:
            conf.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
        conf.update(extra)
        return conf


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    root = tmp_path_factory.mktemp("listener-security")
    certs = Certs(root)
    ports = {i: {name: free_port() for name in LISTENERS} for i in VOTERS}

    def listeners(i: int) -> str:
        tables = [f'[[kafka.listeners]]\nname = "{name}"\nbind = "127.0.0.1:{port}"\n'
                  f'security_protocol = "{LISTENERS[name]}"\n' for name, port in ports[i].items()]
        tables[list(LISTENERS).index("MTLS")] += 'ssl_client_auth = "required"\n'
        return "\n".join(tables) + (
            f'\n[tls]\ncert_file = "{certs.server_cert}"\nkey_file = "{certs.server_key}"\n'
            f'client_ca_file = "{certs.ca}"\nclient_auth = "requested"\n')

    cluster = Cluster(root / "cluster", size=3, spare=0, name="tlsnode", extra_toml=listeners)
    with started(cluster) as c:
        c.wait_for_leader(voters=VOTERS)
        # The users every test logs in as, through the admin API (the CLI test makes its own).
        for name, password, mechanism, iterations in ((ALICE, ALICE_PW, "SCRAM-SHA-512", 4096),
                                                      (ALICE, ALICE_PW, "SCRAM-SHA-256", 8192),
                                                      (BOB, BOB_PW, "SCRAM-SHA-512", 4096)):
            body = {"name": name, "password": password, "mechanism": mechanism, "iterations": iterations}
            r = requests.post(f"{c.admin_url(2)}/admin/users", json=body, timeout=30)
            assert r.status_code == 200 and r.json()["success"], r.text
        yield Secured(c, certs, ports)


def cli(s: Secured, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
    full_env.update(env or {})
    return subprocess.run([str(broker_binary()), "cluster", *args, "--config", str(s.cluster.config_path(1))],
                          capture_output=True, text=True, timeout=60, env=full_env)


def create_topic(s: Secured, name: str) -> str:
    admin = AdminClient({"bootstrap.servers": s.cluster.bootstrap(1)})
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=3)])[name].result(30)
    return name


def confluent_round_trip(s: Secured, conf: dict, count: int = 30) -> list[str]:
    """Produces `count` records idempotently, then reads them back with a group; returns the values."""
    topic = create_topic(s, unique_topic("conf"))
    errors: list = []
    producer = Producer({**conf, "enable.idempotence": True, "error_cb": errors.append})
    values = [f"{topic}-{i}" for i in range(count)]
    for v in values:
        producer.produce(topic, v.encode(), on_delivery=lambda err, _m: err and errors.append(err))
    assert producer.flush(30) == 0 and not errors, errors
    consumer = Consumer({**conf, "group.id": f"{topic}-g", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[str] = []
    wait_until(lambda: _poll_into(consumer, got) >= count, 60, f"{count} records back over {conf.get('security.protocol', 'PLAINTEXT')}")
    consumer.close()
    assert sorted(got) == sorted(values)
    return got


def _poll_into(consumer: Consumer, got: list[str]) -> int:
    m = consumer.poll(0.5)
    if m is not None and not m.error():
        got.append(m.value().decode())
    return len(got)


def test_users_are_managed_by_the_cli_and_by_kafkas_admin_api(secured):
    s = secured
    pw_file = s.certs.root / "dave.pw"
    pw_file.write_text(DAVE_PW + "\n")
    out = cli(s, "user", "set", DAVE, "--password-file", str(pw_file))
    assert out.returncode == 0 and f"✓ User {DAVE} has a SCRAM-SHA-512 credential" in out.stdout, out
    out = cli(s, "user", "set", DAVE, "--mechanism", "SCRAM-SHA-256", "--iterations", "8192",
              env={"CHRONIK_USER_PASSWORD": DAVE_PW})
    assert out.returncode == 0, out
    refused = cli(s, "user", "set", "erin", "--iterations", "100", env={"CHRONIK_USER_PASSWORD": "x"})
    assert refused.returncode != 0 and "iterations must be between 4096 and 16384" in refused.stdout, refused
    bad = requests.post(f"{s.cluster.admin_url(1)}/admin/users", json={"name": "erin", "password": "x",
                                                                      "mechanism": "SCRAM-SHA-1"}, timeout=10)
    assert bad.status_code == 400 and "unknown mechanism" in bad.json()["message"], bad.text

    # Kafka's admin API, over the PLAINTEXT listener: the client salts the password itself.
    admin = AdminClient({"bootstrap.servers": s.cluster.bootstrap(2)})
    upsert = UserScramCredentialUpsertion(CAROL, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                          CAROL_PW.encode())
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(30)
    described = {u: f.result(30) for u, f in admin.describe_user_scram_credentials([CAROL, DAVE]).items()}
    got = {u: sorted((i.mechanism, i.iterations) for i in d.scram_credential_infos) for u, d in described.items()}
    assert got == {DAVE: sorted([(ScramMechanism.SCRAM_SHA_256, 8192), (ScramMechanism.SCRAM_SHA_512, 4096)]),
                   CAROL: [(ScramMechanism.SCRAM_SHA_512, 4096)]}, got
    with pytest.raises(KafkaException, match="RESOURCE_NOT_FOUND|does not exist"):
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(30)

    listed = cli(s, "user", "list")
    assert listed.returncode == 0 and f"{DAVE}  SCRAM-SHA-256 (8192 iterations)" in listed.stdout, listed
    # Every node serves the same users, and none shows a salt or a key; both new users log in.
    for i in VOTERS:
        names = wait_until(lambda: {u["name"] for u in s.cluster.node(i).get("/admin/users").json()} >= {CAROL, DAVE}
                           and s.cluster.node(i).get("/admin/users").json(), 10, f"node {i} knows the new users")
        assert all(set(c) == {"mechanism", "iterations"} for u in names for c in u["credentials"]), names
    confluent_round_trip(s, s.confluent("SASL_SSL", "SCRAM-SHA-512", user=CAROL, password=CAROL_PW, node=3), count=5)
    confluent_round_trip(s, s.confluent("SASL_PLAINTEXT", "SCRAM-SHA-256", user=DAVE, password=DAVE_PW), count=5)


@pytest.mark.parametrize("listener,mechanism,node", [
    ("SSL", None, 1),
    ("SASL_SSL", "SCRAM-SHA-512", 2),
    ("SASL_SSL", "PLAIN", 3),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256", 1),
])
def test_confluent_kafka_over_each_listener_is_given_that_listeners_addresses(secured, listener, mechanism, node):
    s = secured
    conf = s.confluent(listener, mechanism, node=node)
    brokers = AdminClient(conf).list_topics(timeout=20).brokers
    assert {b.id: b.port for b in brokers.values()} == {i: s.ports[i][listener] for i in VOTERS}
    confluent_round_trip(s, conf)


def kafka_python_kwargs(s: Secured, listener: str, mechanism: str | None, user=ALICE, password=ALICE_PW) -> dict:
    kw = {"bootstrap_servers": s.bootstrap(listener, 2), "security_protocol": listener}
    if "SSL" in listener:
        kw["ssl_context"] = ssl.create_default_context(cafile=s.certs.ca)
    if mechanism:
        kw.update(sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password)
    return kw


@pytest.mark.parametrize("listener,mechanism", [("SSL", None), ("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "PLAIN")])
def test_kafka_python_produces_and_consumes_over_secured_listeners(secured, listener, mechanism):
    from kafka import KafkaConsumer, KafkaProducer
    s = secured
    topic = create_topic(s, unique_topic("kpy"))
    kw = kafka_python_kwargs(s, listener, mechanism)
    producer = KafkaProducer(**kw)
    values = [f"kp-{i}" for i in range(20)]
    for v in values:
        producer.send(topic, v.encode()).get(30)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=f"{topic}-g", auto_offset_reset="earliest",
                             consumer_timeout_ms=20000, **kw)
    got = []
    for m in consumer:
        got.append(m.value.decode())
        if len(got) == len(values):
            break
    consumer.close()
    assert sorted(got) == sorted(values)


@pytest.mark.parametrize("listener,mechanism", [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "PLAIN"), ("SSL", None)])
def test_aiokafka_produces_and_consumes_over_secured_listeners(secured, listener, mechanism):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context
    s = secured
    topic = create_topic(s, unique_topic("aio"))
    kw = {"bootstrap_servers": s.bootstrap(listener, 3), "security_protocol": listener}
    if "SSL" in listener:
        kw["ssl_context"] = create_ssl_context(cafile=s.certs.ca)
    if mechanism:
        kw.update(sasl_mechanism=mechanism, sasl_plain_username=ALICE, sasl_plain_password=ALICE_PW)
    values = [f"aio-{i}" for i in range(20)]

    async def run() -> list[str]:
        producer = AIOKafkaProducer(enable_idempotence=True, **kw)
        await producer.start()
        try:
            for v in values:
                await producer.send_and_wait(topic, v.encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=f"{topic}-g", auto_offset_reset="earliest", **kw)
        await consumer.start()
        got: list[str] = []
        try:
            async with asyncio.timeout(60):
                while len(got) < len(values):
                    batch = await consumer.getmany(timeout_ms=1000)
                    got += [m.value.decode() for ms in batch.values() for m in ms]
        finally:
            await consumer.stop()
        return got

    assert sorted(asyncio.run(run())) == sorted(values)


def kcat_args(s: Secured, listener: str, mechanism: str | None, node: int = 1, user=ALICE, password=ALICE_PW,
              cert: tuple[str, str] | None = None) -> list[str]:
    args = ["-b", s.bootstrap(listener, node), "-X", f"security.protocol={LISTENERS[listener]}"]
    if "SSL" in LISTENERS[listener]:
        args += ["-X", f"ssl.ca.location={s.certs.ca}"]
    if cert:
        args += ["-X", f"ssl.certificate.location={cert[0]}", "-X", f"ssl.key.location={cert[1]}"]
    if mechanism:
        args += ["-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]
    return args


@pytest.mark.parametrize("listener,mechanism", [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "PLAIN"), ("SSL", None)])
def test_kcat_produces_and_consumes_over_secured_listeners(secured, listener, mechanism):
    s = secured
    topic = create_topic(s, unique_topic("kcat"))
    values = [f"kcat-{i}" for i in range(20)]
    base = ["kcat", *kcat_args(s, listener, mechanism, node=3)]
    produced = subprocess.run([*base, "-P", "-t", topic], input="\n".join(values) + "\n", text=True,
                              capture_output=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run([*base, "-C", "-t", topic, "-o", "beginning", "-c", str(len(values)), "-e", "-q"],
                              text=True, capture_output=True, timeout=60)
    assert consumed.returncode == 0, consumed.stderr
    assert sorted(consumed.stdout.split()) == sorted(values)


def kafkajs(s: Secured, listener: str, options: dict) -> dict:
    out = subprocess.run(["node", str(CLIENTS_DIR / "kafkajs_secure.js"), s.bootstrap(listener, 2), json.dumps(options)],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1].removeprefix("RESULT "))


@pytest.mark.parametrize("listener,mechanism", [("SASL_SSL", "scram-sha-512"), ("SASL_SSL", "plain"), ("SSL", None)])
def test_kafkajs_produces_and_consumes_over_secured_listeners(secured, listener, mechanism):
    s = secured
    topic = create_topic(s, unique_topic("kjs"))
    options = {"topic": topic, "count": 15, "ssl": {"ca": s.certs.ca}}
    if mechanism:
        options["sasl"] = {"mechanism": mechanism, "username": ALICE, "password": ALICE_PW}
    result = kafkajs(s, listener, options)
    assert result.get("produced") == 15, result
    assert sorted(result["consumed"]) == sorted(f"kafkajs-{i}" for i in range(15))


def confluent_refusal(conf: dict) -> str:
    """The errors a confluent-kafka client reports when it cannot get metadata with `conf`."""
    errors: list = []
    client = Producer({**conf, "error_cb": errors.append, "socket.timeout.ms": 5000})
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)
    wait_until(lambda: client.poll(0.2) is not None and errors, 10, "an error callback")
    return " ".join(str(e) for e in errors)


def test_refusals_name_their_cause_and_the_broker_keeps_serving(secured):
    s = secured
    node = s.cluster.node(1)
    mark = node.log_size()
    wrong = confluent_refusal(s.confluent("SASL_SSL", "SCRAM-SHA-512", password="not-it"))
    assert "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512" \
        in wrong, wrong
    unknown_user = confluent_refusal(s.confluent("SASL_PLAINTEXT", "PLAIN", user="nobody", password="x"))
    assert "invalid credentials with SASL mechanism PLAIN" in unknown_user, unknown_user
    unoffered = confluent_refusal(s.confluent("SASL_SSL", "OAUTHBEARER",
                                              **{"enable.sasl.oauthbearer.unsecure.jwt": True,
                                                 "sasl.oauthbearer.config": "principal=alice"}))
    assert "OAUTHBEARER" in unoffered and "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" in unoffered, unoffered
    untrusted = confluent_refusal(s.confluent("SSL", **{"ssl.ca.location": s.certs.foreign_ca}))
    assert "certificate verify failed" in untrusted or "SSL handshake failed" in untrusted, untrusted
    # The listener that requires a certificate refuses none, a foreign one and an expired one.
    for cert in (None, (s.certs.foreign_cert, s.certs.foreign_key), (s.certs.expired_cert, s.certs.expired_key)):
        extra = {"ssl.certificate.location": cert[0], "ssl.key.location": cert[1]} if cert else {}
        refused = confluent_refusal(s.confluent("MTLS", **extra))
        assert "SSL" in refused or "ssl" in refused, refused
    # Plaintext spoken to a TLS port, and requests before authenticating on a SASL port.
    confluent_refusal({"bootstrap.servers": s.bootstrap("SSL"), "security.protocol": "PLAINTEXT"})
    confluent_refusal({"bootstrap.servers": s.bootstrap("SASL_PLAINTEXT"), "security.protocol": "PLAINTEXT"})

    log = node.log_text(mark)
    assert "SASL authentication failed" in log
    assert len(re.findall(r"TLS handshake failed", log)) >= 4, "no, foreign and expired client certs and plaintext"
    assert "request before SASL authentication completed" in log
    assert "CertExpired" in log or "expired" in log.lower(), "the expired certificate is named as such"
    # Through all of that the node kept serving everyone else, on every listener.
    confluent_round_trip(s, s.confluent("SASL_SSL", "SCRAM-SHA-512"), count=10)
    confluent_round_trip(s, {"bootstrap.servers": s.cluster.bootstrap(1)}, count=10)
    assert s.cluster.node(1).health()["status"] == "healthy"


def test_a_client_certificate_becomes_the_principal_and_a_deleted_user_cannot_log_in(secured):
    s = secured
    node = s.cluster.node(1)
    mark = node.log_size()
    listed = subprocess.run(["kcat", "-L", *kcat_args(s, "MTLS", None, cert=(s.certs.client_cert, s.certs.client_key))],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    principals = re.findall(r"principal=(User:.*)$", node.log_text(mark), re.MULTILINE)
    assert any(p.startswith("User:CN=alice") and p.endswith("O=Example") for p in principals), principals

    # bob logs in, is deleted through the CLI, and cannot log in any more, on any node.
    confluent_round_trip(s, s.confluent("SASL_SSL", "SCRAM-SHA-512", user=BOB, password=BOB_PW, node=3), count=5)
    out = cli(s, "user", "delete", BOB)
    assert out.returncode == 0 and f"✓ Deleted the credentials of user {BOB}" in out.stdout, out
    again = cli(s, "user", "delete", BOB)
    assert again.returncode != 0 and "has no SCRAM credential" in again.stdout, again
    for i in VOTERS:
        refused = confluent_refusal(s.confluent("SASL_SSL", "SCRAM-SHA-512", user=BOB, password=BOB_PW, node=i))
        assert "invalid credentials" in refused, refused


@pytest.mark.parametrize("toml,key", [
    ('[[kafka.listeners]]\nname = "S"\nbind = "127.0.0.1:{port}"\nsecurity_protocol = "SSL"\n', "tls.cert_file"),
    ('[sasl]\nmechanisms = ["PLAIN", "GSSAPI"]\n', "sasl.mechanisms"),
    ('[tls]\ncert_file = "/nonexistent/server.pem"\nkey_file = "/nonexistent/server.key"\n'
     '[[kafka.listeners]]\nname = "S"\nbind = "127.0.0.1:{port}"\nsecurity_protocol = "SASL_SSL"\n', "tls.cert_file"),
])
def test_a_listener_configuration_that_cannot_work_stops_the_start_naming_its_key(tmp_path, toml, key):
    config = tmp_path / "bad.toml"
    config.write_text(f'[bind]\nkafka = "127.0.0.1:{free_port()}"\nadmin = "127.0.0.1:{free_port()}"\n'
                      + toml.format(port=free_port()))
    out = subprocess.run([str(broker_binary()), "start", "--config", str(config), "--data-dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert key in out.stdout + out.stderr, out.stdout + out.stderr


def test_sessions_expire_and_librdkafka_re_authenticates_without_an_error(tmp_path):
    """KIP-368: with `sasl.max_reauth_ms` the broker tells clients how long a login holds;
    librdkafka logs in again on its open connection in time, and a producer sending throughout
    sees no error and loses nothing."""
    from harness import Broker
    port = free_port()
    broker = Broker(tmp_path / "reauth", extra_toml=(
        f'[[kafka.listeners]]\nname = "SASL_PLAINTEXT"\nbind = "127.0.0.1:{port}"\n'
        'security_protocol = "SASL_PLAINTEXT"\n[sasl]\nmax_reauth_ms = 1500\n'))
    broker.start()
    try:
        body = {"name": ALICE, "password": ALICE_PW, "mechanism": "SCRAM-SHA-256"}
        assert requests.post(f"{broker.admin_url}/admin/users", json=body, timeout=30).json()["success"]
        conf = {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": ALICE, "sasl.password": ALICE_PW}
        errors: list = []
        delivered: list = []
        producer = Producer({**conf, "enable.idempotence": True, "error_cb": errors.append, "linger.ms": 5})
        mark = broker.log_size()
        start = time.monotonic()
        sent = 0
        while time.monotonic() - start < 6:
            producer.produce("reauth", f"r-{sent}".encode(),
                             on_delivery=lambda err, m: (errors if err else delivered).append(err or m.offset()))
            sent += 1
            producer.poll(0.02)
        assert producer.flush(30) == 0
        assert not errors, errors
        assert len(delivered) == sent
        assert len(re.findall("client re-authenticated", broker.log_text(mark))) >= 2, "logins renewed in time"

        # A client that never logs in again is served until its session ends, then closed at
        # its next request.
        with kproto.connect(f"127.0.0.1:{port}") as sock:
            sock.sendall(kproto.frame(17, 1, 1, kproto.string("PLAIN")))  # SaslHandshake v1
            kproto.read_response(sock)
            token = f"\0{ALICE}\0{ALICE_PW}".encode()
            sock.sendall(kproto.frame(36, 0, 2, kproto.i32(len(token)) + token))  # SaslAuthenticate v0
            assert kproto.Reader(kproto.read_response(sock)[1]).i16() == 0, "PLAIN login"
            logged_in = time.monotonic()
            mark = broker.log_size()

            def closed() -> bool:
                sock.sendall(kproto.metadata_v1(3, []))
                try:
                    kproto.read_response(sock)
                    return False
                except (ConnectionError, OSError):
                    return True

            wait_until(closed, 15, "the connection closed once the session ended")
            assert time.monotonic() - logged_in >= 1.4, "served for the session's lifetime"
        wait_until(lambda: "the SASL session expired and the client did not re-authenticate" in broker.log_text(mark),
                   10, "the close reason logged")
    finally:
        broker.stop()
