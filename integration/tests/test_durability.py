"""Crashes and restarts: kill -9 mid-stream, a panicking replica actor, clean restart,
and a damaged segment tail."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer

from client_helpers import BackgroundProducer, check_numbered, create_topic, kp_consume_all, payload
from harness import find_actor, wait_until


def assert_acked_offsets_match(records, acked: dict[int, int]) -> None:
    """The offset the broker acknowledged for a message is where the message is."""
    wrong = []
    for offset, _k, v in records:
        n = int(v[4:])
        if n in acked and acked[n] != offset:
            wrong.append((n, acked[n], offset))
    assert not wrong, f"{len(wrong)} messages acknowledged at a different offset (n, acked, actual): {wrong[:5]}"


def test_kill9_during_idempotent_stream(make_broker, topic):
    total = 20_000
    b = make_broker("kill9", fsync="always")
    create_topic(b.bootstrap, topic, 1)
    # kafka-python 3.x defaults: idempotent, acks=all, infinite retries.
    bg = BackgroundProducer(b.bootstrap, topic, partition=0, pace_s=0.0005, limit=total).start()
    bg.wait_acked(3000, timeout=60)
    b.kill()
    sent_at_kill = bg.sent
    acked_at_kill = bg.tracker.count()
    # Let the producer keep sending (and retrying) into a dead broker for a while.
    wait_until(lambda: bg.sent >= min(total, sent_at_kill + 1000), 30, "producer to send 1000 more while down")
    b.start()
    wait_until(lambda: bg.sent >= total, 120, f"all {total} messages handed to the producer")
    tracker = bg.finish(flush_timeout=120)

    records = kp_consume_all(b.bootstrap, topic, 1)[0]
    acked = dict(tracker.acked)
    check_numbered(records, set(acked), bg.sent)
    assert_acked_offsets_match(records, acked)
    assert not bg.send_errors, bg.send_errors[:5]
    assert not tracker.errors, f"{len(tracker.errors)} delivery errors, e.g. {tracker.errors[:5]}"
    assert len(acked) == total, f"only {len(acked)} of {total} acknowledged (acked {acked_at_kill} before kill)"
    assert len(records) == total


def test_failpoint_replica_panic_is_supervised(make_broker, topic):
    total = 8_000
    b = make_broker("failpoint", fsync="always", fail_points=True)
    create_topic(b.bootstrap, topic, 1)
    replica = f"replica:{topic}-0"
    node = wait_until(lambda: find_actor(b.actors(), replica), 15, f"{replica} in /admin/actors")
    assert node["role"] == "ReplicaActor"
    restarts_before = node["restarts"]

    bg = BackgroundProducer(b.bootstrap, topic, partition=0, pace_s=0.0005, limit=total).start()
    bg.wait_acked(1000, timeout=60)
    r = b.fail_point("replica_panic", topic, 0)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True, r.text

    def restarted():
        n = find_actor(b.actors(), replica)
        return n and n["restarts"] >= restarts_before + 1 and str(n["status"]).lower() == "running" and n

    wait_until(restarted, 30, f"{replica} restarted by its supervisor and running")
    wait_until(lambda: bg.sent >= total, 120, f"all {total} messages handed to the producer")
    tracker = bg.finish(flush_timeout=120)
    b.check_alive()
    assert b.health()["status"] == "healthy"

    records = kp_consume_all(b.bootstrap, topic, 1)[0]
    acked = dict(tracker.acked)
    check_numbered(records, set(acked), bg.sent)
    assert_acked_offsets_match(records, acked)
    assert not tracker.errors, f"{len(tracker.errors)} delivery errors, e.g. {tracker.errors[:5]}"
    assert len(acked) == total
    assert len(records) == total


def produce_acks1(bootstrap: str, topic: str, n: int, partitions: int) -> dict[int, list[bytes]]:
    want: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False,
                      compression_type="lz4", linger_ms=5)
    try:
        futs = []
        for i in range(n):
            v = payload(topic, i)
            want[i % partitions].append(v)
            futs.append(p.send(topic, v, partition=i % partitions))
        p.flush(60)
        for f in futs:
            f.get(timeout=0)
    finally:
        p.close()
    return want


def test_clean_restart_keeps_everything(make_broker, topic):
    b = make_broker("restart", fsync="interval")
    create_topic(b.bootstrap, topic, 3)
    want = produce_acks1(b.bootstrap, topic, 30_000, 3)

    rc = b.stop()
    assert rc == 0, f"SIGTERM exit code {rc}"
    b.start()

    got = kp_consume_all(b.bootstrap, topic, 3)
    for p in range(3):
        assert [v for _o, _k, v in got[p]] == want[p], f"partition {p} differs after restart"
        assert [o for o, _k, _v in got[p]] == list(range(len(want[p])))
        part = b.partition(topic, p)
        assert part["log_end_offset"] == part["high_watermark"] == len(want[p]), part

    # Appends continue after the recovered end.
    prod = KafkaProducer(bootstrap_servers=b.bootstrap)
    try:
        meta = prod.send(topic, b"after-restart", partition=1).get(timeout=30)
        assert meta.offset == len(want[1])
    finally:
        prod.close()


def segment_files(data_dir: Path, topic: str) -> list[Path]:
    """Log segment files of `topic`-0, whatever the layout, as long as the path names the topic."""
    return sorted(p for p in data_dir.rglob("*")
                  if p.is_file() and f"{topic}-0" in str(p) and p.suffix == ".log" and p.stat().st_size > 0)


@pytest.mark.parametrize("damage", ["torn-last-batch", "zero-filled-tail"])
def test_restart_recovers_damaged_segment_tail(make_broker, topic, damage):
    b = make_broker("recovery", fsync="always")
    create_topic(b.bootstrap, topic, 1)
    values = [b"rec-%03d" % i for i in range(100)]
    p = KafkaProducer(bootstrap_servers=b.bootstrap)
    try:
        for v in values:  # one batch each
            p.send(topic, v, partition=0).get(timeout=30)
    finally:
        p.close()
    assert b.stop() == 0

    segs = segment_files(b.data_dir, topic)
    if not segs:
        pytest.skip(f"no *.log segment of {topic}-0 found under {b.data_dir}: layout unknown to this test")
    last = segs[-1]
    size = last.stat().st_size
    with open(last, "r+b") as f:
        if damage == "torn-last-batch":
            f.truncate(size - 5)  # a write cut short inside the last batch
        else:
            f.seek(size)
            f.write(b"\0" * 4096)  # preallocated / never-written tail
    b.start()

    records = kp_consume_all(b.bootstrap, topic, 1)[0]
    survivors = values[:-1] if damage == "torn-last-batch" else values
    assert [v for _o, _k, v in records] == survivors
    p = KafkaProducer(bootstrap_servers=b.bootstrap)
    try:
        meta = p.send(topic, b"after-recovery", partition=0).get(timeout=30)
        assert meta.offset == len(survivors)
    finally:
        p.close()
    records = kp_consume_all(b.bootstrap, topic, 1)[0]
    assert [v for _o, _k, v in records] == survivors + [b"after-recovery"]
