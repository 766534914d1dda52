//! Publish/subscribe: who is subscribed to what, and delivery.
//!
//! - [`registry`]: channel → subscribers (classic channels and, in a second
//!   instance, shard channels), sharded locks.
//! - [`patterns`]: pattern subscriptions, indexed by literal prefix.
//! - [`message`]: encode-once message frames.
//!
//! The path of a PUBLISH: the publisher's connection task calls
//! [`PubSub::publish`], which builds one [`Message`], hands it to the
//! channel registry (subscribers of the channel get `message`) and then to
//! the pattern registry (`pmessage` per matching pattern). Delivery is a
//! push of shared bytes into each subscriber's outbox; the subscribers' own
//! tasks, on any core, write them to their sockets.

pub mod message;
pub mod patterns;
pub mod registry;

use std::sync::Arc;

use bytes::Bytes;
use message::{Kind, Message};
use patterns::PatternRegistry;
use registry::ChannelRegistry;

use crate::net::handle::ClientHandle;
use crate::net::Pressure;

/// The three kinds of subscription, each with its own registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// SUBSCRIBE: a classic channel.
    Channel,
    /// PSUBSCRIBE: a glob pattern over classic channels.
    Pattern,
    /// SSUBSCRIBE: a shard channel.
    Shard,
}

/// All pub/sub state of the server.
#[derive(Default)]
pub struct PubSub {
    /// Classic channels (SUBSCRIBE / PUBLISH).
    pub channels: ChannelRegistry,
    /// Pattern subscriptions (PSUBSCRIBE).
    pub patterns: PatternRegistry,
    /// Shard channels (SSUBSCRIBE / SPUBLISH), a separate namespace as in Redis 7.
    pub shard_channels: ChannelRegistry,
}

impl PubSub {
    /// Publishes from inside the server (keyspace notifications): delivers
    /// to channel then pattern subscribers; returns the number of receiving
    /// subscriptions.
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let msg = Message::new(Kind::Message, channel, payload);
        self.channels.publish(&msg, None) + self.patterns.publish(&msg, None)
    }

    /// PUBLISH from a client: as [`publish`](Self::publish), and records in
    /// `pressure` what it found in the subscribers' queues, so that the
    /// publisher can let them write before it publishes more.
    pub fn publish_from(&self, channel: &[u8], payload: &[u8], pressure: &mut Pressure) -> usize {
        let msg = Message::new(Kind::Message, channel, payload);
        self.channels.publish(&msg, Some(pressure)) + self.patterns.publish(&msg, Some(pressure))
    }

    /// SPUBLISH: delivers to the shard channel's subscribers.
    pub fn spublish(&self, channel: &[u8], payload: &[u8], pressure: &mut Pressure) -> usize {
        let msg = Message::new(Kind::SMessage, channel, payload);
        self.shard_channels.publish(&msg, Some(pressure))
    }

    /// Adds `client` to `name` in the registry of `kind` (the caller knows
    /// it is not there yet) and queues `confirmation` to it before any
    /// message of `name` can be.
    pub fn subscribe(
        &self,
        kind: SubscriptionKind,
        name: &Bytes,
        client: &Arc<ClientHandle>,
        confirmation: Bytes,
    ) {
        match kind {
            SubscriptionKind::Channel => self.channels.subscribe(name, client, confirmation),
            SubscriptionKind::Pattern => self.patterns.subscribe(name, client, confirmation),
            SubscriptionKind::Shard => self.shard_channels.subscribe(name, client, confirmation),
        }
    }

    /// Removes `client` from `name` in the registry of `kind` and queues
    /// `confirmation` (if any) after the last message of `name` it gets.
    pub fn unsubscribe(
        &self,
        kind: SubscriptionKind,
        name: &[u8],
        client: &ClientHandle,
        confirmation: Option<Bytes>,
    ) {
        match kind {
            SubscriptionKind::Channel => self.channels.unsubscribe(name, client, confirmation),
            SubscriptionKind::Pattern => self.patterns.unsubscribe(name, client, confirmation),
            SubscriptionKind::Shard => self.shard_channels.unsubscribe(name, client, confirmation),
        }
    }

    /// Every subscription of the clients `ids`: (client id, kind, name).
    /// Visits every channel and pattern: for rare administrative work only
    /// (ACL changes that must find a user's subscriptions).
    pub fn subscriptions_of(&self, ids: &[u64]) -> Vec<(u64, SubscriptionKind, Bytes)> {
        let mut out = Vec::new();
        for (kind, found) in [
            (
                SubscriptionKind::Channel,
                self.channels.subscriptions_of(ids),
            ),
            (
                SubscriptionKind::Pattern,
                self.patterns.subscriptions_of(ids),
            ),
            (
                SubscriptionKind::Shard,
                self.shard_channels.subscriptions_of(ids),
            ),
        ] {
            out.extend(found.into_iter().map(|(id, name)| (id, kind, name)));
        }
        out
    }
}
