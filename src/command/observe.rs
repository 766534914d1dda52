//! Operator commands: SLOWLOG, LATENCY, MONITOR, CLIENT PAUSE / UNPAUSE /
//! NO-EVICT, and [`after_command`], the dispatcher's hook that feeds the
//! slow log, the latency monitor and MONITOR after each command (the state
//! they use lives in `observe`).

use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::Bytes;

use super::flags::{self, FAST, NO_MONITOR, RUNS_SCRIPT, SKIP_SLOWLOG};
use super::{cmd, parse_i64, reply_help, Spec, ERR_SYNTAX};
use crate::command::Client;
use crate::config::Config;
use crate::observe::{monitor, pause, slowlog};
use crate::protocol::Frame;

/// SLOWLOG subcommands (sorted by name).
pub static SLOWLOG_SUBCOMMANDS: &[Spec] = &[
    cmd("get", -2, slowlog_get),
    cmd("help", 2, slowlog_help),
    cmd("len", 2, slowlog_len),
    cmd("reset", 2, slowlog_reset),
];

/// LATENCY subcommands herald implements (sorted by name; GRAPH is not).
pub static LATENCY_SUBCOMMANDS: &[Spec] = &[
    cmd("doctor", 2, latency_doctor),
    cmd("graph", 3, latency_graph),
    cmd("help", 2, latency_help),
    cmd("histogram", -2, latency_histogram),
    cmd("history", 3, latency_history),
    cmd("latest", 2, latency_latest),
    cmd("reset", -2, latency_reset),
];

/// What the slow log and MONITOR show of a command's arguments: secrets
/// replaced by `(redacted)` as Redis's `redactClientCommandArgument` does
/// (AUTH's arguments, HELLO's AUTH pair, sensitive CONFIG SET values).
pub fn redacted<'a>(fullname: &str, args: &'a [Bytes]) -> Cow<'a, [Bytes]> {
    const R: Bytes = Bytes::from_static(b"(redacted)");
    let mut hide = Vec::new();
    match fullname {
        // AUTH's syntax error (more than 3 arguments) comes first.
        "auth" if args.len() <= 3 => hide.extend(1..args.len()),
        "hello" => {
            let mut j = if args.len() >= 2 { 2 } else { 1 };
            while j < args.len() {
                let more = args.len() - 1 - j;
                if args[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
                    hide.extend([j + 1, j + 2]);
                    j += 3;
                } else if args[j].eq_ignore_ascii_case(b"setname") && more >= 1 {
                    j += 2;
                } else {
                    break;
                }
            }
        }
        "config|set" => {
            let mut j = 2;
            while j + 1 < args.len() {
                if Config::is_sensitive(&args[j]) {
                    hide.push(j + 1);
                }
                j += 2;
            }
        }
        _ => {}
    }
    if hide.is_empty() {
        return Cow::Borrowed(args);
    }
    let mut v = args.to_vec();
    for i in hide {
        v[i] = R;
    }
    Cow::Owned(v)
}

/// Called after every command the dispatcher ran (EXEC calls it for each
/// queued command): counts and times it (INFO commandstats and
/// latencystats, one clock reading and one table lookup), feeds the slow
/// log and the latency monitor when it took long enough, and shows it to
/// monitors if there are any.
pub fn after_command(c: &mut Client, spec: &'static Spec, args: &[Bytes]) {
    let now = match c.clock_at_end.take() {
        Some(end) if end >= c.clock => end,
        _ => Instant::now(),
    };
    let dur = now.duration_since(c.clock);
    c.clock = now;
    let id = flags::id(spec);
    // A script command still running on the scripting thread is counted,
    // and judged slow or not, when its reply comes (`script_replied`).
    if c.script.is_some() && c.script_call.is_none() {
        c.script_call = id.map(|id| ScriptCall {
            id,
            start: now - dur,
            spec,
            args: args.to_vec(),
        });
    } else {
        if let Some(id) = id {
            if let Some(b) = c.blocked.as_mut() {
                // It just blocked: CLIENT UNBLOCK ERROR may fail it later.
                b.cmd = Some(id);
            }
            let failed = std::mem::take(&mut c.failed);
            let count = flags::names().len();
            c.shared.observe.cmdstats.call(id, count, dur, failed);
        }
        match c.blocked.as_mut() {
            // Judged when unblocked (`record_if_slow` then).
            Some(b) => b.call = Some((spec, args.to_vec(), dur)),
            None => record_if_slow(c, spec, args, dur),
        }
    }
    // A script command was shown before it ran (see `feed_monitors`).
    if c.shared.observe.monitors.active() && flags::of(spec) & (NO_MONITOR | RUNS_SCRIPT) == 0 {
        let peer = c.handle.addr.clone();
        feed_monitors(c, spec, args, &peer.monitor_form());
    }
}

/// A blocked command (number `id`) that failed after it was counted as a
/// call, when it was served an error or released by CLIENT UNBLOCK ERROR:
/// one more failed call, as Redis counts an unblocked client's error.
pub fn blocked_failed(c: &Client, id: Option<usize>) {
    if let Some(id) = id {
        c.shared.observe.cmdstats.failed(id, flags::names().len());
    }
}

/// Shows a command to the clients in MONITOR mode, as run by `peer`
/// (`lua` for a script's commands). Script commands are shown before
/// they run, so that the lines of the commands they call follow theirs,
/// as Redis 7.0 orders them.
pub fn feed_monitors(c: &mut Client, spec: &Spec, args: &[Bytes], peer: &dyn std::fmt::Display) {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let shown = redacted(&super::full_name(c, spec, args), args);
    let line = monitor::line(micros, c.db, peer, &shown);
    if c.monitor {
        // Its own command: the line follows the command's reply.
        c.queue_replies();
    }
    c.shared.observe.monitors.feed(&line);
}

/// Counts the script command whose reply just came from the scripting
/// thread (see [`after_command`]).
pub fn script_replied(c: &mut Client) {
    if let Some(call) = c.script_call.take() {
        let failed = std::mem::take(&mut c.failed);
        let count = flags::names().len();
        let took = call.start.elapsed();
        c.shared.observe.cmdstats.call(call.id, count, took, failed);
        record_if_slow(c, call.spec, &call.args, took);
    }
}

/// Feeds the slow log and the latency monitor with a command that took
/// `dur`, when it took long enough.
pub fn record_if_slow(c: &Client, spec: &Spec, args: &[Bytes], dur: std::time::Duration) {
    let obs = &c.shared.observe;
    let slow = obs.is_slow(dur);
    let late = obs.is_late(dur);
    if !slow && !late {
        return;
    }
    // The flags are looked up only for a command worth recording.
    let bits = flags::of(spec);
    if bits & SKIP_SLOWLOG != 0 {
        return;
    }
    if late {
        let event = if bits & FAST != 0 {
            "fast-command"
        } else {
            "command"
        };
        obs.latency_sample(event, dur);
    }
    if slow {
        let shown = redacted(&super::full_name(c, spec, args), args);
        let name = c.handle.meta.lock().name.clone().unwrap_or_default();
        obs.log_slow(slowlog::Entry {
            id: 0,
            time: crate::util::unix_secs(),
            duration_us: dur.as_micros() as u64,
            args: slowlog::shorten(&shown),
            peer: c.handle.addr.to_string(),
            name,
        });
    }
}

/// A script command waiting for its reply from the scripting thread: what
/// its statistics and slow-log entry need once it has run.
pub struct ScriptCall {
    /// Its number among the commands (`flags::id`).
    pub id: usize,
    /// When it started.
    pub start: Instant,
    /// Its table entry and arguments, for the slow log.
    pub spec: &'static Spec,
    pub args: Vec<Bytes>,
}

/// Counts a call of `spec` made by a script (INFO commandstats only: the
/// slow log and MONITOR show the script itself).
pub fn count_call(c: &mut Client, spec: &Spec, dur: std::time::Duration) {
    if let Some(id) = flags::id(spec) {
        let failed = std::mem::take(&mut c.failed);
        let count = flags::names().len();
        c.shared.observe.cmdstats.call(id, count, dur, failed);
    }
}

/// Counts a call of `spec` refused before it ran (`rejected_calls`).
pub fn count_rejected(c: &Client, spec: &Spec) {
    if let Some(id) = flags::id(spec) {
        let count = flags::names().len();
        c.shared.observe.cmdstats.rejected(id, count);
    }
}

/// SLOWLOG GET [count].
fn slowlog_get(c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        return c.error(
            "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.",
        );
    }
    let mut count = 10usize;
    if let Some(a) = args.get(2) {
        match parse_i64(a) {
            Some(-1) => count = usize::MAX,
            Some(n) if n >= 0 => count = n as usize,
            _ => return c.error("ERR count should be greater than or equal to -1"),
        }
    }
    let f = c.shared.observe.slowlog.lock().get(count);
    c.reply(f);
}

fn slowlog_len(c: &mut Client, _args: &[Bytes]) {
    let n = c.shared.observe.slowlog.lock().len();
    c.reply(Frame::Integer(n as i64));
}

fn slowlog_reset(c: &mut Client, _args: &[Bytes]) {
    c.shared.observe.slowlog.lock().reset();
    c.reply(Frame::ok());
}

fn slowlog_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
}

fn latency_latest(c: &mut Client, _args: &[Bytes]) {
    let f = c.shared.observe.latency.lock().latest();
    c.reply(f);
}

/// LATENCY DOCTOR: Redis's report, as verbatim text.
fn latency_doctor(c: &mut Client, _args: &[Bytes]) {
    let obs = &c.shared.observe;
    let ctx = crate::observe::latency::DoctorContext {
        threshold_ms: obs.latency_threshold(),
        slowlog_slower_than: obs.slowlog_slower_than(),
        hz: u64::from(c.shared.config.read().hz),
        huge_pages: anon_huge_pages(),
    };
    let report = obs.latency.lock().doctor(crate::util::unix_secs(), ctx);
    c.reply(Frame::Verbatim("txt", Bytes::from(report)));
}

/// True if the process has anonymous huge pages (`AnonHugePages` above 0
/// in `/proc/self/smaps_rollup`), which LATENCY DOCTOR warns about as
/// Redis does. False where that file is unavailable.
fn anon_huge_pages() -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return false;
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .any(|v| {
            v.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .is_ok_and(|kb| kb > 0)
        })
}

/// LATENCY GRAPH event.
fn latency_graph(c: &mut Client, args: &[Bytes]) {
    let graph = c
        .shared
        .observe
        .latency
        .lock()
        .graph(&args[2], crate::util::unix_secs());
    match graph {
        Some(g) => c.reply(Frame::Verbatim("txt", Bytes::from(g))),
        None => c.error(format!(
            "ERR No samples available for event '{}'",
            String::from_utf8_lossy(&args[2])
        )),
    }
}

fn latency_history(c: &mut Client, args: &[Bytes]) {
    let f = c.shared.observe.latency.lock().history(&args[2]);
    c.reply(f);
}

/// LATENCY HISTOGRAM [command ...]: the latency histogram of the given
/// commands (a container command brings its subcommands), or of every
/// command that has one; unknown names are skipped.
fn latency_histogram(c: &mut Client, args: &[Bytes]) {
    let names = flags::names();
    let mut ids = Vec::new();
    if args.len() == 2 {
        ids.extend(0..names.len());
    } else {
        for a in &args[2..] {
            let wanted = String::from_utf8_lossy(a).to_ascii_lowercase();
            let Some(id) = names.iter().position(|n| *n == wanted) else {
                continue;
            };
            ids.push(id);
            let prefix = format!("{wanted}|");
            ids.extend((0..names.len()).filter(|&j| names[j].starts_with(&prefix)));
        }
    }
    let stats = &c.shared.observe.cmdstats;
    let mut out = Vec::new();
    for id in ids {
        let Some((calls, cdf)) = stats.cdf(id) else {
            continue;
        };
        let buckets = cdf
            .into_iter()
            .map(|(usec, n)| (Frame::Integer(usec as i64), Frame::Integer(n as i64)))
            .collect();
        let entry = Frame::Map(vec![
            (Frame::bulk("calls"), Frame::Integer(calls as i64)),
            (Frame::bulk("histogram_usec"), Frame::Map(buckets)),
        ]);
        out.push((Frame::bulk(names[id].as_str()), entry));
    }
    c.reply(Frame::Map(out));
}

fn latency_reset(c: &mut Client, args: &[Bytes]) {
    let names = (args.len() > 2).then(|| &args[2..]);
    let n = c.shared.observe.latency.lock().reset(names);
    c.reply(Frame::Integer(n as i64));
}

fn latency_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
}

/// MONITOR: from now on, every command run by any client is sent to this
/// one (see `observe::monitor`). A second MONITOR is ignored silently.
pub fn monitor(c: &mut Client, _args: &[Bytes]) {
    if c.tx.in_exec {
        return c.error("ERR MONITOR isn't allowed for DENY BLOCKING client");
    }
    if c.monitor {
        return;
    }
    c.monitor = true;
    c.handle.meta.lock().monitor = true;
    c.shared.observe.monitors.add(c.handle.clone());
    c.reply(Frame::ok());
}

/// Leaves MONITOR mode (RESET).
pub fn stop_monitor(c: &mut Client) {
    if c.monitor {
        c.monitor = false;
        c.handle.meta.lock().monitor = false;
        c.shared.observe.monitors.remove(c.handle.id);
    }
}

/// CLIENT PAUSE timeout [WRITE|ALL].
pub fn client_pause(c: &mut Client, args: &[Bytes]) {
    if args.len() > 4 {
        return c.error(
            "ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP.",
        );
    }
    let mut kind = pause::ALL;
    if let Some(m) = args.get(3) {
        if m.eq_ignore_ascii_case(b"write") {
            kind = pause::WRITE;
        } else if m.eq_ignore_ascii_case(b"all") {
            kind = pause::ALL;
        } else {
            return c.error("ERR CLIENT PAUSE mode must be WRITE or ALL");
        }
    }
    let Some(ms) = parse_i64(&args[2]) else {
        return c.error("ERR timeout is not an integer or out of range");
    };
    if ms < 0 {
        return c.error("ERR timeout is negative");
    }
    let end = if ms > 0 {
        crate::util::now_ms().saturating_add(ms as u64)
    } else {
        0
    };
    c.shared.observe.pause.pause(end, kind);
    c.shared.engine.hold_expiry(end);
    c.reply(Frame::ok());
}

/// CLIENT UNPAUSE.
pub fn client_unpause(c: &mut Client, _args: &[Bytes]) {
    c.shared.observe.pause.unpause();
    c.shared.engine.release_expiry();
    c.reply(Frame::ok());
}

/// CLIENT NO-EVICT ON|OFF: stored and shown (flag `e`); it only matters
/// with `maxmemory-clients`, which herald does not implement.
pub fn client_no_evict(c: &mut Client, args: &[Bytes]) {
    let v = &args[2];
    let on = if v.eq_ignore_ascii_case(b"on") {
        true
    } else if v.eq_ignore_ascii_case(b"off") {
        false
    } else {
        return c.error(ERR_SYNTAX);
    };
    c.handle.meta.lock().no_evict = on;
    c.reply(Frame::ok());
}

/// Clients holding a command back because of CLIENT PAUSE (INFO
/// `blocked_clients` counts them, as Redis does).
pub fn paused_clients(c: &Client) -> usize {
    c.shared.observe.pause.waiting.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn secrets_are_redacted() {
        let auth = b(&["AUTH", "u", "p"]);
        let r = redacted("auth", &auth);
        assert_eq!(r.as_ref(), &b(&["AUTH", "(redacted)", "(redacted)"])[..]);
        let hello = b(&["HELLO", "3", "SETNAME", "n", "AUTH", "u", "p"]);
        let r = redacted("hello", &hello);
        assert_eq!(
            r.as_ref(),
            &b(&[
                "HELLO",
                "3",
                "SETNAME",
                "n",
                "AUTH",
                "(redacted)",
                "(redacted)"
            ])[..]
        );
        let set = b(&["CONFIG", "SET", "requirepass", "x", "hz", "5"]);
        let r = redacted("config|set", &set);
        assert_eq!(
            r.as_ref(),
            &b(&["CONFIG", "SET", "requirepass", "(redacted)", "hz", "5"])[..]
        );
        let plain = b(&["SET", "a", "b"]);
        let r = redacted("set", &plain);
        assert!(matches!(r, Cow::Borrowed(_)));
        let bad = b(&["AUTH", "a", "b", "c"]);
        assert!(matches!(redacted("auth", &bad), Cow::Borrowed(_)));
    }
}
