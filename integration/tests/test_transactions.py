"""Kafka transactions (KIP-98) on a 3-node cluster: what a client sees of committed, aborted, open,
fenced and timed-out transactions, with confluent-kafka (librdkafka) and kafka-python producers.

Every topic has 3 partitions, RF 3 (min ISR 2). Values are unique and numbered, so "exactly the
committed records, each once, in order" is a list equality per partition (txn_helpers.assert_exactly).
Reads end at END markers appended by `consume_all` (txn_helpers.py): a read_committed read reaches
them only once the last stable offset has passed every transaction before them.

Kafka's documented behaviour asserted here:
- read_committed returns only records of committed transactions (and non-transactional ones), in
  offset order; read_uncommitted returns every record, aborted ones included.
- Each transaction writes one control record (its COMMIT/ABORT marker) per partition it touched;
  markers take an offset but are never returned to applications.
- ListOffsets READ_COMMITTED answers the last stable offset: the first offset of the earliest open
  transaction, else the high watermark. Nothing at or past it reaches a read_committed consumer.
- Consumed offsets sent with the transaction (TxnOffsetCommit) become the group's committed offsets
  when it commits, never when it aborts, and are not visible while it is open. OffsetFetch with
  require_stable (what read_committed consumers send) answers UNSTABLE_OFFSET_COMMIT for a
  partition with such offsets pending, and the consumer waits for the transaction to end.
- InitProducerId for a transactional.id aborts that id's open transaction and fences the older
  producer: its further writes and its commit fail with a fatal PRODUCER_FENCED / INVALID_PRODUCER_EPOCH.
- The coordinator aborts a transaction open longer than its transaction.timeout.ms, not sooner.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaProducer
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KpTopicPartition

from cluster import hold_for
from harness import unique_topic, wait_until
from replication_helpers import create_topic
from txn_helpers import (FENCED_CODES, READ_COMMITTED, READ_UNCOMMITTED, TXN_CALL_TIMEOUT, Delivered, Reader,
                         assert_exactly, bootstrap_all, by_partition, ck_reader_config, consume_all, end_offsets,
                         finish_txn, group_committed, last_stable_offsets, numbered, produce_items, produce_txn,
                         seal, txn_cluster, txn_producer)

P = 3


@pytest.fixture(scope="module")
def tcluster(tmp_path_factory):
    with txn_cluster(tmp_path_factory, "txn-cluster") as c:
        yield c


def new_topic(cluster, name: str) -> str:
    topic = unique_topic(name)
    create_topic(cluster, topic, partitions=P)
    return topic


def offsets_settle(bs: str, topic: str, want: dict[int, int], what: str, timeout: float = 30.0) -> None:
    """Waits until both the high watermarks and the last stable offsets are `want`."""
    wait_until(lambda: end_offsets(bs, topic, P) == want and last_stable_offsets(bs, topic, P) == want, timeout,
               f"{what}: high watermark = last stable offset = {want}", interval=0.2)


def test_read_committed_returns_exactly_the_committed_transactions(tcluster):
    """10 transactions of 50 records over 3 partitions, every 3rd aborted: read_committed returns
    the 350 committed records, each once, in produce order, at their acknowledged offsets;
    read_uncommitted returns all 500. Each partition's log holds one marker per transaction."""
    bs = bootstrap_all(tcluster)
    topic = new_topic(tcluster, "txn-mix")
    prod = txn_producer(bs, unique_topic("tid-mix"))
    prod.init_transactions(TXN_CALL_TIMEOUT)
    d = Delivered()
    every, committed = [], []
    for t in range(10):
        items = numbered(f"mix{t:02d}", t * 50, 50, P)
        produce_txn(prod, topic, items, t % 3 != 2, d)
        every += items
        committed += items if t % 3 != 2 else []
    assert len(committed) == 350

    # every partition took part in all 10 transactions: its records plus 10 markers
    offsets_settle(bs, topic, {p: len(v) + 10 for p, v in by_partition(every, P).items()}, "after 10 transactions")

    rc = consume_all(bs, topic, P, READ_COMMITTED)
    assert_exactly(rc, by_partition(committed, P), "read_committed")
    ru = consume_all(bs, topic, P, READ_UNCOMMITTED)
    assert_exactly(ru, by_partition(every, P), "read_uncommitted")
    for what, recs in (("read_committed", rc), ("read_uncommitted", ru)):
        moved = [(v, d.ok[v], (p, o)) for p, rs in recs.items() for o, v in rs if d.ok[v] != (p, o)]
        assert not moved, f"{what}: records not at their acknowledged (partition, offset): {moved[:5]}"


def test_open_transaction_holds_back_the_last_stable_offset(tcluster):
    """While a transaction is open (produced and acknowledged, not committed), read_uncommitted
    sees its records, read_committed sees neither them nor a later non-transactional record, and
    ListOffsets READ_COMMITTED stops at its first offset; after the commit everything arrives."""
    bs = bootstrap_all(tcluster)
    topic = new_topic(tcluster, "txn-open")
    prod = txn_producer(bs, unique_topic("tid-open"))
    prod.init_transactions(TXN_CALL_TIMEOUT)
    d = Delivered()
    first = numbered("first", 0, 30, P)
    produce_txn(prod, topic, first, True, d)

    rc, ru = Reader(bs, topic, P, READ_COMMITTED), Reader(bs, topic, P, READ_UNCOMMITTED)
    try:
        ends1 = seal(bs, topic, P)
        rc.read_past(ends1, 60, "read_committed up to the first END markers", bs)
        ru.read_past(ends1, 60, "read_uncommitted up to the first END markers", bs)

        opened = numbered("open", 100, 30, P)
        prod.begin_transaction()
        produce_items(prod, topic, opened, d)
        offs = d.offsets(v for _p, v in opened)
        first_open = {p: min(o) for p, o in offs.items()}
        assert first_open == {p: ends1[p] + 1 for p in range(P)}, (first_open, ends1)
        ru.read_past({p: max(o) for p, o in offs.items()}, 30, "read_uncommitted reading the open transaction", bs)
        ends2 = seal(bs, topic, P)  # non-transactional, after the open transaction
        wait_until(lambda: last_stable_offsets(bs, topic, P) == first_open, 15,
                   f"last stable offsets at the open transaction's first offsets {first_open}", interval=0.2)
        assert end_offsets(bs, topic, P) == {p: ends2[p] + 1 for p in range(P)}

        def nothing_past_the_first_seal():
            rc.poll(0.2)
            return not [(p, o) for p in range(P) for o, _v in rc.records[p] if o > ends1[p]]
        hold_for(nothing_past_the_first_seal, 3.0, "read_committed returns nothing of (or after) the open transaction")

        # A group's lag rows show the last stable offset beside the high watermark.
        group = unique_topic("lso-group")
        admin = AdminClient({"bootstrap.servers": bs})  # must outlive its future
        admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, 0) for p in range(P)])])[group].result()

        def lag_rows():
            for i in tcluster.members:
                groups = tcluster.node(i).get("/admin/groups").json()["groups"]
                for g in groups:
                    if g["group_id"] == group:
                        return {r["partition"]: (r["high_watermark"], r["last_stable_offset"]) for r in g["partitions"]}
            return None
        want_rows = {p: (ends2[p] + 1, first_open[p]) for p in range(P)}
        wait_until(lambda: lag_rows() == want_rows, 30, f"/admin/groups rows (high watermark, LSO) {want_rows}")
        assert last_stable_offsets(bs, topic, P) == first_open, "the last stable offset moved while open"

        prod.commit_transaction(TXN_CALL_TIMEOUT)
        rc.read_past(ends2, 60, "read_committed after the commit", bs)
        for p, want in by_partition(opened, P).items():
            after = [(o, v) for o, v in rc.records[p] if o > ends1[p]]
            assert [v for _o, v in after[:-1]] == want and after[-1][0] == ends2[p], (
                f"partition {p} after the commit: {after[:3]}...{after[-2:]}; wanted the transaction's "
                f"{len(want)} records, then the END marker at {ends2[p]}")
        # the commit marker follows the second END marker
        offsets_settle(bs, topic, {p: ends2[p] + 2 for p in range(P)}, "after the commit")
    finally:
        rc.close()
        ru.close()


def test_consume_transform_produce_commits_offsets_only_with_the_transaction(tcluster):
    """A read_committed group consumer and a transactional producer: each batch's output and its
    input offsets go into one transaction (send_offsets_to_transaction). The 4th batch is aborted:
    its offsets are not committed, the consumer rewinds to the committed offsets and redoes it.
    In the end the output holds each input record exactly once (read_committed) and the group's
    committed offsets are the input's end offsets."""
    bs = bootstrap_all(tcluster)
    inp, out = new_topic(tcluster, "ctp-in"), new_topic(tcluster, "ctp-out")
    group = unique_topic("ctp-group")
    n, batch, abort_at = 300, 25, 4
    inputs = numbered("in", 0, n, P)
    loader = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    produce_items(loader, inp, inputs, Delivered())
    input_end = {p: n // P for p in range(P)}

    consumer = Consumer(ck_reader_config(bs, READ_COMMITTED, **{"group.id": group, "client.id": "ctp-consumer"}))
    consumer.subscribe([inp])
    prod = txn_producer(bs, unique_topic("tid-ctp"))
    prod.init_transactions(TXN_CALL_TIMEOUT)
    d = Delivered()
    batches, aborted, pending_checked = 0, [], False
    # next offset to process per partition: what the consumer read, rewound to the committed
    # offsets after the abort (the input has no transactions, so offsets are contiguous)
    pos = {p: 0 for p in range(P)}
    try:
        deadline = time.monotonic() + 200
        while pos != input_end:
            assert time.monotonic() < deadline, (f"consume-transform-produce unfinished after {batches} batches: "
                                                 f"at {pos}, committed {group_committed(bs, group, inp)}")
            msgs = [m for m in consumer.consume(num_messages=batch, timeout=1.0) if m.error() is None]
            if not msgs:
                continue
            for m in msgs:
                assert m.offset() == pos[m.partition()], f"read {inp}-{m.partition()}@{m.offset()}, expected {pos}"
                pos[m.partition()] = m.offset() + 1
            batches += 1
            before = group_committed(bs, group, inp)
            prod.begin_transaction()
            items = [(m.partition(), b"out-" + m.value()) for m in msgs]
            produce_items(prod, out, items, d)
            sent = {p: o for p, o in pos.items() if o > 0}
            prod.send_offsets_to_transaction([TopicPartition(inp, p, o) for p, o in sent.items()],
                                             consumer.consumer_group_metadata(), TXN_CALL_TIMEOUT)
            if not pending_checked and before:
                assert group_committed(bs, group, inp) == before, "offsets of an open transaction visible"
                pending_checked = True
            if batches == abort_at:
                prod.abort_transaction(TXN_CALL_TIMEOUT)
                aborted += [v for _p, v in items]
                hold_for(lambda: group_committed(bs, group, inp) == before, 2.0,
                         f"the aborted batch's offsets {sent} not committed (stays {before})")
                for tp in consumer.committed([TopicPartition(inp, p) for p in range(P)], timeout=30):
                    pos[tp.partition] = max(tp.offset, 0)
                    consumer.seek(TopicPartition(inp, tp.partition, pos[tp.partition]))
                assert pos == {p: before.get(p, 0) for p in range(P)}, (pos, before)
            else:
                prod.commit_transaction(TXN_CALL_TIMEOUT)
                wait_until(lambda: group_committed(bs, group, inp) == sent, 30,
                           f"batch {batches}: committed offsets {sent}", interval=0.2)
    finally:
        consumer.close()

    assert batches > abort_at and aborted, f"{batches} batches, aborted {len(aborted)} records"
    assert pending_checked
    assert group_committed(bs, group, inp) == input_end
    want = {p: [b"out-" + v for v in vs] for p, vs in by_partition(inputs, P).items()}
    assert_exactly(consume_all(bs, out, P, READ_COMMITTED), want, "output, read_committed")
    ru = Counter(v for recs in consume_all(bs, out, P, READ_UNCOMMITTED).values() for _o, v in recs)
    assert sum(ru.values()) == n + len(aborted), "read_uncommitted: every output once plus the aborted batch"
    assert all(ru[v] == 2 for v in aborted), "read_uncommitted: the aborted batch and its redo"


def test_read_committed_consumer_waits_for_the_offsets_of_an_open_transaction(tcluster):
    """While a transaction holds consumed offsets for a group, OffsetFetch with require_stable
    answers UNSTABLE_OFFSET_COMMIT for that partition (without it, the offset committed before);
    a read_committed consumer's committed() therefore waits, and returns the transaction's offset
    once it commits, so a consumer taking the partition over cannot restart from a stale offset."""
    bs = bootstrap_all(tcluster)
    inp = new_topic(tcluster, "stable-in")
    group = unique_topic("stable-group")
    tp = TopicPartition(inp, 1)
    prod = txn_producer(bs, unique_topic("tid-stable"))
    prod.init_transactions(TXN_CALL_TIMEOUT)
    # A first transaction commits offset 3, so there is an older offset to (not) see.
    metadata = Consumer(ck_reader_config(bs, READ_COMMITTED, **{"group.id": group})).consumer_group_metadata()
    for offset, finish in ((3, prod.commit_transaction), (7, None)):
        prod.begin_transaction()
        prod.send_offsets_to_transaction([TopicPartition(inp, 1, offset)], metadata, TXN_CALL_TIMEOUT)
        if finish:
            finish(TXN_CALL_TIMEOUT)
    wait_until(lambda: group_committed(bs, group, inp) == {1: 3}, 30, "offset 3 committed")

    admin = AdminClient({"bootstrap.servers": bs})

    def fetch(require_stable: bool) -> tuple[int, object]:
        req = [ConsumerGroupTopicPartitions(group, [TopicPartition(inp, 1), TopicPartition(inp, 0)])]
        res = admin.list_consumer_group_offsets(req, require_stable=require_stable, request_timeout=15)[group]
        return {t.partition: (t.offset, t.error.code() if t.error else None) for t in res.result().topic_partitions}

    assert fetch(False) == {1: (3, None), 0: (-1001, None)}
    assert fetch(True) == {1: (-1001, KafkaError.UNSTABLE_OFFSET_COMMIT), 0: (-1001, None)}

    answers: dict[str, object] = {}
    consumers = {iso: Consumer(ck_reader_config(bs, iso, **{"group.id": group, "client.id": f"stable-{iso}"}))
                 for iso in (READ_COMMITTED, READ_UNCOMMITTED)}

    def committed(iso: str) -> None:
        try:
            answers[iso] = consumers[iso].committed([tp], timeout=TXN_CALL_TIMEOUT)[0].offset
        except KafkaException as e:
            answers[iso] = e

    threads = {iso: threading.Thread(target=committed, args=(iso,), daemon=True) for iso in consumers}
    try:
        for t in threads.values():
            t.start()
        threads[READ_UNCOMMITTED].join(30)
        assert answers.get(READ_UNCOMMITTED) == 3, answers
        hold_for(lambda: READ_COMMITTED not in answers, 2.0, "read_committed committed() waits for the transaction")
        prod.commit_transaction(TXN_CALL_TIMEOUT)
        threads[READ_COMMITTED].join(TXN_CALL_TIMEOUT)
        assert answers.get(READ_COMMITTED) == 7, answers
        assert fetch(True) == {1: (7, None), 0: (-1001, None)}
    finally:
        for c in consumers.values():
            c.close()


def test_zombie_producer_is_fenced_and_its_open_transaction_aborted(tcluster):
    """Producer A (transactional.id X) has an open transaction; producer B with X calls
    init_transactions, which aborts A's transaction and fences A. B commits. A's next produce
    or commit fails fatally (fenced); A's records are never visible to read_committed."""
    bs = bootstrap_all(tcluster)
    topic = new_topic(tcluster, "txn-zombie")
    tid = unique_topic("tid-zombie")
    da, db = Delivered(), Delivered()
    a = txn_producer(bs, tid)
    a.init_transactions(TXN_CALL_TIMEOUT)
    a_items = numbered("zombie-a", 0, 30, P)
    a.begin_transaction()
    produce_items(a, topic, a_items, da)

    b = txn_producer(bs, tid)
    b.init_transactions(TXN_CALL_TIMEOUT)
    # init_transactions returns once the previous instance's transaction is completed (aborted)
    # (A's last record, then its abort marker)
    hw = {p: max(offs) + 2 for p, offs in da.offsets(v for _p, v in a_items).items()}
    offsets_settle(bs, topic, hw, "A's transaction aborted by B's init_transactions", timeout=15)
    b_items = numbered("zombie-b", 100, 30, P)
    produce_txn(b, topic, b_items, True, db)

    late = Delivered()
    err = None
    try:
        a.produce(topic, b"zombie-a-late", partition=0, on_delivery=late)
        a.commit_transaction(TXN_CALL_TIMEOUT)
    except KafkaException as exc:
        err = exc.args[0]
    a.flush(30)
    assert err is not None, "the fenced producer's commit succeeded"
    assert err.fatal() or err.code() in FENCED_CODES, f"zombie's error is not a fatal fencing error: {err}"
    assert b"zombie-a-late" not in late.ok, "the fenced producer's late record was acknowledged"

    rc = consume_all(bs, topic, P, READ_COMMITTED)
    assert_exactly(rc, by_partition(b_items, P), "read_committed: B's transaction only")
    ru = consume_all(bs, topic, P, READ_UNCOMMITTED)
    assert_exactly(ru, by_partition(a_items + b_items, P), "read_uncommitted: A's aborted records, then B's")


def test_kafka_python_transactions_commit_abort_and_offsets(tcluster):
    """kafka-python's KafkaProducer(transactional_id=...): committed and aborted transactions, and
    send_offsets_to_transaction for a group (generation -1) in a committed and an aborted one;
    checked with confluent read_committed / read_uncommitted consumers and OffsetFetch."""
    bs = bootstrap_all(tcluster)
    topic = new_topic(tcluster, "txn-kp")
    group = unique_topic("kp-txn-group")
    p = KafkaProducer(bootstrap_servers=bs.split(","), transactional_id=unique_topic("tid-kp"), linger_ms=5,
                      request_timeout_ms=30000, max_block_ms=60000)
    c1, ab, c2 = numbered("kp-c1", 0, 60, P), numbered("kp-ab", 100, 60, P), numbered("kp-c2", 200, 60, P)
    tp0 = KpTopicPartition(topic, 0)
    try:
        p.init_transactions()
        for items, offsets, commit in ((c1, None, True), (ab, None, False), (c2, 7, True), ([], 99, False)):
            p.begin_transaction()
            futs = [p.send(topic, value=v, partition=q) for q, v in items]
            p.flush(60)
            assert all(f.get(timeout=0).partition == q for f, (q, _v) in zip(futs, items))
            if offsets is not None:
                p.send_offsets_to_transaction({tp0: OffsetAndMetadata(offsets, "", -1)}, group)
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
            if offsets is not None and commit:
                wait_until(lambda: group_committed(bs, group, topic) == {0: offsets}, 30,
                           f"kafka-python's transactional offset {offsets} committed", interval=0.2)
    finally:
        p.close(timeout=10)

    assert group_committed(bs, group, topic) == {0: 7}, "an aborted transaction's offset was committed"
    assert_exactly(consume_all(bs, topic, P, READ_COMMITTED), by_partition(c1 + c2, P), "read_committed")
    assert_exactly(consume_all(bs, topic, P, READ_UNCOMMITTED), by_partition(c1 + ab + c2, P), "read_uncommitted")


def test_transaction_timeout_aborts_an_abandoned_transaction(tcluster):
    """A producer (transaction.timeout.ms 8000) produces in a transaction and then does nothing:
    the coordinator aborts it on its own, after the timeout and not before. The last stable offset
    moves past it without its records ever reaching read_committed; the producer's commit fails;
    the transactional.id still works afterwards."""
    bs = bootstrap_all(tcluster)
    topic = new_topic(tcluster, "txn-timeout")
    tid = unique_topic("tid-timeout")
    timeout_s = 8.0
    prod = txn_producer(bs, tid, **{"transaction.timeout.ms": int(timeout_s * 1000), "message.timeout.ms": 6000})
    prod.init_transactions(TXN_CALL_TIMEOUT)
    d = Delivered()
    before = numbered("to-before", 0, 30, P)
    produce_txn(prod, topic, before, True, d)

    stale = numbered("to-stale", 100, 30, P)
    began = time.monotonic()
    prod.begin_transaction()
    produce_items(prod, topic, stale, d)
    first_stale = {p: min(o) for p, o in d.offsets(v for _p, v in stale).items()}
    assert last_stable_offsets(bs, topic, P) == first_stale, "the transaction is not open"

    # The producer is left alone now. The END markers become readable once the coordinator aborted it.
    rc = Reader(bs, topic, P, READ_COMMITTED)
    try:
        ends = seal(bs, topic, P)
        rc.read_past(ends, 90, "read_committed past the abandoned transaction (aborted by the coordinator)", bs)
        waited = time.monotonic() - began
        seen = rc.values()
    finally:
        rc.close()
    assert waited >= timeout_s - 0.5, f"the transaction ended {waited:.1f}s after it began, before its timeout"
    assert not (seen & {v for _p, v in stale}), "records of the timed-out transaction were returned"

    outcome, errors = finish_txn(prod, commit=True)
    assert errors and outcome != "committed", f"commit after the timeout: {outcome}, errors {errors}"
    if outcome == "failed":  # fatal (fenced): the application makes a new producer with the same id
        prod = txn_producer(bs, tid)
        prod.init_transactions(TXN_CALL_TIMEOUT)
    after = numbered("to-after", 200, 30, P)
    produce_txn(prod, topic, after, True, d)
    assert_exactly(consume_all(bs, topic, P, READ_COMMITTED), by_partition(before + after, P),
                   "read_committed after the timeout")
