"""`max.compaction.lag.ms` bounds how long a record stays uncompacted, even on a quiet topic
(issue 15 item 4, Kafka's KIP-354): the cleaner never touches the active segment, so a compacted
log's active segment older than `max.compaction.lag.ms` is rolled when the cleaner looks (every
`cleaner_interval_ms`, 300 ms here), with no append needed, and then cleaned.

- Two compacted topics get the same 20 keys x 5 versions with default `segment.bytes` and
  `segment.ms` (so everything lands in the active segment) and then nothing more. The one with
  `max.compaction.lag.ms` = 2 s reads back as exactly the latest record per key, not before 2 s
  after the first record was sent; the one without still reads back every record at that point.
"""

from __future__ import annotations

import time

from compaction_helpers import CLEANER_ENV, compacted, create_compacted, kp_view, produce, versions, wait_view
from harness import unique_topic

LAG_MS = 2000


def test_a_quiet_compacted_topic_is_cleaned_after_max_compaction_lag(make_broker):
    b = make_broker("compaction-lag", fsync="interval", auto_create_topics=False, extra_env=CLEANER_ENV)
    lagged, control = unique_topic("compact-lag"), unique_topic("compact-nolag")
    base = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}
    create_compacted(b.bootstrap, lagged, configs={**base, "max.compaction.lag.ms": str(LAG_MS)})
    create_compacted(b.bootstrap, control, configs=base)
    mark = b.log_size()
    items = versions(20, 5)
    first_sent = time.time()
    written = produce(b.bootstrap, lagged, items)
    control_written = produce(b.bootstrap, control, items)
    want = compacted(written)
    assert len(want) == 20 and len(written) == 100

    wait_view(b.bootstrap, lagged, want, f"{lagged} compacted with no produce after the lag")
    assert time.time() - first_sent >= LAG_MS / 1000, "cleaned before max.compaction.lag.ms had passed"
    assert kp_view(b.bootstrap, control) == control_written, "no max lag: the active segment stays as written"
    rolls = [line for line in b.log_text(mark).splitlines() if "idle active segment" in line]
    assert any(f"{lagged}-0" in line for line in rolls), rolls
    assert not any(f"{control}-0" in line for line in rolls), rolls
