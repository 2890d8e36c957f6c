"""kafkajs transactions against a standalone broker (the transaction coordinator of a one-node
cluster): kafkajs_transactions.js runs committed and aborted transactions, transactional offsets
(sendOffsets), a fenced zombie, and a READ_COMMITTED kafkajs consumer; here what it wrote is read
back with confluent-kafka (read_committed and read_uncommitted) and the group's offsets fetched.

kafkajs 2.2.4 sends FindCoordinator v2 (key type 1), InitProducerId v1, AddPartitionsToTxn v1,
AddOffsetsToTxn v1, TxnOffsetCommit v1, EndTxn v1, Produce v7, Fetch v11 (isolation level 1 by
default), and picks min(its max, the broker's max) ignoring the broker's minimum.

node + kafkajs missing -> the test skips (integration/clients/install.sh installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from harness import Broker, unique_topic, wait_until
from txn_helpers import GROUP_ENV, READ_COMMITTED, READ_UNCOMMITTED, assert_exactly, consume_all, group_committed

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")
KAFKAJS = HERE / "node_modules" / "kafkajs" / "package.json"
needs_kafkajs = pytest.mark.skipif(NODE is None or not KAFKAJS.exists(),
                                   reason="node or kafkajs not installed (integration/clients/install.sh)")
P = 3


@pytest.fixture(scope="module")
def tbroker(tmp_path_factory) -> Broker:
    b = Broker(tmp_path_factory.mktemp("txn-clients-broker"), name="txn-clients-broker", fsync="interval",
               num_partitions=1, auto_create_topics=False,
               extra_env={**GROUP_ENV, "RUST_LOG": "info,chronik_actors::connection=debug"})
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"transactions clients broker exited with {rc} on SIGTERM"


def create_topic(b: Broker, topic: str, partitions: int) -> None:
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="txn-clients-admin", request_timeout_ms=15000)
    try:
        a.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        a.close()
    wait_until(lambda: all(b.partition(topic, p) for p in range(partitions)), 15,
               f"{topic}: {partitions} partitions in /admin/partitions")


@needs_kafkajs
def test_kafkajs_transactions(tbroker):
    topic, group = unique_topic("kjs-txn"), unique_topic("kjs-txn-group")
    create_topic(tbroker, topic, P)
    spec = {"topic": topic, "partitions": P, "transactionalId": unique_topic("kjs-tid"), "groupId": group}
    p = subprocess.run([NODE, str(HERE / "kafkajs_transactions.js"), tbroker.bootstrap, json.dumps(spec)],
                       capture_output=True, text=True, timeout=180, cwd=HERE,
                       env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    assert p.returncode == 0, (f"kafkajs_transactions.js -> rc {p.returncode}\nstdout:\n{p.stdout[-4000:]}\n"
                               f"stderr:\n{p.stderr[-4000:]}")
    [line] = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line[len("RESULT "):])
    sent = result["sent"]
    print("kafkajs fenced producer's commit:", result["fenced"])

    def per_partition(*labels: str) -> dict[int, list[bytes]]:
        out: dict[int, list[bytes]] = {q: [] for q in range(P)}
        for label in labels:
            for q, v, _o in sent[label]:
                out[q].append(v.encode())
        return out

    committed = per_partition("c1", "c2", "c3")
    rc = consume_all(tbroker.bootstrap, topic, P, READ_COMMITTED)
    assert_exactly(rc, committed, "confluent read_committed of kafkajs's transactions")
    ru = consume_all(tbroker.bootstrap, topic, P, READ_UNCOMMITTED)
    assert_exactly(ru, per_partition("c1", "a1", "c2", "zombie", "c3"), "confluent read_uncommitted")
    acked = {v.encode(): (q, o) for label in sent for q, v, o in sent[label]}
    moved = [(v, acked[v], (q, o)) for q, recs in ru.items() for o, v in recs if acked[v] != (q, o)]
    assert not moved, f"records not at the offsets kafkajs's acks reported: {moved[:5]}"

    # kafkajs's own READ_COMMITTED consumer read the same records (END markers excluded)
    kjs = {q: [] for q in range(P)}
    for q, o, v in sorted(result["readCommitted"], key=lambda r: (r[0], r[1])):
        kjs[q].append((o, v.encode()))
    assert {q: [v for _o, v in r] for q, r in kjs.items()} == committed, "kafkajs READ_COMMITTED consumer"
    assert {q: r for q, r in kjs.items()} == {q: r for q, r in rc.items()}, "kafkajs and confluent offsets differ"

    assert group_committed(tbroker.bootstrap, group, topic) == {0: 11}, "sendOffsets: 11 committed, 99 aborted"
