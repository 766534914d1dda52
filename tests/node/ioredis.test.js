'use strict';
// The ioredis examples of the French course chapter (shared/seeds/000_*.txt,
// "Node.js avec ioredis"), run against the server under test (RESP2, the
// only protocol ioredis speaks).
//
// The seed code is copied as written except `new Redis()`, which becomes
// `new Redis(PORT, HOST)`; other changes are marked `// test:`: they hand
// results to the test and let the examples end.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { HOST, PORT, TIMEOUT, withTimeout, waitUntil, Inbox } = require('./helpers');

const clients = []; // test: every client made, closed by each test's end
function track(redis) {
  clients.push(redis);
  return redis;
}
function closeAll() {
  while (clients.length > 0) {
    const redis = clients.pop();
    if (redis.status !== 'end') redis.disconnect();
  }
}

// ============================================
// PUBLISHER
// ============================================
async function publisherExample() {
  const redis = track(new Redis(PORT, HOST));

  // Publier un message
  const numSubscribers = await redis.publish('notifications', 'Hello World');
  console.log(`Délivré à ${numSubscribers} subscriber(s)`);

  // Publier JSON
  const event = {
    type: 'user_login',
    userId: 123,
    timestamp: Date.now(),
  };
  const authSubscribers = await redis.publish('events:auth', JSON.stringify(event)); // test: keep it

  await redis.quit();
  return [numSubscribers, authSubscribers]; // test
}

// ============================================
// SUBSCRIBER (version simple)
// ============================================
async function subscriberSimple(inbox) { // test: `inbox` gets the messages
  const redis = track(new Redis(PORT, HOST));

  await redis.subscribe('notifications', (err, count) => {
    if (err) {
      console.error('Erreur subscription:', err);
      return;
    }
    console.log(`Abonné à ${count} channel(s)`);
    inbox.push(['subscribed', count]); // test
  });

  redis.on('message', (channel, message) => {
    console.log(`[${channel}] ${message}`);
    inbox.push([channel, message]); // test
  });
  return redis; // test
}

// ============================================
// SUBSCRIBER avec pattern matching
// ============================================
const handled = []; // test: what the handlers saw

async function subscriberWithPatterns(inbox) { // test: `inbox` gets the messages
  const redis = track(new Redis(PORT, HOST));

  // Subscribe à des channels spécifiques
  await redis.subscribe('notifications', 'alerts');

  // Subscribe avec patterns
  await redis.psubscribe('events:*', 'logs:*:error');

  // Handler pour messages normaux
  redis.on('message', (channel, message) => {
    console.log(`[${channel}] ${message}`);
    inbox.push(['message', channel, message]); // test

    // Traitement par channel
    switch (channel) {
      case 'notifications':
        handleNotification(message);
        break;
      case 'alerts':
        handleAlert(message);
        break;
    }
  });

  // Handler pour pattern messages
  redis.on('pmessage', (pattern, channel, message) => {
    console.log(`[Pattern:${pattern}] [${channel}] ${message}`);
    inbox.push(['pmessage', pattern, channel, message]); // test

    if (pattern === 'events:*') {
      handleEvent(channel, JSON.parse(message));
    }
  });

  // Handler pour subscription confirmations
  redis.on('subscribe', (channel, count) => {
    console.log(`✓ Abonné à ${channel} (total: ${count})`);
  });

  redis.on('psubscribe', (pattern, count) => {
    console.log(`✓ Pattern ${pattern} (total: ${count})`);
  });

  // Handler d'erreurs
  redis.on('error', (err) => {
    console.error('Redis error:', err);
  });
  return redis; // test
}

function handleNotification(message) {
  console.log('📬 Notification:', message);
  handled.push(['notification', message]); // test
}

function handleAlert(message) {
  console.log('🚨 ALERTE:', message);
  handled.push(['alert', message]); // test
}

function handleEvent(channel, event) {
  console.log('📊 Event:', event);
  handled.push(['event', channel, event]); // test
}

// ============================================
// SUBSCRIBER avec reconnexion automatique
// ============================================
class RobustSubscriber {
  constructor(channels = [], patterns = []) {
    this.channels = channels;
    this.patterns = patterns;
    this.redis = null;
    this.setupRedis();
  }

  setupRedis() {
    this.redis = new Redis({
      host: HOST, // test
      port: PORT, // test
      retryStrategy: (times) => {
        const delay = Math.min(times * 50, 2000);
        console.log(`Retry connection in ${delay}ms...`);
        return delay;
      },
      reconnectOnError: (err) => {
        console.log('Reconnect on error:', err.message);
        return true;
      },
    });
    track(this.redis); // test

    // test: the seed subscribes on 'connect'. With ioredis 5 'connect' comes
    // before the ready check, whose INFO ioredis then refuses on a connection
    // in subscriber mode: the client reconnects for ever, against
    // redis-server too. Subscribing on 'ready' is the working form.
    this.redis.on('ready', () => {
      console.log('✓ Connected to Redis');
      this.subscribe();
    });

    this.redis.on('ready', () => {
      console.log('✓ Redis ready');
    });

    this.redis.on('error', (err) => {
      console.error('Redis error:', err.message);
    });

    this.redis.on('reconnecting', () => {
      console.log('⟳ Reconnecting...');
    });

    this.redis.on('message', this.handleMessage.bind(this));
    this.redis.on('pmessage', this.handlePMessage.bind(this));
  }

  async subscribe() {
    if (this.channels.length > 0) {
      await this.redis.subscribe(...this.channels);
      console.log(`Subscribed to: ${this.channels.join(', ')}`);
    }

    if (this.patterns.length > 0) {
      await this.redis.psubscribe(...this.patterns);
      console.log(`Pattern subscribed: ${this.patterns.join(', ')}`);
    }
  }

  handleMessage(channel, message) {
    console.log(`[${channel}] ${message}`);
    // Override dans les classes filles
  }

  handlePMessage(pattern, channel, message) {
    console.log(`[${pattern}] [${channel}] ${message}`);
    // Override dans les classes filles
  }

  async close() {
    if (this.redis) {
      await this.redis.quit();
    }
  }
}

// ============================================
// Tests
// ============================================
const opts = { timeout: 4 * TIMEOUT };

test('publisher returns the number of receiving subscriptions', opts, async (t) => {
  t.after(closeAll);
  assert.deepEqual(await publisherExample(), [0, 0], 'nobody listens yet');

  const inbox = new Inbox();
  const simple = await subscriberSimple(inbox);
  assert.deepEqual(await inbox.next('the subscribe callback'), ['subscribed', 1]);
  const patterns = await subscriberWithPatterns(new Inbox());
  assert.ok(simple && patterns);

  // notifications: the simple subscriber and the pattern subscriber's
  // channel subscription; events:auth: the `events:*` pattern.
  assert.deepEqual(await publisherExample(), [2, 1]);
  const [channel, message] = await inbox.next('the simple subscriber\'s message');
  assert.deepEqual([channel, message], ['notifications', 'Hello World']);
});

test('subscriber with on(message)', opts, async (t) => {
  t.after(closeAll);
  const inbox = new Inbox();
  await subscriberSimple(inbox);
  assert.deepEqual(await inbox.next('the subscribe callback'), ['subscribed', 1]);

  const publisher = track(new Redis(PORT, HOST));
  assert.equal(await publisher.publish('notifications', 'first'), 1);
  assert.equal(await publisher.publish('elsewhere', 'lost'), 0);
  assert.equal(await publisher.publish('notifications', 'second'), 1);
  assert.deepEqual(await inbox.take(2), [
    ['notifications', 'first'],
    ['notifications', 'second'],
  ]);
});

test('subscriber with psubscribe and on(pmessage)', opts, async (t) => {
  t.after(closeAll);
  handled.length = 0;
  const inbox = new Inbox();
  const subscriber = await subscriberWithPatterns(inbox);

  const publisher = track(new Redis(PORT, HOST));
  assert.deepEqual(await publisher.pubsub('NUMSUB', 'notifications', 'alerts'), [
    'notifications', 1, 'alerts', 1,
  ]);
  assert.equal(await publisher.pubsub('NUMPAT'), 2);

  const order = { orderId: 'ORD-1', total: 12.5 };
  assert.equal(await publisher.publish('notifications', 'n1'), 1);
  assert.equal(await publisher.publish('alerts', 'a1'), 1);
  assert.equal(await publisher.publish('events:order', JSON.stringify(order)), 1);
  assert.equal(await publisher.publish('logs:db:error', 'disk'), 1);
  assert.equal(await publisher.publish('logs:db:info', 'ignored'), 0);
  assert.deepEqual(await inbox.take(4), [
    ['message', 'notifications', 'n1'],
    ['message', 'alerts', 'a1'],
    ['pmessage', 'events:*', 'events:order', JSON.stringify(order)],
    ['pmessage', 'logs:*:error', 'logs:db:error', 'disk'],
  ]);
  assert.deepEqual(handled, [
    ['notification', 'n1'],
    ['alert', 'a1'],
    ['event', 'events:order', order],
  ]);

  // PING is allowed in the RESP2 subscribed context and answers [pong, arg].
  assert.deepEqual(await subscriber.ping(), ['pong', '']);
  assert.deepEqual(await subscriber.ping('hi'), ['pong', 'hi']);

  // (ioredis resolves an argument-less UNSUBSCRIBE only at a count of 0.)
  assert.equal(await subscriber.unsubscribe('notifications', 'alerts'), 2); // patterns are left
  assert.equal(await subscriber.punsubscribe(), 0);
  assert.equal(await publisher.publish('notifications', 'after'), 0);
});

test('robust subscriber subscribes when ready and again after a reconnection', opts, async (t) => {
  t.after(closeAll);
  const inbox = new Inbox();
  const subscribed = new Inbox();

  class Subscriber extends RobustSubscriber { // "Override dans les classes filles"
    async subscribe() {
      await super.subscribe();
      subscribed.push(this.redis.stream.localPort); // test: the subscriptions are live
    }

    handleMessage(channel, message) {
      inbox.push(['message', channel, message]);
    }

    handlePMessage(pattern, channel, message) {
      inbox.push(['pmessage', pattern, channel, message]);
    }
  }

  const subscriber = new Subscriber(['notifications', 'alerts'], ['events:*', 'logs:*']);
  const localPort = await subscribed.next('the first subscription');

  const publisher = track(new Redis(PORT, HOST));
  assert.equal(await publisher.publish('alerts', 'a1'), 1);
  assert.equal(await publisher.publish('logs:web', 'l1'), 1);
  assert.deepEqual(await inbox.take(2), [
    ['message', 'alerts', 'a1'],
    ['pmessage', 'logs:*', 'logs:web', 'l1'],
  ]);

  // The server drops the connection: ioredis reconnects and subscribes again.
  assert.equal(await publisher.client('KILL', 'ADDR', `127.0.0.1:${localPort}`), 1);
  const newPort = await subscribed.next('the subscription after reconnecting');
  assert.notEqual(newPort, localPort);
  // ioredis's own re-subscription and the 'connect' handler's may both run;
  // the server counts each subscription once per connection.
  assert.equal(await publisher.publish('notifications', 'back'), 1);
  assert.deepEqual(await inbox.next('a message after the reconnection'), [
    'message', 'notifications', 'back',
  ]);
  assert.deepEqual(await publisher.pubsub('NUMSUB', 'notifications', 'alerts'), [
    'notifications', 1, 'alerts', 1,
  ]);

  await withTimeout(subscriber.close(), 'QUIT');
  await waitUntil(
    async () => (await publisher.pubsub('NUMSUB', 'notifications'))[1] === 0,
    'the closed subscriber to leave its channels',
  );
  assert.equal(await publisher.publish('notifications', 'gone'), 0);
});
