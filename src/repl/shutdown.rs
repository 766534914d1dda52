//! A shutdown waiting for the replicas (Redis 7.0's `shutdown-timeout`):
//! SHUTDOWN (without NOW) or SIGTERM / SIGINT on a server whose replicas
//! have not acknowledged its whole stream pauses writes, asks them for an
//! acknowledgement, and waits up to `shutdown-timeout` seconds for them
//! before it saves and exits, so that a replica promoted afterwards has
//! every write. SHUTDOWN ABORT cancels the wait. The steps are in
//! `command::shutdown`; this is the state they share.

use crate::persist::save::ShutdownSave;

/// A shutdown waiting for the replicas.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// What it does about the RDB once the wait is over.
    pub how: ShutdownSave,
    /// Unix ms the wait ends at, caught up or not.
    pub end_ms: u64,
}

/// The shutdown wait, if one runs, and how many ended without exiting.
#[derive(Debug, Default)]
pub struct ShutdownWait {
    pub pending: Option<Pending>,
    /// Counts the waits that failed, so that a blocked SHUTDOWN knows
    /// whether the wait it joined has ended badly.
    pub failures: u64,
}
