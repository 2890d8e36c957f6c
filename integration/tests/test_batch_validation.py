"""Bad batches never reach the log.

Real client batches (kafka-python's own DefaultRecordBatchBuilder, every codec, keys, values,
headers, idempotent producer ids) are mutated with a fixed seed, their CRC-32C recomputed, and
sent in raw Produce v8 requests. Each mutation is either refused with a Kafka error (and then
nothing new is readable), or accepted, and then real consumers (kafka-python and
confluent-kafka) read back exactly the records kafka-python's reader finds in the bytes sent.
Named cases pin the exact error code for each fault Kafka refuses.

BATCH_FUZZ_SEED / BATCH_FUZZ_CASES override the seed and the number of mutations (not CHRONIK_*:
the broker reads those as its own config).
"""

from __future__ import annotations

import os
import random
import struct
import time
from collections import Counter
from typing import Callable, Optional

import pytest
from confluent_kafka import KafkaError, TopicPartition as CkTopicPartition, OFFSET_BEGINNING
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import decode_varint
from kafka.structs import TopicPartition

import kproto
from kproto import HEADER_LEN, edit_header, edit_records, fix, record_fields, set_varint, zigzag
from client_helpers import ck_consumer, create_topic, kp_consumer
from harness import Broker, unique_topic

SEED = int(os.environ.get("BATCH_FUZZ_SEED", "20250611"))
CASES = int(os.environ.get("BATCH_FUZZ_CASES", "500"))

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
CORRUPT_MESSAGE, INVALID_TIMESTAMP, OUT_OF_ORDER, INVALID_EPOCH = 2, 32, 45, 47
INVALID_PRODUCER_ID_MAPPING, TXN_ID_AUTH_FAILED, INVALID_RECORD = 49, 53, 87
# What a mutated batch may be refused with: the two codes this test is about, plus the rules a
# mutation can trip on the way (timestamp type bit, transactional bit, producer id/sequence).
REFUSALS = {CORRUPT_MESSAGE, INVALID_RECORD, INVALID_TIMESTAMP, TXN_ID_AUTH_FAILED, OUT_OF_ORDER, INVALID_EPOCH}

Expected = tuple[int, int, Optional[bytes], Optional[bytes], list]  # offset, timestamp, key, value, headers


@pytest.fixture(scope="module")
def vbroker(tmp_path_factory) -> Broker:
    b = Broker(tmp_path_factory.mktemp("validation-broker"), name="validation-broker", fsync="interval")
    b.start()
    yield b
    assert b.stop() == 0


# ---- building and editing batches --------------------------------------------


def build(rng: random.Random, codec: int, producer_id: int = -1, n: Optional[int] = None) -> bytes:
    """One batch from kafka-python's own builder; an idempotent one starts at sequence 0."""
    idempotent = producer_id >= 0
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                  producer_id=producer_id, producer_epoch=0 if idempotent else -1,
                                  base_sequence=0 if idempotent else -1, batch_size=1 << 24)
    now = int(time.time() * 1000)
    for i in range(n if n is not None else rng.randint(1, 8)):
        key = rng.choice([None, rng.randbytes(rng.randint(0, 16))])
        # Partly repetitive, so every codec actually compresses (kafka-python sends a batch
        # uncompressed when compressing would not make it smaller).
        value = rng.choice([None, rng.randbytes(rng.randint(0, 40)) + b"chronik " * rng.randint(8, 40)])
        headers = [(f"h{j}", rng.choice([None, rng.randbytes(rng.randint(0, 8))])) for j in range(rng.randint(0, 2))]
        b.append(i, timestamp=now + rng.randint(-1000, 1000), key=key, value=value, headers=headers)
    batch = bytes(b.build())
    assert batch[22] & 7 in (codec, NONE), batch[:61]
    return batch


# ---- mutations: (name, function(rng, batch) -> records to send) ------------------


Mutation = Callable[[random.Random, bytes], Optional[bytes]]


def _plain(edit: Callable[[random.Random, bytearray], bytearray]) -> Mutation:
    """A mutation of the plain records, compressed again afterwards."""
    return lambda rng, b: edit_records(b, lambda p: edit(rng, p))


def _field(field: str, value: Callable[[random.Random, int], int]) -> Mutation:
    """Rewrites one varint field of a random record (the record length is left as it was)."""
    def edit(rng: random.Random, p: bytearray) -> bytearray:
        f = rng.choice(record_fields(bytes(p)))
        old, _ = decode_varint(p, f[field])
        return set_varint(p, f[field], value(rng, old))
    return _plain(edit)


def _header(fmt: str, at: int, value: Callable[[random.Random, int], int]) -> Mutation:
    """Rewrites a header field (CRC recomputed)."""
    return lambda rng, b: edit_header(b, fmt, at, value(rng, struct.unpack_from(fmt, b, at)[0]))


def _flip(rng: random.Random, data: bytearray, lo: int = 0) -> bytearray:
    at = rng.randrange(lo, len(data))
    data[at] ^= 1 << rng.randrange(8)
    return data


def _garble_length(rng: random.Random, p: bytearray) -> bytearray:
    f = rng.choice(record_fields(bytes(p)))
    return p[:f["start"]] + b"\xff" * rng.randint(1, 6) + p[f["attributes"]:]


def _insert_byte(rng: random.Random, p: bytearray) -> bytearray:
    i = rng.randrange(len(p) + 1)
    return p[:i] + rng.randbytes(1) + p[i:]


def _delete_byte(rng: random.Random, p: bytearray) -> bytearray:
    i = rng.randrange(len(p))
    return p[:i] + p[i + 1:]


def _record_attributes(rng: random.Random, p: bytearray) -> bytearray:
    at = rng.choice(record_fields(bytes(p)))["attributes"]
    return p[:at] + bytes([rng.randrange(1, 256)]) + p[at + 1:]


def _cut_payload(rng: random.Random, b: bytes) -> bytes:
    return fix(bytearray(b[:len(b) - rng.randint(1, min(8, len(b) - HEADER_LEN))]))


def _count_and_delta(rng: random.Random, batch: bytes) -> bytes:
    count = struct.unpack_from(">i", batch, 57)[0] + rng.choice([-1, 1, 2])
    b = bytearray(batch)
    struct.pack_into(">i", b, 23, count - 1)
    struct.pack_into(">i", b, 57, count)
    return fix(b, length=False)


def _producer_fields(rng: random.Random, batch: bytes) -> bytes:
    field = rng.choice([(">q", 43, [-1, 5, 1 << 40]), (">h", 51, [-1, 0, 3]), (">i", 53, [-1, 0, 1, 7])])
    return _header(field[0], field[1], lambda rng, _old: rng.choice(field[2]))(rng, batch)


MUTATIONS: list[tuple[str, Mutation]] = [
    ("bit-flip-in-records", _plain(_flip)),
    ("bit-flip-in-sent-payload", lambda rng, b: fix(_flip(rng, bytearray(b), HEADER_LEN), length=False)),
    ("sent-payload-cut", _cut_payload),
    ("sent-payload-padded", lambda rng, b: fix(bytearray(b + rng.randbytes(rng.randint(1, 8))))),
    ("bit-flip-in-header", lambda rng, b: fix(_flip(rng, bytearray(b[:HEADER_LEN]), 21) + b[HEADER_LEN:], False)),
    ("records-cut-short", _plain(lambda rng, p: p[:rng.randrange(len(p))])),
    ("batch-cut-short", lambda rng, b: b[:rng.randrange(len(b))]),
    ("garbled-length-varint", _plain(_garble_length)),
    ("changed-record-length", _field("start", lambda rng, v: v + rng.choice([-3, -2, -1, 1, 2, 3]))),
    ("trailing-bytes", _plain(lambda rng, p: p + rng.randbytes(rng.randint(1, 4)))),
    ("inserted-byte", _plain(_insert_byte)),
    ("deleted-byte", _plain(_delete_byte)),
    ("batch-attribute-bit", _header(">H", 21, lambda rng, v: v ^ (1 << rng.randrange(3, 16)))),
    ("record-attributes", _plain(_record_attributes)),
    ("record-count", _header(">i", 57, lambda rng, v: v + rng.choice([-1, 1, 1000]))),
    ("count-and-last-offset-delta", _count_and_delta),
    ("offset-delta", _field("offset_delta", lambda rng, v: v + rng.choice([-1, 1, 100]))),
    ("key-length", _field("key_length", lambda rng, v: rng.choice([-7, -2, v + 1, v + 50, 1 << 30]))),
    ("value-length", _field("value_length", lambda rng, v: rng.choice([-3, v - 1, v + 1, 1 << 20]))),
    ("header-count", _field("header_count", lambda rng, v: rng.choice([-1, v + 1, 500]))),
    ("timestamp-delta", _field("timestamp_delta", lambda rng, v: rng.choice([v - 1, v + 10**6, -(1 << 62)]))),
    ("base-timestamp", _header(">q", 27, lambda rng, _v: rng.choice([-1, -5000, 0, (1 << 63) - 1, 1 << 50]))),
    ("base-offset", lambda rng, b: struct.pack(">q", rng.choice([1, 7, -1, 1 << 40])) + b[8:]),
    ("producer-fields", _producer_fields),
    ("empty-records", lambda rng, b: rng.choice([b"", None])),
    ("two-batches", lambda rng, b: b + b),
]


# ---- the client's view of a batch ----------------------------------------------


def kafka_python_reads(records: Optional[bytes]) -> Optional[list[tuple]]:
    """(offset delta, timestamp, key, value, headers) per record as kafka-python's reader sees
    the bytes sent, or None if it cannot read them as one batch."""
    try:
        batch = DefaultRecordBatch(records)
        if batch.size_in_bytes != len(records) or not batch.validate_crc():
            return None
        return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    except Exception:  # noqa: BLE001 - any failure means "not readable"
        return None


# ---- talking to the broker -----------------------------------------------------


class Conn:
    """One raw connection for produce and ListOffsets (hundreds of requests, one socket)."""

    def __init__(self, bootstrap: str):
        self.sock = kproto.connect(bootstrap)
        self.cid = 0

    def call(self, request: Callable[[int], bytes]) -> bytes:
        self.cid += 1
        self.sock.sendall(request(self.cid))
        cid, body = kproto.read_response(self.sock)
        assert cid == self.cid
        return body

    def produce(self, topic: str, records: Optional[bytes], transactional_id: Optional[str] = None) -> dict:
        body = self.call(lambda c: kproto.produce_v8(c, topic, 0, records, transactional_id=transactional_id))
        [res] = kproto.parse_produce_v8(body)
        return res

    def end_offset(self, topic: str) -> int:
        [res] = kproto.parse_list_offsets_v1(self.call(lambda c: kproto.list_offsets_v1(c, topic, 0, -1)))
        assert res["error_code"] == 0, res
        return res["offset"]

    def close(self):
        self.sock.close()


def kp_read_all(bootstrap: str, topic: str, end: int) -> list[Expected]:
    c = kp_consumer(bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning()
        out: list[Expected] = []
        deadline = time.monotonic() + 60
        while c.position(tp) < end:
            assert time.monotonic() < deadline, f"kafka-python read {len(out)} records of {end}"
            for recs in c.poll(timeout_ms=500).values():
                out.extend((r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in recs)
        return out
    finally:
        c.close()


def ck_read_all(bootstrap: str, topic: str, end: int) -> list[Expected]:
    c = ck_consumer(bootstrap)
    try:
        c.assign([CkTopicPartition(topic, 0, OFFSET_BEGINNING)])
        out: list[Expected] = []
        deadline = time.monotonic() + 60
        while not out or out[-1][0] < end - 1:
            assert time.monotonic() < deadline, f"confluent-kafka read {len(out)} records of {end}"
            for m in c.consume(num_messages=1000, timeout=0.5):
                err = m.error()
                if err is not None and err.code() == KafkaError._PARTITION_EOF:
                    continue
                assert err is None, f"consumer error: {err}"
                out.append((m.offset(), m.timestamp()[1], m.key(), m.value(), list(m.headers() or [])))
        return out
    finally:
        c.close()


# ---- the seeded mutation run -------------------------------------------------------


def test_mutated_client_batches_are_refused_or_read_back_exactly(vbroker):
    print(f"batch validation seed {SEED} ({CASES} mutations; BATCH_FUZZ_SEED / BATCH_FUZZ_CASES override)")
    rng = random.Random(SEED)
    topic = unique_topic("batch-fuzz")
    create_topic(vbroker.bootstrap, topic, 1)
    conn = Conn(vbroker.bootstrap)
    expected: list[Expected] = []
    outcomes: Counter = Counter()
    started = time.monotonic()
    try:
        for case in range(CASES):
            codec = rng.choice([NONE, NONE, GZIP, SNAPPY, LZ4, ZSTD])
            producer_id = rng.choice([-1, 1_000_000 + case])
            name, mutate = rng.choice(MUTATIONS)
            records = mutate(rng, build(rng, codec, producer_id))
            what = f"case {case} ({name}, codec {codec}, producer {producer_id})"
            end = len(expected)
            res = conn.produce(topic, records)
            code = res["error_code"]
            if code == 0 and res["base_offset"] == end:
                view = kafka_python_reads(records)
                assert view is not None, f"{what}: accepted, but kafka-python cannot read what was sent"
                expected.extend((end + d, ts, k, v, h) for d, ts, k, v, h in view)
                outcomes[(name, "accepted")] += 1
            else:
                # Refused, or acknowledged as a duplicate of an earlier batch: nothing new either way.
                assert code in REFUSALS or (code == 0 and res["base_offset"] < end), f"{what}: {res}"
                outcomes[(name, code)] += 1
            assert conn.end_offset(topic) == len(expected), f"{what}: {res}, log end moved wrongly"
    finally:
        conn.close()
    print(f"{CASES} mutations in {time.monotonic() - started:.1f}s; outcomes: {dict(sorted(outcomes.items(), key=str))}")
    accepted = sum(n for (_, o), n in outcomes.items() if o == "accepted")
    assert CASES // 10 < accepted < CASES, f"both outcomes must occur: {accepted} accepted of {CASES}"

    got = kp_read_all(vbroker.bootstrap, topic, len(expected))
    assert got == expected, "kafka-python consumer read something other than what was acknowledged"
    got = ck_read_all(vbroker.bootstrap, topic, len(expected))
    strip = [(o, k, v, h) for o, _ts, k, v, h in expected]
    assert [(o, k, v, h) for o, _ts, k, v, h in got] == strip, "confluent-kafka read something else"


# ---- named faults, exact answers ------------------------------------------------------


def _valid(codec: int = NONE, producer_id: int = -1, n: int = 3) -> bytes:
    for seed in range(100):  # a seed whose values compress, so the codec is really used
        batch = build(random.Random(seed), codec, producer_id, n)
        if batch[22] & 7 == codec:
            return batch
    raise AssertionError(f"kafka-python would not compress with codec {codec}")


def _named_field(field: str, value: Callable[[int], int], record: int = 1, codec: int = NONE) -> bytes:
    """A valid batch with one varint field of record `record` rewritten."""
    b = _valid(codec)

    def edit(p: bytearray) -> bytearray:
        f = record_fields(bytes(p))[record]
        old, _ = decode_varint(p, f[field])
        return set_varint(p, f[field], value(old))
    return edit_records(b, edit)


def _leftover_in_record(record: int) -> bytes:
    """Record `record` declares one byte more than its fields, and that byte is there."""
    def edit(p: bytearray) -> bytearray:
        f = record_fields(bytes(p))[record]
        length = f["end"] - f["attributes"]
        return p[:f["start"]] + zigzag(length + 1) + p[f["attributes"]:f["end"]] + b"\0" + p[f["end"]:]
    return edit_records(_valid(), edit)


def _record_attributes(record: int, value: int) -> bytes:
    def edit(p: bytearray) -> bytearray:
        at = record_fields(bytes(p))[record]["attributes"]
        return p[:at] + bytes([value]) + p[at + 1:]
    return edit_records(_valid(), edit)


def _attr(bits: int, codec: int = NONE) -> bytes:
    b = _valid(codec)
    return edit_header(b, ">h", 21, struct.unpack_from(">h", b, 21)[0] | bits)


def _transactional(producer_id: int = 77) -> bytes:
    return _attr(0x10) if producer_id < 0 else edit_header(_valid(NONE, producer_id), ">h", 21, 0x10)


NAMED: dict[str, tuple[Callable[[], Optional[bytes]], int, Optional[int]]] = {
    # name: (records, expected error code, index of the record to blame in record_errors)
    "records-cut-short": (lambda: edit_records(_valid(), lambda p: p[:-5]), INVALID_RECORD, 2),
    "compressed-records-cut-short": (lambda: edit_records(_valid(LZ4), lambda p: p[:-5]), INVALID_RECORD, 2),
    "garbled-record-length-varint": (lambda: edit_records(_valid(), lambda p: b"\xff" * 5 + p[1:]), INVALID_RECORD, 0),
    "trailing-bytes-after-last-record": (lambda: edit_records(_valid(), lambda p: p + b"\0\0"), INVALID_RECORD, None),
    "bytes-left-inside-a-record": (lambda: _leftover_in_record(1), INVALID_RECORD, 1),
    "empty-records": (lambda: b"", INVALID_RECORD, None),
    "null-records": (lambda: None, INVALID_RECORD, None),
    "two-batches": (lambda: _valid() + _valid(), INVALID_RECORD, None),
    "control-bit": (lambda: _attr(0x20), INVALID_RECORD, None),
    "transactional-bit-without-transactional-id": (lambda: _transactional(), TXN_ID_AUTH_FAILED, None),
    "transactional-bit-without-producer-id": (lambda: _transactional(-1), TXN_ID_AUTH_FAILED, None),
    "log-append-time-bit": (lambda: _attr(0x08), INVALID_TIMESTAMP, 0),
    "base-offset-not-zero": (lambda: b"\0" * 7 + b"\x05" + _valid()[8:], INVALID_RECORD, None),
    "record-count-too-high": (lambda: edit_header(_valid(), ">i", 57, 4), INVALID_RECORD, None),
    "count-and-last-offset-delta-too-high": (lambda: _count_and_delta(random.Random(1), _valid()), INVALID_RECORD, None),
    "offset-delta-not-the-index": (lambda: _named_field("offset_delta", lambda v: v + 1), INVALID_RECORD, 1),
    "record-attributes": (lambda: _record_attributes(0, 0x01), INVALID_RECORD, 0),
    "key-length-below-minus-one": (lambda: _named_field("key_length", lambda v: -2), INVALID_RECORD, 1),
    "value-length-past-the-record": (lambda: _named_field("value_length", lambda v: v + 40), INVALID_RECORD, 1),
    "header-count-too-high": (lambda: _named_field("header_count", lambda v: 1000), INVALID_RECORD, 1),
    "timestamp-overflow": (lambda: _named_field("timestamp_delta", lambda v: (1 << 63) - 1), INVALID_TIMESTAMP, 1),
    "sequence-missing-for-producer-id": (lambda: edit_header(_valid(NONE, 88), ">i", 53, -1), INVALID_RECORD, None),
    "bad-crc": (lambda: (lambda b: b[:-1] + bytes([b[-1] ^ 1]))(_valid()), CORRUPT_MESSAGE, None),
    "compressed-payload-cut-short": (lambda: fix(bytearray(_valid(LZ4)[:-1])), CORRUPT_MESSAGE, None),
    "compressed-payload-padded": (lambda: fix(bytearray(_valid(ZSTD) + b"\0\0")), CORRUPT_MESSAGE, None),
    "garbage-compressed-payload": (lambda: fix(bytearray(_valid(GZIP)[:HEADER_LEN] + b"\x1f\x8b" + b"B" * 40)),
                                   CORRUPT_MESSAGE, None),
    "unknown-magic": (lambda: _valid()[:16] + b"\x07" + _valid()[17:], CORRUPT_MESSAGE, None),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_named_fault_gets_kafkas_answer(vbroker, name):
    make, code, blamed = NAMED[name]
    topic = unique_topic(f"fault-{name}")
    create_topic(vbroker.bootstrap, topic, 1)
    conn = Conn(vbroker.bootstrap)
    try:
        assert conn.produce(topic, _valid())["error_code"] == 0, "a valid batch first"
        res = conn.produce(topic, make())
        assert res["error_code"] == code, res
        assert res["base_offset"] == -1 and res["error_message"], res
        indexes = [i for i, _msg in res["record_errors"]]
        assert indexes[:1] == ([] if blamed is None else [blamed]), res
        assert conn.end_offset(topic) == 3, "nothing of the refused batch is readable"
        assert conn.produce(topic, _valid())["base_offset"] == 3, "the partition still takes good batches"
    finally:
        conn.close()


def test_transactional_batch_with_a_transactional_id_has_no_ongoing_transaction(vbroker, topic):
    create_topic(vbroker.bootstrap, topic, 1)
    conn = Conn(vbroker.bootstrap)
    try:
        res = conn.produce(topic, _transactional(), transactional_id="txn-1")
        assert res["error_code"] == INVALID_PRODUCER_ID_MAPPING, res
        assert conn.end_offset(topic) == 0
    finally:
        conn.close()


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD])
def test_valid_client_batches_still_pass(vbroker, topic, codec):
    """Every codec, idempotent or not, and kafkajs's "producer id -1 with sequence 0"."""
    create_topic(vbroker.bootstrap, topic, 1)
    conn = Conn(vbroker.bootstrap)
    try:
        batches = [_valid(codec), _valid(codec, producer_id=4242 + codec), _kafkajs_style(codec)]
        for i, b in enumerate(batches):
            res = conn.produce(topic, b)
            assert res["error_code"] == 0 and res["base_offset"] == 3 * i, res
        expected = [(3 * i + d, ts, k, v, h) for i, b in enumerate(batches) for d, ts, k, v, h in kafka_python_reads(b)]
    finally:
        conn.close()
    assert kp_read_all(vbroker.bootstrap, topic, 9) == expected


def _kafkajs_style(codec: int) -> bytes:
    b = bytearray(_valid(codec))
    struct.pack_into(">hi", b, 51, 0, 0)  # producer id stays -1; epoch 0, sequence 0
    return fix(b, length=False)
