//! SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT], and the shutdown a signal
//! asks for, as Redis 7.0's `prepareForShutdown` / `finishShutdown`: unless
//! NOW (or `shutdown-timeout 0`), a server whose replicas have not
//! acknowledged its whole stream pauses writes, sends them `REPLCONF
//! GETACK *`, and waits up to `shutdown-timeout` seconds for them (the
//! SHUTDOWN call blocked meanwhile, others joining it); then it logs the
//! replicas still lagging, saves as asked, and exits. A failed save
//! without FORCE, or SHUTDOWN ABORT during the wait, leaves the server
//! running: writes resume and the blocked SHUTDOWN calls get Redis's error.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::replication::{replica_ip, Waiting};
use super::{Client, ERR_SYNTAX};
use crate::persist::save::ShutdownSave;
use crate::repl::shutdown::Pending;
use crate::state::Shared;

/// Redis's reply to a SHUTDOWN that could not stop the server.
const ERR_SHUTDOWN: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// What starting a shutdown came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begun {
    /// The server is exiting.
    Exiting,
    /// It waits for its replicas (and exits once they caught up or the
    /// timeout passed, unless aborted).
    Waiting,
    /// The save failed: the server keeps running.
    Refused,
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stops the server; like
/// redis-server, no reply is sent on success (the connection closes).
pub fn shutdown(c: &mut Client, args: &[Bytes]) {
    let (mut abort, mut now) = (false, false);
    let mut how = ShutdownSave::default();
    for a in &args[1..] {
        let a = a.to_ascii_lowercase();
        match a.as_slice() {
            b"nosave" => how.nosave = true,
            b"save" => how.save = true,
            b"force" => how.force = true,
            b"now" => now = true,
            b"abort" => abort = true,
            _ => return c.error(ERR_SYNTAX),
        }
    }
    if abort {
        if args.len() != 2 {
            return c.error(ERR_SYNTAX);
        }
        return if self::abort(&c.shared) {
            c.reply(crate::protocol::Frame::ok())
        } else {
            c.error("ERR No shutdown in progress.")
        };
    }
    if how.save && how.nosave {
        return c.error(ERR_SYNTAX);
    }
    // A client that cannot block (inside MULTI or a script) does not wait.
    now |= c.tx.in_exec || c.in_script;
    tracing::warn!("User requested shutdown...");
    let failures = c.shared.engine.repl.shutdown.lock().failures;
    match begin(&c.shared, how, now) {
        Begun::Exiting => c.close_after_reply = true,
        Begun::Refused => c.error(ERR_SHUTDOWN),
        Begun::Waiting => {
            super::replication::suspend(
                c,
                Waiting {
                    offset: 0,
                    replicas: 0,
                    deadline: None,
                    shutdown_failures: Some(failures),
                },
            );
        }
    }
}

/// Starts a shutdown (SHUTDOWN, or a signal with the flags of its
/// `shutdown-on-sig*` option): joins the one waiting, waits for the
/// replicas, or finishes at once.
pub fn begin(shared: &Arc<Shared>, how: ShutdownSave, now: bool) -> Begun {
    let repl = &shared.engine.repl;
    let timeout_secs: u64 = shared
        .config
        .read()
        .value("shutdown-timeout")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    {
        let mut w = repl.shutdown.lock();
        if w.pending.is_some() {
            return Begun::Waiting;
        }
        if !now && timeout_secs > 0 && !replicas_caught_up(shared) {
            w.pending = Some(Pending {
                how,
                end_ms: crate::util::now_ms() + timeout_secs * 1000,
            });
            drop(w);
            repl.request_acks();
            shared
                .observe
                .pause
                .pause(u64::MAX / 2, crate::observe::pause::WRITE);
            tracing::info!("Waiting for replicas before shutting down.");
            tokio::spawn(drive(shared.clone()));
            return Begun::Waiting;
        }
    }
    finish(shared, how)
}

/// INFO server's `shutdown_in_milliseconds` line while a shutdown waits
/// for the replicas (Redis shows it only then), else nothing.
pub fn info_field(repl: &crate::repl::Repl) -> String {
    match repl.shutdown.lock().pending {
        Some(p) => format!(
            "shutdown_in_milliseconds:{}\r\n",
            p.end_ms.saturating_sub(crate::util::now_ms())
        ),
        None => String::new(),
    }
}

/// SHUTDOWN ABORT: cancels a shutdown waiting for the replicas; false if
/// none waits.
pub fn abort(shared: &Shared) -> bool {
    let repl = &shared.engine.repl;
    if repl.shutdown.lock().pending.is_none() {
        return false;
    }
    ended_without_exiting(shared);
    tracing::info!("Shutdown manually aborted.");
    true
}

/// Every replica acknowledged the whole stream (Redis's
/// `isReadyToShutdown`; true without replicas).
fn replicas_caught_up(shared: &Shared) -> bool {
    let repl = &shared.engine.repl;
    let offset = repl.offset();
    repl.replicas()
        .iter()
        .all(|r| r.ack_offset.load(Relaxed) == offset)
}

/// Waits for the replicas until they caught up or the deadline passed,
/// then finishes the shutdown; nothing if it was aborted meanwhile.
async fn drive(shared: Arc<Shared>) {
    let repl = shared.engine.repl.clone();
    let how = loop {
        let acked = repl.acked.notified();
        tokio::pin!(acked);
        acked.as_mut().enable();
        let Some(p) = repl.shutdown.lock().pending else {
            return;
        };
        if replicas_caught_up(&shared) || crate::util::now_ms() >= p.end_ms {
            break p.how;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), acked).await;
    };
    let sh = shared.clone();
    let done = tokio::task::spawn_blocking(move || finish(&sh, how)).await;
    if !matches!(done, Ok(Begun::Exiting)) {
        ended_without_exiting(&shared);
    }
}

/// Redis's `finishShutdown`: logs the replicas still behind, saves as
/// asked, and stops the server, or refuses if the save failed.
fn finish(shared: &Arc<Shared>, how: ShutdownSave) -> Begun {
    let repl = &shared.engine.repl;
    let offset = repl.offset();
    let replicas = repl.replicas();
    let now_ms = crate::util::now_ms();
    let mut lagging = 0;
    for r in &replicas {
        let acked = r.ack_offset.load(Relaxed);
        if acked != offset {
            lagging += 1;
            let online = r.online.load(Relaxed);
            let lag = if online {
                now_ms.saturating_sub(r.ack_ms.load(Relaxed)) / 1000
            } else {
                0
            };
            tracing::warn!(
                "Lagging replica {}:{} reported offset {} behind master, lag={lag}, state={}.",
                replica_ip(r),
                r.port.load(Relaxed),
                offset.saturating_sub(acked),
                if online { "online" } else { "wait_bgsave" }
            );
        }
    }
    if !replicas.is_empty() {
        tracing::info!(
            "{} of {} replicas are in sync when shutting down.",
            replicas.len() - lagging,
            replicas.len()
        );
    }
    // The AOF turned on by CONFIG SET appendonly yes is still being
    // written: exiting now would leave no log at all.
    let initial_aof = {
        let st = shared.persist.lock();
        st.layout.is_none() && (st.rewrite_scheduled || st.rewrite_in_progress)
    };
    let refused = if initial_aof && !how.force {
        tracing::warn!("Writing initial AOF, can't exit.");
        true
    } else {
        if initial_aof {
            tracing::warn!("Writing initial AOF. Exit anyway.");
        }
        crate::persist::save::at_shutdown(shared.as_ref(), how).is_err()
    };
    if refused {
        tracing::warn!(
            "Errors trying to shut down the server. Check the logs for more information."
        );
        return Begun::Refused;
    }
    shared.shutdown();
    Begun::Exiting
}

/// The wait ended and the server keeps running: writes resume and the
/// SHUTDOWN calls blocked on it get their error.
fn ended_without_exiting(shared: &Shared) {
    let repl = &shared.engine.repl;
    {
        let mut w = repl.shutdown.lock();
        w.pending = None;
        w.failures += 1;
    }
    shared.observe.pause.unpause();
    repl.acked.notify_waiters();
}

/// Settles a SHUTDOWN blocked on the wait that counted `failures` failed
/// waits when it began: its error once that wait failed; false while it
/// goes on (a shutdown that succeeds closes the connection instead).
pub fn settle(c: &mut Client, failures: u64) -> bool {
    if c.shared.engine.repl.shutdown.lock().failures == failures {
        return false;
    }
    super::replication::end_wait(c);
    c.error(ERR_SHUTDOWN);
    c.queue_replies();
    true
}
