#!/usr/bin/env python3
"""Log compaction benchmark with confluent-kafka (librdkafka).

    python3 integration/bench_compaction.py [--mb 200] [--keys 10000] [--value-bytes 1000]
    python3 integration/bench_compaction.py --bootstrap HOST:PORT --admin http://HOST:PORT

Without --bootstrap it starts its own release broker (target/release/chronik-server) on free
ports with a temporary data dir, fsync = "always" and `[storage] cleaner_interval_ms` 500
(`--cleaner-io-mbps` sets `cleaner_io_max_bytes_per_sec`), and stops it after. With --bootstrap
it needs --admin, the node's admin URL, for the cleaner's counters and partition sizes.

Steps, on one topic (3 partitions, segment.bytes --segment-mb, min.cleanable.dirty.ratio 0.5):
1. load: --mb MB of values (--value-bytes each) over --keys distinct keys, as fast as the client
   goes (idempotent, acks=all, linger.ms 5), while the topic's policy is still `delete` (retention
   off), so the cleaner has nothing to do: msg/s, MB/s, latency p50/p99 sampled as bench.py does.
2. before: a probe producer (its own connection, acks=all, linger.ms 0) sends --probe-rate msg/s
   of 100 B values for --probe-s seconds and times every send: p50/p99 with the cleaner idle.
3. while: IncrementalAlterConfigs sets cleanup.policy=compact; the probe runs on until the cleaner
   has read the backlog and stayed idle for 3 s: p50/p99 while it cleans.
4. the cleaner's MB/s: bytes read (`chronik_log_cleaner_bytes_read_total`) per second of cleaner
   time (`chronik_log_cleaner_seconds_total`) and per second of wall time from the switch to the
   last progress; bytes written, records removed, runs, and the partitions' size before and after.
5. check: the topic is read back; every load key must be there once its cleaning is done, with the
   last value produced for it (else MISMATCH and exit 1).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import LATENCY_SAMPLE, DeliveryStats, create_topic, percentile  # noqa: E402
from compaction_helpers import METRIC_BYTES_READ, METRIC_BYTES_WRITTEN, METRIC_RECORDS_REMOVED  # noqa: E402
from compaction_helpers import METRIC_RUNS, METRIC_SECONDS, cleaner_counters  # noqa: E402
from harness import Broker  # noqa: E402

PARTITIONS = 3
IDLE_S = 3.0  # no cleaner progress for this long after the switch: the backlog is done


def key_of(i: int) -> bytes:
    return b"key-%08d" % i


def load(bootstrap: str, topic: str, n: int, keys: int, size: int) -> tuple[dict, dict[bytes, bytes]]:
    """n keyed messages (key i % keys); returns the run's numbers and each key's last value."""
    p = Producer({"bootstrap.servers": bootstrap, "client.id": "chronik-bench-compaction", "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 500_000, "queue.buffering.max.kbytes": 262_144,
                  "compression.type": "none"})
    filler = os.urandom(size)
    stats = DeliveryStats(n)
    last: dict[bytes, bytes] = {}
    start = time.perf_counter()
    for i in range(n):
        k = key_of(i % keys)
        v = b"%012d|" % i + filler[13:]
        last[k] = v
        sampled = i % LATENCY_SAMPLE == 0
        while True:
            try:
                if sampled:
                    stats.sent_at[i // LATENCY_SAMPLE] = time.perf_counter()
                    p.produce(topic, v, k, on_delivery=functools.partial(stats.on_delivery, i // LATENCY_SAMPLE))
                else:
                    p.produce(topic, v, k)
                break
            except BufferError:
                p.poll(0.001)
        if sampled:
            p.poll(0)
    left = p.flush(300)
    wall = time.perf_counter() - start
    lat = sorted(stats.latencies)
    acked = n - stats.errors - left
    return dict(acked=acked, errors=stats.errors + left, first_error=stats.first_error, wall=wall,
                msg_s=acked / wall, mb_s=acked * size / wall / 1e6,
                p50=percentile(lat, 0.5) * 1e3, p99=percentile(lat, 0.99) * 1e3), last


class Probe:
    """Sends `rate` small keyed messages per second and times each send to its delivery report."""

    def __init__(self, bootstrap: str, topic: str, rate: int):
        self.topic = topic
        self.interval = 1.0 / rate
        self.producer = Producer({"bootstrap.servers": bootstrap, "client.id": "chronik-bench-probe",
                                  "acks": "all", "linger.ms": 0, "enable.idempotence": True})
        self.lock = threading.Lock()
        self.latencies: list[tuple[float, float]] = []  # (monotonic send time, latency ms)
        self.errors = 0
        self.sent = 0
        self.last: dict[bytes, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def _report(self, t0: float, err, _msg) -> None:
        with self.lock:
            if err is not None:
                self.errors += 1
            else:
                self.latencies.append((t0, (time.perf_counter() - t0) * 1e3))

    def _run(self) -> None:
        nxt = time.perf_counter()
        while not self._stop.is_set():
            k, v = b"probe-%03d" % (self.sent % 100), b"%012d|" % self.sent + b"p" * 87
            self.last[k] = v
            self.producer.produce(self.topic, v, k, on_delivery=functools.partial(self._report, time.perf_counter()))
            self.sent += 1
            self.producer.poll(0)
            nxt += self.interval
            delay = nxt - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)  # paced: what the probe measures is the broker, not its queue

    def start(self) -> "Probe":
        # Untimed first send: connecting, metadata and the producer id would otherwise land in
        # the "before" percentiles.
        self.producer.produce(self.topic, b"warm-up", b"probe-warm-up")
        if self.producer.flush(30) != 0:
            raise RuntimeError("the probe's warm-up send was not acknowledged within 30 s")
        self.last[b"probe-warm-up"] = b"warm-up"
        self._thread.start()
        return self

    def take(self) -> list[tuple[float, float]]:
        """(send time, latency ms) of every send reported since the last take."""
        self.producer.poll(0)
        with self.lock:
            out, self.latencies = self.latencies, []
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.producer.flush(30)


def sizes(admin_url: str, topic: str) -> int:
    import requests
    r = requests.get(f"{admin_url}/admin/partitions", timeout=10)
    r.raise_for_status()
    return sum((p.get("replica") or {}).get("size_bytes", 0) for p in r.json()["partitions"] if p["topic"] == topic)


def set_policy(bootstrap: str, topic: str, policy: str) -> None:
    ac = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("cleanup.policy", policy, incremental_operation=AlterConfigOpType.SET)])
    for f in ac.incremental_alter_configs([res]).values():
        f.result(30)


def wait_cleaned(admin_url: str, started: dict[str, float], timeout: float = 900.0) -> tuple[dict, float]:
    """Polls the counters until the cleaner made progress and then none for IDLE_S; returns the
    last counters and the perf_counter time of the last progress."""
    last, last_change = started, time.perf_counter()
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        time.sleep(0.25)
        now = cleaner_counters(admin_url)
        if now[METRIC_BYTES_READ] != last[METRIC_BYTES_READ]:
            last, last_change = now, time.perf_counter()
        elif last[METRIC_BYTES_READ] > started[METRIC_BYTES_READ] and time.perf_counter() - last_change >= IDLE_S:
            return now, last_change
    raise RuntimeError(f"the cleaner did not finish within {timeout:.0f} s (counters {last})")


def read_back(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """Every partition from the beginning to its high watermark: each key's last value."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "chronik-bench-compaction",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 3,
                  "max.partition.fetch.bytes": 4 * 1024 * 1024})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in range(PARTITIONS)}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        done = {p for p, e in ends.items() if e == 0}
        out: dict[bytes, bytes] = {}
        deadline = time.monotonic() + 300
        while len(done) < PARTITIONS and time.monotonic() < deadline:
            for m in c.consume(num_messages=10_000, timeout=1.0):
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"consume: {m.error()}")
                    continue
                out[m.key()] = m.value()
                if m.offset() + 1 >= ends[m.partition()]:
                    done.add(m.partition())
        return out
    finally:
        c.close()


def run(bootstrap: str, admin_url: str, args) -> int:
    topic = f"bench-compaction-{os.urandom(3).hex()}"
    create_topic(bootstrap, topic)
    ac = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in {
            "segment.bytes": str(args.segment_mb * 1024 * 1024), "retention.ms": "-1", "retention.bytes": "-1",
            "min.cleanable.dirty.ratio": "0.5", "min.compaction.lag.ms": "0"}.items()])
    for f in ac.incremental_alter_configs([res]).values():
        f.result(30)

    n = int(args.mb * 1e6 / args.value_bytes)
    p, last = load(bootstrap, topic, n, args.keys, args.value_bytes)
    print(f"load     {n:>9} msgs x {args.value_bytes} B over {args.keys} keys  {p['wall']:7.2f} s  "
          f"{p['msg_s']:>9,.0f} msg/s  {p['mb_s']:7.2f} MB/s  latency ms p50 {p['p50']:7.2f}  p99 {p['p99']:7.2f}  "
          f"errors {p['errors']}" + (f" (first: {p['first_error']})" if p["first_error"] else ""), flush=True)
    size0 = sizes(admin_url, topic)

    probe = Probe(bootstrap, topic, args.probe_rate).start()
    time.sleep(args.probe_s)  # the "before" window is a fixed measuring time, not a wait for a condition
    before = sorted(ms for _, ms in probe.take())
    counters0 = cleaner_counters(admin_url)
    switched = time.perf_counter()
    set_policy(bootstrap, topic, "compact")
    try:
        counters, last_progress = wait_cleaned(admin_url, counters0)
    finally:
        timed = probe.take()
        probe.stop()
    during = sorted(ms for _, ms in timed)
    slowest = sorted(timed, key=lambda t: -t[1])[:5]
    size1 = sizes(admin_url, topic)
    for label, lat in (("before", before), ("while", during)):
        print(f"probe    {label:<6} {len(lat):>6} sends at {args.probe_rate}/s  latency ms p50 "
              f"{percentile(lat, 0.5):7.2f}  p99 {percentile(lat, 0.99):7.2f}  max {lat[-1] if lat else 0:7.2f}",
              flush=True)
    d = {k: counters[k] - counters0[k] for k in counters}
    busy = d[METRIC_SECONDS]
    wall = last_progress - switched
    print(f"cleaner  read {d[METRIC_BYTES_READ] / 1e6:8.1f} MB  wrote {d[METRIC_BYTES_WRITTEN] / 1e6:8.1f} MB  "
          f"removed {d[METRIC_RECORDS_REMOVED]:>9,.0f} records  runs {d[METRIC_RUNS]:.0f}  "
          f"{busy:6.2f} s busy: {d[METRIC_BYTES_READ] / 1e6 / busy if busy else float('nan'):7.1f} MB/s cleaned "
          f"({d[METRIC_BYTES_READ] / 1e6 / wall if wall > 0 else float('nan'):.1f} MB/s over {wall:.1f} s wall)  "
          f"size {size0 / 1e6:.1f} -> {size1 / 1e6:.1f} MB", flush=True)
    print("probe    slowest while cleaning (s after the switch: ms): "
          + ", ".join(f"{t - switched:.2f}: {ms:.0f}" for t, ms in slowest), flush=True)

    got = read_back(bootstrap, topic)
    want = dict(last)
    want.update(probe.last)
    wrong = [k for k, v in want.items() if got.get(k) != v]
    unknown = set(got) - set(want)
    if wrong or unknown or p["errors"] or probe.errors:
        print(f"MISMATCH: {len(wrong)} keys without their last value (e.g. {wrong[:3]}), {len(unknown)} unknown keys, "
              f"{p['errors']} load errors, {probe.errors} probe errors", flush=True)
        return 1
    print(f"check    every one of {len(want)} keys read back with its last value", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="an already running broker (then --admin too)")
    ap.add_argument("--admin", help="its admin URL, e.g. http://127.0.0.1:9644")
    ap.add_argument("--mb", type=float, default=200, help="MB of values to load (default 200)")
    ap.add_argument("--keys", type=int, default=10_000, help="distinct keys (default 10000)")
    ap.add_argument("--value-bytes", type=int, default=1000, help="value size (default 1000)")
    ap.add_argument("--segment-mb", type=int, default=4, help="segment.bytes in MiB (default 4)")
    ap.add_argument("--probe-rate", type=int, default=200, help="probe sends per second (default 200)")
    ap.add_argument("--probe-s", type=float, default=5.0, help="seconds of probe before the switch (default 5)")
    ap.add_argument("--cleaner-io-mbps", type=float, help="[storage] cleaner_io_max_bytes_per_sec in MB/s (0: unlimited; "
                    "default: the broker's, 50 MiB/s)")
    args = ap.parse_args()
    if args.bootstrap:
        if not args.admin:
            ap.error("--bootstrap needs --admin")
        return run(args.bootstrap, args.admin, args)
    env = {"CHRONIK_STORAGE__CLEANER_INTERVAL_MS": "500"}
    if args.cleaner_io_mbps is not None:
        env["CHRONIK_STORAGE__CLEANER_IO_MAX_BYTES_PER_SEC"] = str(int(args.cleaner_io_mbps * 1e6))
    with tempfile.TemporaryDirectory(prefix="chronik-bench-compaction-") as tmp:
        broker = Broker(Path(tmp), name="bench-broker", fsync="always", num_partitions=PARTITIONS, extra_env=env)
        broker.start()
        print(f"broker pid {broker.pid} on {broker.bootstrap} (fsync=always, {env}, data {broker.data_dir})", flush=True)
        try:
            return run(broker.bootstrap, broker.admin_url, args)
        except BaseException:
            print(f"--- broker log tail ---\n{broker.log_tail(80)}", file=sys.stderr)
            raise
        finally:
            code = broker.stop()
            if code != 0:
                print(f"broker exited with {code}; log tail:\n{broker.log_tail(80)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
