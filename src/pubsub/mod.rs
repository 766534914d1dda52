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

use message::{Kind, Message};
use patterns::PatternRegistry;
use registry::ChannelRegistry;

use crate::net::Pressure;

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
}
