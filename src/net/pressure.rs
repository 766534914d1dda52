//! Publisher back-pressure: what one read batch's publishes found in their
//! subscribers' queues.
//!
//! A publish pushes into each subscriber's outbox and learns from the push
//! ([`Pushed`]) whether that queue is congested (its task has not taken its
//! bytes for a while) or backed up behind a full socket. The publisher's
//! session records it here; after the batch the publisher's connection
//! (`Connection::let_subscribers_write`) lets the congested subscribers
//! write, or waits a little for a backed-up one, before it reads more.

use std::sync::Arc;

use super::handle::{ClientHandle, Pushed};

/// What a client's publishes of one batch did to their subscribers' queues.
#[derive(Default)]
pub struct Pressure {
    /// Subscribers whose queue became congested while their task can write.
    pub congested: Vec<Arc<ClientHandle>>,
    /// Messages queued.
    pub deliveries: usize,
    /// Of those, messages queued behind a full socket.
    pub backed_up: usize,
    /// One such subscriber, to wait on when most deliveries backed up.
    pub backed_up_sample: Option<Arc<ClientHandle>>,
    /// Pieces of heavier work (Lua scripts) the batch ran on the worker:
    /// past one, the connection yields before it reads again, so that one
    /// client with a pipeline does not keep the worker from the others. (A
    /// client that sends one request at a time waits for its reply, and
    /// its connection for its next request, anyway.)
    pub heavy: u32,
}

impl Pressure {
    /// Records one push to `sub`.
    #[inline]
    pub fn record(&mut self, sub: &Arc<ClientHandle>, pushed: Pushed) {
        self.deliveries += 1;
        if pushed.congested {
            self.congested.push(sub.clone());
        }
        if pushed.backed_up {
            self.backed_up += 1;
            if self.backed_up_sample.is_none() {
                self.backed_up_sample = Some(sub.clone());
            }
        }
    }

    /// Forgets the batch (keeping a modest allocation).
    pub fn clear(&mut self) {
        self.congested.clear();
        if self.congested.capacity() > 1024 {
            self.congested.shrink_to(64);
        }
        self.deliveries = 0;
        self.backed_up = 0;
        self.backed_up_sample = None;
    }
}
