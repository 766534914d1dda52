//! The state of a coordinated failover (FAILOVER, Redis 7.0's
//! `failover_state`): the primary pauses writes, waits for a replica to
//! acknowledge its whole stream, then becomes that replica's replica,
//! asking it with `PSYNC <replid> <offset> FAILOVER` to take over. The
//! command and the steps are in `command::replication`; the last step's
//! PSYNC is sent by the replica link (`replica`).

/// Where a failover stands (INFO `master_failover_state`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// None running.
    #[default]
    None,
    /// Writes paused, waiting for the target (or any replica) to
    /// acknowledge the primary's offset.
    WaitingForSync,
    /// This server is now a replica of the target and sends it
    /// `PSYNC ... FAILOVER`.
    InProgress,
}

impl State {
    /// The name INFO shows.
    pub fn name(self) -> &'static str {
        match self {
            State::None => "no-failover",
            State::WaitingForSync => "waiting-for-sync",
            State::InProgress => "failover-in-progress",
        }
    }
}

/// A failover's parameters and state.
#[derive(Debug, Default, Clone)]
pub struct Failover {
    /// Where it stands.
    pub state: State,
    /// FAILOVER TO host port, or the replica chosen once one caught up.
    pub target: Option<(String, u16)>,
    /// FORCE: fail over to the target at the timeout even if it has not
    /// caught up.
    pub force: bool,
    /// Unix ms of the TIMEOUT, if one was given.
    pub end_ms: Option<u64>,
}
