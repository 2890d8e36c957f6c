#!/usr/bin/env node
// kafkajs 2.2.x against a running broker; run by test_clients.py and test_client_groups.py.
// Exits non-zero on the first failed check. The last stdout line is `RESULT <json>`: what it
// wrote (read back by the Python side with kafka-python) or what its consumers read.
//
//   node kafkajs_check.js check <bootstrap> <topic-prefix>
//       admin (create/describe/partitions/configs/delete), producers (plain, idempotent,
//       gzip, acks 0/1, a 270-character client.id) and the expected failures
//   node kafkajs_check.js list-offsets <bootstrap> <topic> <high watermark per partition, comma-separated>
//       admin.fetchTopicOffsets / fetchTopicOffsetsByTimestamp (ListOffsets v3)
//   node kafkajs_check.js broker-configs <bootstrap> <topic>
//       admin.describeCluster (the controller is a listed broker), describeConfigs on the BROKER
//       resource of the controller, with and without synonyms, and on a topic (null error
//       message, compression.type, sources); alterConfigs on a broker: a static key answers
//       INVALID_REQUEST, log.retention.ms is set (DYNAMIC_BROKER_CONFIG) and removed again.
//   node kafkajs_check.js group <bootstrap> <json: {topic, groupId, members, partitions, start, count}>
//       `members` consumers join `groupId` (eachMessage, commitOffsets after each message); once
//       their assignments are disjoint and cover every partition, an idempotent producer sends
//       msg-<n> for n in start..start+count-1 (n on partition n % partitions); they read until
//       all of those were read and the group's committed offsets equal the high watermarks.
//       RESULT: every message read ([member, partition, offset, n]), the assignments, the numbers
//       whose commit failed, the committed offsets, the groups listed / described meanwhile.

'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const assert = require('assert/strict');
const path = require('path');
const { Kafka, logLevel, CompressionTypes } = require(path.join(__dirname, 'node_modules', 'kafkajs'));

const [mode, bootstrap, arg1, arg2] = process.argv.slice(2);
if (!mode || !bootstrap || !arg1) {
  console.error('usage: kafkajs_check.js check <bootstrap> <prefix> | list-offsets <bootstrap> <topic> <hws> | group <bootstrap> <json>');
  process.exit(2);
}

// A hung client must not hang the test: pytest's subprocess timeout is the backstop, this the first.
const watchdog = setTimeout(() => {
  console.error('kafkajs_check: overall timeout (90 s)');
  process.exit(3);
}, 90000);

function client(clientId, retries = 2) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries, initialRetryTime: 100, maxRetryTime: 1000 },
  });
}

function log(step, detail) {
  console.log(`ok  ${step}${detail === undefined ? '' : ' ' + JSON.stringify(detail)}`);
}

// Runs `fn`, which must throw; returns the error for further checks.
async function expectError(step, fn) {
  let result;
  try {
    result = await fn();
  } catch (e) {
    log(step, { name: e.name, type: e.type, message: e.message });
    return e;
  }
  throw new Error(`${step}: expected an error, got ${JSON.stringify(result)}`);
}

function createTopicErrorTypes(e) {
  assert.equal(e.name, 'KafkaJSAggregateError', `${e.name}: ${e.message}`);
  return e.errors.map((x) => x.type);
}

async function check(prefix) {
  const main = `${prefix}-main`;
  const side = `${prefix}-side`;
  const doomed = `${prefix}-del`;
  const kafka = client('kafkajs-check');
  const admin = kafka.admin();
  await admin.connect();

  // ---- admin: topics -------------------------------------------------------------------
  assert.equal(await admin.createTopics({
    topics: [
      { topic: main, numPartitions: 3 },
      { topic: side, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }] },
      { topic: doomed, numPartitions: 1 },
    ],
  }), true, 'createTopics should create all three topics');
  log('createTopics');
  // kafkajs resolves to false when the topic already exists (TOPIC_ALREADY_EXISTS)
  assert.equal(await admin.createTopics({ topics: [{ topic: main, numPartitions: 3 }] }), false);
  log('createTopics existing -> false');

  let e = await expectError('createTopics "bad topic!"',
    () => admin.createTopics({ topics: [{ topic: 'bad topic!', numPartitions: 1 }] }));
  assert.deepEqual(createTopicErrorTypes(e), ['INVALID_TOPIC_EXCEPTION']);
  e = await expectError('createTopics replicationFactor 3',
    () => admin.createTopics({ topics: [{ topic: `${prefix}-rf3`, numPartitions: 1, replicationFactor: 3 }] }));
  assert.deepEqual(createTopicErrorTypes(e), ['INVALID_REPLICATION_FACTOR']);
  e = await expectError('createTopics unknown config',
    () => admin.createTopics({ topics: [{ topic: `${prefix}-badcfg`, configEntries: [{ name: 'no.such.config', value: '1' }] }] }));
  assert.deepEqual(createTopicErrorTypes(e), ['INVALID_CONFIG']);

  const topics = await admin.listTopics();
  for (const t of [main, side, doomed]) assert.ok(topics.includes(t), `listTopics lacks ${t}`);
  for (const t of ['bad topic!', `${prefix}-rf3`, `${prefix}-badcfg`]) assert.ok(!topics.includes(t), `listTopics has ${t}`);
  log('listTopics');

  const md = await admin.fetchTopicMetadata({ topics: [main] });
  assert.equal(md.topics.length, 1);
  assert.equal(md.topics[0].name, main);
  assert.deepEqual(md.topics[0].partitions.map((p) => p.partitionId).sort(), [0, 1, 2]);
  for (const p of md.topics[0].partitions) {
    assert.equal(p.partitionErrorCode, 0);
    assert.equal(p.leader, 1);
    assert.deepEqual(p.replicas, [1]);
    assert.deepEqual(p.isr, [1]);
  }
  log('fetchTopicMetadata', md.topics[0].partitions.length);

  const cluster = await admin.describeCluster();
  assert.equal(cluster.brokers.length, 1);
  assert.equal(cluster.brokers[0].nodeId, 1);
  assert.equal(`${cluster.brokers[0].host}:${cluster.brokers[0].port}`, bootstrap);
  assert.equal(cluster.controller, 1);
  assert.ok(cluster.clusterId, 'describeCluster: empty clusterId');
  log('describeCluster', cluster);

  await admin.createPartitions({ topicPartitions: [{ topic: side, count: 4 }] });
  const sideMd = await admin.fetchTopicMetadata({ topics: [side] });
  assert.equal(sideMd.topics[0].partitions.length, 4);
  log('createPartitions 2 -> 4');
  e = await expectError('createPartitions 4 -> 1',
    () => admin.createPartitions({ topicPartitions: [{ topic: side, count: 1 }] }));
  assert.equal(e.type, 'INVALID_PARTITIONS');

  // ---- admin: DescribeConfigs --------------------------------------------------------------
  const tcfg = await admin.describeConfigs({ resources: [{ type: 2, name: side }], includeSynonyms: false });
  assert.equal(tcfg.resources.length, 1);
  assert.equal(tcfg.resources[0].errorCode, 0);
  const tentries = Object.fromEntries(tcfg.resources[0].configEntries.map((c) => [c.configName, c]));
  assert.equal(tentries['retention.ms'].configValue, '3600000');
  assert.equal(tentries['retention.ms'].isDefault, false);
  assert.equal(tentries['cleanup.policy'].configValue, 'delete');
  assert.equal(tentries['cleanup.policy'].isDefault, true);
  log('describeConfigs topic', Object.keys(tentries));
  const only = await admin.describeConfigs({
    resources: [{ type: 2, name: side, configNames: ['retention.ms'] }], includeSynonyms: true,
  });
  assert.deepEqual(only.resources[0].configEntries.map((c) => [c.configName, c.configValue]), [['retention.ms', '3600000']]);
  log('describeConfigs topic configNames + synonyms');
  const bcfg = await admin.describeConfigs({ resources: [{ type: 4, name: '1' }], includeSynonyms: false });
  assert.equal(bcfg.resources[0].errorCode, 0);
  const bentries = Object.fromEntries(bcfg.resources[0].configEntries.map((c) => [c.configName, c.configValue]));
  assert.equal(bentries['broker.id'], '1');
  log('describeConfigs broker', Object.keys(bentries));
  e = await expectError('describeConfigs unknown topic',
    () => admin.describeConfigs({ resources: [{ type: 2, name: `${prefix}-nope` }], includeSynonyms: false }));
  assert.equal(e.type, 'UNKNOWN_TOPIC_OR_PARTITION');

  // ---- producers --------------------------------------------------------------------------
  const perProducer = 2500;
  for (const [label, opts] of [['plain', {}], ['idem', { idempotent: true, maxInFlightRequests: 1 }]]) {
    const producer = kafka.producer({ allowAutoTopicCreation: false, ...opts });
    await producer.connect();
    const nextOffset = {};
    for (let n = 0; n < perProducer; n += 500) {
      const messages = [];
      for (let i = n; i < n + 500; i++) {
        messages.push({ key: `k${i}`, value: `${label}-${i}`, partition: i % 3, headers: { h: `${label}:${i}` } });
      }
      const res = await producer.send({ topic: main, acks: -1, messages });
      for (const r of res) {
        assert.equal(r.errorCode, 0);
        // offsets are contiguous per partition across sends
        if (nextOffset[r.partition] !== undefined) assert.equal(Number(r.baseOffset), nextOffset[r.partition]);
        const count = messages.filter((m) => m.partition === r.partition).length;
        nextOffset[r.partition] = Number(r.baseOffset) + count;
      }
    }
    log(`send ${label} x${perProducer}`, nextOffset);

    e = await expectError(`send ${label} to "bad topic!"`,
      () => producer.send({ topic: 'bad topic!', messages: [{ value: 'x' }] }));
    assert.match(e.message, /invalid topic/i);
    await producer.disconnect();
  }

  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const gz = [];
  for (let i = 0; i < 300; i++) gz.push({ key: null, value: `gz-${i}-${'z'.repeat(50)}`, partition: i % 3 });
  const gzRes = await producer.sendBatch({ acks: -1, compression: CompressionTypes.GZIP, topicMessages: [{ topic: side, messages: gz }] });
  assert.deepEqual(gzRes.map((r) => [r.partition, r.errorCode, r.baseOffset]).sort(), [[0, 0, '0'], [1, 0, '0'], [2, 0, '0']]);
  log('sendBatch gzip x300');
  assert.deepEqual(await producer.send({ topic: side, acks: 0, messages: [{ value: 'acks0', partition: 3 }] }), []);
  const a1 = await producer.send({ topic: side, acks: 1, messages: [{ value: 'acks1', partition: 3 }] });
  assert.equal(a1[0].errorCode, 0);
  assert.equal(a1[0].baseOffset, '1', 'the acks=0 message should be at offset 0 of partition 3');
  log('send acks 0 / 1');
  await producer.disconnect();

  // ---- a 270-character client.id -----------------------------------------------------------
  const longId = 'c'.repeat(270);
  const longKafka = client(longId);
  const lp = longKafka.producer({ allowAutoTopicCreation: false });
  await lp.connect();
  const lr = await lp.send({ topic: side, acks: -1, messages: [{ value: 'longcid', partition: 3 }] });
  assert.equal(lr[0].baseOffset, '2');
  await lp.disconnect();
  const la = longKafka.admin();
  await la.connect();
  assert.ok((await la.listTopics()).includes(side));
  await la.disconnect();
  log('client.id of 270 characters: produce + listTopics');

  // ---- delete ------------------------------------------------------------------------------
  await admin.deleteTopics({ topics: [doomed] });
  assert.ok(!(await admin.listTopics()).includes(doomed), 'deleted topic still listed');
  log('deleteTopics');

  await admin.disconnect();
  return {
    main: { topic: main, partitions: 3, labels: ['plain', 'idem'], per_producer: perProducer },
    side: { topic: side, partitions: 4, gzip: 300, p3: ['acks0', 'acks1', 'longcid'] },
  };
}

async function listOffsets(topic, hws) {
  const admin = client('kafkajs-list-offsets', 0).admin();
  await admin.connect();
  try {
    const latest = await admin.fetchTopicOffsets(topic);
    const got = latest.map((p) => [p.partition, p.low, p.high, p.offset]).sort();
    const want = hws.map((hw, p) => [p, '0', String(hw), String(hw)]);
    assert.deepEqual(got, want);
    log('fetchTopicOffsets', got);
    const byTs = await admin.fetchTopicOffsetsByTimestamp(topic, 0);
    assert.deepEqual(byTs.map((p) => [p.partition, p.offset]).sort(), hws.map((_, p) => [p, '0']));
    log('fetchTopicOffsetsByTimestamp(0)');
    return { latest: got };
  } finally {
    await admin.disconnect();
  }
}

async function brokerConfigs(topic) {
  const admin = client('kafkajs-broker-configs').admin();
  await admin.connect();
  try {
    const cluster = await admin.describeCluster();
    const ids = cluster.brokers.map((b) => b.nodeId);
    assert.ok(ids.includes(cluster.controller), `controller ${cluster.controller} is not among the brokers ${ids}`);
    log('describeCluster', cluster);

    const broker = String(cluster.controller);
    const plain = await admin.describeConfigs({ resources: [{ type: 4, name: broker }], includeSynonyms: false });
    const [res] = plain.resources;
    assert.equal(res.errorCode, 0);
    assert.equal(res.errorMessage, null, 'Kafka sends a null error message on success');
    const entries = Object.fromEntries(res.configEntries.map((e) => [e.configName, e]));
    assert.equal(entries['log.retention.ms'].configSource, 5, 'a default is DEFAULT_CONFIG');
    assert.equal(entries['compression.type'].configValue, 'producer');
    assert.deepEqual(entries['log.retention.ms'].configSynonyms, [], 'no synonyms unless asked');
    log('describeConfigs broker', Object.keys(entries).length);

    const syn = await admin.describeConfigs({
      resources: [{ type: 4, name: broker, configNames: ['log.retention.ms'] }], includeSynonyms: true,
    });
    const [entry] = syn.resources[0].configEntries;
    assert.deepEqual(entry.configSynonyms.map((s) => [s.configName, s.configSource]), [['log.retention.ms', 5]]);
    log('describeConfigs broker synonyms', entry.configSynonyms);

    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const t = await admin.describeConfigs({ resources: [{ type: 2, name: topic }], includeSynonyms: true });
    assert.equal(t.resources[0].errorMessage, null);
    const tentries = Object.fromEntries(t.resources[0].configEntries.map((e) => [e.configName, e]));
    assert.equal(tentries['compression.type'].configValue, 'producer');
    assert.equal(tentries['compression.type'].configSource, 5);
    log('describeConfigs topic', Object.keys(tentries).length);

    const e = await expectError('alterConfigs broker, static key', () => admin.alterConfigs({
      resources: [{ type: 4, name: broker, configEntries: [{ name: 'num.partitions', value: '3' }] }],
    }));
    assert.equal(e.type, 'INVALID_REQUEST', `${e.name}: ${e.message}`);
    // A run-time key: set on this broker (to its default: the broker is shared), reported as
    // DYNAMIC_BROKER_CONFIG, then removed again by replacing the set with an empty one.
    const alterBroker = (configEntries) => admin.alterConfigs({ resources: [{ type: 4, name: broker, configEntries }] });
    await alterBroker([{ name: 'log.retention.ms', value: '604800000' }]);
    const dyn = await admin.describeConfigs({ resources: [{ type: 4, name: broker, configNames: ['log.retention.ms'] }] });
    const [set] = dyn.resources[0].configEntries;
    assert.deepEqual([set.configSource, set.readOnly], [2, false]);
    await alterBroker([]);
    const back = await admin.describeConfigs({ resources: [{ type: 4, name: broker, configNames: ['log.retention.ms'] }] });
    assert.equal(back.resources[0].configEntries[0].configSource, 5);
    log('alterConfigs broker', set);
    return { controller: cluster.controller, brokers: ids };
  } finally {
    await admin.disconnect();
  }
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

function disjointCover(assignments, partitions) {
  const all = assignments.flat();
  return assignments.every((a) => a.length > 0) && new Set(all).size === all.length && all.length === partitions;
}

async function group({ topic, groupId, members, partitions, start, count }) {
  const kafka = client('kafkajs-group', 5);
  const admin = kafka.admin();
  await admin.connect();
  const consumed = [];
  const commitFailed = [];
  const errors = [];
  const assignments = Array.from({ length: members }, () => []);
  const joins = [];
  const consumers = [];
  try {
    for (let i = 0; i < members; i++) {
      const c = kafka.consumer({
        groupId, sessionTimeout: 10000, heartbeatInterval: 1000, rebalanceTimeout: 20000,
        allowAutoTopicCreation: false, maxWaitTimeInMs: 200,
      });
      c.on(c.events.GROUP_JOIN, (e) => {
        assignments[i] = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
        joins.push({ member: i, memberId: e.payload.memberId, isLeader: e.payload.isLeader,
          protocol: e.payload.groupProtocol, assignment: assignments[i] });
      });
      c.on(c.events.CRASH, (e) => errors.push(`member ${i} crashed: ${e.payload.error && e.payload.error.message}`));
      await c.connect();
      await c.subscribe({ topic, fromBeginning: true });
      consumers.push(c);
    }
    // All members start together (run() resolves once a member's first join is done; one by
    // one, each would join a generation of its own).
    await Promise.all(consumers.map((c, i) => c.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const n = Number(message.value.toString().slice(4));
        consumed.push([i, partition, Number(message.offset), n]);
        try {
          await c.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        } catch (e) {
          commitFailed.push(n);
          errors.push(`member ${i} commit of ${topic}/${partition}@${message.offset}: ${e.name} ${e.type || ''} ${e.message}`);
        }
      },
    })));
    await waitFor(`disjoint assignments covering ${partitions} partitions`,
      () => disjointCover(assignments, partitions), 30000);
    log('group split', assignments);
    const described = await admin.describeGroups([groupId]);
    const listed = await admin.listGroups();

    if (count > 0) {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      const messages = [];
      for (let n = start; n < start + count; n++) {
        messages.push({ value: `msg-${String(n).padStart(8, '0')}`, partition: n % partitions });
      }
      await producer.send({ topic, acks: -1, messages });
      await producer.disconnect();
      log(`produced ${count} (idempotent)`);
    }
    const wanted = (n) => n >= start && n < start + count;
    await waitFor(`${count} messages read`, () => new Set(consumed.map((r) => r[3]).filter(wanted)).size >= count, 40000);
    const hws = Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    let committed;
    await waitFor('committed offsets at the high watermarks', async () => {
      const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
      committed = Object.fromEntries(t.partitions.map((p) => [p.partition, Number(p.offset)]));
      return Object.keys(hws).every((p) => committed[p] === hws[p]);
    }, 20000);
    log('committed', committed);
    // Copies: the disconnects below rebalance the leaving group and change both.
    return {
      consumed, assignments: assignments.map((a) => a.slice()), commitFailed, errors, joins: joins.slice(),
      committed, hws,
      described: described.groups.map((g) => ({ groupId: g.groupId, state: g.state, protocolType: g.protocolType,
        protocol: g.protocol, members: g.members.map((m) => m.clientId) })),
      listed: listed.groups,
    };
  } finally {
    for (const c of consumers) await c.disconnect();
    await admin.disconnect();
  }
}

(async () => {
  let result;
  if (mode === 'check') result = await check(arg1);
  else if (mode === 'list-offsets') result = await listOffsets(arg1, (arg2 || '').split(',').map(Number));
  else if (mode === 'broker-configs') result = await brokerConfigs(arg1);
  else if (mode === 'group') result = await group(JSON.parse(arg1));
  else throw new Error(`unknown mode ${mode}`);
  console.log(`RESULT ${JSON.stringify(result)}`);
  clearTimeout(watchdog);
})().catch((err) => {
  console.error(`FAILED: ${err && err.stack ? err.stack : err}`);
  if (err && err.errors) console.error(JSON.stringify(err.errors.map((x) => [x.name, x.type, x.message])));
  process.exit(1);
});
