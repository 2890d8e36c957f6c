"""Hand-built Kafka frames for raw-socket tests (no client library in the way).

Only the few non-flexible versions the tests need:
ApiVersions v0, Metadata v0/v1/v4, Produce v3/v8, Fetch v4, ListOffsets v1, CreateTopics v2.
Also record batch surgery: edits to a v2 batch that keep its length and CRC-32C consistent.
Request header v1: api_key i16, api_version i16, correlation_id i32, client_id nullable string.
Response header v0: correlation_id i32.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Callable, Optional

API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_FIND_COORDINATOR = 10
API_JOIN_GROUP = 11
API_SYNC_GROUP = 14
API_API_VERSIONS = 18
API_CREATE_TOPICS = 19
API_DELETE_RECORDS = 21

# ---- encoding ---------------------------------------------------------------


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: Optional[str]) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def array(items: Optional[list[bytes]]) -> bytes:
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def frame(api_key: int, api_version: int, correlation_id: int, body: bytes = b"",
          client_id: Optional[str] = "chronik-it") -> bytes:
    payload = i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id) + body
    return i32(len(payload)) + payload


def api_versions_v0(correlation_id: int) -> bytes:
    return frame(API_API_VERSIONS, 0, correlation_id)


def metadata_v0(correlation_id: int, topics: list[str]) -> bytes:
    return frame(API_METADATA, 0, correlation_id, array([string(t) for t in topics]))


def metadata_v1(correlation_id: int, topics: Optional[list[str]] = None) -> bytes:
    body = array(None if topics is None else [string(t) for t in topics])
    return frame(API_METADATA, 1, correlation_id, body)


def metadata_v4(correlation_id: int, topics: Optional[list[str]], allow_auto_create: bool) -> bytes:
    body = array(None if topics is None else [string(t) for t in topics]) + i8(int(allow_auto_create))
    return frame(API_METADATA, 4, correlation_id, body)


def nullable_bytes(b: Optional[bytes]) -> bytes:
    return i32(-1) if b is None else i32(len(b)) + b


def _produce(version: int, correlation_id: int, topic: str, partition: int, records: Optional[bytes],
             acks: int, timeout_ms: int, transactional_id: Optional[str]) -> bytes:
    part = i32(partition) + nullable_bytes(records)
    body = string(transactional_id) + i16(acks) + i32(timeout_ms) + array([string(topic) + array([part])])
    return frame(API_PRODUCE, version, correlation_id, body)


def produce_v3(correlation_id: int, topic: str, partition: int, records: bytes,
               acks: int = -1, timeout_ms: int = 10000) -> bytes:
    return _produce(3, correlation_id, topic, partition, records, acks, timeout_ms, None)


def produce_v8(correlation_id: int, topic: str, partition: int, records: Optional[bytes],
               acks: int = -1, timeout_ms: int = 10000, transactional_id: Optional[str] = None) -> bytes:
    """The last non-flexible Produce: same request body as v3; its response adds record_errors."""
    return _produce(8, correlation_id, topic, partition, records, acks, timeout_ms, transactional_id)


def fetch_v4(correlation_id: int, topic: str, partition: int, offset: int, max_wait_ms: int,
             min_bytes: int = 1, max_bytes: int = 1 << 20) -> bytes:
    part = i32(partition) + i64(offset) + i32(max_bytes)
    body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0)
            + array([string(topic) + array([part])]))
    return frame(API_FETCH, 4, correlation_id, body)


def list_offsets_v1(correlation_id: int, topic: str, partition: int, timestamp: int) -> bytes:
    body = i32(-1) + array([string(topic) + array([i32(partition) + i64(timestamp)])])
    return frame(API_LIST_OFFSETS, 1, correlation_id, body)


def delete_records_v0(correlation_id: int, topic: str, partition: int, offset: int,
                      timeout_ms: int = 10000) -> bytes:
    body = array([string(topic) + array([i32(partition) + i64(offset)])]) + i32(timeout_ms)
    return frame(API_DELETE_RECORDS, 0, correlation_id, body)


def create_topics_v2(correlation_id: int, topic: str, num_partitions: int, replication_factor: int,
                     timeout_ms: int = 15000, validate_only: bool = False) -> bytes:
    """One topic, no manual assignments, no configs."""
    t = string(topic) + i32(num_partitions) + i16(replication_factor) + array([]) + array([])
    body = array([t]) + i32(timeout_ms) + i8(int(validate_only))
    return frame(API_CREATE_TOPICS, 2, correlation_id, body)


def record_batch(values: list[bytes], timestamps: Optional[list[int]] = None, compression: int = 0) -> bytes:
    """A v2 record batch (base offset 0) built with kafka-python's encoder."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 24)
    now = int(time.time() * 1000)
    for i, v in enumerate(values):
        ts = timestamps[i] if timestamps else now
        b.append(i, timestamp=ts, key=None, value=v, headers=[])
    return bytes(b.build())


def decode_records(data: bytes) -> list[tuple[int, int, Optional[bytes], Optional[bytes]]]:
    """(offset, timestamp, key, value) of every record in a fetched records blob."""
    from kafka.record import MemoryRecords

    out = []
    mr = MemoryRecords(data)
    while True:
        batch = mr.next_batch()
        if batch is None:
            break
        for r in batch:
            out.append((r.offset, r.timestamp, r.key, r.value))
    return out


# ---- record batch surgery ---------------------------------------------------
# Edits that keep a v2 batch's frame consistent (length, CRC-32C) so that only the intended
# fault remains; compressed batches are edited in their plain records and compressed again
# with kafka-python's codecs.

HEADER_LEN = 61  # the fixed record batch v2 header; records follow


def fix(batch: bytearray, length: bool = True) -> bytes:
    """Recompute the batch length (unless told not to) and the CRC-32C over bytes 21.. ."""
    from kafka.record.util import calc_crc32c

    if length:
        struct.pack_into(">i", batch, 8, len(batch) - 12)
    struct.pack_into(">I", batch, 17, calc_crc32c(memoryview(batch)[21:]))
    return bytes(batch)


def plain_records(batch: bytes) -> bytes:
    """The records of a batch, decompressed (attribute bits 0-2: none, gzip, snappy, lz4, zstd)."""
    from kafka import codec as c

    decode = [lambda b: b, c.gzip_decode, c.snappy_decode, c.lz4_decode, c.zstd_decode][batch[22] & 7]
    return decode(batch[HEADER_LEN:])


def with_plain_records(batch: bytes, plain: bytes) -> bytes:
    """The batch around new plain records, compressed with its codec as kafka-python would."""
    from kafka import codec as c

    encode = [lambda b: b, c.gzip_encode, c.snappy_encode, c.lz4_encode, c.zstd_encode][batch[22] & 7]
    return fix(bytearray(batch[:HEADER_LEN] + encode(bytes(plain))))


def zigzag(v: int) -> bytes:
    """A zigzag varint, as records encode their lengths and deltas."""
    z = (v << 1) ^ (v >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7f) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def record_fields(plain: bytes) -> list[dict]:
    """Where each record's fields start in well-formed plain records."""
    from kafka.record.util import decode_varint

    out, pos = [], 0
    while pos < len(plain):
        f = {"start": pos}
        length, pos = decode_varint(plain, pos)
        f["attributes"], body_end = pos, pos + length
        pos += 1
        for name in ("timestamp_delta", "offset_delta", "key_length"):
            f[name] = pos
            v, pos = decode_varint(plain, pos)
        pos += max(v, 0)
        f["value_length"] = pos
        v, pos = decode_varint(plain, pos)
        f["header_count"] = pos + max(v, 0)
        f["end"] = body_end
        out.append(f)
        pos = body_end
    return out


def set_varint(plain: bytearray, at: int, value: int) -> bytearray:
    """Replace the varint at `at` (its record length is not adjusted: that is the point)."""
    from kafka.record.util import decode_varint

    _old, end = decode_varint(plain, at)
    return plain[:at] + zigzag(value) + plain[end:]


def edit_records(batch: bytes, edit: Callable[[bytearray], bytearray]) -> bytes:
    """The batch with its plain records edited by `edit`."""
    return with_plain_records(batch, edit(bytearray(plain_records(batch))))


def edit_header(batch: bytes, fmt: str, at: int, value) -> bytes:
    """The batch with the header field at `at` packed as `fmt` (CRC recomputed)."""
    b = bytearray(batch)
    struct.pack_into(fmt, b, at, value)
    return fix(b, length=False)


# ---- decoding ---------------------------------------------------------------


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"response underflow: need {n} bytes at {self.pos}, have {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> Optional[str]:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self) -> Optional[bytes]:
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, item):
        n = self.i32()
        return None if n < 0 else [item(self) for _ in range(n)]


def parse_api_versions_v0(body: bytes) -> tuple[int, dict[int, tuple[int, int]]]:
    r = Reader(body)
    err = r.i16()
    apis = r.array(lambda r: (r.i16(), r.i16(), r.i16())) or []
    return err, {k: (lo, hi) for k, lo, hi in apis}


def _partition_metadata(r: Reader) -> dict:
    return dict(error_code=r.i16(), partition=r.i32(), leader=r.i32(),
                replicas=r.array(Reader.i32), isr=r.array(Reader.i32))


def parse_metadata_v1(body: bytes) -> dict:
    r = Reader(body)
    brokers = r.array(lambda r: dict(node_id=r.i32(), host=r.string(), port=r.i32(), rack=r.string()))
    controller = r.i32()
    topics = r.array(lambda r: dict(error_code=r.i16(), name=r.string(), internal=r.i8(),
                                    partitions=r.array(_partition_metadata)))
    return dict(brokers=brokers, controller_id=controller, topics=topics)


def parse_metadata_v4(body: bytes) -> dict:
    r = Reader(body)
    throttle = r.i32()
    brokers = r.array(lambda r: dict(node_id=r.i32(), host=r.string(), port=r.i32(), rack=r.string()))
    cluster_id = r.string()
    controller = r.i32()
    topics = r.array(lambda r: dict(error_code=r.i16(), name=r.string(), internal=r.i8(),
                                    partitions=r.array(_partition_metadata)))
    return dict(throttle=throttle, brokers=brokers, cluster_id=cluster_id,
                controller_id=controller, topics=topics)


def parse_produce_v3(body: bytes) -> list[dict]:
    r = Reader(body)
    out = []
    for topic in r.array(lambda r: (r.string(), r.array(
            lambda r: dict(partition=r.i32(), error_code=r.i16(), base_offset=r.i64(),
                           log_append_time=r.i64())))):
        name, parts = topic
        for p in parts:
            p["topic"] = name
            out.append(p)
    return out


def parse_produce_v8(body: bytes) -> list[dict]:
    """Per partition: error_code, base_offset, log_start_offset, record_errors [(index, message)], error_message."""
    r = Reader(body)
    out = []
    for name, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: dict(partition=r.i32(), error_code=r.i16(), base_offset=r.i64(),
                           log_append_time=r.i64(), log_start_offset=r.i64(),
                           record_errors=r.array(lambda r: (r.i32(), r.string())),
                           error_message=r.string())))):
        for p in parts:
            p["topic"] = name
            out.append(p)
    r.i32()  # throttle_time_ms
    return out


def parse_fetch_v4(body: bytes) -> list[dict]:
    r = Reader(body)
    r.i32()  # throttle_time_ms
    out = []
    for name, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: dict(partition=r.i32(), error_code=r.i16(), high_watermark=r.i64(),
                           last_stable_offset=r.i64(),
                           aborted=r.array(lambda r: (r.i64(), r.i64())),
                           records=r.bytes_())))):
        for p in parts:
            p["topic"] = name
            out.append(p)
    return out


def parse_list_offsets_v1(body: bytes) -> list[dict]:
    r = Reader(body)
    out = []
    for name, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: dict(partition=r.i32(), error_code=r.i16(), timestamp=r.i64(), offset=r.i64())))):
        for p in parts:
            p["topic"] = name
            out.append(p)
    return out


def parse_delete_records_v0(body: bytes) -> list[dict]:
    r = Reader(body)
    r.i32()  # throttle_time_ms
    out = []
    for name, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: dict(partition=r.i32(), low_watermark=r.i64(), error_code=r.i16())))):
        for p in parts:
            p["topic"] = name
            out.append(p)
    return out


def parse_create_topics_v2(body: bytes) -> list[dict]:
    r = Reader(body)
    r.i32()  # throttle_time_ms
    return r.array(lambda r: dict(name=r.string(), error_code=r.i16(), error_message=r.string())) or []


# ---- socket helpers ---------------------------------------------------------


def connect(bootstrap: str, timeout: float = 10.0) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One response: (correlation_id, body after the v0 header)."""
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    payload = recv_exact(sock, size)
    return struct.unpack(">i", payload[:4])[0], payload[4:]


def call(bootstrap: str, request: bytes, timeout: float = 15.0) -> tuple[int, bytes]:
    with connect(bootstrap, timeout) as s:
        s.sendall(request)
        return read_response(s)


def wait_closed(sock: socket.socket, timeout: float) -> tuple[bool, bytes, str]:
    """Read until the peer closes or `timeout` passes.

    Returns (closed, bytes received before the close, how it closed).
    """
    deadline = time.monotonic() + timeout
    received = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, bytes(received), "still open"
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False, bytes(received), "still open"
        except (ConnectionResetError, BrokenPipeError) as exc:
            return True, bytes(received), type(exc).__name__
        if not chunk:
            return True, bytes(received), "eof"
        received += chunk
