"""Every advertised version of every API answers a well-formed request with a
decodable response and no error.

Requests are encoded and responses decoded with kafka-python's schema-generated
protocol classes (Kafka's own JSON message definitions), one raw connection per
request so a broker that drops the connection fails only that version.
"""

from __future__ import annotations

import struct
import uuid

import pytest
from kafka.protocol.admin import (
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
)
from kafka.protocol.consumer import (
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
)
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse
from kafka.protocol.producer import (
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
)

import kproto
from client_helpers import admin, create_topic
from harness import wait_until

RECORDS = [b"matrix-%d" % i for i in range(3)]


def roundtrip(bootstrap: str, request, response_cls, version: int, corr: int):
    request.with_header(correlation_id=corr, client_id="chronik-it-matrix")
    frame = bytes(request.encode(version=version, header=True, framed=True))
    with kproto.connect(bootstrap, timeout=15) as s:
        s.sendall(frame)
        size = struct.unpack(">i", kproto.recv_exact(s, 4))[0]
        payload = kproto.recv_exact(s, size)
    got_corr = struct.unpack(">i", payload[:4])[0]
    assert got_corr == corr, f"correlation id {got_corr} != {corr}"
    return response_cls.decode(payload, version=version, header=True).to_dict(json=False)


def error_codes(obj) -> list[int]:
    """Every error_code anywhere in a decoded response."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "error_code" and isinstance(v, int):
                out.append(v)
            else:
                out.extend(error_codes(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(error_codes(v))
    return out


@pytest.fixture(scope="module")
def advertised(broker) -> dict[int, tuple[int, int]]:
    _, body = kproto.call(broker.bootstrap, kproto.api_versions_v0(0))
    err, apis = kproto.parse_api_versions_v0(body)
    assert err == 0
    return apis


@pytest.fixture(scope="module")
def mtopic(broker) -> str:
    """A 1-partition topic holding RECORDS at offsets 0..2."""
    name = f"matrix-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, name, 1)
    _, body = kproto.call(broker.bootstrap, kproto.produce_v3(1, name, 0, kproto.record_batch(RECORDS), acks=-1))
    assert kproto.parse_produce_v3(body)[0]["error_code"] == 0
    return name


def check_versions(broker, advertised, api_key: int, build, check=None) -> None:
    """Send build(version) at every advertised version; collect every failure."""
    lo, hi = advertised[api_key]
    # ListOffsets v0 has its own layout that kafka-python's schema classes no longer encode:
    # test_compat_versions.py drives it.
    lo = max(lo, 1) if api_key == 2 else lo
    failures = []
    for v in range(lo, hi + 1):
        try:
            request, response_cls = build(v)
            resp = roundtrip(broker.bootstrap, request, response_cls, v, 1000 + v)
            errs = [e for e in error_codes(resp) if e != 0]
            assert not errs, f"error codes {errs}: {resp}"
            if check:
                check(v, resp)
        except Exception as exc:  # noqa: BLE001 - collected and reported together
            failures.append(f"v{v}: {type(exc).__name__}: {str(exc)[:300]}")
    assert not failures, f"API {api_key} versions {lo}-{hi} failing:\n" + "\n".join(failures)


def test_api_versions_all_versions(broker, advertised):
    def build(v):
        return ApiVersionsRequest(client_software_name="chronik-it", client_software_version="1.0"), \
            ApiVersionsResponse

    def check(v, resp):
        keys = {a["api_key"] for a in resp["api_keys"]}
        assert keys == set(advertised), f"v{v} lists {sorted(keys)}"

    check_versions(broker, advertised, 18, build, check)


def test_metadata_all_versions(broker, advertised, mtopic):
    def build(v):
        return MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=mtopic)],
                               allow_auto_topic_creation=False), MetadataResponse

    def check(v, resp):
        assert [b["port"] for b in resp["brokers"]] == [broker.kafka_port]
        [t] = resp["topics"]
        assert t["name"] == mtopic and [p["partition_index"] for p in t["partitions"]] == [0], t

    check_versions(broker, advertised, 3, build, check)


def test_produce_all_versions(broker, advertised, mtopic):
    def build(v):
        P = ProduceRequest
        part = P.TopicProduceData.PartitionProduceData(index=0, records=kproto.record_batch([b"pv%d" % v]))
        return P(transactional_id=None, acks=1, timeout_ms=10000,
                 topic_data=[P.TopicProduceData(name=mtopic, partition_data=[part])]), ProduceResponse

    def check(v, resp):
        [t] = resp["responses"]
        [p] = t["partition_responses"]
        assert p["base_offset"] >= len(RECORDS), p

    check_versions(broker, advertised, 0, build, check)


def test_fetch_all_versions(broker, advertised, mtopic):
    """From v13 the topic is named by its id, in the request and in the answer."""
    topic_id = metadata_topic_id(broker.bootstrap, mtopic)
    assert topic_id not in (None, ZERO_UUID)

    def build(v):
        F = FetchRequest
        part = F.FetchTopic.FetchPartition(partition=0, current_leader_epoch=-1, fetch_offset=0,
                                           log_start_offset=-1, partition_max_bytes=1 << 20)
        topic = F.FetchTopic(topic=mtopic, topic_id=topic_id if v >= 13 else ZERO_UUID, partitions=[part])
        return F(replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                 session_id=0, session_epoch=-1, topics=[topic], forgotten_topics_data=[], rack_id=""), \
            FetchResponse

    def check(v, resp):
        [t] = resp["responses"]
        assert (t["topic_id"] == topic_id) if v >= 13 else (t["topic"] == mtopic), t
        [p] = t["partitions"]
        values = [val for _o, _ts, _k, val in kproto.decode_records(p["records"] or b"")]
        assert values[:len(RECORDS)] == RECORDS, values[:5]

    check_versions(broker, advertised, 1, build, check)


def test_list_offsets_all_versions(broker, advertised, mtopic):
    for ts, label in ((-2, "earliest"), (-1, "latest"), (0, "timestamp 0")):
        def build(v):
            L = ListOffsetsRequest
            part = L.ListOffsetsTopic.ListOffsetsPartition(partition_index=0, current_leader_epoch=-1,
                                                           timestamp=ts)
            return L(replica_id=-1, isolation_level=0,
                     topics=[L.ListOffsetsTopic(name=mtopic, partitions=[part])]), ListOffsetsResponse

        def check(v, resp):
            [t] = resp["topics"]
            [p] = t["partitions"]
            if ts == -1:
                assert p["offset"] >= len(RECORDS), (label, p)
            else:
                assert p["offset"] == 0, (label, p)

        check_versions(broker, advertised, 2, build, check)


ERR_TOPIC_ALREADY_EXISTS = 36
ERR_UNKNOWN_TOPIC_ID = 100
ERR_INVALID_REQUEST = 42
TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5
ZERO_UUID = uuid.UUID(int=0)


def metadata_topic_id(bootstrap: str, name: str):
    """The topic's id as Metadata v12 reports it, or None when the topic does not exist."""
    req = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name, topic_id=ZERO_UUID)],
                          allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    [t] = roundtrip(bootstrap, req, MetadataResponse, 12, 77)["topics"]
    return t["topic_id"] if t["error_code"] == 0 else None


def create_request(name: str, validate_only: bool = False):
    T = CreateTopicsRequest.CreatableTopic
    C = T.CreatableTopicConfig
    return CreateTopicsRequest(topics=[T(name=name, num_partitions=2, replication_factor=1, assignments=[],
                                         configs=[C(name="retention.ms", value="3600000")])],
                               timeout_ms=10000, validate_only=validate_only)


def assert_described(v: int, t: dict) -> None:
    """A v5+ answer for a topic created with create_request (KIP-525)."""
    assert (t["num_partitions"], t["replication_factor"]) == (2, 1), t
    configs = {c["name"]: c for c in t["configs"]}
    assert (configs["retention.ms"]["value"], configs["retention.ms"]["config_source"]) == \
        ("3600000", TOPIC_CONFIG), configs["retention.ms"]
    assert (configs["cleanup.policy"]["value"], configs["cleanup.policy"]["config_source"]) == \
        ("delete", DEFAULT_CONFIG), configs["cleanup.policy"]
    assert {"retention.bytes", "segment.bytes", "min.insync.replicas"} <= set(configs), sorted(configs)
    assert not any(c["read_only"] or c["is_sensitive"] for c in configs.values())
    assert t.get("topic_config_error_code", 0) == 0, t


def test_create_and_delete_topics_all_versions(broker, advertised):
    base = f"matrix-ct-{uuid.uuid4().hex[:8]}"
    lo, hi = advertised[19]
    assert hi >= 7, f"CreateTopics advertised up to v{hi}"

    def check_create(v, resp):
        [t] = resp["topics"]
        assert t["name"] == f"{base}-v{v}" and t["error_message"] is None, t
        if v >= 5:
            assert_described(v, t)
        if v >= 7:
            wait_until(lambda: metadata_topic_id(broker.bootstrap, t["name"]) is not None, 15, f"{t['name']} in metadata")
            assert t["topic_id"] == metadata_topic_id(broker.bootstrap, t["name"]), t

    check_versions(broker, advertised, 19, lambda v: (create_request(f"{base}-v{v}"), CreateTopicsResponse),
                   check_create)
    dlo, dhi = advertised[20]
    assert dhi >= 6, f"DeleteTopics advertised up to v{dhi}"
    targets = {v: f"{base}-del-v{v}" for v in range(dlo, dhi + 1)}
    a = admin(broker.bootstrap)
    try:
        a.create_topics({t: {"num_partitions": 1, "replication_factor": 1} for t in targets.values()})
    finally:
        a.close()
    ids = {}
    for v, name in targets.items():
        wait_until(lambda: metadata_topic_id(broker.bootstrap, name) is not None, 15, f"{name} in metadata")
        ids[v] = metadata_topic_id(broker.bootstrap, name)

    def build_delete(v):
        if v >= 6:
            S = DeleteTopicsRequest.DeleteTopicState
            return DeleteTopicsRequest(topics=[S(name=targets[v], topic_id=ZERO_UUID)], timeout_ms=10000), \
                DeleteTopicsResponse
        return DeleteTopicsRequest(topic_names=[targets[v]], timeout_ms=10000), DeleteTopicsResponse

    def check_delete(v, resp):
        [r] = resp["responses"]
        assert r["name"] == targets[v], r
        if v >= 5:
            assert r["error_message"] is None, r
        if v >= 6:
            assert r["topic_id"] == ids[v], r
        assert metadata_topic_id(broker.bootstrap, targets[v]) is None

    check_versions(broker, advertised, 20, build_delete, check_delete)


def test_create_topics_validate_only_and_errors_at_the_newest_version(broker, advertised):
    _, hi = advertised[19]
    name = f"matrix-vo-{uuid.uuid4().hex[:8]}"
    [t] = roundtrip(broker.bootstrap, create_request(name, validate_only=True), CreateTopicsResponse, hi, 5)["topics"]
    assert t["error_code"] == 0, t
    assert_described(hi, t)  # Kafka answers with what the topic would be
    assert metadata_topic_id(broker.bootstrap, name) is None
    create_topic(broker.bootstrap, name, 1)
    [t] = roundtrip(broker.bootstrap, create_request(name), CreateTopicsResponse, hi, 6)["topics"]
    assert t["error_code"] == ERR_TOPIC_ALREADY_EXISTS, t
    # Kafka resets what a failed topic would describe; topic_config_error_code stays 0.
    assert (t["num_partitions"], t["replication_factor"], t["configs"]) == (-1, -1, []), t
    # kafka-python decodes the zero id as None.
    assert t["topic_id"] in (None, ZERO_UUID) and t.get("topic_config_error_code", 0) == 0, t
    twice = f"matrix-twice-{uuid.uuid4().hex[:8]}"
    req = create_request(twice)
    req.topics = req.topics * 2
    [t] = roundtrip(broker.bootstrap, req, CreateTopicsResponse, hi, 7)["topics"]
    assert (t["name"], t["error_code"], t["num_partitions"]) == (twice, ERR_INVALID_REQUEST, -1), t
    assert metadata_topic_id(broker.bootstrap, twice) is None


def test_delete_topics_v6_by_id(broker, advertised):
    _, hi = advertised[20]
    name = f"matrix-dbid-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, name, 1)
    topic_id = metadata_topic_id(broker.bootstrap, name)
    assert topic_id not in (None, ZERO_UUID)
    S = DeleteTopicsRequest.DeleteTopicState
    unknown = uuid.uuid4()
    req = DeleteTopicsRequest(topics=[S(name=None, topic_id=topic_id), S(name=None, topic_id=unknown),
                                      S(name=None, topic_id=ZERO_UUID)], timeout_ms=10000)
    deleted, missing, neither = roundtrip(broker.bootstrap, req, DeleteTopicsResponse, hi, 7)["responses"]
    assert (deleted["name"], deleted["topic_id"], deleted["error_code"]) == (name, topic_id, 0), deleted
    assert (missing["name"], missing["topic_id"], missing["error_code"]) == \
        (None, unknown, ERR_UNKNOWN_TOPIC_ID), missing
    assert neither["error_code"] == ERR_INVALID_REQUEST, neither
    assert metadata_topic_id(broker.bootstrap, name) is None


def test_create_partitions_all_versions(broker, advertised, topic):
    create_topic(broker.bootstrap, topic, 1)
    lo, _hi = advertised[37]

    def build(v):
        T = CreatePartitionsRequest.CreatePartitionsTopic
        return CreatePartitionsRequest(topics=[T(name=topic, count=2 + v - lo, assignments=None)],
                                       timeout_ms=10000, validate_only=False), CreatePartitionsResponse

    check_versions(broker, advertised, 37, build)


def test_describe_configs_all_versions(broker, advertised, mtopic):
    def build(v):
        R = DescribeConfigsRequest.DescribeConfigsResource
        return DescribeConfigsRequest(resources=[R(resource_type=2, resource_name=mtopic, configuration_keys=None)],
                                      include_synonyms=False, include_documentation=False), \
            DescribeConfigsResponse

    def check(v, resp):
        [r] = resp["results"]
        names = {c["name"] for c in r["configs"]}
        assert {"retention.ms", "retention.bytes", "cleanup.policy"} <= names, sorted(names)

    check_versions(broker, advertised, 32, build, check)


def test_init_producer_id_all_versions(broker, advertised):
    def build(v):
        return InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000,
                                     producer_id=-1, producer_epoch=-1), InitProducerIdResponse

    def check(v, resp):
        assert resp["producer_id"] >= 0 and resp["producer_epoch"] >= 0, resp

    check_versions(broker, advertised, 22, build, check)


def test_offset_for_leader_epoch_all_versions(broker, advertised, mtopic):
    epoch = broker.partition(mtopic, 0)["leader_epoch"]

    def build(v):
        O = OffsetForLeaderEpochRequest
        part = O.OffsetForLeaderTopic.OffsetForLeaderPartition(partition=0, current_leader_epoch=epoch,
                                                               leader_epoch=epoch)
        return O(replica_id=-1, topics=[O.OffsetForLeaderTopic(topic=mtopic, partitions=[part])]), \
            OffsetForLeaderEpochResponse

    def check(v, resp):
        [t] = resp["topics"]
        [p] = t["partitions"]
        end = broker.partition(mtopic, 0)["log_end_offset"]
        assert p["leader_epoch"] == epoch and p["end_offset"] == end, (p, end)

    check_versions(broker, advertised, 23, build, check)


def test_list_offsets_earliest_local_from_v8_only(broker, advertised, mtopic):
    """-4 (EARLIEST_LOCAL, KIP-405) is v8's sentinel: without tiered storage it is the log start,
    the same answer as -2 (earliest); older versions refuse it with UNSUPPORTED_VERSION (35)."""
    lo, hi = advertised[2]
    lo = max(lo, 1)
    assert hi >= 8
    epoch = broker.partition(mtopic, 0)["leader_epoch"]

    def ask(v, ts):
        L = ListOffsetsRequest
        part = L.ListOffsetsTopic.ListOffsetsPartition(partition_index=0, current_leader_epoch=-1, timestamp=ts)
        req = L(replica_id=-1, isolation_level=0, topics=[L.ListOffsetsTopic(name=mtopic, partitions=[part])])
        [t] = roundtrip(broker.bootstrap, req, ListOffsetsResponse, v, 3000 + v)["topics"]
        [p] = t["partitions"]
        return p

    for v in range(lo, hi + 1):
        p = ask(v, -4)
        if v < 8:
            assert p["error_code"] == 35, (v, p)
        else:
            earliest = ask(v, -2)
            assert (p["error_code"], p["offset"], p["timestamp"], p["leader_epoch"]) == (0, 0, -1, epoch), (v, p)
            assert p["offset"] == earliest["offset"], (v, p, earliest)
