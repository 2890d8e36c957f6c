"""TLS on the admin port (issue 12, item 4): `[security] admin_cert_file`, `admin_key_file` and
`admin_ca_file`. A 3-node cluster (plus a spare node 4) serves its admin API and console over
HTTPS only, with admin tokens required for changes:

- HTTPS with the cluster's admin CA works, the token is still required; plain HTTP, a client
  trusting another CA, and a connection that never starts its handshake get nothing, and the
  port keeps serving everyone else;
- the relay (`/admin/nodes/{id}/...`) reaches the other nodes over HTTPS;
- the CLI needs only the CA (and the token) in its config: `cluster status`, `cluster add-node`
  and `cluster verify` work; with another CA, or without the CA, it fails and says why;
- half the settings, a key that is not the certificate's, or an unreadable CA stop the start,
  naming the key.

Certificates come from a CA made per run with trustme.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import requests
import trustme

from kafka import KafkaProducer
from kafka.admin import NewTopic

from client_helpers import admin
from cluster import Cluster, started
from harness import unique_topic, wait_until
from tls_helpers import PemDir
from test_node_tls import start_refused

TOKEN = "admin-tls-token-4b1d"
VOTERS = [1, 2, 3]


class AdminCerts(PemDir):
    """The admin CA with one certificate for every node's admin port, and a foreign CA."""

    def __init__(self, root: Path):
        super().__init__(root)
        ca = trustme.CA(organization_name="Chronik admin CA")
        self.ca = self.write("admin-ca.pem", ca.cert_pem.bytes())
        self.cert, self.key = self.pair("admin", ca.issue_cert("127.0.0.1", "localhost"))
        foreign = trustme.CA(organization_name="Someone else's CA")
        self.foreign_ca = self.write("foreign-ca.pem", foreign.cert_pem.bytes())
        self.foreign_key = self.write("foreign.key", foreign.issue_cert("127.0.0.1").private_key_pem.bytes())

    def toml(self, cert: str | None = None, key: str | None = None, ca: str | None = None) -> str:
        pairs = {"admin_cert_file": cert or self.cert, "admin_key_file": key or self.key,
                 "admin_ca_file": ca or self.ca}
        return "[security]\n" + "".join(f'{k} = "{v}"\n' for k, v in pairs.items())


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> AdminCerts:
    return AdminCerts(tmp_path_factory.mktemp("admin-certs"))


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory, certs):
    env = {"CHRONIK_SECURITY__ADMIN_TOKENS": TOKEN}
    cluster = Cluster(tmp_path_factory.mktemp("admin-tls"), size=3, spare=1, name="admtls", extra_env=env,
                      extra_toml=lambda _node: certs.toml(), admin_ca=certs.ca)
    with started(cluster) as c:
        yield c


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_the_admin_port_speaks_https_only_and_keeps_serving_through_bad_clients(tls_cluster, certs):
    c = tls_cluster
    leader = c.wait_for_leader(voters=VOTERS)
    follower = next(i for i in VOTERS if i != leader)
    node = c.node(leader)
    assert node.log_lines(rf"Admin API available at https://[^\s/]+:{node.admin_port}/admin"), node.log_text()[-2000:]
    https = node.admin_url
    assert https.startswith("https://")
    assert requests.get(f"{https}/admin/health", verify=certs.ca, timeout=10).json()["status"] == "healthy"
    assert "<html" in requests.get(f"{https}/", verify=certs.ca, timeout=10).text.lower(), "the console"

    # A client that opened a connection and says nothing holds nobody else up.
    silent = socket.create_connection(("127.0.0.1", node.admin_port))
    try:
        plain = f"http://127.0.0.1:{node.admin_port}/admin/health"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(plain, timeout=10)
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{https}/admin/health", verify=certs.foreign_ca, timeout=10)
        assert requests.get(f"{https}/admin/health", verify=certs.ca, timeout=10).status_code == 200
    finally:
        silent.close()

    # The token still guards changes over TLS.
    r = requests.post(f"{https}/admin/rebalance/pause", verify=certs.ca, timeout=10)
    assert r.status_code == 401 and "needs a bearer token" in r.json()["message"], r.text
    # The relay reaches the leader over HTTPS and trusts only the admin CA.
    via = c.admin_url(follower)
    for action in ("pause", "resume"):
        r = requests.post(f"{via}/admin/nodes/{leader}/admin/rebalance/{action}", headers=bearer(),
                          verify=certs.ca, timeout=30)
        assert r.status_code == 200 and r.json()["success"], r.text
    r = requests.get(f"{via}/admin/nodes/{leader}/admin/health", verify=certs.ca, timeout=30)
    assert r.status_code == 200 and r.json()["node_id"] == leader, r.text


def cli(c: Cluster, *args: str, config: Path) -> subprocess.CompletedProcess:
    return c.cli("cluster", *args, "--config", str(config), timeout=120)


def test_the_cli_trusts_the_ca_of_its_config_adds_a_node_and_verifies_over_https(tls_cluster, certs, tmp_path):
    c = tls_cluster
    node_config = c.node(4).config_path.read_text()  # names nodes 1 to 4
    plain = tmp_path / "plain.toml"
    plain.write_text(node_config.split("[security]")[0])
    foreign = tmp_path / "foreign.toml"
    foreign.write_text(node_config.split("[security]")[0] + f'[security]\nadmin_ca_file = "{certs.foreign_ca}"\n')
    # An operator's CLI holds the CA and a token, never a node's key.
    operator = tmp_path / "operator.toml"
    operator.write_text(node_config.split("[security]")[0]
                        + f'[security]\nadmin_ca_file = "{certs.ca}"\nadmin_tokens = ["{TOKEN}"]\n')

    ok = cli(c, "status", config=operator)
    assert ok.returncode == 0 and "Leader" in ok.stdout, ok.stdout + ok.stderr
    refused_foreign = cli(c, "status", config=foreign)
    assert refused_foreign.returncode != 0 and "certificate" in refused_foreign.stdout.lower(), refused_foreign.stdout
    refused = cli(c, "status", config=plain)
    assert refused.returncode != 0, refused.stdout

    c.node(4).start(wait=False)
    c.node(4).wait_ready(30)
    s = c.slots[4]
    added = cli(c, "add-node", "4", "--kafka", s.addr(s.kafka), "--wal", s.addr(s.wal), "--raft", s.addr(s.raft),
                config=operator)
    assert added.returncode == 0, added.stdout + added.stderr
    wait_until(lambda: all(sorted(c.health(i)["cluster_nodes"]) == [1, 2, 3, 4] for i in [1, 2, 3, 4]), 60,
               "node 4 a voter everywhere")
    # Something to compare: verify reads every replica's digests over HTTPS.
    topic = unique_topic("admtls")
    admin(c.bootstrap(1)).create_topics([NewTopic(topic, num_partitions=2, replication_factor=3)])
    producer = KafkaProducer(bootstrap_servers=c.bootstrap(1), acks="all")
    for i in range(200):
        producer.send(topic, f"record-{i}".encode())
    producer.flush(30)
    producer.close(10)
    verified = cli(c, "verify", config=operator)
    assert verified.returncode == 0 and f"{topic}-1" in verified.stdout, verified.stdout + verified.stderr


def test_bad_admin_tls_settings_stop_the_start_naming_the_key(tls_cluster, certs, tmp_path):
    out = start_refused(tls_cluster, 2, f'[security]\nadmin_cert_file = "{certs.cert}"\n', tmp_path)
    for key in ("security.admin_key_file", "security.admin_ca_file"):
        assert f"{key}: admin TLS needs admin_cert_file, admin_key_file and admin_ca_file together" in out, out
    out = start_refused(tls_cluster, 2, certs.toml(key=certs.foreign_key), tmp_path)
    assert "security.admin_key_file: the key does not fit the certificate" in out, out[-2000:]
    out = start_refused(tls_cluster, 2, certs.toml(ca=certs.key), tmp_path)
    assert "security.admin_ca_file:" in out, out[-2000:]
