#!/usr/bin/env node
// kafkajs 2.2.x over a secured listener; run by tests/test_listener_security.py.
//
//   node kafkajs_secure.js <bootstrap> <json: {topic, count, ssl?: {ca, cert?, key?}, sasl?: {mechanism, username, password}}>
//       produces `count` records (idempotent, acks=all), reads them back with a consumer group and
//       prints `RESULT {"produced": n, "consumed": [values]}`; a refused login prints
//       `RESULT {"error": "<kafkajs error name>", "message": "..."}` and exits 0.

'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const fs = require('fs');
const path = require('path');
const { Kafka, logLevel } = require(path.join(__dirname, 'node_modules', 'kafkajs'));

const [bootstrap, json] = process.argv.slice(2);
if (!bootstrap || !json) {
  console.error('usage: kafkajs_secure.js <bootstrap> <json>');
  process.exit(2);
}
const opts = JSON.parse(json);
const watchdog = setTimeout(() => {
  console.error('kafkajs_secure: overall timeout (60 s)');
  process.exit(3);
}, 60000);

function kafka() {
  const config = {
    clientId: 'kafkajs-secure',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  };
  if (opts.ssl) {
    config.ssl = { ca: [fs.readFileSync(opts.ssl.ca, 'utf-8')] };
    if (opts.ssl.cert) {
      config.ssl.cert = fs.readFileSync(opts.ssl.cert, 'utf-8');
      config.ssl.key = fs.readFileSync(opts.ssl.key, 'utf-8');
    }
  }
  if (opts.sasl) config.sasl = opts.sasl;
  return new Kafka(config);
}

async function main() {
  const client = kafka();
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await producer.connect();
  } catch (e) {
    console.log('RESULT ' + JSON.stringify({ error: e.name, message: e.message }));
    return;
  }
  const values = [];
  for (let i = 0; i < opts.count; i++) values.push(`kafkajs-${i}`);
  await producer.send({ topic: opts.topic, acks: -1, messages: values.map((value) => ({ value })) });
  await producer.disconnect();

  const consumer = client.consumer({ groupId: `${opts.topic}-group`, sessionTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
  const consumed = [];
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        consumed.push(message.value.toString());
        if (consumed.length >= opts.count) resolve();
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  console.log('RESULT ' + JSON.stringify({ produced: values.length, consumed }));
}

main()
  .then(() => {
    clearTimeout(watchdog);
    process.exit(0);
  })
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
