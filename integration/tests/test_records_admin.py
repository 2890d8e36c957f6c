"""Records management (issue 15 item 1) with real admin clients: DeleteRecords and
DescribeLogDirs.

- DeleteRecords with kafka-python's `KafkaAdminClient.delete_records` and confluent-kafka's
  `AdminClient.delete_records` on one broker: 100 records produced in 7-record batches (so
  offset 40 lies inside a batch), everything before 40 deleted; the answer's low watermark is 40,
  a consumer from earliest starts at 40, ListOffsets EARLIEST is 40, a fetch at 10 is
  OFFSET_OUT_OF_RANGE (a consumer with auto.offset.reset=earliest lands on 40), and all of that
  holds after a clean restart and after kill -9.
- Bad arguments are answered at once with Kafka's codes: an offset above the high watermark or
  below -1 (OFFSET_OUT_OF_RANGE), an unknown topic or partition (UNKNOWN_TOPIC_OR_PARTITION),
  the internal `__consumer_offsets` (INVALID_TOPIC_EXCEPTION).
- On three nodes (RF 3): the deletion reaches every replica's durable log start, and after the
  leader is killed the new leader still answers low watermark 40 and serves nothing below it.
- kafkajs' `admin.deleteTopicRecords` (clients/kafkajs_records.js), read back with
  `fetchTopicOffsets`.
- DescribeLogDirs with kafka-python's `describe_log_dirs`: the data directory, and a partition's
  size growing after producing.
- Every advertised version of both (DeleteRecords v0-2, DescribeLogDirs v1-4) encoded and decoded
  with kafka-python's schema-generated classes (Kafka's own message definitions).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition as CkTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kafka.errors import OffsetOutOfRangeError
from kafka.protocol.admin import (
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
)
from kafka.structs import TopicPartition

import kproto
from client_helpers import admin, create_topic, kp_consumer
from cluster import Cluster, NotAgreed, started
from harness import Broker, unique_topic, wait_until
from replication_helpers import admin_view

ERR_OFFSET_OUT_OF_RANGE = 1
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_INVALID_TOPIC = 17
EARLIEST = -2
API_DESCRIBE_LOG_DIRS = 35
RECORDS = 100
BATCH = 7  # records per produce batch: offset 40 falls inside the batch 35..41
DELETE_BEFORE = 40
# "At once": well under any client or broker timeout (kafka-python's here is 15 s).
PROMPT_S = 3.0


@pytest.fixture(scope="module")
def rbroker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("records-admin"), name="records-admin", fsync="interval")
    b.start()
    yield b
    b.stop()


def values(topic: str) -> list[bytes]:
    return [f"{topic}-{i}".encode() for i in range(RECORDS)]


def produce(bootstrap: str, topic: str, partition: int = 0, count: int = RECORDS) -> None:
    """`count` records in batches of BATCH (a flush after each), acks=all."""
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, retries=5)
    try:
        for i, value in enumerate(values(topic)[:count]):
            p.send(topic, value, partition=partition)
            if (i + 1) % BATCH == 0:
                p.flush(30)
        p.flush(30)
    finally:
        p.close()


def raw_earliest(bootstrap: str, topic: str, partition: int = 0) -> int:
    _cid, body = kproto.call(bootstrap, kproto.list_offsets_v1(1, topic, partition, EARLIEST))
    [p] = kproto.parse_list_offsets_v1(body)
    assert p["error_code"] == 0, p
    return p["offset"]


def raw_fetch(bootstrap: str, topic: str, offset: int, partition: int = 0) -> dict:
    _cid, body = kproto.call(bootstrap, kproto.fetch_v4(2, topic, partition, offset, max_wait_ms=0))
    [p] = kproto.parse_fetch_v4(body)
    return p


def raw_delete(bootstrap: str, topic: str, partition: int, offset: int) -> tuple[dict, float]:
    """DeleteRecords v0 sent straight to `bootstrap`: (the partition's answer, seconds taken)."""
    t0 = time.monotonic()
    _cid, body = kproto.call(bootstrap, kproto.delete_records_v0(3, topic, partition, offset))
    [p] = kproto.parse_delete_records_v0(body)
    return p, time.monotonic() - t0


def kp_read_from(bootstrap: str, topic: str, offset: int | None, want: int, partition: int = 0) -> list:
    """kafka-python consumer (auto_offset_reset=earliest): from the beginning (`offset` None) or
    after seeking to `offset`; returns the first `want` records' (offset, value)."""
    c = kp_consumer(bootstrap)
    tp = TopicPartition(topic, partition)
    try:
        c.assign([tp])
        if offset is None:
            c.seek_to_beginning(tp)
        else:
            c.seek(tp, offset)
        got: list = []
        deadline = time.monotonic() + 30
        while len(got) < want and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=500).values():
                got.extend((r.offset, r.value) for r in records)
        return got[:want]
    finally:
        c.close()


def kp_beginning(bootstrap: str, topic: str, partition: int = 0) -> int:
    c = kp_consumer(bootstrap)
    try:
        tp = TopicPartition(topic, partition)
        return c.beginning_offsets([tp])[tp]
    finally:
        c.close()


def wait_serving(bootstrap: str, topic: str, low: int = DELETE_BEFORE) -> None:
    """Waits until the partition's leader at `bootstrap` serves a fetch at `low` (after a start)."""
    wait_until(lambda: raw_fetch(bootstrap, topic, low)["error_code"] == 0, 30, f"{bootstrap} serving {topic}")


def assert_deleted_before(bootstrap: str, topic: str, low: int = DELETE_BEFORE) -> None:
    """Everything a reader can see says the log starts at `low`."""
    assert raw_earliest(bootstrap, topic) == low
    assert kp_beginning(bootstrap, topic) == low
    assert raw_fetch(bootstrap, topic, 10)["error_code"] == ERR_OFFSET_OUT_OF_RANGE
    assert raw_fetch(bootstrap, topic, low - 1)["error_code"] == ERR_OFFSET_OUT_OF_RANGE
    at_low = raw_fetch(bootstrap, topic, low)
    assert at_low["error_code"] == 0 and at_low["records"], at_low
    expected = list(zip(range(low, RECORDS), values(topic)[low:]))
    assert kp_read_from(bootstrap, topic, None, RECORDS - low) == expected, "from earliest"
    assert kp_read_from(bootstrap, topic, 10, 5) == expected[:5], "out of range at 10 resets to earliest"


def test_kafka_python_delete_records_survives_restart_and_kill(rbroker):
    topic = unique_topic("kp-delete")
    create_topic(rbroker.bootstrap, topic, 1)
    produce(rbroker.bootstrap, topic)
    a = admin(rbroker.bootstrap)
    try:
        result = a.delete_records({TopicPartition(topic, 0): DELETE_BEFORE})
    finally:
        a.close()
    [(tp, answer)] = result.items()
    assert (tp, answer["low_watermark"], answer["error_code"]) == (TopicPartition(topic, 0), DELETE_BEFORE, 0)
    assert_deleted_before(rbroker.bootstrap, topic)
    replica = rbroker.partition(topic, 0)["replica"]
    assert (replica["log_start_offset"], replica["log_end_offset"]) == (DELETE_BEFORE, RECORDS), replica

    rbroker.restart()
    wait_serving(rbroker.bootstrap, topic)
    assert_deleted_before(rbroker.bootstrap, topic)
    rbroker.kill()
    rbroker.start()
    wait_serving(rbroker.bootstrap, topic)
    assert_deleted_before(rbroker.bootstrap, topic)

    # Deleting below the log start changes nothing; the answer is still the low watermark.
    p, _ = raw_delete(rbroker.bootstrap, topic, 0, 5)
    assert (p["error_code"], p["low_watermark"]) == (0, DELETE_BEFORE), p


def test_confluent_delete_records_and_up_to_the_high_watermark(rbroker):
    topic = unique_topic("ck-delete")
    ac = AdminClient({"bootstrap.servers": rbroker.bootstrap})
    ac.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
    produce(rbroker.bootstrap, topic)
    deleted = ac.delete_records([CkTopicPartition(topic, 0, DELETE_BEFORE)], operation_timeout=10, request_timeout=15)
    [(tp, future)] = deleted.items()
    assert future.result(15).low_watermark == DELETE_BEFORE

    # librdkafka: assigned at 10, refused OFFSET_OUT_OF_RANGE, reset to earliest = 40.
    c = Consumer({"bootstrap.servers": rbroker.bootstrap, "group.id": unique_topic("ck-g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.assign([CkTopicPartition(topic, 0, 10)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < RECORDS - DELETE_BEFORE and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append((m.offset(), m.value()))
        assert got == list(zip(range(DELETE_BEFORE, RECORDS), values(topic)[DELETE_BEFORE:]))
        low, high = c.get_watermark_offsets(CkTopicPartition(topic, 0), timeout=10)
        assert (low, high) == (DELETE_BEFORE, RECORDS)
    finally:
        c.close()

    # OFFSET_END (-1): everything up to the high watermark.
    everything = ac.delete_records([CkTopicPartition(topic, 0, -1)], operation_timeout=10, request_timeout=15)
    assert [f.result(15).low_watermark for f in everything.values()] == [RECORDS]
    assert raw_earliest(rbroker.bootstrap, topic) == RECORDS
    assert raw_fetch(rbroker.bootstrap, topic, RECORDS - 1)["error_code"] == ERR_OFFSET_OUT_OF_RANGE


NODE = shutil.which("node")
KAFKAJS = Path(__file__).resolve().parent.parent / "clients" / "node_modules" / "kafkajs" / "package.json"


@pytest.mark.skipif(NODE is None or not KAFKAJS.exists(), reason="node or kafkajs not installed (clients/install.sh)")
def test_kafkajs_delete_topic_records(rbroker):
    topic = unique_topic("kjs-delete")
    create_topic(rbroker.bootstrap, topic, 1)
    produce(rbroker.bootstrap, topic)
    script = KAFKAJS.parent.parent.parent / "kafkajs_records.js"
    p = subprocess.run([NODE, str(script), rbroker.bootstrap, topic, str(DELETE_BEFORE)],
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, f"rc {p.returncode}\nstdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}"
    result = json.loads(p.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    assert result["offsets"] == [{"partition": 0, "offset": str(RECORDS), "high": str(RECORDS),
                                  "low": str(DELETE_BEFORE)}], result
    assert_deleted_before(rbroker.bootstrap, topic)


def test_bad_arguments_are_answered_at_once(rbroker):
    topic = unique_topic("bad-delete")
    create_topic(rbroker.bootstrap, topic, 1)
    produce(rbroker.bootstrap, topic, count=20)

    a = admin(rbroker.bootstrap)
    try:
        t0 = time.monotonic()
        with pytest.raises(OffsetOutOfRangeError):
            a.delete_records({TopicPartition(topic, 0): 21})
        assert time.monotonic() - t0 < PROMPT_S
    finally:
        a.close()
    ac = AdminClient({"bootstrap.servers": rbroker.bootstrap})
    t0 = time.monotonic()
    with pytest.raises(KafkaException) as e:
        ac.delete_records([CkTopicPartition(topic, 0, 500)], request_timeout=15)[CkTopicPartition(topic, 0, 500)].result(15)
    assert e.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, e.value
    assert time.monotonic() - t0 < PROMPT_S

    for partition, offset, code in [
        (0, 21, ERR_OFFSET_OUT_OF_RANGE),  # above the high watermark (20)
        (0, -2, ERR_OFFSET_OUT_OF_RANGE),  # no such sentinel
        (0, -(2 ** 63), ERR_OFFSET_OUT_OF_RANGE),
        (7, 5, ERR_UNKNOWN_TOPIC_OR_PARTITION),  # the topic has one partition
    ]:
        p, took = raw_delete(rbroker.bootstrap, topic, partition, offset)
        assert (p["error_code"], p["low_watermark"]) == (code, -1), (partition, offset, p)
        assert took < PROMPT_S, (partition, offset, took)
    # Kafka refuses its internal topic: the group coordinator's state lives there.
    p, took = raw_delete(rbroker.bootstrap, "__consumer_offsets", 0, 0)
    assert (p["error_code"], took < PROMPT_S) == (ERR_INVALID_TOPIC, True), (p, took)
    p, took = raw_delete(rbroker.bootstrap, unique_topic("no-such-topic"), 0, 5)
    assert (p["error_code"], took < PROMPT_S) == (ERR_UNKNOWN_TOPIC_OR_PARTITION, True), (p, took)
    # Nothing was deleted by the refused requests.
    assert raw_earliest(rbroker.bootstrap, topic) == 0


def test_describe_log_dirs_reports_the_data_dir_and_growing_sizes(rbroker):
    topic = unique_topic("logdirs")
    create_topic(rbroker.bootstrap, topic, 2)
    produce(rbroker.bootstrap, topic, partition=0, count=10)

    def sizes() -> tuple[dict, dict[int, dict]]:
        a = admin(rbroker.bootstrap)
        try:
            [broker] = a.describe_log_dirs()
        finally:
            a.close()
        [log_dir] = broker["log_dirs"]
        mine = [t for t in log_dir["topics"] if t["name"] == topic]
        return log_dir, {p["partition_index"]: p for t in mine for p in t["partitions"]}

    log_dir, before = sizes()
    assert log_dir["error_code"] == 0
    assert log_dir["log_dir"] == os.path.abspath(rbroker.data_dir)
    if "total_bytes" in log_dir:  # v4
        assert log_dir["total_bytes"] > 0 and 0 <= log_dir["usable_bytes"] <= log_dir["total_bytes"], log_dir
    assert sorted(before) == [0, 1]
    assert before[0]["partition_size"] > 0 and before[1]["partition_size"] == 0, before
    assert all((p["offset_lag"], p["is_future_key"]) == (0, False) for p in before.values()), before

    produce(rbroker.bootstrap, topic, partition=1, count=30)
    _, after = sizes()
    assert after[1]["partition_size"] > 0 and after[0]["partition_size"] == before[0]["partition_size"], after


# ---- every advertised version, with kafka-python's schema-generated classes ------------------


def roundtrip(bootstrap: str, request, response_cls, version: int) -> dict:
    request.with_header(correlation_id=100 + version, client_id="chronik-it-records")
    frame = bytes(request.encode(version=version, header=True, framed=True))
    with kproto.connect(bootstrap, timeout=15) as sock:
        sock.sendall(frame)
        size = struct.unpack(">i", kproto.recv_exact(sock, 4))[0]
        payload = kproto.recv_exact(sock, size)
    assert struct.unpack(">i", payload[:4])[0] == 100 + version
    return response_cls.decode(payload, version=version, header=True).to_dict(json=False)


def advertised(bootstrap: str, api_key: int) -> range:
    _, body = kproto.call(bootstrap, kproto.api_versions_v0(0))
    err, apis = kproto.parse_api_versions_v0(body)
    assert err == 0
    lo, hi = apis[api_key]
    return range(lo, hi + 1)


def test_every_advertised_version(rbroker):
    topic = unique_topic("versions")
    create_topic(rbroker.bootstrap, topic, 1)
    produce(rbroker.bootstrap, topic, count=20)
    versions = advertised(rbroker.bootstrap, kproto.API_DELETE_RECORDS)
    assert versions == range(0, 3)
    R = DeleteRecordsRequest
    for v in versions:
        low = 3 * (v + 1)
        partition = R.DeleteRecordsTopic.DeleteRecordsPartition(partition_index=0, offset=low)
        request = R(topics=[R.DeleteRecordsTopic(name=topic, partitions=[partition])], timeout_ms=10000)
        [t] = roundtrip(rbroker.bootstrap, request, DeleteRecordsResponse, v)["topics"]
        assert (t["name"], t["partitions"]) == (topic, [{"partition_index": 0, "low_watermark": low, "error_code": 0}]), v
        assert raw_earliest(rbroker.bootstrap, topic) == low

    versions = advertised(rbroker.bootstrap, API_DESCRIBE_LOG_DIRS)
    assert versions == range(1, 5)
    D = DescribeLogDirsRequest
    for v in versions:
        # Even versions ask for the topic's partition 0, odd ones for everything (null).
        topics = [D.DescribableLogDirTopic(topic=topic, partitions=[0])] if v % 2 == 0 else None
        resp = roundtrip(rbroker.bootstrap, D(topics=topics), DescribeLogDirsResponse, v)
        [result] = resp["results"]
        assert (result["error_code"], result["log_dir"]) == (0, os.path.abspath(rbroker.data_dir)), (v, result)
        listed = {t["name"]: t["partitions"] for t in result["topics"]}
        [p] = listed[topic]
        assert p["partition_index"] == 0 and p["partition_size"] > 0, (v, p)
        assert (len(listed) == 1) == (v % 2 == 0), (v, sorted(listed))
        if v >= 4:
            assert 0 <= result["usable_bytes"] <= result["total_bytes"] and result["total_bytes"] > 0, result


# ---- three nodes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rcluster(tmp_path_factory):
    # A short replica lag: a dead follower leaves the ISR (and acks=all produces go on) quickly.
    c = Cluster(tmp_path_factory.mktemp("records-cluster"), size=3, spare=0, name="recnode",
                replication_factor=3, min_insync_replicas=2, replication={"replica_lag_max_ms": 3000})
    with started(c, clean_stop=True):
        yield c


def replicas(cluster: Cluster, topic: str, ids) -> dict[int, dict | None]:
    """node -> its replica of partition 0 as its /admin/partitions shows it."""
    return {i: admin_view(cluster, i, topic)[0]["replica"] for i in ids}


def wait_all_start_at(cluster: Cluster, topic: str, ids, what: str) -> None:
    """Waits until every replica on `ids` holds [DELETE_BEFORE, RECORDS), all committed."""
    want = {i: (DELETE_BEFORE, RECORDS, RECORDS) for i in ids}

    def check():
        got = {i: r and (r["log_start_offset"], r["log_end_offset"], r["high_watermark"])
               for i, r in replicas(cluster, topic, ids).items()}
        if got != want:
            raise NotAgreed(f"(log start, log end, high watermark) per node: {got}")
        return True

    wait_until(check, 30, what)


def test_deleted_records_stay_deleted_on_every_replica_after_the_leader_dies(rcluster):
    """A follower that was down during the deletion comes back with an empty-of-deletions view:
    its fetch below the leader's log start is refused, it restarts its log at the batch holding
    offset 40 and then follows the leader's log start. Then the leader is killed: whoever
    leads next answers low watermark 40 and serves nothing below it."""
    voters = [1, 2, 3]
    topic = unique_topic("rep-delete")
    ac = AdminClient({"bootstrap.servers": rcluster.bootstrap(1)})  # must outlive its futures
    ac.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(30)
    wait_until(lambda: all(admin_view(rcluster, i, topic).get(0, {}).get("replica") for i in voters), 20,
               f"every node hosting {topic}")
    view = admin_view(rcluster, 1, topic)[0]
    leader = view["leader"]
    absent = max(i for i in voters if i != leader)
    rcluster.kill(absent)
    up = [i for i in voters if i != absent]
    everyone = ",".join(rcluster.bootstrap(i) for i in up)
    produce(everyone, topic)

    # Straight to the leader: kafka-python's admin asks a random known broker for metadata
    # first, and fails outright if it picks the dead one.
    a = admin(rcluster.bootstrap(leader))
    try:
        result = a.delete_records({TopicPartition(topic, 0): DELETE_BEFORE}, partition_leader_id=leader)
    finally:
        a.close()
    assert result[TopicPartition(topic, 0)]["low_watermark"] == DELETE_BEFORE
    wait_all_start_at(rcluster, topic, up, f"the running replicas of {topic} starting at {DELETE_BEFORE}")

    rcluster.restart(absent)
    wait_all_start_at(rcluster, topic, voters, f"node {absent} caught up, starting at {DELETE_BEFORE}")
    wait_until(lambda: sorted(admin_view(rcluster, leader, topic)[0]["isr"]) == voters, 30,
               f"node {absent} back in the ISR of {topic}")

    rcluster.kill(leader)
    survivors = [i for i in voters if i != leader]

    def new_leader():
        views = [admin_view(rcluster, i, topic)[0] for i in survivors]
        leaders = {v["leader"] for v in views}
        return len(leaders) == 1 and leader not in leaders and leaders.pop()

    successor = wait_until(new_leader, 45, f"a new leader for {topic} after node {leader} died")
    bootstrap = rcluster.bootstrap(successor)
    wait_serving(bootstrap, topic)
    assert_deleted_before(bootstrap, topic)

    # The old leader comes back as a follower with its own durable log start intact.
    rcluster.restart(leader)
    wait_all_start_at(rcluster, topic, voters, f"node {leader} back with log start {DELETE_BEFORE}")


def test_the_answer_waits_for_every_in_sync_replica_and_a_frozen_one_only_until_it_leaves(rcluster):
    """DeleteRecords answers once every in-sync replica's log start has reached the offset (the
    low watermark, as Kafka): read right after the answer, with no wait, every replica starts
    at 40, so killing the leader then cannot bring the records back. A frozen follower holds the
    answer back only until it has not fetched for a session (replication.session_timeout_ms,
    6 s; Kafka likewise counts only live brokers); thawed, it follows."""
    voters = [1, 2, 3]
    topic = unique_topic("rep-delete-isr")
    ac = AdminClient({"bootstrap.servers": rcluster.bootstrap(1)})  # must outlive its futures
    ac.create_topics([NewTopic(topic, num_partitions=2, replication_factor=3)])[topic].result(30)
    wait_until(lambda: all(admin_view(rcluster, i, topic).get(p, {}).get("replica") for i in voters for p in (0, 1)),
               20, f"every node hosting {topic}")
    everyone = ",".join(rcluster.bootstrap(i) for i in voters)
    for p in (0, 1):
        produce(everyone, topic, partition=p)
    leaders = {p: admin_view(rcluster, 1, topic)[p]["leader"] for p in (0, 1)}
    wait_until(lambda: all(sorted(admin_view(rcluster, leaders[p], topic)[p]["isr"]) == voters for p in (0, 1)),
               30, f"{topic}'s ISRs full")

    def delete(p: int) -> int:
        a = admin(rcluster.bootstrap(leaders[p]))
        try:
            result = a.delete_records({TopicPartition(topic, p): DELETE_BEFORE}, partition_leader_id=leaders[p])
        finally:
            a.close()
        return result[TopicPartition(topic, p)]["low_watermark"]

    assert delete(0) == DELETE_BEFORE
    starts = {i: admin_view(rcluster, i, topic)[0]["replica"]["log_start_offset"] for i in voters}
    assert starts == {i: DELETE_BEFORE for i in voters}, f"log starts right after the answer: {starts}"

    frozen = max(i for i in voters if i != leaders[1])
    rcluster.pause(frozen)
    try:
        t0 = time.monotonic()
        assert delete(1) == DELETE_BEFORE
        waited = time.monotonic() - t0
        assert 3 < waited < 14, f"the answer took {waited:.1f} s, not about a session"
    finally:
        rcluster.resume(frozen)
    wait_until(lambda: admin_view(rcluster, frozen, topic)[1]["replica"]["log_start_offset"] == DELETE_BEFORE, 30,
               f"thawed node {frozen} following the deletion")
