"""Power cuts under load on a three-node cluster: acks=all survives them.

Each scenario runs ROUNDS rounds against one topic (6 partitions, RF 3, min.insync.replicas 2,
fsync "always") while two idempotent acks=all producers (kafka-python, confluent-kafka) write
throughout. A round waits a seeded, random number of acknowledgements, then power-cuts (the
`power_cut` fail point: every partition file back to its last fsync, seeded garbage after some,
SIGKILL) the leader of a random partition, one of its followers, or all three nodes at once, and
restarts them. After every round: every record acknowledged so far is in the log at its offset,
no value twice, offsets contiguous from 0, and `cluster verify` finds every replica identical up
to the high watermark. At the end the whole stream is read back with `check_log`.

`POWER_CUT_ROUNDS` (default 10) and `POWER_CUT_SEED` widen or replay the campaign; a failure
prints the seed and the round.
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from client_helpers import ck_consume_all
from cluster import Cluster, NotAgreed, started
from harness import unique_topic, wait_until
from replication_helpers import PARTITIONS, VOTERS, NumberedProducers, admin_view, consume_and_check, create_topic
from test_cluster_verify import verify
from test_power_cut import power_cut

ROUNDS = int(os.environ.get("POWER_CUT_ROUNDS", "10"))
SEED = int(os.environ.get("POWER_CUT_SEED", "20261203"))
SEGMENT_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def pcluster(tmp_path_factory) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("power-cuts"), size=3, spare=0, name="pnode", replication_factor=3,
                min_insync_replicas=2, fsync="always", fail_points=True, replication={"replica_lag_max_ms": 3000},
                storage={"segment_bytes": SEGMENT_BYTES})
    with started(c):
        yield c


def victims(c: Cluster, topic: str, scenario: str, rng: random.Random) -> list[int]:
    """Who loses power this round: a random partition's leader, one of its followers, or all."""
    if scenario == "all":
        return list(VOTERS)
    p = admin_view(c, VOTERS[0], topic)[rng.randrange(PARTITIONS)]
    if scenario == "leader":
        return [p["leader"]]
    return [rng.choice([r for r in p["replicas"] if r != p["leader"]])]


def cut_and_restart(c: Cluster, nodes: list[int], rng: random.Random) -> None:
    """Power-cuts `nodes` at once (each with its own garbage size and seed), then starts them."""
    cuts = [(i, rng.choice([0, 0, 32, 512]), rng.randrange(1 << 30)) for i in nodes]
    threads = [threading.Thread(target=power_cut, args=(c.node(i), garbage, seed)) for i, garbage, seed in cuts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in nodes:
        c.node(i).start(wait=False)
    for i in nodes:
        c.node(i).wait_ready(60)


def full_isr(c: Cluster, topic: str) -> None:
    def check():
        view = admin_view(c, VOTERS[0], topic)
        lagging = {p: e["isr"] for p, e in view.items() if sorted(e["isr"]) != VOTERS}
        if lagging:
            raise NotAgreed(f"ISRs not full: {lagging}")
        return True

    wait_until(check, 90, f"every ISR of {topic} full again", interval=0.2)


def check_acked_so_far(c: Cluster, topic: str, acks: list) -> None:
    """Every acknowledgement in `acks` at its offset, nothing twice, offsets contiguous (the
    producers keep writing: later records may be there too)."""
    got = ck_consume_all(",".join(c.bootstrap(i) for i in VOTERS), topic, PARTITIONS, timeout=60)
    at = {}
    for p, records in got.items():
        offsets = [o for o, _k, _v in records]
        assert offsets == list(range(len(offsets))), f"partition {p}: offsets not contiguous"
        at.update(((p, o), v) for o, _k, v in records)
    values = list(at.values())
    assert len(values) == len(set(values)), "a value is in the log twice"
    present = set(at.items())
    lost = [(tag, p, o, v) for tag, p, o, v, _t in acks if o is not None and ((p, o), v) not in present]
    if lost:
        replicas = {i: {p: (e["leader"], e["isr"], e["replica"] and (e["replica"]["role"], e["replica"]["log_end_offset"],
                                                                   e["replica"]["high_watermark"]))
                        for p, e in admin_view(c, i, topic).items()} for i in VOTERS}
        raise AssertionError(f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}; read {len(at)}; "
                             f"replicas (leader, isr, (role, leo, hw)): {replicas}")


@pytest.mark.parametrize("scenario", ["leader", "follower", "all"])
def test_power_cuts_lose_no_acknowledged_record(pcluster, scenario):
    c = pcluster
    c.wait_for_leader(60, ids=VOTERS, voters=VOTERS)
    rng = random.Random(f"{SEED}-{scenario}")
    topic = unique_topic(f"power-{scenario}")
    create_topic(c, topic)
    with NumberedProducers(",".join(c.bootstrap(i) for i in VOTERS), topic, list(range(PARTITIONS))) as prods:
        for r in range(ROUNDS):
            where = f"seed {SEED}, scenario {scenario}, round {r}"
            prods.wait_acks(rng.randint(5, 60), since=time.monotonic(), timeout=120, what=f"({where})")
            with prods.lock:
                before = list(prods.acks)
            nodes = victims(c, topic, scenario, rng)
            print(f"{where}: power cut of nodes {nodes}")
            cut_and_restart(c, nodes, rng)
            c.wait_for_leader(60, ids=VOTERS, voters=VOTERS)
            full_isr(c, topic)
            check_acked_so_far(c, topic, before)
            rc, out = verify(c, VOTERS[0])
            assert rc == 0, f"{where}: replicas differ after the power cut:\n{out}"
    assert not prods.errors, f"producer errors: {prods.errors[:5]}"
    consume_and_check(c, topic, prods)
    rc, out = verify(c, VOTERS[0])
    assert rc == 0, out
