//! Pub/sub commands: PUBLISH, SPUBLISH, (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE and
//! PUBSUB introspection.
//!
//! The client keeps its own ordered sets of channels, patterns and shard
//! channels; the server-wide registries ([`crate::pubsub`]) hold the other
//! direction. Before a (un)subscription the batch's earlier replies are
//! queued ([`Client::queue_replies`]), then the registry queues the
//! confirmation under its lock, so confirmations and messages reach the
//! client in the order Redis guarantees.
//!
//! Counts in confirmations follow redis-server 7.0: classic channels and
//! patterns count together; shard channels count alone.

use bytes::Bytes;

use super::{cmd, reply_help, Spec};
use crate::command::Client;
use crate::protocol::Frame;
use crate::pubsub::message::encode_confirmation;
use crate::pubsub::registry::ChannelRegistry;
use crate::pubsub::SubscriptionKind as Kind;
use crate::util::key::Key;

/// PUBSUB subcommands (sorted by name).
pub static PUBSUB_SUBCOMMANDS: &[Spec] = &[
    cmd("channels", -2, pubsub_channels),
    cmd("help", 2, pubsub_help),
    cmd("numpat", 2, pubsub_numpat),
    cmd("numsub", -2, pubsub_numsub),
    cmd("shardchannels", -2, pubsub_shardchannels),
    cmd("shardnumsub", -2, pubsub_shardnumsub),
];

/// PUBLISH channel message.
pub fn publish(c: &mut Client, args: &[Bytes]) {
    // A RESP3 client subscribed to the channel receives its own message
    // before the reply; earlier replies must go first.
    if c.subscription_count() > 0 {
        c.queue_replies();
    }
    let n = c
        .shared
        .engine
        .pubsub
        .publish_from(&args[1], &args[2], &mut c.pressure);
    propagate(c, args);
    c.reply(Frame::Integer(n as i64));
}

/// PUBLISH and SPUBLISH go to the replicas (not the AOF), as Redis's
/// `forceCommandPropagation(c, PROPAGATE_REPL)`, so that subscribers on
/// replicas get the messages too.
fn propagate(c: &Client, args: &[Bytes]) {
    let repl = &c.shared.engine.repl;
    if repl.feeding() {
        repl.feed([(c.db, args)], false);
    }
}

/// SPUBLISH shardchannel message.
pub fn spublish(c: &mut Client, args: &[Bytes]) {
    if c.subscription_count() > 0 {
        c.queue_replies();
    }
    let n = c
        .shared
        .engine
        .pubsub
        .spublish(&args[1], &args[2], &mut c.pressure);
    propagate(c, args);
    c.reply(Frame::Integer(n as i64));
}

/// A copy of a name with its own allocation. Arguments are slices of the
/// connection's read buffer; keeping one in a subscription would pin the
/// whole buffer for as long as the subscription lives.
fn own(name: &Bytes) -> Bytes {
    Bytes::copy_from_slice(name)
}

/// The confirmation's name for a subscription of `kind`.
fn subscribe_name(kind: Kind) -> &'static [u8] {
    match kind {
        Kind::Channel => b"subscribe",
        Kind::Pattern => b"psubscribe",
        Kind::Shard => b"ssubscribe",
    }
}

/// The confirmation's name for leaving one.
fn unsubscribe_name(kind: Kind) -> &'static [u8] {
    match kind {
        Kind::Channel => b"unsubscribe",
        Kind::Pattern => b"punsubscribe",
        Kind::Shard => b"sunsubscribe",
    }
}

/// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE: one confirmation per name, in
/// order; a name already subscribed is confirmed again (as Redis does).
fn subscribe_cmd(c: &mut Client, args: &[Bytes], kind: Kind) {
    c.queue_replies();
    let proto = c.protocol;
    for name in &args[1..] {
        if c.subs.of(kind).contains(&name[..]) {
            let confirm = encode_confirmation(
                proto,
                subscribe_name(kind),
                Some(name),
                c.subs.confirmed_count(kind),
            );
            c.handle.push(confirm);
            continue;
        }
        let name = own(name);
        c.subs.of(kind).insert(Key::from(&name[..]));
        let confirm = encode_confirmation(
            proto,
            subscribe_name(kind),
            Some(&name),
            c.subs.confirmed_count(kind),
        );
        c.shared
            .engine
            .pubsub
            .subscribe(kind, &name, &c.handle, confirm);
    }
    c.sync_class();
}

/// SUBSCRIBE channel [channel ...].
pub fn subscribe(c: &mut Client, args: &[Bytes]) {
    subscribe_cmd(c, args, Kind::Channel);
}

/// SSUBSCRIBE shardchannel [shardchannel ...].
pub fn ssubscribe(c: &mut Client, args: &[Bytes]) {
    // Redis refuses SSUBSCRIBE to a CLIENT_DENY_BLOCKING client (inside
    // EXEC), while SUBSCRIBE there stays allowed for compatibility.
    if c.tx.in_exec {
        return c.error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
    }
    subscribe_cmd(c, args, Kind::Shard);
}

/// PSUBSCRIBE pattern [pattern ...].
pub fn psubscribe(c: &mut Client, args: &[Bytes]) {
    subscribe_cmd(c, args, Kind::Pattern);
}

/// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE: the names given, or every
/// subscription of the kind in subscription order.
fn unsubscribe_cmd(c: &mut Client, args: &[Bytes], kind: Kind) {
    c.queue_replies();
    let proto = c.protocol;
    if args.len() > 1 {
        for name in &args[1..] {
            // Order inside the set only matters for the no-argument form,
            // whose order Redis leaves to its hash table: swap_remove is O(1).
            let subscribed = c.subs.of(kind).swap_remove(&name[..]);
            let count = c.subs.confirmed_count(kind);
            let confirm = encode_confirmation(proto, unsubscribe_name(kind), Some(name), count);
            if subscribed {
                c.shared
                    .engine
                    .pubsub
                    .unsubscribe(kind, name, &c.handle, Some(confirm));
            } else {
                c.handle.push(confirm);
            }
        }
        shrink_set(c.subs.of(kind));
        c.sync_class();
        return;
    }
    // No arguments: leave everything of this kind, in subscription order.
    let all = std::mem::take(c.subs.of(kind));
    if all.is_empty() {
        let confirm = encode_confirmation(
            proto,
            unsubscribe_name(kind),
            None,
            c.subs.confirmed_count(kind),
        );
        c.handle.push(confirm);
        return;
    }
    let mut left = all.len();
    for name in &all {
        left -= 1;
        let count = c.subs.confirmed_count(kind) + left;
        let confirm = encode_confirmation(proto, unsubscribe_name(kind), Some(name), count);
        c.shared
            .engine
            .pubsub
            .unsubscribe(kind, name, &c.handle, Some(confirm));
    }
    c.sync_class();
}

/// Gives a client's subscription set its memory back once mostly empty.
fn shrink_set(set: &mut indexmap::IndexSet<Key, ahash::RandomState>) {
    if set.capacity() > 16 && set.len() < set.capacity() / 4 {
        set.shrink_to(set.len() * 2);
    }
}

/// UNSUBSCRIBE [channel ...].
pub fn unsubscribe(c: &mut Client, args: &[Bytes]) {
    unsubscribe_cmd(c, args, Kind::Channel);
}

/// PUNSUBSCRIBE [pattern ...].
pub fn punsubscribe(c: &mut Client, args: &[Bytes]) {
    unsubscribe_cmd(c, args, Kind::Pattern);
}

/// SUNSUBSCRIBE [shardchannel ...].
pub fn sunsubscribe(c: &mut Client, args: &[Bytes]) {
    unsubscribe_cmd(c, args, Kind::Shard);
}

fn channel_list(names: Vec<Bytes>) -> Frame {
    Frame::Array(names.into_iter().map(Frame::Bulk).collect())
}

fn pubsub_channels(c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        return super::subcommand_syntax_error(c, args);
    }
    let names = c
        .shared
        .engine
        .pubsub
        .channels
        .channels(args.get(2).map(|p| &p[..]));
    c.reply(channel_list(names));
}

fn pubsub_shardchannels(c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        return super::subcommand_syntax_error(c, args);
    }
    let names = c
        .shared
        .engine
        .pubsub
        .shard_channels
        .channels(args.get(2).map(|p| &p[..]));
    c.reply(channel_list(names));
}

fn pubsub_numpat(c: &mut Client, _args: &[Bytes]) {
    let n = c.shared.engine.pubsub.patterns.count();
    c.reply(Frame::Integer(n as i64));
}

/// NUMSUB / SHARDNUMSUB: `[channel, count, ...]`, an array of pairs even in
/// RESP3, as redis-server 7.0 replies.
fn numsub_reply(reg: &ChannelRegistry, channels: &[Bytes]) -> Frame {
    let items = channels
        .iter()
        .flat_map(|ch| {
            [
                Frame::Bulk(ch.clone()),
                Frame::Integer(reg.numsub(ch) as i64),
            ]
        })
        .collect();
    Frame::Array(items)
}

fn pubsub_numsub(c: &mut Client, args: &[Bytes]) {
    let reply = numsub_reply(&c.shared.engine.pubsub.channels, &args[2..]);
    c.reply(reply);
}

fn pubsub_shardnumsub(c: &mut Client, args: &[Bytes]) {
    let reply = numsub_reply(&c.shared.engine.pubsub.shard_channels, &args[2..]);
    c.reply(reply);
}

fn pubsub_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
}
