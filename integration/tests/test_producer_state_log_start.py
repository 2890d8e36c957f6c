"""Idempotent producers' state goes with the log start (issue 15 item 1, DescribeProducers): once
DeleteRecords moves a partition's log start past a producer's last batch, the partition forgets
the producer, as Kafka's `ProducerStateManager.onLogStartOffsetIncremented` does, and
DescribeProducers no longer lists it, also after a kill -9 (the restart rebuilds the state from
the log and drops the producers below its start, whose batches may still sit in the first
segment). A producer forgotten that way goes on producing without an error, as in Kafka
(KIP-360: an unknown producer may start at any sequence), and is listed again.

Compaction never forgets a producer (test_compaction.py: its last batch stays as an empty header).
"""

from __future__ import annotations

from confluent_kafka import Producer
from kafka.structs import TopicPartition

from client_helpers import admin, create_topic, describe_producers
from harness import unique_topic, wait_until


def producers(bootstrap: str, topic: str) -> dict[int, int]:
    """Producer id -> last sequence on partition 0."""
    return {pid: seq for pid, (_epoch, seq) in describe_producers(bootstrap, topic).items()}


class Idempotent:
    """A confluent-kafka idempotent producer that remembers each acked offset and every error."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                           "linger.ms": 5, "client.id": "chronik-it-producer-state"})
        self.offsets: list[int] = []
        self.errors: list = []

    def send(self, count: int, tag: bytes) -> list[int]:
        before = len(self.offsets)
        for n in range(count):
            self.p.produce(self.topic, value=tag + b"-%03d" % n, partition=0, on_delivery=self._delivered)
        assert self.p.flush(30) == 0
        assert not self.errors, self.errors
        return self.offsets[before:]

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.errors.append(err)
        else:
            self.offsets.append(msg.offset())


def test_delete_records_past_a_producers_last_batch_forgets_it(make_broker):
    b = make_broker("producer-state", auto_create_topics=False)
    topic = unique_topic("producer-state")
    create_topic(b.bootstrap, topic, 1)
    first, second = Idempotent(b.bootstrap, topic), Idempotent(b.bootstrap, topic)
    assert sorted(first.send(10, b"a")) == list(range(10))
    [first_pid] = producers(b.bootstrap, topic)
    assert sorted(second.send(10, b"b")) == list(range(10, 20))
    state = producers(b.bootstrap, topic)
    assert state == {first_pid: 9, **{pid: 9 for pid in state if pid != first_pid}} and len(state) == 2, state
    [second_pid] = [pid for pid in state if pid != first_pid]

    a = admin(b.bootstrap)
    try:
        # Offset 9 is the first producer's last record: deleting before it keeps the producer.
        assert a.delete_records({TopicPartition(topic, 0): 9})[TopicPartition(topic, 0)]["error_code"] == 0
        assert producers(b.bootstrap, topic) == {first_pid: 9, second_pid: 9}
        assert a.delete_records({TopicPartition(topic, 0): 10})[TopicPartition(topic, 0)]["error_code"] == 0
    finally:
        a.close()
    assert producers(b.bootstrap, topic) == {second_pid: 9}, "the producer below the log start is forgotten"

    b.kill()
    b.start()
    state = wait_until(lambda: producers(b.bootstrap, topic), 30, f"{topic} described after kill -9")
    assert state == {second_pid: 9}, "rebuilt from the log, less what is below its start"

    # The forgotten producer goes on at sequence 10 and is accepted and listed again.
    assert sorted(first.send(5, b"a2")) == list(range(20, 25))
    assert producers(b.bootstrap, topic) == {first_pid: 14, second_pid: 9}
    first.p.flush(10)
    second.p.flush(10)
