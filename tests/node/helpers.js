'use strict';
// Shared helpers of herald's end-to-end Node tests.
//
// The server under test is at HERALD_HOST (default 127.0.0.1) : HERALD_PORT.
// tests/e2e_node.rs starts herald and sets HERALD_PORT; to run these tests
// against another server (e.g. a redis-server, to check the tests):
//
//     cd tests/node && HERALD_PORT=6390 node --test

const util = require('node:util');

// The seed code logs with console.log. Under `node --test` a test file's
// stdout is the channel that carries its results to the runner, and Node 20's
// runner sometimes fails to decode it when much else is written there
// ("Unable to deserialize cloned data"): send the examples' logs to stderr.
console.log = (...args) => process.stderr.write(`${util.format(...args)}\n`);

const HOST = process.env.HERALD_HOST || '127.0.0.1';
const PORT = Number(process.env.HERALD_PORT);
// Upper bound of any single wait, in milliseconds.
const TIMEOUT = Number(process.env.HERALD_TEST_TIMEOUT_MS || 10000);

if (!PORT) {
  throw new Error(
    'HERALD_PORT is not set: these tests need a server. Run them with ' +
      '`bash scripts/test.sh` (cargo test starts herald), or set HERALD_PORT ' +
      "to a running server's port.",
  );
}

// Rejects after `ms` unless `promise` settles first.
function withTimeout(promise, what, ms = TIMEOUT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Polls `predicate` (sync or async) until it is true, at most `ms`; for
// server state that no event announces (e.g. a closed client's subscriptions
// being dropped).
async function waitUntil(predicate, what, ms = TIMEOUT) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// A queue of received items that tests await one by one, with a deadline.
class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(what = 'a message', ms = TIMEOUT) {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    let waiter;
    const arrived = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(waiter);
    });
    return withTimeout(arrived, what, ms).catch((err) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw err;
    });
  }

  async take(n, what = `${n} messages`, ms = TIMEOUT) {
    const deadline = Date.now() + ms;
    const out = [];
    while (out.length < n) {
      out.push(await this.next(`${what} (got ${out.length})`, Math.max(1, deadline - Date.now())));
    }
    return out;
  }
}

module.exports = { HOST, PORT, TIMEOUT, withTimeout, waitUntil, Inbox };
