"""Unclean leader elections (issue 17 item 3), only where a topic allows them with Kafka's
`unclean.leader.election.enable`. Two topics on replicas [1, 2] of a 3-node cluster, one with
the config on. Node 2 dies and leaves both ISRs; node 1 takes more writes alone, then dies too;
node 2 comes back, out of sync.

- The topic that allows it gets node 2 as leader from the controller, one epoch up, ISR [2]: it
  serves again, without the records only node 1 held (what "unclean" means).
- The other keeps waiting for node 1: confluent-kafka's ElectLeaders UNCLEAN gets
  ELIGIBLE_LEADERS_NOT_AVAILABLE naming the config, and nothing changes. Once the config is
  turned on it is elected like the first.
- Node 1 returns, truncates the tail nobody else has, follows node 2 and rejoins the ISR:
  `cluster verify` finds every replica identical.
"""

from __future__ import annotations

from confluent_kafka import ElectionType, KafkaError, TopicPartition as CkTopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from kafka import KafkaProducer

from client_helpers import ck_consume_all
from cluster import Cluster, started
from harness import unique_topic, wait_until
from replication_helpers import admin_view

UNCLEAN = "unclean.leader.election.enable"


def send(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=10)
    try:
        for v in values:
            p.send(topic, v, partition=0).get(30)
    finally:
        p.close(10)


def values(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(n)]


def test_an_out_of_sync_replica_leads_only_where_the_topic_allows_it(tmp_path):
    c = Cluster(tmp_path / "unclean", size=3, spare=0, name="uncl", replication_factor=2, min_insync_replicas=1,
                replication={"replica_lag_max_ms": 2000, "session_timeout_ms": 3000})
    with started(c):
        ac = AdminClient({"bootstrap.servers": c.bootstrap(3)})
        allowed, waiting = unique_topic("unclean-on"), unique_topic("unclean-off")
        fs = ac.create_topics([NewTopic(allowed, 1, replica_assignment=[[1, 2]], config={UNCLEAN: "true"}),
                               NewTopic(waiting, 1, replica_assignment=[[1, 2]])])
        for f in fs.values():
            f.result(30)
        topics = (allowed, waiting)

        def view(topic: str, via: int = 3) -> dict:
            return admin_view(c, via, topic).get(0, {})

        wait_until(lambda: all(sorted(view(t).get("isr", [])) == [1, 2] for t in topics), 30, "both ISRs [1, 2]")
        for t in topics:
            send(c.bootstrap(1), t, values("early", 50))

        c.kill(2)
        # acks=all waits until the leader drops the silent follower from the ISR, then only 1 has them.
        for t in topics:
            send(c.bootstrap(1), t, values("only-on-1", 30))
        assert all(view(t, 1)["isr"] == [1] for t in topics)
        epochs = {t: view(t, 1)["leader_epoch"] for t in topics}
        c.kill(1)
        c.nodes[2].start()

        # The controller fences node 1 after a session and elects node 2 where it may.
        wait_until(lambda: view(allowed)["leader"] == 2, 60, f"node 2 leading {allowed}")
        moved = view(allowed)
        assert moved["isr"] == [2] and moved["leader_epoch"] == epochs[allowed] + 1, moved
        stuck = view(waiting)
        assert (stuck["leader"], stuck["leader_epoch"]) == (1, epochs[waiting]), stuck

        ac = AdminClient({"bootstrap.servers": f"{c.bootstrap(2)},{c.bootstrap(3)}"})
        [err] = ac.elect_leaders(ElectionType.UNCLEAN, [CkTopicPartition(waiting, 0)]).result(30).values()
        assert err is not None and err.code() == KafkaError.ELIGIBLE_LEADERS_NOT_AVAILABLE, err
        assert UNCLEAN in err.str(), err.str()
        assert (view(waiting)["leader"], view(waiting)["leader_epoch"]) == (1, epochs[waiting]), "nothing elected"

        on = ConfigResource("topic", waiting, incremental_configs=[
            ConfigEntry(UNCLEAN, "true", incremental_operation=AlterConfigOpType.SET)])
        ac.incremental_alter_configs([on])[on].result(30)
        wait_until(lambda: view(waiting)["leader"] == 2, 30, f"node 2 leading {waiting} once allowed")
        [err] = ac.elect_leaders(ElectionType.UNCLEAN, [CkTopicPartition(waiting, 0)]).result(30).values()
        assert err is not None and err.code() == KafkaError.ELECTION_NOT_NEEDED, "its leader answers now"

        for t in topics:
            send(c.bootstrap(2), t, values("after", 20))
            got = [v for _o, _k, v in ck_consume_all(c.bootstrap(2), t, 1, timeout=60)[0]]
            assert got == values("early", 50) + values("after", 20), (t, len(got))

        # Node 1 comes back: it drops what only it had and follows the new leader.
        c.nodes[1].start()
        wait_until(lambda: all(sorted(view(t).get("isr", [])) == [1, 2] for t in topics), 60,
                   "node 1 back in both ISRs")
        verified = c.cli("cluster", "verify", "--config", str(c.node(3).config_path), timeout=120)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        for t in topics:
            assert f"{t}-0: replicas [1, 2] agree" in verified.stdout, verified.stdout
