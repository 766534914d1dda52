'use strict';
// node-redis v4 (the `redis` package) against the server under test, RESP2.
//
// The Q&A seed (shared/seeds/003_*.txt, "Node.js Example") subscribes with
// node-redis: a subscriber client and a publisher client, `subscribe('news')`
// and a message listener, then `publish('news', 'Hello from Node.js!')`. Its
// code is written for node-redis v3; this is the same program in v4's API
// (connect(), a duplicate() client for subscribing, listeners passed to
// subscribe / pSubscribe).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { createClient } = require('redis');
const { HOST, PORT, TIMEOUT, withTimeout, waitUntil, Inbox } = require('./helpers');

const opts = { timeout: 4 * TIMEOUT };

async function connected(client) {
  client.on('error', (err) => console.error('Redis client error:', err.message));
  await withTimeout(client.connect(), 'connect');
  return client;
}

function closeAll(...clients) {
  return () => Promise.all(clients.map((c) => (c.isOpen ? c.disconnect() : null)));
}

test('subscribe and pSubscribe on a duplicated client', opts, async (t) => {
  const publisher = await connected(createClient({ socket: { host: HOST, port: PORT } }));
  const subscriber = await connected(publisher.duplicate());
  t.after(closeAll(publisher, subscriber));

  const inbox = new Inbox();
  // Subscribe to channel
  await withTimeout(
    subscriber.subscribe('news', (message, channel) => {
      console.log(`Received message from ${channel}: ${message}`);
      inbox.push(['message', channel, message]);
    }),
    'SUBSCRIBE news',
  );
  await withTimeout(
    subscriber.pSubscribe('user:*', (message, channel) => {
      inbox.push(['pmessage', channel, message]);
    }),
    'PSUBSCRIBE user:*',
  );

  // Publish message
  assert.equal(await publisher.publish('news', 'Hello from Node.js!'), 1);
  assert.equal(await publisher.publish('user:42', 'hi 42'), 1);
  assert.equal(await publisher.publish('sports', 'nobody'), 0);
  assert.deepEqual(await inbox.take(2), [
    ['message', 'news', 'Hello from Node.js!'],
    ['pmessage', 'user:42', 'hi 42'],
  ]);

  // Introspection from the publishing client.
  assert.deepEqual(await publisher.pubSubChannels(), ['news']);
  assert.deepEqual({ ...(await publisher.pubSubNumSub(['news', 'sports'])) }, { news: 1, sports: 0 });
  assert.equal(await publisher.pubSubNumPat(), 1);

  // Several channels with one listener, then unsubscribing.
  await subscriber.subscribe(['a', 'b'], (message, channel) => inbox.push([channel, message]));
  assert.equal(await publisher.publish('b', 'to b'), 1);
  assert.deepEqual(await inbox.next('a message on b'), ['b', 'to b']);
  // (node-redis resolves an argument-less (P)UNSUBSCRIBE only when the
  // subscription count reaches 0, so the channels go first, by name.)
  await withTimeout(subscriber.unsubscribe(['news', 'a', 'b']), 'UNSUBSCRIBE news a b');
  await withTimeout(subscriber.pUnsubscribe(), 'PUNSUBSCRIBE');
  assert.equal(await publisher.publish('news', 'after'), 0);
  assert.equal(await publisher.publish('user:1', 'after'), 0);
  assert.equal(await publisher.pubSubNumPat(), 0);

  // Out of subscriber mode, the client runs ordinary commands again.
  assert.equal(await subscriber.ping(), 'PONG');
  assert.equal(await subscriber.echo('back'), 'back');
});

test('binary payloads and a client that disconnects', opts, async (t) => {
  const publisher = await connected(createClient({ socket: { host: HOST, port: PORT } }));
  const subscriber = await connected(publisher.duplicate());
  t.after(closeAll(publisher, subscriber));

  const inbox = new Inbox();
  const payload = Buffer.from([0, 1, 2, 255, 13, 10, 36, 42]);
  await subscriber.subscribe('bin', (message, channel) => inbox.push([channel, message]), true);
  assert.equal(await publisher.publish('bin', payload), 1);
  const [channel, message] = await inbox.next('the binary message');
  assert.ok(Buffer.isBuffer(message));
  assert.deepEqual([channel.toString(), [...message]], ['bin', [...payload]]);

  await subscriber.disconnect();
  await waitUntil(
    async () => (await publisher.pubSubNumSub('bin')).bin === 0,
    'the disconnected subscriber to leave',
  );
  assert.equal(await publisher.publish('bin', payload), 0);
});
