"""The control plane's credentials (issue 12 items 4 and 5, first part), on a real 3-node cluster
started with admin tokens and a cluster secret from the environment:
- every mutating admin endpoint answers 401 with a message and `WWW-Authenticate: Bearer` without
  a token or with a wrong one, and works with any configured token; reads stay open; the console's
  relay passes the caller's own credential on, so it cannot be used to get around the check;
- `chronik-server cluster add-node` without the token is refused, naming why; with it (from its
  config file) node 4 joins, its raft and wal traffic carrying the cluster secret;
- the raft and wal ports refuse a raw gRPC call without the cluster secret or with a wrong one
  (UNAUTHENTICATED, logged by the node), and serve it with the right one;
- neither the tokens nor the secret appear in any node's log (the effective configuration shows
  `***`).
"""

from __future__ import annotations

import os
import subprocess

import grpc
import pytest
import requests

from cluster import Cluster, started
from harness import broker_binary, wait_until

VOTERS = [1, 2, 3]
TOKENS = ["ops-token-5f2a9c", "ci-token-77b1e0"]
SECRET = "cluster-secret-0d9e41c7"
RAFT_CALL = "/chronik.raft.RaftService/ClusterInfo"
WAL_CALL = "/chronik.replication.Replication/EpochEndOffset"
# What a forger would call to end other producers' transactions or let its writes in (Forward
# appends a produce as if a leader that just handed over had passed it on).
WAL_WRITE_CALLS = ["/chronik.replication.Replication/WriteTxnMarkers",
                   "/chronik.replication.Replication/RegisterTxnPartitions",
                   "/chronik.replication.Replication/Forward"]


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    env = {"CHRONIK_SECURITY__ADMIN_TOKENS": ",".join(TOKENS), "CHRONIK_SECURITY__CLUSTER_SECRET": SECRET}
    with started(Cluster(tmp_path_factory.mktemp("secured"), size=3, spare=1, name="secnode", extra_env=env)) as c:
        c.wait_for_leader(voters=VOTERS)
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_mutations_need_a_configured_token_and_reads_stay_open(secured):
    c = secured
    leader = c.wait_for_leader(voters=VOTERS)
    follower = next(i for i in VOTERS if i != leader)
    admin = c.admin_url(leader)
    assert requests.get(f"{admin}/admin/health", timeout=10).status_code == 200
    assert requests.get(f"{admin}/admin/partitions", timeout=10).status_code == 200

    for headers, why in (({}, "needs a bearer token"), (bearer("wrong"), "not valid"),
                         ({"Authorization": f"Basic {TOKENS[0]}"}, "must be 'Bearer <token>'")):
        r = requests.post(f"{admin}/admin/rebalance/pause", headers=headers, timeout=10)
        assert r.status_code == 401, r.text
        assert r.json()["success"] is False and why in r.json()["message"], r.text
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), r.headers
    assert c.node(leader).get("/admin/rebalance").json()["paused"] is False, "nothing refused took effect"

    # Any configured token works.
    r = requests.post(f"{admin}/admin/rebalance/pause", headers=bearer(TOKENS[1]), timeout=10)
    assert r.status_code == 200, r.text
    r = requests.post(f"{admin}/admin/rebalance/resume", headers=bearer(TOKENS[0]), timeout=10)
    assert r.status_code == 200, r.text

    # The console's relay: checked where it enters, and the member checks the credential it passes on.
    relayed = f"{c.admin_url(follower)}/admin/nodes/{leader}/admin/rebalance/pause"
    assert requests.post(relayed, timeout=10).status_code == 401
    r = requests.post(relayed, headers=bearer(TOKENS[0]), timeout=30)
    assert r.status_code == 200 and r.json()["success"], r.text
    r = requests.post(f"{c.admin_url(follower)}/admin/nodes/{leader}/admin/rebalance/resume",
                      headers=bearer(TOKENS[0]), timeout=30)
    assert r.status_code == 200, r.text
    assert requests.get(f"{c.admin_url(follower)}/admin/nodes/{leader}/admin/rebalance", timeout=10).status_code == 200
    assert "admin request refused" in c.node(leader).log_text()


def add_node_cli(c: Cluster, env: dict[str, str], config: str) -> subprocess.CompletedProcess:
    s = c.slots[4]
    args = ["cluster", "add-node", "4", "--kafka", s.addr(s.kafka), "--wal", s.addr(s.wal),
            "--raft", s.addr(s.raft), "--config", config]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
    return subprocess.run([str(broker_binary()), *args], capture_output=True, text=True, timeout=120,
                          env={**clean, **env}, stdin=subprocess.DEVNULL)


def test_the_cli_sends_the_token_from_its_config_and_a_new_node_joins_with_the_secret(secured, tmp_path):
    c = secured
    c.node(4).start(wait=False)
    c.node(4).wait_ready(30)
    config = str(c.node(1).config_path)
    refused = add_node_cli(c, {}, config)
    assert refused.returncode != 0 and "needs a bearer token" in refused.stdout, refused.stdout + refused.stderr

    token_file = tmp_path / "admin-tokens"
    token_file.write_text(f"# the CLI's token\n{TOKENS[1]}\n")
    with_token = tmp_path / "cli.toml"
    with_token.write_text(c.node(1).config_path.read_text() + f'\n[security]\nadmin_token_file = "{token_file}"\n')
    added = add_node_cli(c, {}, str(with_token))
    assert added.returncode == 0, added.stdout + added.stderr
    wait_until(lambda: all(sorted(c.health(i)["cluster_nodes"]) == [1, 2, 3, 4] for i in [1, 2, 3, 4]), 60,
               "node 4 a voter everywhere")
    leader = c.wait_for_leader(voters=[1, 2, 3, 4])
    wait_until(lambda: c.node(leader).get("/admin/rebalance").json()["complete"], 120, "node 4's moves done")


def raw_call(addr: str, method: str, metadata=None):
    """One unary gRPC call with an empty message; the status code it ends with."""
    with grpc.insecure_channel(addr) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            call(b"", timeout=10, metadata=metadata)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()


@pytest.mark.parametrize("port", ["raft", "wal"])
def test_node_ports_refuse_calls_without_the_cluster_secret(secured, port):
    c = secured
    node = c.node(2)
    s = c.slots[2]
    addr = s.addr(s.raft if port == "raft" else s.wal)
    method = RAFT_CALL if port == "raft" else WAL_CALL
    before = node.log_size()
    assert raw_call(addr, method) == grpc.StatusCode.UNAUTHENTICATED
    assert raw_call(addr, method, [("authorization", "Bearer not-the-secret")]) == grpc.StatusCode.UNAUTHENTICATED
    # With the secret the call gets past the check (EpochEndOffset for no partition answers with
    # an error of its own, in its reply or as a status, but not UNAUTHENTICATED).
    assert raw_call(addr, method, [("authorization", f"Bearer {SECRET}")]) != grpc.StatusCode.UNAUTHENTICATED
    log = node.log_text(before)
    assert "refused a request with no cluster secret" in log and "refused a request with a wrong cluster secret" in log


@pytest.mark.parametrize("method", WAL_WRITE_CALLS)
def test_write_rpcs_refuse_calls_without_the_cluster_secret(secured, method):
    s = secured.slots[2]
    addr = s.addr(s.wal)
    assert raw_call(addr, method) == grpc.StatusCode.UNAUTHENTICATED
    assert raw_call(addr, method, [("authorization", "Bearer not-the-secret")]) == grpc.StatusCode.UNAUTHENTICATED
    assert raw_call(addr, method, [("authorization", f"Bearer {SECRET}")]) != grpc.StatusCode.UNAUTHENTICATED


def test_no_credential_is_ever_logged(secured):
    c = secured
    for i in c.nodes:
        text = c.node(i).log_text()
        if not text:
            continue
        for credential in [*TOKENS, SECRET]:
            assert credential not in text, f"node {i}'s log holds a credential"
    assert '"admin_tokens":["***","***"]' in c.node(1).log_text()
