"""What the log compaction tests and benchmark share: compacted topics, keyed produces that
remember each record's offset, the compacted view a reader should see, reading it back with
kafka-python, confluent-kafka and kcat, a replica's stored records (from the digest endpoint, so
a follower's copy can be checked without it leading), and the cleaner's metrics and log lines.

A "view" is the list of (offset, key, value) a reader from the earliest offset gets, in offset
order; `value` None is a tombstone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Iterable, Optional

import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

import kproto
import metrics_helpers
from client_helpers import ck_consume_all, kp_consume_all
from harness import wait_until

Record = tuple[int, Optional[bytes], Optional[bytes]]  # (offset, key, value)

CLEANER_INTERVAL_MS = 300
# Node settings every compaction test uses (CHRONIK_* env: the harness's TOML stays as it is).
CLEANER_ENV = {"CHRONIK_STORAGE__CLEANER_INTERVAL_MS": str(CLEANER_INTERVAL_MS)}
SEGMENT_BYTES = 1024  # the smallest segment.bytes the broker takes
# From the last produce to the cleaned view: a few cleaner rounds, generous for 2 shared cores.
CLEAN_TIMEOUT_S = 60
KCAT = shutil.which("kcat") or shutil.which("kafkacat")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

METRIC_BYTES_READ = "chronik_log_cleaner_bytes_read_total"
METRIC_BYTES_WRITTEN = "chronik_log_cleaner_bytes_written_total"
METRIC_RECORDS_REMOVED = "chronik_log_cleaner_records_removed_total"
METRIC_RUNS = "chronik_log_cleaner_runs_total"
METRIC_SECONDS = "chronik_log_cleaner_seconds_total"
CLEANER_METRICS = (METRIC_BYTES_READ, METRIC_BYTES_WRITTEN, METRIC_RECORDS_REMOVED, METRIC_RUNS, METRIC_SECONDS)


def compact_configs(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Tiny segments and a dirty ratio of 0.01: the cleaner takes any sealed segment at once."""
    cfg = {
        "cleanup.policy": "compact",
        "segment.bytes": str(SEGMENT_BYTES),
        "min.cleanable.dirty.ratio": "0.01",
        "min.compaction.lag.ms": "0",
    }
    cfg.update(extra or {})
    return cfg


def create_compacted(bootstrap: str, topic: str, partitions: int = 1, replication_factor: int = 1,
                     configs: Optional[dict[str, str]] = None) -> None:
    ac = AdminClient({"bootstrap.servers": bootstrap})  # must outlive its futures
    new = NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                   config=configs or compact_configs())
    ac.create_topics([new])[topic].result(30)
    wait_until(lambda: len(ac.list_topics(topic, timeout=5).topics[topic].partitions) == partitions, 30,
               f"{topic} in metadata")


def keyed_producer(bootstrap: str, **overrides) -> KafkaProducer:
    """kafka-python with small batches (several per segment), acks=all; idempotent unless told."""
    cfg = dict(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=400, retries=5,
               client_id="chronik-it-compaction")
    cfg.update(overrides)
    return KafkaProducer(**cfg)


def produce(bootstrap: str, topic: str, items: Iterable[tuple[bytes, Optional[bytes]]],
            **producer_cfg) -> list[Record]:
    """Sends (key, value) pairs to partition 0 with kafka-python; returns them with their offsets."""
    items = list(items)
    p = keyed_producer(bootstrap, **producer_cfg)
    try:
        futures = [p.send(topic, key=k, value=v, partition=0) for k, v in items]
        p.flush(60)
        offsets = [f.get(30).offset for f in futures]
    finally:
        p.close(10)
    return [(o, k, v) for o, (k, v) in zip(offsets, items)]


def versions(keys: int, count: int, tag: str = "v", pad: int = 20) -> list[tuple[bytes, bytes]]:
    """`count` versions of `keys` keys, version-major (every key's versions spread over the log)."""
    return [(b"key-%03d" % k, b"key-%03d:%s%03d:" % (k, tag.encode(), v) + b"x" * pad)
            for v in range(count) for k in range(keys)]


def fillers(tag: str, count: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    """Records with fresh unique keys: they push everything before them out of the active segment
    and are never compacted away."""
    return [(b"fill-%s-%04d" % (tag.encode(), i), b"filler-%04d:" % i + b"f" * 30)
            for i in range(start, start + count)]


def compacted(records: Iterable[Record]) -> list[Record]:
    """The view after cleaning: per key the record with the highest offset, in offset order."""
    latest: dict[bytes, Record] = {}
    for r in records:
        if r[1] in latest and latest[r[1]][0] > r[0]:
            continue
        latest[r[1]] = r
    return sorted(latest.values())


def without_tombstones(view: list[Record]) -> list[Record]:
    return [r for r in view if r[2] is not None]


# ---- reading back -------------------------------------------------------------------------------


def kp_view(bootstrap: str, topic: str, partition: int = 0) -> list[Record]:
    return kp_consume_all(bootstrap, topic, partition + 1, timeout=30)[partition]


def ck_view(bootstrap: str, topic: str, partition: int = 0) -> list[Record]:
    return ck_consume_all(bootstrap, topic, partition + 1, timeout=30)[partition]


def kcat_view(bootstrap: str, topic: str, partition: int = 0) -> list[Record]:
    """kcat (librdkafka) from the beginning to the high watermark: `-Z` prints a null as NULL."""
    assert KCAT, "kcat is not installed (integration/clients/install.sh)"
    p = subprocess.run([KCAT, "-C", "-b", bootstrap, "-t", topic, "-p", str(partition), "-o", "beginning",
                        "-e", "-q", "-Z", "-f", "%o %k %s\\n"],
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"kcat rc {p.returncode}: {p.stderr.decode(errors='replace')[-2000:]}"
    out = []
    for line in p.stdout.decode().splitlines():
        offset, key, value = line.split(" ", 2)
        out.append((int(offset), None if key == "NULL" else key.encode(),
                    None if value == "NULL" else value.encode()))
    return out


def view_summary(view: list[Record], want: list[Record]) -> str:
    """What differs between a view read and the one wanted, short enough for an assertion."""
    got, exp = set(view), set(want)
    extra = sorted(got - exp)
    missing = sorted(exp - got)
    return (f"{len(view)} records read, {len(want)} wanted; extra {extra[:4]}{'...' if len(extra) > 4 else ''}; "
            f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}")


def wait_view(bootstrap: str, topic: str, want: list[Record], what: str, timeout: float = CLEAN_TIMEOUT_S) -> None:
    """Until kafka-python reads exactly `want` from the earliest offset (the difference shown if not)."""
    last: list = []

    def done():
        last[:] = [kp_view(bootstrap, topic)]
        return last[0] == want

    try:
        wait_until(done, timeout, what, interval=0.2)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{view_summary(last[0] if last else [], want)}") from None


# ---- a replica's stored records (no Kafka fetch: works on followers) ------------------------------


def digest(admin_url: str, topic: str, partition: int = 0, **query) -> dict:
    r = requests.get(f"{admin_url}/admin/partitions/{topic}/{partition}/digest", params=query, timeout=30)
    assert r.status_code == 200, f"digest {query}: {r.status_code} {r.text[:300]}"
    return r.json()


def stored_records(admin_url: str, topic: str, partition: int = 0) -> list[tuple[int, str]]:
    """(offset, SHA-256 of timestamp, key, value, headers) of every record this node's replica
    stores, in offset order. Equal lists on two replicas mean the same records at the same offsets."""
    bounds = digest(admin_url, topic, partition)
    start, end = bounds["log_start_offset"], bounds["log_end_offset"]
    if end <= start:
        return []
    listed = digest(admin_url, topic, partition, **{"from": start, "to": end, "by": "batches", "limit": 4096})
    assert listed["digest"]["complete"], listed
    out: list[tuple[int, str]] = []
    for b in listed["digest"]["batches"]:
        recs = digest(admin_url, topic, partition, **{"from": b["base_offset"], "to": b["last_offset"] + 1,
                                                      "by": "records", "offset": b["base_offset"]})
        out.extend((r["offset"], r["sha256"]) for r in recs["digest"]["records"])
    return out


# ---- the cleaner's counters and log lines --------------------------------------------------------


def cleaner_counters(admin_url: str) -> dict[str, float]:
    """The five cleaner counters of one node; a missing one fails (they are part of the contract)."""
    samples = metrics_helpers.scrape(admin_url)
    out = {}
    for name in CLEANER_METRICS:
        found = metrics_helpers.matching(samples, name)
        assert found, f"{name} missing from /metrics"
        out[name] = sum(s.value for s in found)
    return out


FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')


def cleaned_lines(log_text: str, topic: str, partition: int = 0) -> list[dict[str, str]]:
    """The fields of each `log cleaned` INFO line of `topic`-`partition` in a node's log."""
    out = []
    for line in ANSI.sub("", log_text).splitlines():
        if "log cleaned" not in line:
            continue
        fields = {k: v.strip('"') for k, v in FIELD.findall(line)}
        if fields.get("tp") == f"{topic}-{partition}":
            out.append(fields)
    return out


def ck_idempotent(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 5, "client.id": "chronik-it-idempotent"})


# ---- raw fetches (the gaps a compacted log has) --------------------------------------------------


def fetched_batches(records: bytes) -> list[tuple[int, int, list[int]]]:
    """(base offset, last offset, the offsets of its records) of each whole v2 batch in a fetched
    records blob: the last offset comes from the header, so a batch whose tail records were
    removed still shows where it ends."""
    from kafka.record import MemoryRecords

    out = []
    mr = MemoryRecords(records)
    while (batch := mr.next_batch()) is not None:
        out.append((batch.base_offset, batch.last_offset, [r.offset for r in batch]))
    return out


def raw_fetch_batches(bootstrap: str, topic: str, offset: int, partition: int = 0) -> list[tuple[int, int, list[int]]]:
    _cid, body = kproto.call(bootstrap, kproto.fetch_v4(7, topic, partition, offset, max_wait_ms=0))
    [p] = kproto.parse_fetch_v4(body)
    assert p["error_code"] == 0, f"fetch {topic}-{partition} at {offset}: {p}"
    return fetched_batches(p["records"] or b"")


def list_offsets(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    """(EARLIEST, LATEST) from ListOffsets v1; raises while the partition is not served."""
    out = []
    for ts in (-2, -1):
        _cid, body = kproto.call(bootstrap, kproto.list_offsets_v1(1, topic, partition, ts))
        [p] = kproto.parse_list_offsets_v1(body)
        assert p["error_code"] == 0, p
        out.append(p["offset"])
    return out[0], out[1]
