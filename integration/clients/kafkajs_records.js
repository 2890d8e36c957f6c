#!/usr/bin/env node
// kafkajs 2.2.x records management against a running broker; run by
// tests/test_records_admin.py. Exits non-zero on the first failed check; the last stdout line is
// `RESULT <json>`.
//
//   node kafkajs_records.js <bootstrap> <topic> <offset>
//       admin.deleteTopicRecords on partition 0 of <topic> before <offset>; then
//       admin.fetchTopicOffsets (ListOffsets earliest and latest) must report `low` = <offset>;
//       an offset above the high watermark must fail with OFFSET_OUT_OF_RANGE.
//       RESULT: the offsets fetched after the deletion.

'use strict';

const assert = require('assert/strict');
const path = require('path');
const { Kafka, logLevel } = require(path.join(__dirname, 'node_modules', 'kafkajs'));

const [bootstrap, topic, offset] = process.argv.slice(2);
if (!bootstrap || !topic || offset === undefined) {
  console.error('usage: kafkajs_records.js <bootstrap> <topic> <offset>');
  process.exit(2);
}

// A hung client must not hang the test: pytest's subprocess timeout is the backstop, this the first.
const watchdog = setTimeout(() => {
  console.error('kafkajs_records: overall timeout (60 s)');
  process.exit(3);
}, 60000);

async function main() {
  const kafka = new Kafka({
    clientId: 'kafkajs-records',
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    // deleteTopicRecords looks the leader up in metadata it does not load itself.
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset }] });
    const offsets = await admin.fetchTopicOffsets(topic);
    const p0 = offsets.find((p) => p.partition === 0);
    assert.equal(p0.low, offset, `low watermark after deleteTopicRecords: ${JSON.stringify(offsets)}`);
    console.log(`ok  deleteTopicRecords ${JSON.stringify(offsets)}`);

    const above = String(Number(p0.high) + 10);
    let error;
    try {
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: above }] });
    } catch (e) {
      error = e;
    }
    assert.ok(error, `deleteTopicRecords above the high watermark (${above}) should fail`);
    // The retrier wraps the broker's answer (KafkaJSDeleteTopicRecordsError) as the cause.
    const answer = error.partitions ? error : error.cause || {};
    const types = (answer.partitions || []).map((p) => p.error && p.error.type);
    assert.deepEqual(types, ['OFFSET_OUT_OF_RANGE'], `${error.name}: ${error.message}`);
    console.log(`ok  deleteTopicRecords above the high watermark -> ${types}`);
    console.log(`RESULT ${JSON.stringify({ offsets })}`);
  } finally {
    await admin.disconnect();
  }
}

main().then(
  () => {
    clearTimeout(watchdog);
    process.exit(0);
  },
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
