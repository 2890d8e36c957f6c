"""Log compaction (issue 15 item 4) with real clients: `cleanup.policy=compact` topics whose
segments roll at 1 KiB, min.cleanable.dirty.ratio 0.01 and a cleaner every 300 ms
(`[storage] cleaner_interval_ms`), so anything in a sealed segment is cleaned within a second.

- One broker: 50 keys x 20 versions then 30 records with fresh keys (so every versioned record is
  in a sealed segment). kafka-python, confluent-kafka and kcat all read exactly the latest record
  of each key at the offset it was written at; a fetch at a removed offset gets the next survivor
  (never only batches below it); the partition shrank (/admin/partitions, DescribeLogDirs); the
  cleaner's log lines, counters and actor are there.
- Tombstones stay readable (key, null) after cleaning and are gone, key and all, once
  `delete.retention.ms` (4 s) has passed since their timestamp, not before.
- A cleaned log is the same, at the same offsets, after SIGTERM and after kill -9; ListOffsets
  answers the same; new records get the next offsets.
- An idempotent producer (confluent-kafka) whose every record was compacted away, across a
  kill -9 of the broker: DescribeProducers still knows its last sequence and it keeps producing
  with no error and no duplicate (the high watermark counts exactly the records sent).
- A record with a null key is refused with INVALID_RECORD (kafka-python and confluent-kafka) and
  nothing is appended.
- `__consumer_offsets` is `cleanup.policy=compact`; 2000 commits of one group shrink it once
  cleaned (segments of 4 KiB, `[groups] offsets_segment_bytes`), and the committed offset reads
  back as the last one after SIGTERM and after kill -9.

Three nodes, RF 3: test_compaction_cluster.py.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource as CkResource
from kafka import KafkaProducer, errors as kerrors

import kproto
from client_helpers import admin, create_topic, describe_producers
from compaction_helpers import (
    CLEAN_TIMEOUT_S, CLEANER_ENV, KCAT, METRIC_BYTES_READ, METRIC_BYTES_WRITTEN, METRIC_RECORDS_REMOVED,
    METRIC_RUNS, Record, ck_idempotent, ck_view, cleaned_lines, cleaner_counters, compact_configs, compacted,
    create_compacted, fillers, kcat_view, kp_view, list_offsets, produce, raw_fetch_batches, stored_records,
    versions, wait_view, without_tombstones,
)
from group_helpers import find_coordinator, group_offsets, offset_commit_v2, parse_offset_commit_v2
from harness import Broker, flatten_actors, unique_topic, wait_until

KEYS, VERSIONS, FILLERS = 50, 20, 30
TOMBSTONE_RETENTION_MS = 4000
OFFSETS_SEGMENT_BYTES = 4096
COMMITS = 2000

needs_kcat = pytest.mark.skipif(KCAT is None, reason="kcat not installed (integration/clients/install.sh)")


@pytest.fixture(scope="module")
def kbroker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("compaction"), name="compaction-broker", fsync="interval",
               auto_create_topics=False, extra_env=CLEANER_ENV)
    b.start()
    yield b
    assert b.stop() == 0


def restarted(b):
    """Stops `b` cleanly, then kills it with SIGKILL, starting it again after each; yields how."""
    for how in ("SIGTERM", "kill -9"):
        if how == "SIGTERM":
            assert b.stop() == 0
        else:
            b.kill()
        b.start()
        yield how


def payload_bytes(records: list[Record]) -> int:
    return sum(len(k or b"") + len(v or b"") for _, k, v in records)


def log_dirs_size(bootstrap: str, topic: str) -> int:
    a = admin(bootstrap)
    try:
        [broker] = a.describe_log_dirs()
    finally:
        a.close()
    [log_dir] = broker["log_dirs"]
    [p] = [p for t in log_dir["topics"] if t["name"] == topic for p in t["partitions"]]
    return p["partition_size"]


# ---- one broker ----------------------------------------------------------------------------------


@needs_kcat
def test_latest_value_per_key_at_its_offset_for_three_clients(kbroker):
    topic = unique_topic("compact-latest")
    create_compacted(kbroker.bootstrap, topic)
    counters0 = cleaner_counters(kbroker.admin_url)
    mark = kbroker.log_size()
    written = produce(kbroker.bootstrap, topic, versions(KEYS, VERSIONS))
    written += produce(kbroker.bootstrap, topic, fillers("a", FILLERS))
    assert [o for o, _, _ in written] == list(range(KEYS * VERSIONS + FILLERS))
    want = compacted(written)
    assert len(want) == KEYS + FILLERS
    assert [r[0] for r in want[:KEYS]] == list(range(KEYS * (VERSIONS - 1), KEYS * VERSIONS))

    wait_view(kbroker.bootstrap, topic, want, f"{topic} compacted to the latest record per key")
    assert ck_view(kbroker.bootstrap, topic) == want, "confluent-kafka"
    assert kcat_view(kbroker.bootstrap, topic) == want, "kcat"

    # A fetch at a removed offset answers from the first batch that ends at or after it, and
    # never with batches wholly below it: kafka-python 3.0.12 moves its position to the last
    # batch's last offset + 1 (consumer/fetcher.py, PartitionRecords._unpack_records), so an
    # empty answer would make it re-fetch the same offset forever and batches below it would
    # move it backwards.
    survivors = [o for o, _, _ in want]
    for x in (0, 7, KEYS * (VERSIONS - 1) - 1):
        batches = raw_fetch_batches(kbroker.bootstrap, topic, x)
        assert batches and all(last >= x for _, last, _ in batches), (x, batches[:3])
        first = next(o for _, _, offsets in batches for o in offsets if o >= x)
        assert first == next(o for o in survivors if o >= x), (x, batches[:3])

    # The log shrank to a fraction of what was written (each record's key and value alone).
    bound = payload_bytes(written) // 3
    size = kbroker.partition(topic, 0)["replica"]["size_bytes"]
    assert 0 < size < bound, (size, bound)
    assert log_dirs_size(kbroker.bootstrap, topic) == size

    # A cleaning thrown away (the log changed meanwhile) is logged with applied=false.
    removed = KEYS * (VERSIONS - 1)
    wait_until(lambda: sum(int(f["records_removed"]) for f in cleaned_lines(kbroker.log_text(mark), topic)
                           if f.get("applied") != "false") == removed,
               10, f"`log cleaned` lines of {topic} adding up to {removed} records removed")
    for f in cleaned_lines(kbroker.log_text(mark), topic):
        assert int(f["bytes_read"]) > 0 and int(f["bytes_written"]) >= 0, f
    counters = cleaner_counters(kbroker.admin_url)
    assert counters[METRIC_RECORDS_REMOVED] - counters0[METRIC_RECORDS_REMOVED] >= removed, counters
    assert counters[METRIC_BYTES_READ] > counters0[METRIC_BYTES_READ], counters
    assert counters[METRIC_BYTES_WRITTEN] > counters0[METRIC_BYTES_WRITTEN], counters
    assert counters[METRIC_RUNS] > counters0[METRIC_RUNS], counters
    roles = [n.get("role") for n in flatten_actors(kbroker.actors())]
    assert "LogCleaner" in roles, sorted({r for r in roles if r})


@needs_kcat
def test_tombstones_are_kept_then_removed_after_delete_retention(kbroker):
    topic = unique_topic("compact-tombstones")
    create_compacted(kbroker.bootstrap, topic,
                     configs=compact_configs({"delete.retention.ms": str(TOMBSTONE_RETENTION_MS)}))
    written = produce(kbroker.bootstrap, topic, versions(20, 3))
    sent_at = time.time()  # the tombstones' timestamps are at or after this
    written += produce(kbroker.bootstrap, topic, [(b"key-%03d" % k, None) for k in range(10)])
    written += produce(kbroker.bootstrap, topic, fillers("b", FILLERS))
    with_tombstones = compacted(written)
    assert sum(1 for r in with_tombstones if r[2] is None) == 10

    # Phase 1: cleaned, older versions of the deleted keys gone, their tombstones still there
    # (seen before their retention can have passed).
    wait_view(kbroker.bootstrap, topic, with_tombstones, f"{topic} cleaned, tombstones kept",
              timeout=max(0.5, sent_at + TOMBSTONE_RETENTION_MS / 1000 - time.time()))

    # Phase 2: once the retention has passed, the next cleaning drops the tombstones. More
    # fillers on every check keep sealing segments, so the log always has something to clean.
    extra: list[Record] = []
    gone_at: list[float] = []

    def tombstones_gone():
        extra.extend(produce(kbroker.bootstrap, topic, fillers("b", 15, FILLERS + len(extra))))
        view = kp_view(kbroker.bootstrap, topic)
        if any(k is not None and k.startswith(b"key-") and int(k[4:]) < 10 for _, k, _ in view):
            return False
        gone_at.append(time.time())
        return view == without_tombstones(compacted(written + extra))

    wait_until(tombstones_gone, 30, f"the tombstones of {topic} removed after delete.retention.ms")
    assert gone_at[0] - sent_at >= TOMBSTONE_RETENTION_MS / 1000, \
        f"tombstones removed {gone_at[0] - sent_at:.2f} s after they were written"
    want = without_tombstones(compacted(written + extra))
    assert ck_view(kbroker.bootstrap, topic) == want, "confluent-kafka"
    assert kcat_view(kbroker.bootstrap, topic) == want, "kcat"


def test_null_key_is_refused_and_nothing_appended(kbroker):
    topic = unique_topic("compact-null-key")
    create_compacted(kbroker.bootstrap, topic)
    first = produce(kbroker.bootstrap, topic, [(b"k", b"v0")], enable_idempotence=False)

    kp = KafkaProducer(bootstrap_servers=kbroker.bootstrap, enable_idempotence=False, acks="all", retries=0)
    try:
        with pytest.raises(kerrors.InvalidRecordError):
            kp.send(topic, key=None, value=b"no key", partition=0).get(30)
    finally:
        kp.close(10)
    reports = []
    ck = Producer({"bootstrap.servers": kbroker.bootstrap, "acks": "all", "retries": 0})
    ck.produce(topic, value=b"no key either", partition=0, on_delivery=lambda err, _msg: reports.append(err))
    assert ck.flush(30) == 0
    assert len(reports) == 1 and reports[0] is not None and reports[0].code() == KafkaError.INVALID_RECORD, reports

    second = produce(kbroker.bootstrap, topic, [(b"k", b"v1")], enable_idempotence=False)
    assert [first[0][0], second[0][0]] == [0, 1], "a refused record took an offset"
    assert kp_view(kbroker.bootstrap, topic) == first + second
    assert list_offsets(kbroker.bootstrap, topic) == (0, 2)


def test_cleaned_log_survives_stop_and_kill(make_broker):
    b = make_broker("compact-restart", auto_create_topics=False, extra_env=CLEANER_ENV)
    topic = unique_topic("compact-restart")
    create_compacted(b.bootstrap, topic)
    written = produce(b.bootstrap, topic, versions(20, 10)) + produce(b.bootstrap, topic, fillers("c", FILLERS))
    want = compacted(written)
    wait_view(b.bootstrap, topic, want, f"{topic} compacted")
    bounds = list_offsets(b.bootstrap, topic)
    assert bounds[1] == len(written), bounds
    stored = stored_records(b.admin_url, topic)
    assert [o for o, _ in stored] == [o for o, _, _ in want]

    for how in restarted(b):
        assert wait_until(lambda: list_offsets(b.bootstrap, topic), 30, f"{topic} served after {how}") == bounds, how
        assert kp_view(b.bootstrap, topic) == want, how
        assert stored_records(b.admin_url, topic) == stored, how

    more = produce(b.bootstrap, topic, fillers("c-after", 5))
    assert [o for o, _, _ in more] == list(range(bounds[1], bounds[1] + 5))
    assert kp_view(b.bootstrap, topic) == want + more


def test_idempotent_producer_keeps_producing_after_its_batches_were_cleaned_and_a_kill(make_broker):
    b = make_broker("compact-idempotent", auto_create_topics=False, extra_env=CLEANER_ENV)
    topic = unique_topic("compact-idempotent")
    create_compacted(b.bootstrap, topic)
    p = ck_idempotent(b.bootstrap)
    acked: list[Record] = []
    errors: list = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.offset(), msg.key(), msg.value()))

    def send(items: list[tuple[bytes, bytes]], per_flush: int = 10) -> None:
        for i, (k, v) in enumerate(items):
            p.produce(topic, key=k, value=v, partition=0, on_delivery=on_delivery)
            if i % per_flush == per_flush - 1:
                assert p.flush(30) == 0
        assert p.flush(30) == 0
        assert not errors, errors

    # 100 records in 10 flushed batches over 10 keys, then every key overwritten by another
    # (non-idempotent) producer and sealed behind fillers: none of the first producer's records
    # survives cleaning; only its last batch's producer state must.
    send([(b"key-%03d" % (n % 10), b"p-%04d" % n) for n in range(100)])
    assert sorted(o for o, _, _ in acked) == list(range(100))
    others = produce(b.bootstrap, topic, [(b"key-%03d" % k, b"q-%03d" % k) for k in range(10)] + fillers("e", 40),
                     enable_idempotence=False)
    want = compacted(acked + others)
    assert not any(v.startswith(b"p-") for _, _, v in want)
    wait_view(b.bootstrap, topic, want, f"{topic}: every record of the idempotent producer compacted away")
    [(pid, (epoch, last_seq))] = describe_producers(b.bootstrap, topic).items()
    assert last_seq == 99, (pid, epoch, last_seq)

    b.kill()
    b.start()
    wait_until(lambda: list_offsets(b.bootstrap, topic), 30, f"{topic} served after kill -9")
    assert describe_producers(b.bootstrap, topic) == {pid: (epoch, 99)}, "producer state lost with its cleaned batches"

    high = 100 + len(others)
    before = len(acked)
    send([(b"after-%04d" % n, b"p-%04d" % n) for n in range(100, 120)])
    new = sorted(acked[before:])
    assert [o for o, _, _ in new] == list(range(high, high + 20)), new[:3]
    assert describe_producers(b.bootstrap, topic) == {pid: (epoch, 119)}
    assert list_offsets(b.bootstrap, topic)[1] == high + 20, "a duplicate was appended"
    assert kp_view(b.bootstrap, topic) == want + new


def test_consumer_offsets_is_compacted_and_commits_survive_restarts(make_broker):
    env = dict(CLEANER_ENV, CHRONIK_GROUPS__OFFSETS_PARTITIONS="1",
               CHRONIK_GROUPS__OFFSETS_SEGMENT_BYTES=str(OFFSETS_SEGMENT_BYTES))
    b = make_broker("compact-offsets", fsync="interval", auto_create_topics=False, extra_env=env)
    topic = unique_topic("offsets-src")
    create_topic(b.bootstrap, topic, 1)
    group = unique_topic("offsets-group-" + "g" * 60)  # long: 2000 commits hold 2000 copies of it
    find_coordinator(b.bootstrap, group)

    res = CkResource("topic", "__consumer_offsets")
    ac = AdminClient({"bootstrap.servers": b.bootstrap})  # must outlive its futures
    entries = ac.describe_configs([res])[res].result(15)
    assert entries["cleanup.policy"].value == "compact", entries["cleanup.policy"]

    counters0 = cleaner_counters(b.admin_url)
    with kproto.connect(b.bootstrap, timeout=15) as s:
        for i in range(1, COMMITS + 1):
            s.sendall(offset_commit_v2(i, group, [(topic, 0, i)]))
            cid, body = kproto.read_response(s)
            assert (cid, parse_offset_commit_v2(body)) == (i, {(topic, 0): 0}), (i, body)

    # Every commit is one record of at least the group and topic names: far more than the bound.
    bound = 4 * OFFSETS_SEGMENT_BYTES
    assert COMMITS * (len(group) + len(topic)) > 10 * bound

    def offsets_size():
        return b.partition("__consumer_offsets", 0)["replica"]["size_bytes"]

    wait_until(lambda: offsets_size() < bound, CLEAN_TIMEOUT_S, f"__consumer_offsets-0 cleaned below {bound} bytes")
    # What is left fits in `bound`, so at most bound / (smallest record) commits are left.
    removed = cleaner_counters(b.admin_url)[METRIC_RECORDS_REMOVED] - counters0[METRIC_RECORDS_REMOVED]
    assert removed >= COMMITS - bound // (len(group) + len(topic)), removed
    assert group_offsets(b.bootstrap, group) == {0: COMMITS}

    for how in restarted(b):
        find_coordinator(b.bootstrap, group)
        assert group_offsets(b.bootstrap, group) == {0: COMMITS}, how
        assert offsets_size() < bound, how
