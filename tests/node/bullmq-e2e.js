'use strict';
// BullMQ against the server under test: a job queue whose every state change
// (add, move to active, complete, fail, retry with backoff, delay, promote,
// events, obliterate) is a Lua script run with EVALSHA (EVAL on NOSCRIPT).
//
// What it checks, against the server at HERALD_HOST (default 127.0.0.1) :
// HERALD_PORT:
// - jobs added to a Queue (add and addBulk) are processed by a Worker, their
//   return values stored, `waitUntilFinished` resolves;
// - a job that fails twice is retried with exponential backoff (attempts 3,
//   the second wait about twice the first) and then succeeds;
// - a job that always fails ends `failed`, with its reason and attempts;
// - a delayed job waits in `delayed` and runs only after its delay;
// - QueueEvents emits `completed` and `failed` for these jobs;
// - no Worker, Queue or QueueEvents reports an error;
// - at the end `obliterate` leaves no key of the queue behind.
//
// Every wait is bounded (HERALD_TEST_TIMEOUT_MS, 10 s by default, and the
// whole script 6 times that). Exits 0 when all passed, 1 with the failed
// check on stderr otherwise.
//
// Not a `node --test` file (its name matches none of the runner's patterns):
// tests/e2e_scripts.rs runs it with `node bullmq-e2e.js`. By hand:
//
//     cd tests/node && HERALD_PORT=6390 node bullmq-e2e.js

const assert = require('node:assert/strict');
const util = require('node:util');
const { Queue, Worker, QueueEvents } = require('bullmq');
const Redis = require('ioredis');
const { HOST, PORT, TIMEOUT, withTimeout } = require('./helpers');

// helpers.js sends console.log to stderr (for node --test); this script's
// progress goes to stdout.
const log = (...args) => process.stdout.write(`${util.format(...args)}\n`);

const started = Date.now();
const OVERALL_MS = 6 * TIMEOUT;
const watchdog = setTimeout(() => {
  process.stderr.write(`bullmq-e2e: FAILED: not done within ${OVERALL_MS} ms\n`);
  process.exit(1);
}, OVERALL_MS);

// Keys of this run only: `<prefix>:<queue>:*`.
const PREFIX = `herald-e2e-bullmq-${process.pid}-${Date.now()}`;
const QUEUE = 'jobs';
const connection = { host: HOST, port: PORT, maxRetriesPerRequest: null };

const BACKOFF_MS = 200; // exponential: waits of 200 then 400 ms
const DELAY_MS = 600;

// Errors reported by BullMQ's objects (e.g. a script the server rejected).
const errors = [];

// Events of QueueEvents, by kind and job id, awaited with a deadline.
class Events {
  constructor() {
    this.seen = new Map();
    this.waiters = new Map();
  }

  push(kind, event) {
    const key = `${kind}:${event.jobId}`;
    this.seen.set(key, event);
    const waiter = this.waiters.get(key);
    if (waiter) {
      this.waiters.delete(key);
      waiter(event);
    }
  }

  next(kind, jobId, ms = TIMEOUT) {
    const key = `${kind}:${jobId}`;
    if (this.seen.has(key)) return Promise.resolve(this.seen.get(key));
    const arrived = new Promise((resolve) => this.waiters.set(key, resolve));
    return withTimeout(arrived, `QueueEvents '${kind}' for job ${jobId}`, ms);
  }
}

async function check(what, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (err) {
    err.message = `${what}: ${err.message}`;
    throw err;
  }
  log(`ok - ${what} (${Date.now() - t0} ms)`);
}

async function main() {
  const events = new Events();
  // Start of each attempt of each job, by job name, as the worker saw it.
  const attempts = new Map();

  async function processor(job) {
    const runs = attempts.get(job.name) || [];
    runs.push({ at: Date.now(), attemptsMade: job.attemptsMade });
    attempts.set(job.name, runs);
    switch (job.name) {
      case 'double':
        return { n: job.data.n, doubled: job.data.n * 2 };
      case 'flaky':
        if (runs.length < 3) throw new Error(`flaky failure #${runs.length}`);
        return 'recovered';
      case 'doomed':
        throw new Error('doomed to fail');
      case 'delayed':
        return { ranAt: Date.now() };
      default:
        throw new Error(`unexpected job ${job.name}`);
    }
  }

  const admin = new Redis(PORT, HOST, { maxRetriesPerRequest: 1, lazyConnect: true });
  await withTimeout(admin.connect(), 'the admin connection');
  assert.deepEqual(await admin.keys(`${PREFIX}:*`), [], 'no key of this run before it starts');

  // QueueEvents reads the queue's event stream from its start (lastEventId
  // 0-0, the stream is new): no event is missed, however late its first
  // XREAD is sent.
  const queueEvents = new QueueEvents(QUEUE, { connection, prefix: PREFIX, lastEventId: '0-0' });
  const queue = new Queue(QUEUE, { connection, prefix: PREFIX });
  const worker = new Worker(QUEUE, processor, { connection, prefix: PREFIX, concurrency: 3 });
  for (const [name, emitter] of [['queue', queue], ['worker', worker], ['queueEvents', queueEvents]]) {
    emitter.on('error', (err) => {
      errors.push(`${name}: ${err && err.stack ? err.stack : err}`);
      process.stderr.write(`bullmq-e2e: ${name} error: ${err && err.message}\n`);
    });
  }
  queueEvents.on('completed', (e) => events.push('completed', e));
  queueEvents.on('failed', (e) => events.push('failed', e));

  try {
    await check('connect (Queue, Worker, QueueEvents)', async () => {
      await withTimeout(
        Promise.all([queue.waitUntilReady(), worker.waitUntilReady(), queueEvents.waitUntilReady()]),
        'Queue, Worker and QueueEvents to be ready',
      );
    });

    await check('add and addBulk: jobs processed, return values stored', async () => {
      const first = await queue.add('double', { n: 21 });
      const more = await queue.addBulk([1, 2, 3, 4].map((n) => ({ name: 'double', data: { n } })));
      const result = await withTimeout(
        first.waitUntilFinished(queueEvents, TIMEOUT),
        'waitUntilFinished of the first job',
      );
      assert.deepEqual(result, { n: 21, doubled: 42 });
      for (const job of [first, ...more]) {
        await events.next('completed', job.id);
        const stored = await queue.getJob(job.id);
        assert.ok(stored, `job ${job.id} is stored`);
        assert.deepEqual(stored.returnvalue, { n: job.data.n, doubled: job.data.n * 2 });
        assert.equal(await stored.getState(), 'completed', `state of job ${job.id}`);
        assert.equal(stored.attemptsMade, 1, `attemptsMade of job ${job.id}`);
      }
      const counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'active');
      assert.deepEqual(counts, { completed: 5, failed: 0, waiting: 0, paused: 0, active: 0 });
    });

    await check('a job that fails twice is retried with exponential backoff, then succeeds', async () => {
      const job = await queue.add('flaky', {}, {
        attempts: 3,
        backoff: { type: 'exponential', delay: BACKOFF_MS },
      });
      const done = await events.next('completed', job.id, 3 * TIMEOUT);
      assert.equal(done.returnvalue, 'recovered');
      const runs = attempts.get('flaky');
      assert.equal(runs.length, 3, 'three attempts');
      assert.deepEqual(runs.map((r) => r.attemptsMade), [0, 1, 2], 'attemptsMade at each start');
      const waits = [runs[1].at - runs[0].at, runs[2].at - runs[1].at];
      log(`  waits between attempts: ${waits.join(' ms, ')} ms`);
      assert.ok(waits[0] >= BACKOFF_MS, `first retry after ${waits[0]} ms, not before ${BACKOFF_MS}`);
      assert.ok(waits[1] >= 2 * BACKOFF_MS, `second retry after ${waits[1]} ms, not before ${2 * BACKOFF_MS}`);
      const stored = await queue.getJob(job.id);
      assert.equal(await stored.getState(), 'completed');
      assert.equal(stored.attemptsMade, 3);
      assert.equal(stored.returnvalue, 'recovered');
      assert.deepEqual(stored.stacktrace.length, 2, 'the two failures kept in the stack traces');
      assert.equal(events.seen.has(`failed:${job.id}`), false, 'no QueueEvents failed for a job that recovered');
    });

    await check('a job that always fails ends failed', async () => {
      const job = await queue.add('doomed', {}, { attempts: 2, backoff: { type: 'fixed', delay: 50 } });
      const failed = await events.next('failed', job.id, 2 * TIMEOUT);
      assert.equal(failed.failedReason, 'doomed to fail');
      assert.equal(attempts.get('doomed').length, 2, 'two attempts');
      const stored = await queue.getJob(job.id);
      assert.equal(await stored.getState(), 'failed');
      assert.equal(stored.failedReason, 'doomed to fail');
      assert.equal(stored.attemptsMade, 2);
      assert.equal(await queue.getFailedCount(), 1);
      const [listed] = await queue.getFailed();
      assert.equal(listed && listed.id, job.id, 'the failed list holds it');
    });

    await check('a delayed job runs after its delay', async () => {
      const addedAt = Date.now();
      const job = await queue.add('delayed', {}, { delay: DELAY_MS });
      assert.equal(await job.getState(), 'delayed');
      assert.equal(await queue.getDelayedCount(), 1);
      const done = await events.next('completed', job.id, DELAY_MS + TIMEOUT);
      const ranAt = done.returnvalue.ranAt;
      log(`  ran ${ranAt - addedAt} ms after it was added (delay ${DELAY_MS} ms)`);
      assert.ok(ranAt - addedAt >= DELAY_MS, `ran after ${ranAt - addedAt} ms, before its delay of ${DELAY_MS}`);
      const stored = await queue.getJob(job.id);
      assert.equal(await stored.getState(), 'completed');
      assert.ok(stored.processedOn - stored.timestamp >= DELAY_MS, 'processedOn is after timestamp + delay');
    });

    await check('the final counts', async () => {
      const counts = await queue.getJobCounts('completed', 'failed', 'delayed', 'waiting', 'active');
      assert.deepEqual(counts, { completed: 7, failed: 1, delayed: 0, waiting: 0, paused: 0, active: 0 });
      assert.deepEqual(errors, [], 'errors reported by BullMQ');
    });

    await check('close, obliterate: no key of the queue left', async () => {
      await withTimeout(Promise.all([worker.close(), queueEvents.close()]), 'Worker and QueueEvents to close');
      await withTimeout(queue.obliterate({ force: true }), 'obliterate');
      await withTimeout(queue.close(), 'the Queue to close');
      assert.deepEqual(await admin.keys(`${PREFIX}:*`), [], 'keys left after obliterate');
      assert.deepEqual(errors, [], 'errors reported by BullMQ');
    });
  } finally {
    // After a failure: close everything (bounded) and delete the run's keys.
    await withTimeout(
      Promise.allSettled([worker.close(true), queueEvents.close(), queue.close()]),
      'closing after the run',
    ).catch(() => {});
    try {
      const left = admin.status === 'ready' ? await admin.keys(`${PREFIX}:*`) : [];
      if (left.length > 0) await admin.del(...left);
    } catch {
      // best effort: the failure being reported matters more
    }
    admin.disconnect();
  }
}

main().then(
  () => {
    clearTimeout(watchdog);
    log(`bullmq-e2e: all checks passed in ${Date.now() - started} ms`);
    process.exit(0);
  },
  (err) => {
    clearTimeout(watchdog);
    process.stderr.write(`bullmq-e2e: FAILED: ${err && err.stack ? err.stack : err}\n`);
    if (errors.length > 0) process.stderr.write(`errors reported by BullMQ:\n${errors.join('\n')}\n`);
    process.exit(1);
  },
);
