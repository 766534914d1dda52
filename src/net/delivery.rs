//! Adaptive coalescing of deliveries: a subscriber's messages wait while
//! the server is busy, so that each write to its socket carries several.
//!
//! What a message costs on these machines is the system call that carries
//! it (microseconds in the kernel, whatever its size; see
//! `../shared/performance-notes.md`). So when a publish finds a
//! subscriber's outbox empty, its task is not woken: the subscriber joins
//! this worker's *delivery queue*, and the worker itself writes its outbox
//! out (`ClientHandle::write_queued`: one vectored write, no task wake-up
//! unless the socket does not take it all)
//!
//! - when the worker has nothing else to run (tokio's park hook calls
//!   [`write_all`]): an idle or lightly loaded server adds no latency;
//! - or, while the worker stays busy, once the first deferred message is older
//!   than the window (`pubsub-coalesce-us`; [`on_batch`], checked at the
//!   start of every client's read batch): under load, messages gather for
//!   at most that long.
//!
//! Replies to a client's own requests are deferred the same way
//! ([`defer_reply`]) but are due by count, not by clock: they leave when
//! the worker parks, or, all of them, once the oldest has waited for
//! [`REPLY_BATCHES`] read batches of other clients. That is Redis's
//! rhythm (it writes every client's replies before it waits for events
//! again, however long the round of reads took), and it keeps a reply in
//! step with the work done: a clock would cut a round of heavy batches
//! (scripts, tens of microseconds each) into many small write bursts,
//! each waking the peer again.
//!
//! A queue that reaches [`handle::CONGESTED_BYTES`] wakes its task at once
//! (`ClientHandle::deliver`): a write of that size gains nothing from
//! waiting.
//!
//! Only the current-thread runtime defers (one worker, which the park hook
//! runs on). Elsewhere (the multi-thread runtime, threads that are not a
//! worker) [`defer`] declines and the task is woken at once.
//!
//! [`handle::CONGESTED_BYTES`]: super::handle::CONGESTED_BYTES

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handle::ClientHandle;

/// The worker's deferred subscribers, oldest first.
struct DeliveryQueue {
    /// Longest a message waits while the worker is busy.
    window: Duration,
    /// When the current batch began (the time deferred entries are stamped with).
    now: Instant,
    deferred: VecDeque<(Instant, Arc<ClientHandle>)>,
    /// Read batches begun so far (the stamp of deferred replies).
    batches: u64,
    /// Clients whose replies wait, oldest first, stamped with `batches`.
    replies: VecDeque<(u64, Arc<ClientHandle>)>,
    /// Bytes written out not yet added to the server's statistics.
    written: usize,
}

thread_local! {
    static QUEUE: RefCell<Option<DeliveryQueue>> = const { RefCell::new(None) };
}

/// Turns deferring on for the calling thread (the current-thread runtime's
/// worker), with `window` as the longest wait under load, or changes the
/// window (`pubsub-coalesce-us`); a zero window defers nothing.
pub fn configure(window: Duration) {
    QUEUE.with(|h| {
        let mut h = h.borrow_mut();
        let q = h.get_or_insert_with(|| DeliveryQueue {
            window,
            now: Instant::now(),
            deferred: VecDeque::new(),
            batches: 0,
            replies: VecDeque::new(),
            written: 0,
        });
        q.window = window;
    });
}

/// Runs `queue` on this thread's queue if it defers; false if it does not
/// (not a configured worker, or a zero window).
#[inline]
fn deferring(queue: impl FnOnce(&mut DeliveryQueue)) -> bool {
    QUEUE.with(|h| match h.borrow_mut().as_mut() {
        Some(q) if !q.window.is_zero() => {
            queue(q);
            true
        }
        _ => false,
    })
}

/// Defers `client`'s wake-up; false if this thread does not defer (the
/// caller wakes it at once).
#[inline]
pub fn defer(client: &Arc<ClientHandle>) -> bool {
    deferring(|q| q.deferred.push_back((q.now, client.clone())))
}

/// The most read batches a deferred reply waits for while the worker stays
/// busy: about one round of tokio's scheduler, which polls for new events
/// every 61 tasks.
pub const REPLY_BATCHES: u64 = 64;

/// Defers writing `client`'s replies (see the module header); false if
/// this thread does not defer (the caller writes them itself).
#[inline]
pub fn defer_reply(client: &Arc<ClientHandle>) -> bool {
    deferring(|q| q.replies.push_back((q.batches, client.clone())))
}

/// At the start of a read batch: notes the time, and writes out the
/// subscribers deferred longer than the window, and every deferred reply
/// once the oldest has waited [`REPLY_BATCHES`] batches. Returns the bytes
/// written to sockets since the last call (for `total_net_output_bytes`).
#[inline]
pub fn on_batch() -> usize {
    QUEUE.with(|h| {
        let mut h = h.borrow_mut();
        let Some(q) = h.as_mut() else { return 0 };
        q.now = Instant::now();
        q.batches += 1;
        // The oldest is due: all of them leave, together, as at the end
        // of a round (one by one, each write would find the peer asleep
        // and wake it).
        let due = q.batches.checked_sub(REPLY_BATCHES);
        if q.replies
            .front()
            .is_some_and(|(b, _)| due.is_some_and(|d| *b <= d))
        {
            q.written += write_out(&mut q.replies);
        }
        if let Some(due) = q.now.checked_sub(q.window) {
            while q.deferred.front().is_some_and(|(t, _)| *t <= due) {
                if let Some((_, c)) = q.deferred.pop_front() {
                    q.written += c.write_queued();
                }
            }
        }
        std::mem::take(&mut q.written)
    })
}

/// The worker is about to sleep: writes out every deferred subscriber (a
/// task is woken only for what its socket did not take).
pub fn write_all() {
    QUEUE.with(|h| {
        let mut h = h.borrow_mut();
        let Some(q) = h.as_mut() else { return };
        q.written += write_out(&mut q.deferred) + write_out(&mut q.replies);
    });
}

/// Writes out every client in `queue`, emptied (and shrunk if a burst grew
/// it large); the bytes written.
fn write_out<T>(queue: &mut VecDeque<(T, Arc<ClientHandle>)>) -> usize {
    let written = queue.drain(..).map(|(_, c)| c.write_queued()).sum();
    if queue.capacity() > 4096 {
        queue.shrink_to(256);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::limits::Limits;

    fn client(id: u64) -> Arc<ClientHandle> {
        let any = crate::net::ClientAddr::Tcp(([127, 0, 0, 1], 0).into());
        Arc::new(ClientHandle::new(
            id,
            any.clone(),
            any,
            -1,
            Arc::new(Limits::default()),
        ))
    }

    fn deferred() -> usize {
        QUEUE.with(|h| h.borrow().as_ref().map_or(0, |q| q.deferred.len()))
    }

    fn replies() -> usize {
        QUEUE.with(|h| h.borrow().as_ref().map_or(0, |q| q.replies.len()))
    }

    #[test]
    fn a_busy_worker_writes_out_replies_after_a_round_of_batches() {
        configure(Duration::from_micros(1));
        let c = client(1);
        assert!(defer_reply(&c));
        // However long they take, the batches of one round do not make it
        // due; the next one does.
        for _ in 1..REPLY_BATCHES {
            on_batch();
        }
        assert_eq!(replies(), 1);
        on_batch();
        assert_eq!(replies(), 0);
        assert!(defer_reply(&c));
        write_all();
        assert_eq!(replies(), 0);
    }

    /// Each test runs on its own thread, so the thread-local queue starts
    /// unconfigured.
    #[test]
    fn only_a_configured_worker_defers() {
        let c = client(1);
        assert!(!defer(&c), "a thread that is not a worker wakes at once");
        configure(Duration::ZERO);
        assert!(!defer(&c), "a zero window defers nothing");
        configure(Duration::from_secs(3600));
        assert!(defer(&c));
        assert_eq!(deferred(), 1);
        // Not due yet: a batch start leaves it deferred; parking writes it out.
        on_batch();
        assert_eq!(deferred(), 1);
        write_all();
        assert_eq!(deferred(), 0);
    }

    #[test]
    fn a_busy_worker_writes_out_what_is_older_than_the_window() {
        configure(Duration::from_millis(1));
        on_batch();
        let (a, b) = (client(1), client(2));
        assert!(defer(&a));
        // Not waiting for an event: the window is measured by the clock, so
        // the clock must move past it.
        std::thread::sleep(Duration::from_millis(2));
        on_batch(); // a is now older than the window; b is stamped now
        assert_eq!(deferred(), 0);
        assert!(defer(&b));
        on_batch();
        assert_eq!(deferred(), 1, "b is not due yet");
        write_all();
        assert_eq!(deferred(), 0);
    }
}
