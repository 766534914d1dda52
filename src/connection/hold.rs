//! Adaptive coalescing of deliveries: a subscriber's messages wait while
//! the server is busy, so that each write to its socket carries several.
//!
//! What a message costs on these machines is the system call that carries
//! it (microseconds in the kernel, whatever its size; see
//! `../shared/performance-notes.md`). So when a publish finds a
//! subscriber's outbox empty, its task is not woken: the subscriber joins
//! this worker's *hold queue*, and the worker itself writes its queue out
//! (`ClientHandle::flush`: one `sendmsg`, no task wake-up unless the socket
//! does not take it all)
//!
//! - when the worker has nothing else to run (tokio's park hook calls
//!   [`flush`]): an idle or lightly loaded server adds no latency;
//! - or, while the worker stays busy, once the first held message is older
//!   than the window (`pubsub-coalesce-us`; [`on_batch`], checked at the
//!   start of every client's read batch): under load, messages gather for
//!   at most that long.
//!
//! A queue that reaches [`handle::CONGESTED_BYTES`] wakes its task at once
//! (`ClientHandle::deliver`): a write of that size gains nothing from
//! waiting.
//!
//! Only the current-thread runtime holds (one worker, which the park hook
//! runs on). Elsewhere (the multi-thread runtime, threads that are not a
//! worker) [`defer`] declines and the task is woken at once.
//!
//! [`handle::CONGESTED_BYTES`]: super::handle::CONGESTED_BYTES

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handle::ClientHandle;

/// The worker's held subscribers, oldest first.
struct HoldQueue {
    /// Longest a message waits while the worker is busy.
    window: Duration,
    /// When the current batch began (the time held entries are stamped with).
    now: Instant,
    held: VecDeque<(Instant, Arc<ClientHandle>)>,
    /// Bytes written by flushes not yet added to the server's statistics.
    written: usize,
}

thread_local! {
    static HOLD: RefCell<Option<HoldQueue>> = const { RefCell::new(None) };
}

/// Turns holding on for the calling thread (the current-thread runtime's
/// worker), with `window` as the longest wait under load, or changes the
/// window (`pubsub-coalesce-us`); a zero window holds nothing.
pub fn configure(window: Duration) {
    HOLD.with(|h| {
        let mut h = h.borrow_mut();
        let q = h.get_or_insert_with(|| HoldQueue {
            window,
            now: Instant::now(),
            held: VecDeque::new(),
            written: 0,
        });
        q.window = window;
    });
}

/// Holds `client`'s wake-up; false if this thread does not hold (the
/// caller wakes it at once).
#[inline]
pub fn defer(client: &Arc<ClientHandle>) -> bool {
    HOLD.with(|h| match h.borrow_mut().as_mut() {
        Some(q) if !q.window.is_zero() => {
            q.held.push_back((q.now, client.clone()));
            true
        }
        _ => false,
    })
}

/// At the start of a read batch: notes the time, and writes out the
/// subscribers held longer than the window. Returns the bytes written to
/// sockets since the last call (for `total_net_output_bytes`).
#[inline]
pub fn on_batch() -> usize {
    HOLD.with(|h| {
        let mut h = h.borrow_mut();
        let Some(q) = h.as_mut() else { return 0 };
        q.now = Instant::now();
        if let Some(due) = q.now.checked_sub(q.window) {
            while q.held.front().is_some_and(|(t, _)| *t <= due) {
                if let Some((_, c)) = q.held.pop_front() {
                    q.written += c.flush();
                }
            }
        }
        std::mem::take(&mut q.written)
    })
}

/// The worker is about to sleep: writes out every held subscriber (a task
/// is woken only for what its socket did not take).
pub fn flush() {
    HOLD.with(|h| {
        let mut h = h.borrow_mut();
        let Some(q) = h.as_mut() else { return };
        let mut written = 0;
        for (_, c) in q.held.drain(..) {
            written += c.flush();
        }
        q.written += written;
        if q.held.capacity() > 4096 {
            q.held.shrink_to(256);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::limits::Limits;

    fn client(id: u64) -> Arc<ClientHandle> {
        let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        Arc::new(ClientHandle::new(
            id,
            any,
            any,
            -1,
            Arc::new(Limits::default()),
        ))
    }

    fn held() -> usize {
        HOLD.with(|h| h.borrow().as_ref().map_or(0, |q| q.held.len()))
    }

    /// Each test runs on its own thread, so the thread-local queue starts
    /// unconfigured.
    #[test]
    fn only_a_configured_worker_holds() {
        let c = client(1);
        assert!(!defer(&c), "a thread that is not a worker wakes at once");
        configure(Duration::ZERO);
        assert!(!defer(&c), "a zero window holds nothing");
        configure(Duration::from_secs(3600));
        assert!(defer(&c));
        assert_eq!(held(), 1);
        // Not due yet: a batch start leaves it held; parking writes it out.
        on_batch();
        assert_eq!(held(), 1);
        flush();
        assert_eq!(held(), 0);
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
        assert_eq!(held(), 0);
        assert!(defer(&b));
        on_batch();
        assert_eq!(held(), 1, "b is not due yet");
        flush();
        assert_eq!(held(), 0);
    }
}
