//! CLUSTER (and ASKING, READONLY, READWRITE) on a server started without
//! cluster mode: every subcommand answers Redis 7.0's "cluster support disabled" error, so that clients
//! probing for a cluster (and scripts, which CLUSTER's `noscript`
//! subcommands refuse) see what a standalone redis-server shows them.

use bytes::Bytes;

use super::client::Client;
use super::{cmd, Spec};

/// What redis-server 7.0 replies to any CLUSTER call (and to ASKING,
/// READONLY, READWRITE) when `cluster-enabled` is off.
pub fn disabled(c: &mut Client, _: &[Bytes]) {
    c.error("ERR This instance has cluster support disabled");
}

/// CLUSTER's subcommands, with Redis 7.0's arities (the catalog gives their
/// flags and documentation).
pub static CLUSTER_SUBCOMMANDS: &[Spec] = &[
    cmd("addslots", -3, disabled),
    cmd("addslotsrange", -4, disabled),
    cmd("bumpepoch", 2, disabled),
    cmd("count-failure-reports", 3, disabled),
    cmd("countkeysinslot", 3, disabled),
    cmd("delslots", -3, disabled),
    cmd("delslotsrange", -4, disabled),
    cmd("failover", -2, disabled),
    cmd("flushslots", 2, disabled),
    cmd("forget", 3, disabled),
    cmd("getkeysinslot", 4, disabled),
    cmd("help", 2, disabled),
    cmd("info", 2, disabled),
    cmd("keyslot", 3, disabled),
    cmd("links", 2, disabled),
    cmd("meet", -4, disabled),
    cmd("myid", 2, disabled),
    cmd("nodes", 2, disabled),
    cmd("replicas", 3, disabled),
    cmd("replicate", 3, disabled),
    cmd("reset", -2, disabled),
    cmd("saveconfig", 2, disabled),
    cmd("set-config-epoch", 3, disabled),
    cmd("setslot", -4, disabled),
    cmd("shards", 2, disabled),
    cmd("slaves", 3, disabled),
    cmd("slots", 2, disabled),
];
