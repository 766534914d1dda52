//! End-to-end: Node clients against herald (RESP2), with Node's built-in
//! test runner (`node --test` in `tests/node`): the seed's ioredis examples
//! (publisher, subscriber with `on('message')`, `psubscribe` with
//! `on('pmessage')`, the reconnecting subscriber) and node-redis v4
//! `subscribe` / `pSubscribe` on a `duplicate()`d client.
//!
//! Needs `tests/node/node_modules`, installed by `bash scripts/test.sh`
//! (`HERALD_NODE_DIR`). To run the same tests against another server:
//! `cd tests/node && HERALD_PORT=<port> node --test`.

mod common;

use std::process::Command;
use std::time::Duration;

#[test]
fn node_clients_seed_examples() {
    let server = common::start_server();
    let out = common::run(
        Command::new(common::node())
            .args(["--test", "--test-reporter=spec"])
            .current_dir(common::node_dir())
            .env("HERALD_PORT", server.port().to_string()),
        Duration::from_secs(300),
    );
    out.print("node --test tests/node");
    assert!(
        out.status.success(),
        "node --test failed ({}): its output is above",
        out.status
    );
}
