//! MONITOR: every command run by any client, as a line to each monitor.
//!
//! Redis 7.0 sends monitors, after each command has run, the raw line
//! `+<unix seconds>.<micros> [<db> <ip:port>] "arg" "arg" ...\r\n`, with
//! every argument quoted like `sdscatrepr` (backslash escapes, `\xHH` for
//! bytes that are not printable). Administrative commands (flag `admin`)
//! and those flagged `skip_monitor` are not shown, and secret arguments
//! (AUTH's, HELLO's AUTH pair) are shown as `(redacted)`.
//!
//! Hot path: the command layer checks [`Monitors::active`], one relaxed
//! atomic load, before building anything; the list's mutex is taken only
//! while at least one monitor exists.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::net::handle::ClientHandle;

/// The clients in MONITOR mode.
#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<Arc<ClientHandle>>>,
}

impl Monitors {
    /// True while some client monitors (checked before every command).
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Adds a monitor (MONITOR).
    pub fn add(&self, h: Arc<ClientHandle>) {
        let mut l = self.list.lock();
        if !l.iter().any(|x| x.id == h.id) {
            l.push(h);
        }
        self.count.store(l.len(), Ordering::Relaxed);
    }

    /// Removes a monitor (RESET, disconnect); a no-op for other clients.
    pub fn remove(&self, id: u64) {
        if !self.active() {
            return;
        }
        let mut l = self.list.lock();
        l.retain(|h| h.id != id);
        self.count.store(l.len(), Ordering::Relaxed);
    }

    /// Sends `line` to every monitor.
    pub fn feed(&self, line: &Bytes) {
        for h in self.list.lock().iter() {
            h.push(line.clone());
        }
    }
}

/// Appends `arg` quoted as Redis's `sdscatrepr`.
pub fn repr(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'"');
    for &b in arg {
        match b {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(b);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// The line monitors receive for a command run in database `db` by the
/// client at `peer`, at `unix_micros`.
pub fn line(unix_micros: u128, db: usize, peer: &dyn std::fmt::Display, args: &[Bytes]) -> Bytes {
    let mut out = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 3).sum::<usize>());
    out.extend_from_slice(
        format!(
            "+{}.{:06} [{db} {peer}] ",
            unix_micros / 1_000_000,
            unix_micros % 1_000_000
        )
        .as_bytes(),
    );
    for (j, a) in args.iter().enumerate() {
        if j > 0 {
            out.push(b' ');
        }
        repr(&mut out, a);
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_and_quoting() {
        let peer: std::net::SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let l = line(
            1_700_000_000_000_042,
            3,
            &peer,
            &[
                Bytes::from_static(b"set"),
                Bytes::from_static(b"a \"q\"\\"),
                Bytes::from_static(b"\x00\xff\r\n\t\x07\x08~"),
            ],
        );
        assert_eq!(
            &l[..],
            &b"+1700000000.000042 [3 127.0.0.1:5000] \"set\" \"a \\\"q\\\"\\\\\" \"\\x00\\xff\\r\\n\\t\\a\\b~\"\r\n"[..]
        );
    }
}
