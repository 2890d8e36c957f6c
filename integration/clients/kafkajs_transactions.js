#!/usr/bin/env node
// kafkajs 2.2.x transactions against a running broker; run by test_client_transactions.py.
// Exits non-zero on the first failed step; the last stdout line is `RESULT <json>`.
//
//   node kafkajs_transactions.js <bootstrap> <json: {topic, partitions, transactionalId, groupId}>
//
// A producer with transactionalId (idempotent, maxInFlightRequests 1) runs, in order:
//   c1      30 records (value kjs-c1-<n>, partition n % partitions), commit
//   a1      30 records, abort
//   c2      30 records + sendOffsets(groupId, partition 0 -> 11), commit
//   a2      sendOffsets(groupId, partition 0 -> 99) only, abort
//   zombie  30 records, left open; a second producer with the same transactionalId then calls
//           transaction() (InitProducerId: aborts the open one and fences the first producer),
//           sends 30 records (c3) and commits; the first producer's commit must throw
// then an idempotent (non-transactional) producer appends END-<partition> to every partition, and
// a kafkajs consumer (group `<groupId>-reader`, readUncommitted false, i.e. READ_COMMITTED) reads
// from the beginning until every END.
// RESULT: {sent: {label: [[partition, value, offset]]}, fenced: {name, type, message},
//          readCommitted: [[partition, offset, value]]}; the Python side checks what is visible.

'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const path = require('path');
const { Kafka, logLevel } = require(path.join(__dirname, 'node_modules', 'kafkajs'));

const [bootstrap, spec] = process.argv.slice(2);
if (!bootstrap || !spec) {
  console.error('usage: kafkajs_transactions.js <bootstrap> <json>');
  process.exit(2);
}
const { topic, partitions, transactionalId, groupId } = JSON.parse(spec);

// A hung client must not hang the test: pytest's subprocess timeout is the backstop, this the first.
const watchdog = setTimeout(() => {
  console.error('kafkajs_transactions: overall timeout (150 s)');
  process.exit(3);
}, 150000);

const kafka = new Kafka({
  clientId: 'kafkajs-txn',
  brokers: bootstrap.split(','),
  logLevel: logLevel.ERROR,
  connectionTimeout: 5000,
  requestTimeout: 30000,
  // CONCURRENT_TRANSACTIONS and COORDINATOR_LOAD_IN_PROGRESS are retried
  retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 },
});

function log(step, detail) {
  console.log(`ok  ${step}${detail === undefined ? '' : ' ' + JSON.stringify(detail)}`);
}

async function waitFor(what, cond, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function txnProducer() {
  return kafka.producer({ transactionalId, maxInFlightRequests: 1, idempotent: true, allowAutoTopicCreation: false });
}

const sent = {};

// Sends `label`'s 30 records in `txn`; records [partition, value, offset] from the acks.
async function send(txn, label, start) {
  const messages = [];
  for (let n = start; n < start + 30; n++) messages.push({ value: `kjs-${label}-${n}`, partition: n % partitions });
  const metas = await txn.send({ topic, acks: -1, messages });
  const base = Object.fromEntries(metas.map((m) => [m.partition, BigInt(m.baseOffset)]));
  const seen = {};
  sent[label] = messages.map((m) => {
    const k = seen[m.partition] || 0n;
    seen[m.partition] = k + 1n;
    return [m.partition, m.value, Number(base[m.partition] + k)];
  });
}

async function transactions() {
  const producer = txnProducer();
  await producer.connect();
  const offsets = (offset) => ({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset }] }] });
  try {
    let txn = await producer.transaction();
    await send(txn, 'c1', 0);
    await txn.commit();
    log('c1 committed');

    txn = await producer.transaction();
    await send(txn, 'a1', 100);
    await txn.abort();
    log('a1 aborted');

    txn = await producer.transaction();
    await send(txn, 'c2', 200);
    await txn.sendOffsets(offsets('11'));
    await txn.commit();
    log('c2 committed with offsets');

    txn = await producer.transaction();
    await txn.sendOffsets(offsets('99'));
    await txn.abort();
    log('a2 (offsets only) aborted');

    const zombieTxn = await producer.transaction();
    await send(zombieTxn, 'zombie', 300);
    log('zombie transaction open');

    const successor = txnProducer();
    await successor.connect();
    try {
      const txn2 = await successor.transaction(); // InitProducerId: aborts the open transaction, fences `producer`
      await send(txn2, 'c3', 400);
      await txn2.commit();
      log('c3 committed by the successor');
    } finally {
      await successor.disconnect();
    }

    let fenced = null;
    try {
      await zombieTxn.commit();
    } catch (e) {
      fenced = { name: e.name, type: e.type || (e.cause && e.cause.type) || null, message: e.message };
    }
    if (!fenced) throw new Error('the fenced producer committed its transaction');
    log('zombie commit refused', fenced);
    return fenced;
  } finally {
    await producer.disconnect();
  }
}

async function readCommitted() {
  const plain = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await plain.connect();
  const ends = {};
  try {
    const msgs = [...Array(partitions).keys()].map((p) => ({ value: `END-${p}`, partition: p }));
    for (const m of await plain.send({ topic, acks: -1, messages: msgs })) ends[m.partition] = Number(m.baseOffset);
  } finally {
    await plain.disconnect();
  }
  const records = [];
  const done = new Set();
  const consumer = kafka.consumer({ groupId: `${groupId}-reader`, readUncommitted: false, maxWaitTimeInMs: 200,
    sessionTimeout: 10000, heartbeatInterval: 1000, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const offset = Number(message.offset);
        if (offset >= ends[partition]) done.add(partition);
        else records.push([partition, offset, message.value.toString()]);
      },
    });
    await waitFor(`the END markers ${JSON.stringify(ends)} read with READ_COMMITTED`, () => done.size === partitions, 60000);
  } finally {
    await consumer.disconnect();
  }
  log('read committed', { records: records.length, ends });
  return records;
}

(async () => {
  const fenced = await transactions();
  const records = await readCommitted();
  console.log(`RESULT ${JSON.stringify({ sent, fenced, readCommitted: records })}`);
  clearTimeout(watchdog);
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
