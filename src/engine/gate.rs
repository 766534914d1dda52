//! The keyspace gate: a script has the whole keyspace to itself.
//!
//! Every client batch runs inside the gate (a shared lock, taken when its
//! first command runs and let go when the batch ends); a script runs
//! *exclusive*, taken on the scripting thread (scripts queue there, not at
//! the gate), where it waits for the batches in progress (short: a batch
//! never waits on anything), or on a worker only when nothing holds it (a
//! script known to be quick, see `command::scripting::run_script`). While
//! a script runs, no other client command starts.
//! Clients that find the gate closed do not wait on the lock (that would
//! stop a worker thread): their command is postponed, and the connection
//! waits for [`Gate::changed`]. Once a script has run longer than
//! `busy-reply-threshold` it is *busy*: postponed commands are answered
//! `-BUSY` instead, except the few that may run meanwhile (SCRIPT KILL,
//! FUNCTION KILL, SHUTDOWN NOSAVE, ...), which run without entering.
//!
//! Work that touches databases outside client commands (active expiry,
//! timeouts of blocked clients) asks [`Gate::enter`] too and waits for its
//! next turn when a script runs.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::lock_api::ArcRwLockReadGuard;
use parking_lot::{RawRwLock, RwLock, RwLockWriteGuard};
use tokio::sync::Notify;

/// A batch's shared hold on the gate.
pub type Entry = ArcRwLockReadGuard<RawRwLock, ()>;

/// What kind of script holds the gate, for the `-BUSY` text and for which
/// KILL applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// EVAL and friends (SCRIPT KILL).
    Eval,
    /// FCALL (FUNCTION KILL).
    Function,
}

const FREE: u8 = 0;
const HELD: u8 = 1;
const BUSY_EVAL: u8 = 2;
const BUSY_FUNCTION: u8 = 3;

/// See the module header.
#[derive(Default)]
pub struct Gate {
    lock: Arc<RwLock<()>>,
    state: AtomicU8,
    /// Notified when the gate opens or its script becomes busy (to the
    /// waiters registered with [`waiting`](Self::waiting)).
    pub changed: Notify,
    /// How many waits are registered.
    waiters: AtomicUsize,
}

impl Gate {
    /// Enters for a batch (or one piece of background work); `None` while
    /// a script runs.
    pub fn enter(&self) -> Option<Entry> {
        self.lock.try_read_arc()
    }

    /// Takes the whole keyspace for a script, on the scripting thread,
    /// which may wait: for the batches in progress to end.
    pub fn exclusive_wait(&self) -> Exclusive<'_> {
        let write = self.lock.write();
        self.state.store(HELD, Ordering::Release);
        Exclusive {
            gate: self,
            held: Some(write),
        }
    }

    /// Takes the whole keyspace for a script on a worker, which may not
    /// wait: `None` while a batch or another script holds the gate.
    pub fn try_exclusive(&self) -> Option<Exclusive<'_>> {
        let write = self.lock.try_write()?;
        self.state.store(HELD, Ordering::Release);
        Some(Exclusive {
            gate: self,
            held: Some(write),
        })
    }

    /// Registers a wait for [`changed`](Self::changed): call it after
    /// making the `Notified` future and before checking the state, and keep
    /// it until the wait is over. The gate's changes wake waiters only
    /// while some are registered (a script's end costs no wake-up call
    /// otherwise): a change either sees this registration or is seen by
    /// the check that follows it.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        Waiting(self)
    }

    /// Wakes the registered waiters, after a change of the state (made
    /// with `SeqCst`, see [`waiting`](Self::waiting)).
    fn wake(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_waiters();
        }
    }

    /// The script holding the gate has run past `busy-reply-threshold`:
    /// postponed commands get `-BUSY` from now on.
    pub fn set_busy(&self, holder: Holder) {
        let busy = match holder {
            Holder::Eval => BUSY_EVAL,
            Holder::Function => BUSY_FUNCTION,
        };
        if self
            .state
            .compare_exchange(HELD, busy, Ordering::SeqCst, Ordering::Acquire)
            .is_ok()
        {
            self.wake();
        }
    }

    /// The busy script's kind, if a script is busy.
    pub fn busy(&self) -> Option<Holder> {
        // SeqCst: a waiter's check (see `waiting`).
        match self.state.load(Ordering::SeqCst) {
            BUSY_EVAL => Some(Holder::Eval),
            BUSY_FUNCTION => Some(Holder::Function),
            _ => None,
        }
    }

    /// True while a script holds the gate and is not busy yet: commands
    /// wait for it.
    pub fn holds_back(&self) -> bool {
        self.state.load(Ordering::SeqCst) == HELD
    }
}

/// A script's exclusive hold; dropping it opens the gate.
pub struct Exclusive<'a> {
    gate: &'a Gate,
    held: Option<RwLockWriteGuard<'a, ()>>,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        // Free before unlocking (a script that takes the gate next sets
        // its own state), unlocked before the wake-up (those woken can
        // enter).
        self.gate.state.store(FREE, Ordering::SeqCst);
        drop(self.held.take());
        self.gate.wake();
    }
}

/// A registered wait for the gate's change (see [`Gate::waiting`]).
pub struct Waiting<'a>(&'a Gate);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}
