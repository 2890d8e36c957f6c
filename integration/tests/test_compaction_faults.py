"""Log compaction under faults: the broker is killed (kill -9), power-cut (the power_cut fail
point: unsynced bytes dropped, garbage appended) or frozen (SIGSTOP, then SIGCONT) while a
cleaning is under way, at several points of it.

The cleaner is slowed to ~40 KB/s (`[storage] cleaner_io_max_bytes_per_sec`) so one cleaning of
the ~500 KB log takes seconds, and each fault lands when a `.cleaned` file (the cleaning's output,
not yet swapped in) exists and has reached a given size. After every fault the partition must be
a valid compaction of what was written: every record read back is one that was written, at the
offset it was written at; every key's latest record is there; the log end is unchanged. Then,
restarted with a full-speed cleaner, it must reach exactly the latest record per key. A frozen
broker is not restarted: once it runs again, the same cleaning goes on and is applied, and the
partition reaches exactly the latest record per key with the slow cleaner.
"""

from __future__ import annotations

import os
import signal

import pytest

import kproto
from compaction_helpers import CLEANER_ENV, Record, cleaned_lines, compact_configs, compacted, create_compacted
from compaction_helpers import fillers, kp_view
from compaction_helpers import list_offsets, produce, versions, wait_view
from harness import Broker, unique_topic, wait_until
from test_power_cut import power_cut

SLOW_ENV = {**CLEANER_ENV, "CHRONIK_STORAGE__CLEANER_IO_MAX_BYTES_PER_SEC": "40000"}
# 16 KiB segments: about 60 sealed segments, cleaned into a few groups.
CONFIGS = compact_configs({"segment.bytes": "16384"})
KEYS, VERSIONS, PAD = 50, 40, 200
# The fault lands once the cleaning has written this many bytes of its output: at its start, a
# third and two thirds into the first output group.
CLEANED_BYTES_AT_FAULT = (1, 5_000, 10_000)


def cleaned_bytes(b: Broker, topic: str) -> int:
    """Bytes in the partition's `.cleaned` files (-1 when there is none: no cleaning under way)."""
    files = list((b.data_dir / "topics" / f"{topic}-0").glob("*.cleaned"))
    return sum(f.stat().st_size for f in files) if files else -1


def fill(b: Broker, topic: str) -> tuple[list[Record], list[Record]]:
    create_compacted(b.bootstrap, topic, configs=CONFIGS)
    written = produce(b.bootstrap, topic, versions(KEYS, VERSIONS, pad=PAD), acks="all")
    written += produce(b.bootstrap, topic, fillers("after", 200), acks="all")
    return written, compacted(written)


def assert_valid_compaction(b: Broker, topic: str, written: list[Record], want: list[Record], when: str) -> None:
    bounds = wait_until(lambda: list_offsets(b.bootstrap, topic), 30, f"{topic} served {when}")
    assert bounds[1] == len(written), (when, bounds)
    view = kp_view(b.bootstrap, topic)
    by_offset = {o: (k, v) for o, k, v in written}
    strangers = [r for r in view if by_offset.get(r[0]) != (r[1], r[2])]
    assert not strangers, f"{when}: records never written at their offsets: {strangers[:5]}"
    assert [o for o, _, _ in view] == sorted({o for o, _, _ in view}), f"{when}: offsets not increasing"
    missing = sorted(set(want) - set(view))
    assert not missing, f"{when}: {len(missing)} latest records lost, e.g. {missing[:3]}"


def wait_mid_cleaning(b: Broker, topic: str, at_bytes: int, what: str) -> None:
    wait_until(lambda: cleaned_bytes(b, topic) >= at_bytes, 120, f"{topic}: {what} with {at_bytes} bytes cleaned")


def finish_at_full_speed(b: Broker, topic: str, written: list[Record], want: list[Record]) -> None:
    b.extra_env = dict(CLEANER_ENV)
    b.restart()
    wait_view(b.bootstrap, topic, want, f"{topic} compacted after the faults")
    assert list_offsets(b.bootstrap, topic)[1] == len(written)
    more = produce(b.bootstrap, topic, fillers("later", 3))
    assert [o for o, _, _ in more] == [len(written), len(written) + 1, len(written) + 2]


def test_kill_9_mid_cleaning_loses_nothing_and_the_cleaning_completes(make_broker):
    b = make_broker("compact-kill", auto_create_topics=False, extra_env=SLOW_ENV)
    topic = unique_topic("compact-kill")
    written, want = fill(b, topic)
    for at in CLEANED_BYTES_AT_FAULT:
        wait_mid_cleaning(b, topic, at, "a cleaning under way")
        b.kill()
        b.start()
        assert_valid_compaction(b, topic, written, want, f"after kill -9 at {at} cleaned bytes")
    finish_at_full_speed(b, topic, written, want)


def test_power_cut_mid_cleaning_loses_nothing_and_the_cleaning_completes(make_broker):
    b = make_broker("compact-power", fsync="always", fail_points=True, auto_create_topics=False, extra_env=SLOW_ENV)
    topic = unique_topic("compact-power")
    written, want = fill(b, topic)
    for seed, at in enumerate(CLEANED_BYTES_AT_FAULT):
        wait_mid_cleaning(b, topic, at, "a cleaning under way")
        power_cut(b, 64, seed)
        b.start()
        assert_valid_compaction(b, topic, written, want, f"after a power cut at {at} cleaned bytes")
    finish_at_full_speed(b, topic, written, want)


def test_sigstop_mid_cleaning_then_sigcont_finishes_the_same_cleaning(make_broker):
    b = make_broker("compact-freeze", auto_create_topics=False, extra_env=SLOW_ENV)
    topic = unique_topic("compact-freeze")
    written, want = fill(b, topic)
    wait_mid_cleaning(b, topic, CLEANED_BYTES_AT_FAULT[1], "a cleaning under way")
    # One cleaning at a time per node, a third into its first output group: the next `log
    # cleaned` line is this cleaning's.
    mark = b.log_size()
    pid = b.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        # Frozen: a request gets no answer (and by then every thread has stopped: the signal
        # reaches them asynchronously), and the cleaning writes nothing during a second one.
        with pytest.raises(OSError):
            kproto.call(b.bootstrap, kproto.api_versions_v0(1), timeout=1.5)
        frozen_at = cleaned_bytes(b, topic)
        with pytest.raises(OSError):
            kproto.call(b.bootstrap, kproto.api_versions_v0(2), timeout=1.5)
        assert cleaned_bytes(b, topic) == frozen_at, "the cleaning went on while the broker was frozen"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert_valid_compaction(b, topic, written, want, "right after SIGCONT")
    wait_view(b.bootstrap, topic, want, f"{topic} compacted after the freeze", timeout=120)
    assert b.pid == pid and b.is_running(), "the broker was not restarted"
    finished = cleaned_lines(b.log_text(mark), topic)
    assert finished and finished[0].get("applied") == "true", f"the cleaning frozen mid-way: {finished[:1]}"
    assert list_offsets(b.bootstrap, topic)[1] == len(written)
    more = produce(b.bootstrap, topic, fillers("after-freeze", 3))
    assert [o for o, _, _ in more] == [len(written), len(written) + 1, len(written) + 2]
