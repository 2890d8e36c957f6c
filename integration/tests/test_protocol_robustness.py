"""Raw-socket protocol tests: bad input closes only its own connection; pipelining
keeps order; slow and idle clients are served; ApiVersions advertises what exists."""

from __future__ import annotations

import struct
import time

import pytest

import kproto
from client_helpers import BackgroundProducer, create_topic
from harness import Broker, unique_topic

READ_TIMEOUT_MS = 2000
MAX_REQUEST = 1 << 20

BAD_INPUTS = {
    "zero-size": kproto.i32(0),
    "negative-size": kproto.i32(-1) + b"\0" * 8,
    "over-max-size": kproto.i32(MAX_REQUEST + 1) + b"\0" * 16,
    "max-int-size": kproto.i32(2**31 - 1),
    "http-get": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "nc-text": b"test message\n",
    "unknown-api-key": kproto.frame(32000, 0, 1),
    "garbage-frame": kproto.i32(64) + b"\xff" * 64,
    # Metadata v0, correlation 1, null client id, topics array claiming 2^31-1 entries.
    "huge-array-claim": kproto.i32(14) + bytes.fromhex("0003 0000 00000001 ffff 7fffffff"),
    "negative-array-len": kproto.i32(14) + bytes.fromhex("0003 0000 00000001 ffff 80000000"),
    # Says 100 bytes, sends 10, then goes quiet: closed by request_read_timeout_ms.
    "truncated-frame": kproto.i32(100) + b"\0\x12\0\0\0\0\0\x07\xff\xff",
}

# The APIs the broker implements (and so must advertise, and nothing else).
# Produce, Fetch, ListOffsets, Metadata, group APIs (8-16, 42), ApiVersions, topics, InitProducerId,
# OffsetForLeaderEpoch, DescribeConfigs, AlterConfigs, CreatePartitions, IncrementalAlterConfigs,
# DeleteRecords (21), DescribeLogDirs (35), ElectLeaders (43), AlterPartitionReassignments (45),
# ListPartitionReassignments (46), OffsetDelete (47), DescribeCluster, DescribeProducers (61),
# the transaction APIs: AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26),
# TxnOffsetCommit (28), DescribeTransactions (65), ListTransactions (66).
IMPLEMENTED_APIS = {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31,
                    32, 33, 35, 36, 37, 42, 43, 44, 45, 46, 47, 50, 51, 60, 61, 65, 66}


@pytest.fixture(scope="module")
def rbroker(tmp_path_factory) -> Broker:
    b = Broker(tmp_path_factory.mktemp("robustness-broker"), name="robustness-broker", fsync="interval",
               request_read_timeout_ms=READ_TIMEOUT_MS, max_request_bytes=MAX_REQUEST)
    b.start()
    yield b
    assert b.stop() == 0


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_closes_only_that_connection(rbroker, name):
    topic = unique_topic(f"bystander-{name}")
    create_topic(rbroker.bootstrap, topic, 1)
    bg = BackgroundProducer(rbroker.bootstrap, topic, partition=0, pace_s=0.005).start()
    try:
        bg.wait_acked(20, timeout=30)
        bystander = kproto.connect(rbroker.bootstrap)
        rss_before = rbroker.rss_kb()

        with kproto.connect(rbroker.bootstrap) as s:
            t0 = time.monotonic()
            s.sendall(BAD_INPUTS[name])
            closed, got, how = kproto.wait_closed(s, timeout=READ_TIMEOUT_MS / 1000 + 8)
            elapsed = time.monotonic() - t0
        assert closed, f"connection still open {elapsed:.1f}s after {name}; received {got[:80]!r}"
        if name == "truncated-frame":
            assert elapsed >= READ_TIMEOUT_MS / 1000 * 0.5, \
                f"half-sent frame cut after {elapsed:.2f}s, before request_read_timeout_ms={READ_TIMEOUT_MS}"

        rbroker.check_alive()
        acks = bg.tracker.count()
        bg.wait_acked(acks + 20, timeout=30)  # the concurrent producer keeps going
        bystander.sendall(kproto.api_versions_v0(77))
        corr, body = kproto.read_response(bystander)
        assert corr == 77 and kproto.parse_api_versions_v0(body)[0] == 0
        bystander.close()
        assert rbroker.health()["status"] == "healthy"
        growth_mb = (rbroker.rss_kb() - rss_before) / 1024
        assert growth_mb < 100, f"broker RSS grew {growth_mb:.0f} MB after {name}"
    finally:
        tracker = bg.finish(flush_timeout=60)
    assert not bg.send_errors, bg.send_errors[:5]
    assert not tracker.errors, f"concurrent producer saw errors: {tracker.errors[:5]}"
    assert tracker.count() == bg.sent


def test_many_bad_connections_at_once(rbroker):
    """50 bad connections in a burst, then everything still works."""
    socks = []
    for i in range(50):
        s = kproto.connect(rbroker.bootstrap)
        s.sendall(list(BAD_INPUTS.values())[i % (len(BAD_INPUTS) - 1)])  # all but the slow truncated one
        socks.append(s)
    for s in socks:
        closed, _got, how = kproto.wait_closed(s, timeout=10)
        s.close()
        assert closed, how
    rbroker.check_alive()
    corr, body = kproto.call(rbroker.bootstrap, kproto.api_versions_v0(3))
    assert corr == 3 and kproto.parse_api_versions_v0(body)[0] == 0


def test_slow_client_frame_in_pieces_is_served(rbroker):
    req = kproto.metadata_v1(42, None)
    with kproto.connect(rbroker.bootstrap) as s:
        for i in range(0, len(req), 7):
            s.sendall(req[i:i + 7])
            time.sleep(0.3 * READ_TIMEOUT_MS / 1000 / ((len(req) + 6) // 7))  # whole frame well within the deadline
        corr, body = kproto.read_response(s)
    assert corr == 42
    md = kproto.parse_metadata_v1(body)
    assert [(b["node_id"], b["port"]) for b in md["brokers"]] == [(1, rbroker.kafka_port)]


def test_idle_connection_outlives_request_read_timeout(rbroker):
    """The read deadline applies to a started frame, not to an idle connection."""
    with kproto.connect(rbroker.bootstrap) as s:
        s.sendall(kproto.api_versions_v0(1))
        assert kproto.read_response(s)[0] == 1
        time.sleep(READ_TIMEOUT_MS / 1000 + 1.0)  # idle on purpose, longer than the deadline
        s.sendall(kproto.api_versions_v0(2))
        assert kproto.read_response(s)[0] == 2


def test_pipelined_requests_answered_in_order(rbroker):
    n = 50
    reqs = [kproto.api_versions_v0(i) if i % 2 == 0 else kproto.metadata_v1(i, None) for i in range(n)]
    with kproto.connect(rbroker.bootstrap, timeout=30) as s:
        s.sendall(b"".join(reqs))
        responses = [kproto.read_response(s) for _ in range(n)]
    assert [c for c, _ in responses] == list(range(n))
    for corr, body in responses:
        if corr % 2 == 0:
            assert kproto.parse_api_versions_v0(body)[0] == 0
        else:
            assert kproto.parse_metadata_v1(body)["brokers"][0]["port"] == rbroker.kafka_port


def test_pipelined_produce_keeps_order(rbroker):
    topic = unique_topic("pipelined-produce")
    create_topic(rbroker.bootstrap, topic, 1)
    n = 30
    reqs = [kproto.produce_v3(i, topic, 0, kproto.record_batch([b"p-%02d" % i]), acks=1) for i in range(n)]
    with kproto.connect(rbroker.bootstrap, timeout=30) as s:
        s.sendall(b"".join(reqs))
        responses = [kproto.read_response(s) for _ in range(n)]
    assert [c for c, _ in responses] == list(range(n))
    results = [kproto.parse_produce_v3(body)[0] for _c, body in responses]
    assert [(r["error_code"], r["base_offset"]) for r in results] == [(0, i) for i in range(n)]
    _, body = kproto.call(rbroker.bootstrap, kproto.fetch_v4(1, topic, 0, 0, max_wait_ms=100))
    [res] = kproto.parse_fetch_v4(body)
    assert [v for _o, _ts, _k, v in kproto.decode_records(res["records"])] == [b"p-%02d" % i for i in range(n)]


def test_api_versions_advertises_exactly_the_implemented_apis(rbroker):
    corr, body = kproto.call(rbroker.bootstrap, kproto.api_versions_v0(5))
    err, apis = kproto.parse_api_versions_v0(body)
    assert corr == 5 and err == 0
    assert set(apis) == IMPLEMENTED_APIS, \
        f"advertised but not implemented: {set(apis) - IMPLEMENTED_APIS}; missing: {IMPLEMENTED_APIS - set(apis)}"
    for key, (lo, hi) in apis.items():
        assert 0 <= lo <= hi, (key, lo, hi)
    assert apis[18][1] == 4, f"ApiVersions max version {apis[18]}"


def test_api_versions_above_max_gets_v0_error_35(rbroker):
    # ApiVersions v5, above our v4: request header v2 (tagged fields), compact-string body.
    def compact(s: bytes) -> bytes:
        return bytes([len(s) + 1]) + s

    payload = (struct.pack(">hhi", 18, 5, 9) + kproto.string("chronik-it") + b"\0"
               + compact(b"chronik-it") + compact(b"1.0") + b"\0")
    corr, body = kproto.call(rbroker.bootstrap, kproto.i32(len(payload)) + payload)
    assert corr == 9
    err, apis = kproto.parse_api_versions_v0(body)
    assert err == 35, f"error code {err}"
    assert 18 in apis and apis[18][0] == 0
